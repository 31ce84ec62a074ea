#pragma once
/// \file
/// Pointwise losses as binary functors (prediction a, target b), in the style of backend/common/functors.hpp:
/// value and derivatives side by side, no Eigen, host and device. `binary(pred, target, f)` records them;
/// nn/loss.hpp adds the reduction. The row-wise losses (cross-entropy, NLL) are backend primitives instead,
/// since each output reads a whole row.

#include <tapegrad/backend/common/functors.hpp>

#include <cmath>

namespace tapegrad::fn {

/// y = (a - b)^2;  dy/da = 2 (a - b), dy/db = -2 (a - b)
struct SquaredError {
    static constexpr const char* name = "mse_loss";
    template <class T> TAPEGRAD_HD T operator()(T a, T b) const { return (a - b) * (a - b); }
    template <class T> TAPEGRAD_HD T da(T a, T b, T, T dy) const { return dy * T(2) * (a - b); }
    template <class T> TAPEGRAD_HD T db(T a, T b, T, T dy) const { return dy * T(-2) * (a - b); }
};

/// Binary cross-entropy of a probability p against a target t in [0, 1]:
///   y = -(t max(log p, -100) + (1 - t) max(log(1 - p), -100))
/// The clamp at -100 (PyTorch's) keeps y finite when p is exactly 0 or 1.
///   dy/dp = (p - t) / max(p (1 - p), 1e-12)   (PyTorch's guarded form of -t/p + (1-t)/(1-p))
///   dy/dt = max(log(1 - p), -100) - max(log p, -100)
struct Bce {
    static constexpr const char* name = "bce_loss";
    template <class T> TAPEGRAD_HD static T clamped_log(T v) {
        const T l = std::log(v);
        return l < T(-100) ? T(-100) : l;
    }
    template <class T> TAPEGRAD_HD T operator()(T p, T t) const {
        return -(t * clamped_log(p) + (T(1) - t) * clamped_log(T(1) - p));
    }
    template <class T> TAPEGRAD_HD T da(T p, T t, T, T dy) const {
        const T v = p * (T(1) - p);
        return dy * (p - t) / (v > T(1e-12) ? v : T(1e-12));
    }
    template <class T> TAPEGRAD_HD T db(T p, T, T, T dy) const {
        return dy * (clamped_log(T(1) - p) - clamped_log(p));
    }
};

/// Binary cross-entropy on a logit x (p = sigmoid(x)) against a target t, fused so that it never forms
/// log(sigmoid(x)) or e^x for large x:
///   y = max(x, 0) - x t + log1p(e^-|x|)          (= -(t log s + (1 - t) log(1 - s)), s = sigmoid(x))
///   dy/dx = sigmoid(x) - t,  dy/dt = -x
struct BceWithLogits {
    static constexpr const char* name = "binary_cross_entropy_with_logits";
    template <class T> TAPEGRAD_HD T operator()(T x, T t) const {
        return (x > T(0) ? x : T(0)) - x * t + std::log1p(std::exp(-std::abs(x)));
    }
    template <class T> TAPEGRAD_HD T da(T x, T t, T, T dy) const { return dy * (Sigmoid{}(x) - t); }
    template <class T> TAPEGRAD_HD T db(T x, T, T, T dy) const { return -dy * x; }
};

}  // namespace tapegrad::fn

// ---- the list of this header's functors (common/functor_list.hpp joins the lists) -------------------------
/// X(name) for every binary functor of this header (see functors.hpp).
#define TAPEGRAD_LOSS_BINARY_FUNCTORS(X) X(SquaredError) X(Bce) X(BceWithLogits)
