#pragma once
/// \file
/// Gradient clipping: `clip_grad_norm_` and `clip_grad_value_`, as `torch.nn.utils`.
///
/// The idea: now and then a batch produces a huge gradient (an exploding recurrent net, a bad sample, the
/// first steps of a transformer), and one step along it can throw the weights far away from everything
/// learned so far. Clipping bounds the step. `clip_grad_norm_` treats all gradients as one long vector and,
/// if its norm exceeds `max_norm`, scales the whole vector down to that norm: the direction is kept, only
/// the length shrinks. `clip_grad_value_` clamps each element to [-clip, clip] instead, which is cruder (it
/// changes the direction). Call either between `backward()` and `step()`.

#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/backend/common/functors.hpp>
#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/tensor.hpp>

#include <array>
#include <concepts>
#include <cmath>
#include <limits>
#include <vector>

namespace tapegrad::optim {

namespace detail {

/// Calls f(count, spans) with the gradients of `params` that exist, as a list for the multi-tensor
/// primitives: on the stack for up to 256 parameters (so clipping in a steady training loop does not
/// allocate), on the heap beyond.
template <class U, class T, Device D, class F>
auto with_grad_spans(const std::vector<Tensor<T, D>>& params, F&& f) {
    constexpr size_t on_stack = 256;
    std::array<backend::TensorSpan<U>, on_stack> local;
    std::vector<backend::TensorSpan<U>> heap;
    backend::TensorSpan<U>* spans = local.data();
    if (params.size() > on_stack) {
        heap.resize(params.size());
        spans = heap.data();
    }
    int64_t count = 0;
    for (const Tensor<T, D>& p : params) {
        const auto* impl = p.impl();
        if (impl == nullptr || !impl->grad) continue;
        spans[count++] = {.n = impl->shape.numel(), .data = impl->grad->data()};
    }
    return f(count, static_cast<const backend::TensorSpan<U>*>(spans));
}

}  // namespace detail

/// Scales all gradients of `params` together so that their total `norm_type`-norm is at most `max_norm`,
/// in place, and returns the total norm *before* clipping. The total norm is the norm of all gradient
/// elements taken as one vector (2: Euclidean; infinity: largest magnitude; any p > 0), accumulated in
/// double (`Ops<D>::norm_many`). When `coef = max_norm / (total + 1e-6)` is below 1 every gradient is
/// multiplied by it (`Ops<D>::scale_many`), exactly as torch.nn.utils.clip_grad_norm_ (so the clipped norm
/// lands just under max_norm; a NaN total makes every gradient NaN, an infinite one zeroes the finite
/// elements). Parameters without a gradient are skipped. Works on every device; on CUDA the total is read
/// back to the host (so it cannot be captured into a CUDA graph). Throws ValueError for max_norm < 0 or
/// NaN, norm_type <= 0 or NaN, or -- when `error_if_nonfinite` -- a NaN or infinite total norm (then
/// nothing is scaled).
template <Scalar T, Device D>
double clip_grad_norm_(const std::vector<Tensor<T, D>>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false) {
    TAPEGRAD_CHECK(max_norm >= 0, ValueError, "clip_grad_norm_: invalid max_norm ", max_norm, " (must be >= 0)");
    TAPEGRAD_CHECK(norm_type > 0, ValueError, "clip_grad_norm_: invalid norm_type ", norm_type,
                   " (must be > 0, or infinity)");
    const double total = detail::with_grad_spans<const T>(params, [&](int64_t count, const auto* grads) {
        return backend::Ops<D>::norm_many(count, grads, norm_type);
    });
    TAPEGRAD_CHECK(!error_if_nonfinite || std::isfinite(total), ValueError, "clip_grad_norm_: the total norm ",
                   norm_type, " of the gradients is ", total,
                   ", so they cannot be clipped (pass error_if_nonfinite = false to scale anyway)");
    const double coef = max_norm / (total + 1e-6);
    if (!(coef >= 1)) {  // a NaN total gives a NaN coef and NaN gradients, as in PyTorch
        NoGradGuard no_grad;
        detail::with_grad_spans<T>(params, [&](int64_t count, const auto* grads) {
            backend::Ops<D>::scale_many(count, grads, static_cast<T>(coef));
        });
    }
    return total;
}

/// Clamps every gradient element of `params` to [-clip_value, clip_value], in place (`Ops<D>::map` with
/// fn::Clamp; NaN stays NaN). Parameters without a gradient are skipped. Works on every device. Throws
/// ValueError for clip_value < 0 or NaN.
template <Scalar T, Device D>
void clip_grad_value_(const std::vector<Tensor<T, D>>& params, double clip_value) {
    TAPEGRAD_CHECK(clip_value >= 0, ValueError, "clip_grad_value_: invalid clip_value ", clip_value,
                   " (must be >= 0)");
    NoGradGuard no_grad;
    // Beyond T's range the bound is infinite (a double too large for T must not be converted to it).
    const double hi = clip_value > static_cast<double>(std::numeric_limits<T>::max())
                          ? std::numeric_limits<double>::infinity()
                          : clip_value;
    const fn::Clamp clamp{-hi, hi};
    for (const Tensor<T, D>& p : params) {
        const auto* impl = p.impl();
        if (impl == nullptr || !impl->grad) continue;
        T* g = impl->grad->data();
        backend::Ops<D>::map(impl->shape.numel(), g, g, clamp);
    }
}

}  // namespace tapegrad::optim
