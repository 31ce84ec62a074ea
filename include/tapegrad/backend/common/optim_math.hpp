#pragma once
/// \file
/// The per-element arithmetic of every optimizer update, written once for the host and the GPU: an update
/// rule is a small struct holding the scalars every tensor of a step shares (computed on the host, in T),
/// whose `operator()(q, i)` updates element i of one tensor `q` (a `StepParam`, common/multi_tensor.hpp).
/// `Ops<D>::step_many(count, params, rule)` applies a rule to a whole list of tensors: a loop on the CPU,
/// one kernel launch per list on the GPU (backend/cuda/optim.cu), from this one definition.
///
/// Every product goes through `mul`, which on the GPU rounds it on its own (__fmul_rn / __dmul_rn) so that
/// nvcc does not fuse it into a multiply-add the CPU build does not do. With IEEE division and square root
/// (nvcc's defaults, lost under --use_fast_math) a step then matches the CPU's bit for bit, in float and
/// double, as long as the CPU build does not contract either (-march=native lets GCC use FMA).
///
/// ADDING AN OPTIMIZER: a rule here, its X(Name) entry in TAPEGRAD_OPTIM_RULES (which the CPU checks and
/// CUDA instantiates), and the class in optim/ that fills the StepParam list.

#include <tapegrad/backend/common/host_device.hpp>
#include <tapegrad/backend/common/multi_tensor.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace tapegrad::backend {

namespace optim_math {

/// a * b, rounded, never contracted with a neighbouring add into a fused multiply-add (on the GPU).
template <class T>
TAPEGRAD_HD inline T mul(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>)
        return __fmul_rn(a, b);
    else
        return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

/// start + weight (end - start), in the two forms torch.lerp picks between (for accuracy on either side
/// of 0.5), so that running averages match PyTorch's.
template <class T>
TAPEGRAD_HD inline T lerp(T start, T end, T weight) {
    return (weight < T(0) ? -weight : weight) < T(0.5) ? start + mul(weight, end - start)
                                                       : end - mul(end - start, T(1) - weight);
}

}  // namespace optim_math

/// torch.optim.SGD. State: s0 = momentum buffer (null without momentum). q.first_step: the buffer is new.
///   g = grad + wd p (with decay); with momentum b = g (first step) or mu b + (1 - dampening) g and
///   p -= lr (nesterov ? g + mu b : b); without, p -= lr g.
template <class T>
struct SgdRule {
    static constexpr const char* name = "SGD";
    T lr, mu, keep, wd;
    bool decay, momentum, nesterov;

    /// The shared scalars of a step with these hyper-parameters, in T (keep = 1 - dampening).
    static SgdRule make(T lr, T momentum, T dampening, T weight_decay, bool nesterov) {
        return {lr, momentum, T(1) - dampening, weight_decay, weight_decay != T(0), momentum != T(0), nesterov};
    }
    TAPEGRAD_HD void operator()(const StepParam<T>& q, int64_t i) const {
        using optim_math::mul;
        T* p = q.p;
        const T g = decay ? q.grad[i] + mul(wd, p[i]) : q.grad[i];
        if (!momentum) {
            p[i] -= mul(lr, g);
            return;
        }
        const T b = q.first_step ? g : mul(mu, q.s0[i]) + mul(keep, g);
        q.s0[i] = b;
        p[i] -= mul(lr, nesterov ? g + mul(mu, b) : b);
    }
};

/// torch.optim.Adam / AdamW. State: s0 = m, s1 = v, s2 = vmax (amsgrad; else null). Per tensor:
/// q.a = lr / bc1 and q.b = sqrt(bc2), with bc1 = 1 - beta1^t and bc2 = 1 - beta2^t for its own step t.
///   p *= 1 - lr wd (decoupled); g = grad + wd p (L2: not decoupled, wd != 0); m = lerp(m, g, 1 - beta1);
///   v = beta2 v + (1 - beta2) g^2; with amsgrad vmax = max(vmax, v) (NaN propagates) replaces v;
///   p -= (lr / bc1) (m / (sqrt(v) / sqrt(bc2) + eps)), arranged as PyTorch does.
template <class T>
struct AdamRule {
    static constexpr const char* name = "Adam";
    T beta2, w1, w2, eps, wd, shrink;
    bool l2, decoupled, amsgrad;

    static AdamRule make(T lr, T beta1, T beta2, T eps, T weight_decay, bool decoupled, bool amsgrad) {
        return {beta2,         T(1) - beta1, T(1) - beta2,
                eps,           weight_decay, T(1) - lr * weight_decay,
                !decoupled && weight_decay != T(0), decoupled, amsgrad};
    }
    TAPEGRAD_HD void operator()(const StepParam<T>& q, int64_t i) const {
        if (decoupled)
            apply<true>(q, i, std::sqrt(amsgrad ? moments<false, true>(q, i) : moments<false, false>(q, i)));
        else if (l2)
            apply<false>(q, i, std::sqrt(amsgrad ? moments<true, true>(q, i) : moments<true, false>(q, i)));
        else
            apply<false>(q, i, std::sqrt(amsgrad ? moments<false, true>(q, i) : moments<false, false>(q, i)));
    }

