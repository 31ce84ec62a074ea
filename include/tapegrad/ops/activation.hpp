#pragma once
/// \file
/// Activation functions: the nonlinearity between layers, as functions and as modules.
///
/// Without a nonlinearity a stack of dense layers is one linear map, however deep. Which nonlinearity
/// matters because backpropagation multiplies one activation derivative per layer into every gradient:
///
///  - Step (Heaviside), the perceptron's: its derivative is 0 wherever it exists, so no gradient flows at
///    all. Gradient descent needs a function with a useful slope.
///  - Sigmoid 1 / (1 + e^-x): smooth, but its derivative s (1 - s) is at most 0.25 (at x = 0), so ten
///    layers scale a gradient by at most 0.25^10 ~ 1e-6, and for |x| beyond ~5 the function saturates and
///    the derivative is nearly 0: gradients vanish. Its output lies in (0, 1), always positive, so it is
///    not zero-centred: every weight feeding the next unit receives a gradient of the same sign (the
///    unit's delta times a positive input), and the weights can only move in zig-zags.
///  - Tanh = 2 sigmoid(2x) - 1: zero-centred, derivative up to 1, but it saturates just the same.
///  - ReLU max(x, 0): derivative exactly 1 for x > 0, so no saturation on that side and no shrinking of
///    gradients through depth; outputs are sparse (about half the units are 0); it costs one comparison.
///    Its weakness is the "dying ReLU": a unit whose input is negative for every example gets zero gradient
///    and never recovers (a large learning rate or bias step can push a unit there).
///  - Leaky ReLU (slope alpha, e.g. 0.01, for x < 0) and Parametric ReLU (PReLU, the slope is learned, one
///    per channel or shared) keep a small gradient on the negative side, so a unit can come back.
///  - ELU alpha (e^x - 1) for x < 0: smooth, negative outputs push the mean activation towards 0, and it
///    saturates at -alpha only for large negative inputs.
///  - Maxout max over k linear pieces: a learned piecewise-linear convex function. ReLU is the special
///    case max(w x + b, 0) (k = 2, one piece fixed at zero) and leaky ReLU another; it never dies, at the
///    price of k times the weights.
///  - GELU x Phi(x) (BERT, GPT) and SiLU x sigmoid(x) (swish): smooth versions of ReLU that dip slightly
///    below zero for small negative x and have a nonzero gradient there.
///
/// Each function is one functor (backend/common/activation_functors.hpp, or backend/common/functors.hpp for sigmoid,
/// tanh and relu, whose wrappers are in ops/elementwise.hpp) plus a one-line wrapper through `unary`;
/// prelu and maxout, which have parameters, are their own ops. All of them stay finite for inputs of
/// magnitude 1e4. Their modules (nn::ReLU, nn::PReLU, ...) are in nn/activation.hpp.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/activation_functors.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>

#include <cstdint>

