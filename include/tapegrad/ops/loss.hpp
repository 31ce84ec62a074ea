#pragma once
/// \file
/// Loss functions: one number that says how wrong the network is, which backward then differentiates.
///
///  - Regression: mse_loss, the mean of (prediction - target)^2.
///  - Two classes: the network outputs one score per example. bce_loss takes probabilities (after a
///    sigmoid); binary_cross_entropy_with_logits takes the raw score and fuses the sigmoid in, which is
///    both cheaper and numerically safe (prefer it).
///  - C classes: cross_entropy takes raw scores (logits) [N, C] and the class index of each row. It is
///    log_softmax followed by the negative log-likelihood, fused into one op: its gradient is simply
///    (softmax - onehot) / N, and a confident wrong answer costs its full margin (1e4 for a margin of 1e4)
///    instead of log(0) = -inf. nll_loss is the second half alone, for a network ending in log_softmax.
///
/// Every loss takes a `Reduction` (as PyTorch's `reduction=`): `mean` (the default) and `sum` return a
/// scalar, `none` one loss per element (per row for the class losses). Errors name the function and the
/// values: `cross_entropy: label 11 out of range [0, 10) at row 7`.
///
/// The function-object modules (`nn::CrossEntropyLoss{}` ...) in nn/loss.hpp give the same losses
/// PyTorch's names; `nn::cross_entropy` and the others are these functions under their nn names.
///
/// The class losses take labels as a host span (`std::vector<int64_t>`) or as `Labels<D>` (core/labels.hpp),
/// class indices already on the logits' device: on a GPU that saves the copy at every step, and it is the
/// form a step captured into a CUDA graph needs. Host labels may be of any integer type (`std::vector<int>`).

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/loss_functors.hpp>
#include <tapegrad/core/labels.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/softmax.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

namespace tapegrad {

/// How a loss combines the per-element (or per-row) losses: their mean, their sum, or none (returned as is).
enum class Reduction { mean, sum, none };

}  // namespace tapegrad

