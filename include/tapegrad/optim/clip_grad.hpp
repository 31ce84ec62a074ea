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
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/tensor.hpp>

#include <concepts>
#include <cmath>
#include <limits>
#include <vector>

namespace tapegrad::optim {

/// Scales all gradients of `params` together so that their total `norm_type`-norm is at most `max_norm`,
/// in place, and returns the total norm *before* clipping. The total norm is the norm of all gradient
/// elements taken as one vector (2: Euclidean; infinity: largest magnitude; any p > 0). When
/// `coef = max_norm / (total + 1e-6)` is below 1 every gradient is multiplied by it, exactly as
/// torch.nn.utils.clip_grad_norm_ (so the clipped norm lands just under max_norm; a NaN total makes every
/// gradient NaN, an infinite one zeroes the finite elements). Parameters without a
/// gradient are skipped. Throws ValueError for max_norm < 0 or NaN, norm_type <= 0 or NaN, or -- when
/// `error_if_nonfinite` -- a NaN or infinite total norm (then nothing is scaled).
template <Scalar T, Device D>
double clip_grad_norm_(const std::vector<Tensor<T, D>>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false)
    requires std::same_as<D, Cpu>
{
    TAPEGRAD_CHECK(max_norm >= 0, ValueError, "clip_grad_norm_: invalid max_norm ", max_norm, " (must be >= 0)");
    TAPEGRAD_CHECK(norm_type > 0, ValueError, "clip_grad_norm_: invalid norm_type ", norm_type,
                   " (must be > 0, or infinity)");
    const bool inf_norm = std::isinf(norm_type), two = norm_type == 2.0;
    double acc = 0;  // sum of |g|^p, or max |g| for the infinity norm; accumulated in double
    for (const Tensor<T, D>& p : params) {
        const auto* impl = p.impl();
        if (impl == nullptr || !impl->grad) continue;
        const T* g = impl->grad->data();
        const int64_t n = impl->shape.numel();
        for (int64_t k = 0; k < n; ++k) {
            const double a = std::abs(static_cast<double>(g[k]));
            if (inf_norm)
                acc = (a > acc || std::isnan(a)) ? a : acc;
            else
                acc += two ? a * a : std::pow(a, norm_type);
        }
    }
    const double total = inf_norm ? acc : two ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type);
    TAPEGRAD_CHECK(!error_if_nonfinite || std::isfinite(total), ValueError, "clip_grad_norm_: the total norm ",
                   norm_type, " of the gradients is ", total,
                   ", so they cannot be clipped (pass error_if_nonfinite = false to scale anyway)");
    const double coef = max_norm / (total + 1e-6);
    if (!(coef >= 1)) {  // a NaN total gives a NaN coef and NaN gradients, as in PyTorch
        NoGradGuard no_grad;
        const T c = static_cast<T>(coef);
        for (const Tensor<T, D>& p : params) {
            const auto* impl = p.impl();
            if (impl == nullptr || !impl->grad) continue;
            T* g = impl->grad->data();
            const int64_t n = impl->shape.numel();
            for (int64_t k = 0; k < n; ++k) g[k] *= c;
        }
    }
    return total;
}

/// Clamps every gradient element of `params` to [-clip_value, clip_value], in place. Parameters without a
/// gradient are skipped. Throws ValueError for clip_value < 0 or NaN.
template <Scalar T, Device D>
void clip_grad_value_(const std::vector<Tensor<T, D>>& params, double clip_value)
    requires std::same_as<D, Cpu>
{
    TAPEGRAD_CHECK(clip_value >= 0, ValueError, "clip_grad_value_: invalid clip_value ", clip_value,
                   " (must be >= 0)");
    NoGradGuard no_grad;
    const T hi = clip_value > std::numeric_limits<T>::max() ? std::numeric_limits<T>::infinity()
                                                            : static_cast<T>(clip_value);
    const T lo = -hi;
    for (const Tensor<T, D>& p : params) {
        const auto* impl = p.impl();
        if (impl == nullptr || !impl->grad) continue;
        T* g = impl->grad->data();
        const int64_t n = impl->shape.numel();
        for (int64_t k = 0; k < n; ++k) g[k] = g[k] < lo ? lo : (g[k] > hi ? hi : g[k]);  // NaN stays NaN
    }
}

}  // namespace tapegrad::optim
