#pragma once
/// \file
/// Elementwise operations as small functors: the value and its derivative side by side, usable from host
/// code and (under nvcc) from device code from this one definition. No Eigen here, so CUDA kernels can
/// include it.
///
/// A unary functor has `T operator()(T x)` and `T backward(T x, T y, T dy)`, returning dL/dx given the
/// input x, the output y = f(x) and the incoming gradient dy. A binary functor has `T operator()(T a, T b)`
/// and `da(a, b, y, dy)`, `db(a, b, y, dy)`.

#include <tapegrad/backend/common/host_device.hpp>

#include <cmath>

namespace tapegrad::fn {

// ---- binary -------------------------------------------------------------------------------------------

/// y = a + b;  dy/da = 1, dy/db = 1
struct Add {
    static constexpr const char* name = "add";
    template <class T> TAPEGRAD_HD T operator()(T a, T b) const { return a + b; }
    template <class T> TAPEGRAD_HD T da(T, T, T, T dy) const { return dy; }
    template <class T> TAPEGRAD_HD T db(T, T, T, T dy) const { return dy; }
};
/// y = a - b;  dy/da = 1, dy/db = -1
struct Sub {
    static constexpr const char* name = "sub";
    template <class T> TAPEGRAD_HD T operator()(T a, T b) const { return a - b; }
    template <class T> TAPEGRAD_HD T da(T, T, T, T dy) const { return dy; }
    template <class T> TAPEGRAD_HD T db(T, T, T, T dy) const { return -dy; }
};
/// y = a * b;  dy/da = b, dy/db = a
struct Mul {
    static constexpr const char* name = "mul";
    template <class T> TAPEGRAD_HD T operator()(T a, T b) const { return a * b; }
    template <class T> TAPEGRAD_HD T da(T, T b, T, T dy) const { return dy * b; }
    template <class T> TAPEGRAD_HD T db(T a, T, T, T dy) const { return dy * a; }
};
/// y = a / b;  dy/da = 1/b, dy/db = -a/b^2 = -y/b
struct Div {
    static constexpr const char* name = "div";
    template <class T> TAPEGRAD_HD T operator()(T a, T b) const { return a / b; }
    template <class T> TAPEGRAD_HD T da(T, T b, T, T dy) const { return dy / b; }
    template <class T> TAPEGRAD_HD T db(T, T b, T y, T dy) const { return -dy * y / b; }
};
/// y = max(a, b);  the gradient goes to the larger input (to `a` on ties)
struct Maximum {
    static constexpr const char* name = "maximum";
    template <class T> TAPEGRAD_HD T operator()(T a, T b) const { return a >= b ? a : b; }
    template <class T> TAPEGRAD_HD T da(T a, T b, T, T dy) const { return a >= b ? dy : T(0); }
    template <class T> TAPEGRAD_HD T db(T a, T b, T, T dy) const { return a >= b ? T(0) : dy; }
};

// ---- unary --------------------------------------------------------------------------------------------

/// y = -x;  dy/dx = -1
struct Neg {
    static constexpr const char* name = "neg";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return -x; }
    template <class T> TAPEGRAD_HD T backward(T, T, T dy) const { return -dy; }
};
/// y = e^x;  dy/dx = e^x = y
struct Exp {
    static constexpr const char* name = "exp";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return std::exp(x); }
    template <class T> TAPEGRAD_HD T backward(T, T y, T dy) const { return dy * y; }
};
/// y = ln x;  dy/dx = 1/x
struct Log {
    static constexpr const char* name = "log";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return std::log(x); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const { return dy / x; }
};
/// y = sqrt(x);  dy/dx = 1 / (2 sqrt(x)) = 1 / (2y)
struct Sqrt {
    static constexpr const char* name = "sqrt";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return std::sqrt(x); }
    template <class T> TAPEGRAD_HD T backward(T, T y, T dy) const { return dy / (T(2) * y); }
};
/// y = |x|;  dy/dx = sign(x), taken as 0 at x = 0 (the subgradient PyTorch uses)
struct Abs {
    static constexpr const char* name = "abs";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return std::abs(x); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        return x > T(0) ? dy : (x < T(0) ? -dy : T(0));
    }
};
/// y = x^p for a scalar exponent p;  dy/dx = p x^(p-1), and exactly 0 for p = 0 (x^0 is constant; the
/// general formula would give 0 * inf = NaN at x = 0)
struct Pow {
    static constexpr const char* name = "pow";
    double p;
    template <class T> TAPEGRAD_HD T operator()(T x) const {
        return p == 2.0 ? x * x : static_cast<T>(std::pow(x, static_cast<T>(p)));
    }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        if (p == 2.0) return dy * T(2) * x;
        if (p == 1.0) return dy;
        if (p == 0.0) return T(0);
        return dy * static_cast<T>(p) * static_cast<T>(std::pow(x, static_cast<T>(p - 1.0)));
    }
};
/// y = min(max(x, lo), hi);  dy/dx = 1 inside [lo, hi], 0 where clamped
struct Clamp {
    static constexpr const char* name = "clamp";
    double lo, hi;
    template <class T> TAPEGRAD_HD T operator()(T x) const {
        return x < static_cast<T>(lo) ? static_cast<T>(lo) : (x > static_cast<T>(hi) ? static_cast<T>(hi) : x);
    }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        return (x >= static_cast<T>(lo) && x <= static_cast<T>(hi)) ? dy : T(0);
    }
};
/// y = tanh(x);  dy/dx = 1 - tanh(x)^2 = 1 / cosh(x)^2 = 4 e / (1 + e)^2 with e = e^(-2|x|): from the input,
/// which stays accurate to a few ulp in the tails, where 1 - y^2 from the rounded output loses its digits
/// (in float y rounds to 1 past |x| = 9.01 and 1 - y^2 is off by 1% at x = 6). The CPU's float map and
/// map_backward use vectorised versions of the same formulas (backend/cpu.hpp).
struct Tanh {
    static constexpr const char* name = "tanh";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return std::tanh(x); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        const T e = std::exp(T(-2) * (x < T(0) ? -x : x));
        return dy * (T(4) * e / ((T(1) + e) * (T(1) + e)));
    }
};
/// y = 1 / (1 + e^-x);  dy/dx = y (1 - y). Written in two branches so e^(-x) never overflows: for x < 0 it
/// computes e^x / (1 + e^x), which stays finite (and exact) down to x = -1e4.
struct Sigmoid {
    static constexpr const char* name = "sigmoid";
    template <class T> TAPEGRAD_HD T operator()(T x) const {
        if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
        const T e = std::exp(x);
        return e / (T(1) + e);
    }
    template <class T> TAPEGRAD_HD T backward(T, T y, T dy) const { return dy * y * (T(1) - y); }
};
/// y = max(x, 0);  dy/dx = 1 for x > 0, else 0
struct Relu {
    static constexpr const char* name = "relu";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return x > T(0) ? x : T(0); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const { return x > T(0) ? dy : T(0); }
};

}  // namespace tapegrad::fn

// ---- the list of this header's functors (common/functor_list.hpp joins the lists) -------------------------
// ADDING A FUNCTOR here? Add X(Name) to the list of its kind. The CPU primitives refuse (static_assert) a
// functor missing from the lists, the CUDA backend instantiates its kernels from them, and the CPU test
// suite (tests/tapegrad/backend/common/functor_list_test.cpp) checks every listed derivative.

/// X(name) for every binary functor of this header (operator()(a, b), da, db).
#define TAPEGRAD_MATH_BINARY_FUNCTORS(X) X(Add) X(Sub) X(Mul) X(Div) X(Maximum)
/// X(name) for every unary functor of this header (operator()(x), backward(x, y, dy)).
#define TAPEGRAD_MATH_UNARY_FUNCTORS(X) \
    X(Neg) X(Exp) X(Log) X(Sqrt) X(Abs) X(Pow) X(Clamp) X(Tanh) X(Sigmoid) X(Relu)