    // The update in two halves around its square root, with the flags as constants, so that a host loop runs
    // each half in vectors (backend/cpu/optim.hpp: std::sqrt's errno path keeps a loop around it scalar).
    /// Updates m, v (and vmax) of element i; returns the value under the root (v, or vmax).
    template <bool L2, bool Amsgrad>
    TAPEGRAD_HD T moments(const StepParam<T>& q, int64_t i) const {
        using optim_math::mul;
        T g = q.grad[i];
        if constexpr (L2) g += mul(wd, q.p[i]);  // never with the decoupled decay
        const T mi = optim_math::lerp(q.s0[i], g, w1);
        const T vi = mul(beta2, q.s1[i]) + mul(mul(w2, g), g);
        q.s0[i] = mi;
        q.s1[i] = vi;
        if constexpr (Amsgrad) {
            const T prev = q.s2[i];
            const T vk = (vi > prev || vi != vi) ? vi : prev;  // NaN propagates, as torch.maximum
            q.s2[i] = vk;
            return vk;
        } else {
            return vi;
        }
    }
    /// p = p (1 - lr wd) (decoupled) - (lr / bc1) (m / (root / sqrt(bc2) + eps)), root = sqrt(moments(q, i)).
    template <bool Decoupled>
    TAPEGRAD_HD void apply(const StepParam<T>& q, int64_t i, T root) const {
        using optim_math::mul;
        T pi = q.p[i];
        if constexpr (Decoupled) pi = mul(pi, shrink);
        const T denom = root / q.b + eps;
        q.p[i] = pi - mul(q.a, q.s0[i] / denom);
    }
    /// f(moments, apply) with the two halves for this rule's flags: moments(q, i) -> T, apply(q, i, root).
    template <class F>
    void with_fixed_flags(F&& f) const {
        const auto pick = [&]<bool Decoupled, bool L2>() {
            const auto fin = [this](const StepParam<T>& q, int64_t i, T root) { apply<Decoupled>(q, i, root); };
            if (amsgrad)
                f([this](const StepParam<T>& q, int64_t i) { return moments<L2, true>(q, i); }, fin);
            else
                f([this](const StepParam<T>& q, int64_t i) { return moments<L2, false>(q, i); }, fin);
        };
        if (decoupled)
            pick.template operator()<true, false>();
        else if (l2)
            pick.template operator()<false, true>();
        else
            pick.template operator()<false, false>();
    }
};

/// torch.optim.RMSprop. State: s0 = square average v, s1 = momentum buffer (momentum > 0), s2 = gradient
/// average a (centered); unused ones null.
///   g = grad + wd p (with decay); v = alpha v + (1 - alpha) g^2;
///   d = sqrt(v - a^2) + eps with a = lerp(a, g, 1 - alpha) (centered), else sqrt(v) + eps;
///   with momentum b = mu b + g / d and p -= lr b; without, p -= lr (g / d).
template <class T>
struct RmspropRule {
    static constexpr const char* name = "RMSprop";
    T lr, alpha, w, eps, wd, mu;
    bool decay, centered, momentum;

    /// alpha in double: 1 - alpha is formed before rounding to T (as torch.optim.RMSprop's Python float).
    static RmspropRule make(T lr, double alpha, T eps, T weight_decay, T momentum, bool centered) {
        return {lr, static_cast<T>(alpha), static_cast<T>(1 - alpha), eps, weight_decay, momentum,
                weight_decay != T(0), centered, momentum > T(0)};
    }
    TAPEGRAD_HD void operator()(const StepParam<T>& q, int64_t i) const {
        using optim_math::mul;
        T* p = q.p;
        const T g = decay ? q.grad[i] + mul(wd, p[i]) : q.grad[i];
        const T v = mul(alpha, q.s0[i]) + mul(mul(w, g), g);
        q.s0[i] = v;
        T d;
        if (centered) {
            const T a = optim_math::lerp(q.s2[i], g, w);
            q.s2[i] = a;
            d = std::sqrt(v - mul(a, a)) + eps;
        } else {
            d = std::sqrt(v) + eps;
        }
        if (momentum) {
            const T b = mul(mu, q.s1[i]) + g / d;
            q.s1[i] = b;
            p[i] -= mul(lr, b);
        } else {
            p[i] -= mul(lr, g / d);
        }
    }
};

/// torch.optim.Adagrad. State: s0 = sum of squares s (the optimizer fills it with the initial accumulator
/// value when it creates it). Per tensor: q.a = lr / (1 + (t - 1) lr_decay) for its own step t.
///   g = grad + wd p (with decay); s = s + g^2; p -= q.a (g / (sqrt(s) + eps)).
template <class T>
struct AdagradRule {
    static constexpr const char* name = "Adagrad";
    T eps, wd;
    bool decay;

    static AdagradRule make(T eps, T weight_decay) { return {eps, weight_decay, weight_decay != T(0)}; }
    TAPEGRAD_HD void operator()(const StepParam<T>& q, int64_t i) const {
        using optim_math::mul;
        T* p = q.p;
        const T g = decay ? q.grad[i] + mul(wd, p[i]) : q.grad[i];
        const T s = q.s0[i] + mul(g, g);
        q.s0[i] = s;
        p[i] -= mul(q.a, g / (std::sqrt(s) + eps));
    }
};

}  // namespace tapegrad::backend

/// X(Rule) for every update rule: the CPU's step_many accepts only these, and the CUDA backend instantiates
/// its multi-tensor kernel for each of them, for float and double (backend/cuda/optim.cu).
#define TAPEGRAD_OPTIM_RULES(X) X(SgdRule) X(AdamRule) X(RmspropRule) X(AdagradRule)

namespace tapegrad::backend {

#define TAPEGRAD_RULE_IS(Name) || std::is_same_v<R, Name<T>>
/// Whether R is the rule Name<T> of one X(Name) in TAPEGRAD_OPTIM_RULES.
template <class R, class T>
inline constexpr bool listed_rule = false TAPEGRAD_OPTIM_RULES(TAPEGRAD_RULE_IS);
#undef TAPEGRAD_RULE_IS

}  // namespace tapegrad::backend