namespace tapegrad::detail {

/// Applies `r` to a recorded per-element loss.
template <Scalar T, Device D>
Tensor<T, D> reduce_loss(const Tensor<T, D>& l, Reduction r) {
    switch (r) {
        case Reduction::sum: return tapegrad::sum(l);
        case Reduction::none: return l;
        case Reduction::mean: break;
    }
    return tapegrad::mean(l);
}

/// Throws ShapeError unless input and target have the same shape (no silent broadcasting in a loss).
template <Scalar T, Device D>
void check_loss_shapes(const char* op, const Tensor<T, D>& input, const Tensor<T, D>& target) {
    TAPEGRAD_CHECK(input.shape() == target.shape(), ShapeError, op, ": input shape ", input.shape(),
                   " and target shape ", target.shape(), " differ");
}

/// The [N, C] of a class loss's input, and the largest label with its first row (-1, -1 when none).
struct ClassRows {
    int64_t rows, classes;
    int64_t max_label = -1, max_row = -1;
};

/// Checks a class loss's arguments: scores [N, C], N labels, each in [0, C); a mean needs N > 0.
template <Scalar T, Device D>
ClassRows check_class_rows(const char* op, const Tensor<T, D>& scores, std::span<const int64_t> labels,
                                  Reduction r) {
    const Shape& s = scores.shape();
    TAPEGRAD_CHECK(s.rank() == 2, ShapeError, op, ": input must be 2-D [N, C], got shape ", s);
    const int64_t N = s[0], C = s[1];
    TAPEGRAD_CHECK(static_cast<int64_t>(labels.size()) == N, ShapeError, op, ": batch sizes differ: input of shape ",
                   s, " has ", N, " rows but ", labels.size(), " labels were given");
    ClassRows out{N, C};
    for (int64_t row = 0; row < N; ++row) {
        const int64_t label = labels[static_cast<size_t>(row)];
        TAPEGRAD_CHECK(label >= 0 && label < C, IndexError, op, ": label ", label, " out of range [0, ", C,
                       ") at row ", row);
        if (label > out.max_label) {
            out.max_label = label;
            out.max_row = row;
        }
    }
    TAPEGRAD_CHECK(N > 0 || r != Reduction::mean, ValueError, op, ": mean over an empty batch (input of shape ",
                   s, ")");
    return out;
}

/// Checks a class loss's arguments against device labels: scores [N, C], N labels, none above C - 1 (by the
/// bound the labels carry: see core/labels.hpp); a mean needs N > 0.
template <Scalar T, Device D>
ClassRows check_class_rows(const char* op, const Tensor<T, D>& scores, const Labels<D>& labels, Reduction r) {
    const Shape& s = scores.shape();
    TAPEGRAD_CHECK(s.rank() == 2, ShapeError, op, ": input must be 2-D [N, C], got shape ", s);
    const int64_t N = s[0], C = s[1];
    TAPEGRAD_CHECK(labels.size() == N, ShapeError, op, ": batch sizes differ: input of shape ", s, " has ", N,
                   " rows but ", labels.size(), " labels were given");
    if (labels.max_label() >= C) {
        TAPEGRAD_CHECK(labels.max_row() < 0, IndexError, op, ": label ", labels.max_label(), " out of range [0, ", C,
                       ") at row ", labels.max_row());
        TAPEGRAD_CHECK(false, IndexError, op, ": labels may reach ", labels.max_label(),
                       " (the largest label of the data they were gathered from), out of range [0, ", C, ")");
    }
    TAPEGRAD_CHECK(N > 0 || r != Reduction::mean, ValueError, op, ": mean over an empty batch (input of shape ",
                   s, ")");
    return {N, C};
}

/// The output of a row-wise loss whose rows [N] were computed unrecorded: the rows themselves (none), or
/// their sum or mean as a scalar. The caller records one node for the whole op; `stride` and `scale` tell
/// its backward how to read dy: one gradient per row (stride 1) or one for all (stride 0), times `scale`.
template <Scalar T, Device D>
Tensor<T, D> reduce_rows(const Tensor<T, D>& rows, Reduction r, int64_t& stride, T& scale) {
    using B = backend::Ops<D>;
    stride = r == Reduction::none ? 1 : 0;
    scale = r == Reduction::mean ? T(1) / static_cast<T>(rows.numel()) : T(1);
    if (r == Reduction::none) return rows;
    Tensor<T, D> y = Tensor<T, D>::empty(Shape{});
    B::sum_axis(int64_t{1}, rows.numel(), int64_t{1}, rows.data_ptr(), y.data_ptr());
    if (scale != T(1)) B::scale(int64_t{1}, scale, y.data_ptr());
    return y;
}

}  // namespace tapegrad::detail

