#pragma once
/// \file
/// Softmax and log-softmax along an axis: turning a vector of scores (logits) into probabilities.
///
/// softmax(x)_k = e^(x_k) / sum_j e^(x_j) is positive and sums to 1, and it keeps the order of the scores:
/// the largest logit gets the largest probability. Written naively, e^(x_k) overflows to inf for logits
/// around 89 (float) or 710 (double). Softmax does not change when the same constant is subtracted from
/// every logit, so we subtract the maximum first: every exponent is then <= 0, the largest term is exactly
/// 1, and logits of magnitude 1e4 are no problem.
///
/// log_softmax(x)_k = x_k - max - log sum_j e^(x_j - max) is the log of the same probabilities computed
/// without ever taking log(0): a probability that underflows to 0 still has a finite log-probability.
/// Use it (or nn::cross_entropy, which fuses it with the loss) instead of log(softmax(x)).

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/reduce.hpp>

namespace tapegrad {

namespace detail {

/// Shared body of softmax and log_softmax: the [outer, n, inner] view of `axis`, one backend call forward
/// and one backward (which reads the output y, so nothing else is saved).
template <Scalar T, Device D>
Tensor<T, D> softmax_along(const Tensor<T, D>& x, int axis, bool log, const char* op) {
    using B = backend::Ops<D>;
    const int a = x.shape().normalize_axis(axis, op);
    const Shape::AxisSplit s = x.shape().split_at(a);
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
    B::softmax_axis(s.outer, s.n, s.inner, x.data_ptr(), y.data_ptr(), log);
    if (needs_grad(x)) {
        record(
            y, op, {&x},
            [x, s, log](const Tensor<T, D>& dy, const TensorImpl<T, D>& out) {
                B::softmax_axis_backward(s.outer, s.n, s.inner, out.data(), dy.data_ptr(), grad_buffer(x), log);
            },
            // Under create_graph, the same formulas with y recomputed as a recorded op.
            [x, a, log](const Tensor<T, D>& dy, GradSink<T, D>& g) {
                if (!g.wants(x)) return;
                const Tensor<T, D> p = softmax_along(x, a, false, "softmax");
                if (log)
                    g.add(x, dy - p * tapegrad::sum(dy, a, true));
                else
                    g.add(x, p * (dy - tapegrad::sum(dy * p, a, true)));
            });
    }
    return y;
}

}  // namespace detail

/// Probabilities along `axis` (default: the last): y = e^(x - max) / sum e^(x - max). Same shape as x;
/// every slice along `axis` sums to 1.
/// Backward: dx = y * (dy - sum(dy * y)), the sum taken along `axis`.
template <Scalar T, Device D>
Tensor<T, D> softmax(const Tensor<T, D>& x, int axis = -1) {
    return detail::softmax_along(x, axis, false, "softmax");
}

/// Log-probabilities along `axis` (default: the last): y = x - max - log sum e^(x - max). Same shape as x;
/// finite wherever x is.
/// Backward: dx = dy - softmax(x) * sum(dy), with softmax(x) = e^y and the sum taken along `axis`.
template <Scalar T, Device D>
Tensor<T, D> log_softmax(const Tensor<T, D>& x, int axis = -1) {
    return detail::softmax_along(x, axis, true, "log_softmax");
}

}  // namespace tapegrad