namespace tapegrad {

/// Heaviside step: 1 where x > 0, else 0. Its gradient is zero everywhere (see fn::Step): usable as a
/// forward-only threshold, not trainable by backpropagation.
template <Scalar T, Device D>
Tensor<T, D> step(const Tensor<T, D>& x) { return unary(x, fn::Step{}); }

/// y = x (a recorded copy; the gradient passes through).
template <Scalar T, Device D>
Tensor<T, D> identity(const Tensor<T, D>& x) { return unary(x, fn::Identity{}); }

/// x for x > 0, alpha x otherwise.
template <Scalar T, Device D>
Tensor<T, D> leaky_relu(const Tensor<T, D>& x, double alpha = 0.01) { return unary(x, fn::LeakyRelu{alpha}); }

/// x for x > 0, alpha (e^x - 1) otherwise.
template <Scalar T, Device D>
Tensor<T, D> elu(const Tensor<T, D>& x, double alpha = 1.0) { return unary(x, fn::Elu{alpha}); }

/// log(1 + e^(beta x)) / beta, a smooth ReLU; linear (y = x) where beta x > threshold, as PyTorch.
/// Throws ValueError unless beta > 0.
template <Scalar T, Device D>
Tensor<T, D> softplus(const Tensor<T, D>& x, double beta = 1.0, double threshold = 20.0) {
    TAPEGRAD_CHECK(beta > 0.0, ValueError, "softplus: beta must be positive, got ", beta);
    return unary(x, fn::Softplus{beta, threshold});
}

/// How gelu is computed: exactly with erf (PyTorch's default) or with the tanh approximation of the
/// original paper (PyTorch's approximate='tanh').
enum class GeluApproximation { none, tanh };

/// x Phi(x), Phi the standard normal CDF.
template <Scalar T, Device D>
Tensor<T, D> gelu(const Tensor<T, D>& x, GeluApproximation approximate = GeluApproximation::none) {
    return unary(x, fn::Gelu{approximate == GeluApproximation::tanh});
}

/// x sigmoid(x) (SiLU / swish).
template <Scalar T, Device D>
Tensor<T, D> silu(const Tensor<T, D>& x) { return unary(x, fn::Silu{}); }

/// x / (1 + |x|), values in (-1, 1): a squashing function like tanh whose gradient fades polynomially.
template <Scalar T, Device D>
Tensor<T, D> softsign(const Tensor<T, D>& x) { return unary(x, fn::Softsign{}); }

/// Parametric ReLU: x for x > 0, a x otherwise, with learnable slopes `weight`.
///  x: any shape [N, C, ...];  weight: one element (shared by all) or [C], one slope per channel, the
///  channel being dimension 1 of x (as torch.nn.PReLU; an input of rank < 2 has one channel) -> x's shape.
/// Backward: dx = dy where x > 0, a dy otherwise;  da_c = sum of dy x over channel c where x <= 0.
/// Throws ShapeError when the weight fits neither case.
template <Scalar T, Device D>
Tensor<T, D> prelu(const Tensor<T, D>& x, const Tensor<T, D>& weight) {
    using B = backend::Ops<D>;
    const Shape& sx = x.shape();
    const int64_t channels = sx.rank() >= 2 ? sx[1] : 1;
    const int64_t nw = weight.numel();
    TAPEGRAD_CHECK(weight.dim() <= 1 && (nw == 1 || nw == channels), ShapeError, "prelu: weight of shape ",
                   weight.shape(), " does not fit input of shape ", sx, ": expected 1 element or ", channels,
                   " (one per channel, dimension 1)");
    // The weight seen as [C, 1, ..., 1] so that it broadcasts along dimension 1 of x, or as a scalar.
    Shape ws;
    if (nw != 1) {
        ws.push_back(channels);
        for (int i = 2; i < sx.rank(); ++i) ws.push_back(1);
    }
    const backend::Strided p = detail::broadcast_plan(sx, sx, ws);
    Tensor<T, D> y = Tensor<T, D>::empty(sx);
    B::zip(p, x.data_ptr(), weight.data_ptr(), y.data_ptr(), fn::Prelu{});
    if (detail::needs_grad(x, weight)) {
        detail::record(
            y, "prelu", {&x, &weight},
            [x, weight, p](const Tensor<T, D>& dy, const detail::TensorImpl<T, D>& out) {
                T* dx = detail::grad_buffer_or_null(x);
                T* dw = detail::grad_buffer_or_null(weight);
                B::zip_backward(p, x.data_ptr(), weight.data_ptr(), out.data(), dy.data_ptr(), dx, dw, fn::Prelu{});
            },
            // Under create_graph: with m = (x > 0), dx = dy (m + (1 - m) a), da = sum of dy x (1 - m) per channel.
            [x, weight, ws](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                const Tensor<T, D> m = detail::positive_mask(x);
                const Tensor<T, D> a = reshape(weight, ws);
                if (g.wants(x)) g.add(x, dy * (m + (T(1) - m) * a));
                if (g.wants(weight))
                    g.add(weight, reshape(detail::sum_to(dy * x * (T(1) - m), ws), weight.shape()));
            });
    }
    return y;
}

/// Maxout: y_j = max_i (x W_i^T + b_i)_j, the maximum over k linear pieces per output unit.
///  x: [N, in] (or [..., in]);  weight: [out*k, in];  bias: [out*k] or undefined -> [N, out].
///  Row j*k + i of weight (and element j*k + i of bias) is piece i of unit j.
/// Computed as linear -> reshape to [N, out, k] -> max over the last axis, so the gradient of each output
/// flows to its winning piece only. Throws ValueError if k < 1, ShapeError if weight's rows are not a
/// multiple of k (and linear's errors for mismatched shapes).
template <Scalar T, Device D>
Tensor<T, D> maxout(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias, int64_t k) {
    TAPEGRAD_CHECK(k >= 1, ValueError, "maxout: k (pieces per unit) must be at least 1, got ", k);
    const Tensor<T, D> h = linear(x, weight, bias);
    const int64_t rows = h.size(-1);
    TAPEGRAD_CHECK(rows % k == 0, ShapeError, "maxout: weight of shape ", weight.shape(), " has ", rows,
                   " rows, not a multiple of k = ", k);
    Shape pieces = h.shape();
    pieces[pieces.rank() - 1] = rows / k;
    pieces.push_back(k);
    return tapegrad::max(reshape(h, pieces), -1).values;
}

}  // namespace tapegrad