namespace tapegrad {

/// Mean squared error: (input - target)^2, reduced. input, target: the same shape -> scalar (or that
/// shape for Reduction::none). Gradients reach both.
/// Backward: d/dinput = 2 (input - target) (divided by the element count for mean), d/dtarget = the negative.
template <Scalar T, Device D>
Tensor<T, D> mse_loss(const Tensor<T, D>& input, const Tensor<T, D>& target, Reduction reduction = Reduction::mean) {
    tapegrad::detail::check_loss_shapes("mse_loss", input, target);
    return tapegrad::detail::reduce_loss(binary(input, target, fn::SquaredError{}), reduction);
}

/// Binary cross-entropy of probabilities: -(t log p + (1 - t) log(1 - p)), each log clamped to >= -100 as
/// PyTorch does, so p = 0 or 1 gives a large finite loss instead of inf. probs, target: the same shape ->
/// scalar (or that shape for Reduction::none). Throws ValueError if a probability lies outside [0, 1]
/// (on the CPU; raw scores belong in binary_cross_entropy_with_logits).
/// Backward: d/dp = (p - t) / max(p (1 - p), 1e-12), d/dt = log(1 - p) - log p (see fn::Bce).
template <Scalar T, Device D>
Tensor<T, D> bce_loss(const Tensor<T, D>& probs, const Tensor<T, D>& target, Reduction reduction = Reduction::mean) {
    tapegrad::detail::check_loss_shapes("bce_loss", probs, target);
    if constexpr (HostAccessible<D>) {
        const T* p = probs.data_ptr();
        for (int64_t i = 0; i < probs.numel(); ++i)
            TAPEGRAD_CHECK(p[i] >= T(0) && p[i] <= T(1), ValueError, "bce_loss: input must hold probabilities in ",
                           "[0, 1], found ", p[i], " at flat index ", i,
                           " (for raw scores use binary_cross_entropy_with_logits)");
    }
    return tapegrad::detail::reduce_loss(binary(probs, target, fn::Bce{}), reduction);
}

/// Binary cross-entropy on logits (sigmoid fused in): max(x, 0) - x t + log1p(e^-|x|), finite for any x.
/// logits, target: the same shape -> scalar (or that shape for Reduction::none).
/// Backward: d/dx = sigmoid(x) - t, d/dt = -x.
template <Scalar T, Device D>
Tensor<T, D> binary_cross_entropy_with_logits(const Tensor<T, D>& logits, const Tensor<T, D>& target,
                                              Reduction reduction = Reduction::mean) {
    tapegrad::detail::check_loss_shapes("binary_cross_entropy_with_logits", logits, target);
    return tapegrad::detail::reduce_loss(binary(logits, target, fn::BceWithLogits{}), reduction);
}

/// Cross-entropy of logits [N, C] against class indices (N labels in [0, C)), as ONE op: log-softmax and
/// the negative log-likelihood fused. Row r's loss is logsumexp(x_r) - x_r[label_r], max-shifted, so it
/// is finite whenever the logits' differences are: equal logits give log C at any magnitude, a margin of
/// 1e4 gives ~0 (right) or ~1e4 (wrong). -> scalar, or [N] for Reduction::none. `labels` are on the
/// logits' device (core/labels.hpp); the overload below takes host labels.
/// Backward: dx_r = (softmax(x_r) - onehot(label_r)) * dy_r (dy / N for mean).
/// Throws ShapeError for non-2-D logits or a label count other than N, IndexError for a label out of range.
template <Scalar T, Device D>
Tensor<T, D> cross_entropy(const Tensor<T, D>& logits, const Labels<D>& labels, Reduction reduction = Reduction::mean) {
    using B = backend::Ops<D>;
    const auto nc = tapegrad::detail::check_class_rows("cross_entropy", logits, labels, reduction);
    const int64_t N = nc.rows, C = nc.classes;
    Tensor<T, D> probs = Tensor<T, D>::empty(Shape{N, C});
    Tensor<T, D> rows = Tensor<T, D>::empty(Shape{N});
    B::softmax_xent_rows(N, C, logits.data_ptr(), labels.data(), probs.data_ptr(), rows.data_ptr());
    int64_t stride = 0;
    T scale = T(1);
    Tensor<T, D> y = tapegrad::detail::reduce_rows(rows, reduction, stride, scale);
    if (tapegrad::detail::needs_grad(logits)) {
        tapegrad::detail::record(y, "cross_entropy", {&logits},
                                 [logits, probs, labels, N, C, stride, scale](const Tensor<T, D>& dy) {
                                     B::softmax_xent_rows_backward(N, C, probs.data_ptr(), labels.data(), dy.data_ptr(),
                                                                   stride, scale,
                                                                   tapegrad::detail::grad_buffer(logits));
                                 });
    }
    return y;
}

/// Cross-entropy against host labels (copied to the logits' device once, shared by forward and backward).
template <Scalar T, Device D>
Tensor<T, D> cross_entropy(const Tensor<T, D>& logits, std::span<const int64_t> labels,
                           Reduction reduction = Reduction::mean) {
    const auto nc = tapegrad::detail::check_class_rows("cross_entropy", logits, labels, reduction);
    return cross_entropy(logits, Labels<D>::from_checked(labels, nc.max_label, nc.max_row), reduction);
}
/// Cross-entropy against host labels of another integer type (`std::vector<int>`...), converted once.
template <Scalar T, Device D, LabelRange R>
    requires(!std::convertible_to<const R&, std::span<const int64_t>>)
Tensor<T, D> cross_entropy(const Tensor<T, D>& logits, const R& labels, Reduction reduction = Reduction::mean) {
    std::vector<int64_t> storage;
    return cross_entropy(logits, tapegrad::detail::labels_as_int64("cross_entropy", labels, storage), reduction);
}

/// Cross-entropy against class indices in a 1-D int64 tensor on the logits' device (viewed as Labels).
template <Scalar T, Device D>
Tensor<T, D> cross_entropy(const Tensor<T, D>& logits, const Tensor<int64_t, D>& labels,
                           Reduction reduction = Reduction::mean) {
    return cross_entropy(logits, Labels<D>(labels), reduction);
}

/// Cross-entropy of logits [N, C] against probability targets [N, C] (soft labels, label smoothing):
/// row r's loss is -sum_c t_rc log_softmax(x_r)_c. -> scalar, or [N] for Reduction::none. Gradients reach
/// both. Backward (through log_softmax): dx_r = softmax(x_r) sum_c t_rc - t_r, dt_r = -log_softmax(x_r).
/// Throws ShapeError unless logits are 2-D and target has their shape.
template <Scalar T, Device D>
Tensor<T, D> cross_entropy(const Tensor<T, D>& logits, const Tensor<T, D>& target,
                           Reduction reduction = Reduction::mean) {
    TAPEGRAD_CHECK(logits.dim() == 2, ShapeError, "cross_entropy: input must be 2-D [N, C], got shape ",
                   logits.shape());
    tapegrad::detail::check_loss_shapes("cross_entropy", logits, target);
    const Tensor<T, D> rows = -tapegrad::sum(target * log_softmax(logits, 1), 1);
    return tapegrad::detail::reduce_loss(rows, reduction);
}

/// Negative log-likelihood of log-probabilities [N, C] (e.g. log_softmax output) against class indices on
/// the same device: row r's loss is -log_probs[r, label_r]. -> scalar, or [N] for Reduction::none.
/// cross_entropy(x, labels) == nll_loss(log_softmax(x, 1), labels).
/// Backward: d/dlog_probs[r, label_r] = -dy_r (dy / N for mean), 0 elsewhere.
/// Throws ShapeError for non-2-D input or a label count other than N, IndexError for a label out of range.
template <Scalar T, Device D>
Tensor<T, D> nll_loss(const Tensor<T, D>& log_probs, const Labels<D>& labels, Reduction reduction = Reduction::mean) {
    using B = backend::Ops<D>;
    const auto nc = tapegrad::detail::check_class_rows("nll_loss", log_probs, labels, reduction);
    const int64_t N = nc.rows, C = nc.classes;
    Tensor<T, D> rows = Tensor<T, D>::empty(Shape{N});
    B::nll_rows(N, C, log_probs.data_ptr(), labels.data(), rows.data_ptr());
    int64_t stride = 0;
    T scale = T(1);
    Tensor<T, D> y = tapegrad::detail::reduce_rows(rows, reduction, stride, scale);
    if (tapegrad::detail::needs_grad(log_probs)) {
        tapegrad::detail::record(y, "nll_loss", {&log_probs},
                                 [log_probs, labels, N, C, stride, scale](const Tensor<T, D>& dy) {
                                     B::nll_rows_backward(N, C, labels.data(), dy.data_ptr(), stride, scale,
                                                          tapegrad::detail::grad_buffer(log_probs));
                                 });
    }
    return y;
}

/// nll_loss against host labels (copied to the input's device once).
template <Scalar T, Device D>
Tensor<T, D> nll_loss(const Tensor<T, D>& log_probs, std::span<const int64_t> labels,
                      Reduction reduction = Reduction::mean) {
    const auto nc = tapegrad::detail::check_class_rows("nll_loss", log_probs, labels, reduction);
    return nll_loss(log_probs, Labels<D>::from_checked(labels, nc.max_label, nc.max_row), reduction);
}
/// nll_loss against host labels of another integer type (`std::vector<int>`...), converted once.
template <Scalar T, Device D, LabelRange R>
    requires(!std::convertible_to<const R&, std::span<const int64_t>>)
Tensor<T, D> nll_loss(const Tensor<T, D>& log_probs, const R& labels, Reduction reduction = Reduction::mean) {
    std::vector<int64_t> storage;
    return nll_loss(log_probs, tapegrad::detail::labels_as_int64("nll_loss", labels, storage), reduction);
}

/// nll_loss against class indices in a 1-D int64 tensor on the input's device (viewed as Labels).
template <Scalar T, Device D>
Tensor<T, D> nll_loss(const Tensor<T, D>& log_probs, const Tensor<int64_t, D>& labels,
                      Reduction reduction = Reduction::mean) {
    return nll_loss(log_probs, Labels<D>(labels), reduction);
}

}  // namespace tapegrad
