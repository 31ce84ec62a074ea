#pragma once
/// \file
/// The per-element arithmetic of the optimizer updates, shared by the one-tensor kernels (optim.cu) and the
/// multi-tensor kernels (optim_many.cu), so the two cannot drift apart: both are backend::Ops<Cpu>::sgd_step /
/// adam_step operation for operation, with every product rounded on its own (__fmul_rn / __dmul_rn) so that
/// nvcc does not fuse it into a multiply-add the CPU build does not do. With IEEE division and square root
/// (nvcc's defaults, lost under --use_fast_math) a step then matches the CPU's bit for bit, in float and
/// double, as long as the CPU build does not contract either (-march=native lets GCC use FMA).

#include <cmath>
#include <cstdint>

namespace tapegrad::cuda::detail {

/// a * b, rounded, never contracted with a neighbouring add into a fused multiply-add
__device__ inline float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul(double a, double b) { return __dmul_rn(a, b); }

/// start + weight (end - start), in the two forms torch.lerp (and optim::detail::lerp) picks between
template <class T>
__device__ T lerp(T start, T end, T weight) {
    return std::abs(weight) < T(0.5) ? start + mul(weight, end - start) : end - mul(end - start, T(1) - weight);
}

/// The scalars of an SGD step that every tensor shares, computed once on the host in T as
/// Ops<Cpu>::sgd_step does (keep = 1 - dampening).
template <class T>
struct SgdCoeffs {
    T lr, mu, keep, wd;
    bool decay, momentum, nesterov;
};
/// The shared scalars of sgd_step(lr, momentum, dampening, weight_decay, nesterov).
template <class T>
inline SgdCoeffs<T> sgd_coeffs(T lr, T momentum, T dampening, T weight_decay, bool nesterov) {
    return {.lr = lr,
            .mu = momentum,
            .keep = T(1) - dampening,
            .wd = weight_decay,
            .decay = weight_decay != T(0),
            .momentum = momentum != T(0),
            .nesterov = nesterov};
}

/// Element i of an SGD step: g = grad + wd p (with decay); with momentum buf = g (first step) or
/// mu buf + keep g, and p -= lr (nesterov ? g + mu buf : buf); without, p -= lr g.
template <class T>
__device__ inline void sgd_element(int64_t i, T* p, const T* grad, T* buf, const SgdCoeffs<T>& c, bool first_step) {
    const T g = c.decay ? grad[i] + mul(c.wd, p[i]) : grad[i];
    if (!c.momentum) {
        p[i] -= mul(c.lr, g);
        return;
    }
    const T b = first_step ? g : mul(c.mu, buf[i]) + mul(c.keep, g);
    buf[i] = b;
    p[i] -= mul(c.lr, c.nesterov ? g + mul(c.mu, b) : b);
}

/// The scalars of an Adam step that every tensor shares, computed once on the host in T as
/// Ops<Cpu>::adam_step does: w1 = 1 - beta1, w2 = 1 - beta2, shrink = 1 - lr wd (AdamW), l2 = Adam's
/// coupled decay is on. The two that depend on a tensor's step count, step_size = lr / bc1 and
/// bc2_sqrt = sqrt(bc2), are passed beside them.
template <class T>
struct AdamCoeffs {
    T beta2, w1, w2, eps, wd, shrink;
    bool l2, decoupled, amsgrad;
};
/// The shared scalars of adam_step(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad).
template <class T>
inline AdamCoeffs<T> adam_coeffs(T lr, T beta1, T beta2, T eps, T weight_decay, bool decoupled, bool amsgrad) {
    return {.beta2 = beta2,
            .w1 = T(1) - beta1,
            .w2 = T(1) - beta2,
            .eps = eps,
            .wd = weight_decay,
            .shrink = T(1) - lr * weight_decay,
            .l2 = !decoupled && weight_decay != T(0),
            .decoupled = decoupled,
            .amsgrad = amsgrad};
}

/// Element i of an Adam step: p *= shrink (decoupled); g = grad + wd p (l2); m = lerp(m, g, 1 - beta1);
/// v = beta2 v + (1 - beta2) g^2; vmax = max(vmax, v), NaN winning (amsgrad, then used for v);
/// p -= step_size (m / (sqrt(v) / bc2_sqrt + eps)).
template <class T>
__device__ inline void adam_element(int64_t i, T* p, const T* grad, T* m, T* v, T* vmax, const AdamCoeffs<T>& c,
                                    T step_size, T bc2_sqrt) {
    T pi = p[i];
    if (c.decoupled) pi = mul(pi, c.shrink);
    const T g = c.l2 ? grad[i] + mul(c.wd, pi) : grad[i];
    const T mi = lerp(m[i], g, c.w1);
    const T vi = mul(c.beta2, v[i]) + mul(mul(c.w2, g), g);
    m[i] = mi;
    v[i] = vi;
    T vk = vi;
    if (c.amsgrad) {
        const T prev = vmax[i];
        vk = (vi > prev || vi != vi) ? vi : prev;  // NaN propagates, as torch.maximum
        vmax[i] = vk;
    }
    const T denom = std::sqrt(vk) / bc2_sqrt + c.eps;
    p[i] = pi - mul(step_size, mi / denom);
}

}  // namespace tapegrad::cuda::detail
