#pragma once
/// \file
/// Activation functions as functors, in the style of backend/common/functors.hpp: the value and its derivative
/// side by side, no Eigen, usable from host code and (under nvcc) device code. `unary(x, f)` in
/// ops/elementwise.hpp records any of them; nn/activation.hpp wraps each in a function and a module.
///
/// Sigmoid, Tanh and Relu live in backend/common/functors.hpp; the functors here reuse Sigmoid where the formula
/// contains it. Each one is written to stay finite for inputs of any magnitude (|x| up to 1e4 is tested):
/// no exp() of a large positive number is ever formed.
///
/// A unary functor has `T operator()(T x)` and `T backward(T x, T y, T dy)` (dL/dx from the input, the
/// output and the incoming gradient). `Prelu` is binary (input and slope), with `da` and `db`.

#include <tapegrad/backend/common/functors.hpp>

#include <cmath>

namespace tapegrad::fn {

/// y = 1 if x > 0 else 0 (Heaviside step, the perceptron's activation);  dy/dx = 0 wherever it exists.
/// The true derivative is 0 for x != 0 and undefined (a Dirac spike) at 0, so the gradient reported is 0
/// everywhere: no signal reaches the layers below. That is why the perceptron is trained with its own
/// error-correction rule rather than backpropagation, and why networks trained by gradient descent use a
/// smooth (sigmoid, tanh) or piecewise-linear (ReLU) activation instead.
struct Step {
    static constexpr const char* name = "step";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return x > T(0) ? T(1) : T(0); }
    template <class T> TAPEGRAD_HD T backward(T, T, T) const { return T(0); }
};

/// y = x;  dy/dx = 1
struct Identity {
    static constexpr const char* name = "identity";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return x; }
    template <class T> TAPEGRAD_HD T backward(T, T, T dy) const { return dy; }
};

/// y = x for x > 0, alpha x otherwise;  dy/dx = 1 for x > 0, alpha otherwise
struct LeakyRelu {
    static constexpr const char* name = "leaky_relu";
    double alpha = 0.01;
    template <class T> TAPEGRAD_HD T operator()(T x) const { return x > T(0) ? x : static_cast<T>(alpha) * x; }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        return x > T(0) ? dy : static_cast<T>(alpha) * dy;
    }
};

/// y = x for x > 0, alpha (e^x - 1) otherwise;  dy/dx = 1 for x > 0, alpha e^x = y + alpha otherwise.
/// expm1 keeps y accurate for small negative x, where e^x - 1 would cancel.
struct Elu {
    static constexpr const char* name = "elu";
    double alpha = 1.0;
    template <class T> TAPEGRAD_HD T operator()(T x) const {
        return x > T(0) ? x : static_cast<T>(alpha) * std::expm1(x);
    }
    template <class T> TAPEGRAD_HD T backward(T x, T y, T dy) const {
        return x > T(0) ? dy : dy * (y + static_cast<T>(alpha));
    }
};

/// y = log(1 + e^(beta x)) / beta, and y = x once beta x > threshold (as PyTorch; the two differ there by
/// less than e^-threshold);  dy/dx = sigmoid(beta x), and 1 above the threshold.
/// Computed as (max(z, 0) + log1p(e^-|z|)) / beta with z = beta x, so e^z is never formed for large z.
struct Softplus {
    static constexpr const char* name = "softplus";
    double beta = 1.0;
    double threshold = 20.0;
    template <class T> TAPEGRAD_HD T operator()(T x) const {
        const T z = static_cast<T>(beta) * x;
        if (z > static_cast<T>(threshold)) return x;
        return ((z > T(0) ? z : T(0)) + std::log1p(std::exp(-std::abs(z)))) / static_cast<T>(beta);
    }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        const T z = static_cast<T>(beta) * x;
        return z > static_cast<T>(threshold) ? dy : dy * Sigmoid{}(z);
    }
};

/// Exact (PyTorch's default): y = x Phi(x) = x/2 (1 + erf(x / sqrt 2));  dy/dx = Phi(x) + x phi(x), with
/// phi(x) = e^(-x^2/2) / sqrt(2 pi) the standard normal density.
/// Tanh approximation (`tanh_approx`): y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
/// dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(u).
struct Gelu {
    static constexpr const char* name = "gelu";
    bool tanh_approx = false;
    template <class T> TAPEGRAD_HD T operator()(T x) const {
        if (tanh_approx) return T(0.5) * x * (T(1) + std::tanh(inner(x)));
        return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        if (tanh_approx) {
            const T t = std::tanh(inner(x));
            const T sech2 = T(1) - t * t;
            // Where tanh saturates sech2 is exactly 0; skip the x^2 factor, which may overflow in float.
            const T slope = sech2 == T(0) ? T(0)
                                          : T(0.5) * x * sech2 * T(0.79788456080286535588) *
                                                (T(1) + T(3) * T(0.044715) * x * x);
            return dy * (T(0.5) * (T(1) + t) + slope);
        }
        const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
        const T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
        return dy * (cdf + x * pdf);
    }

private:
    template <class T> TAPEGRAD_HD static T inner(T x) {
        return T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
    }
};

/// y = x sigmoid(x) (SiLU, also called swish);  dy/dx = s + x s (1 - s) = s (1 + x (1 - s)), s = sigmoid(x).
/// Sigmoid's two-branch form keeps s finite, so both stay finite for |x| up to 1e4 and beyond.
struct Silu {
    static constexpr const char* name = "silu";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return x * Sigmoid{}(x); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        const T s = Sigmoid{}(x);
        return dy * s * (T(1) + x * (T(1) - s));
    }
};

/// y = x / (1 + |x|) (softsign);  dy/dx = 1 / (1 + |x|)^2. Bounded in (-1, 1) and zero-centred like tanh,
/// but it approaches its bounds polynomially, not exponentially, so its gradient fades more slowly. For
/// huge |x| the square overflows to inf and the gradient is 0, its limit.
struct Softsign {
    static constexpr const char* name = "softsign";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return x / (T(1) + std::abs(x)); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        const T d = T(1) + std::abs(x);
        return dy / (d * d);
    }
};

/// y = Phi(x), the standard normal CDF (1 + erf(x / sqrt 2)) / 2;  dy/dx = phi(x) = e^(-x^2 / 2) / sqrt(2 pi).
/// Not an activation of its own: exact gelu's derivative, Phi(x) + x phi(x), uses it under create_graph.
struct NormalCdf {
    static constexpr const char* name = "normal_cdf";
    template <class T> TAPEGRAD_HD T operator()(T x) const { return T(0.5) * std::erfc(-x * T(0.70710678118654752440)); }
    template <class T> TAPEGRAD_HD T backward(T x, T, T dy) const {
        return dy * T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
    }
};

/// Parametric ReLU, binary: y = x for x > 0, a x otherwise, with a learned slope a (broadcast per channel);
/// dy/dx = 1 for x > 0, a otherwise;  dy/da = 0 for x > 0, x otherwise.
struct Prelu {
    static constexpr const char* name = "prelu";
    template <class T> TAPEGRAD_HD T operator()(T x, T a) const { return x > T(0) ? x : a * x; }
    template <class T> TAPEGRAD_HD T da(T x, T a, T, T dy) const { return x > T(0) ? dy : a * dy; }
    template <class T> TAPEGRAD_HD T db(T x, T, T, T dy) const { return x > T(0) ? T(0) : x * dy; }
};

}  // namespace tapegrad::fn

// ---- the list of this header's functors (common/functor_list.hpp joins the lists) -------------------------
// ADDING AN ACTIVATION here? Add X(Name) to the list of its kind (see functors.hpp): that registers it for
// the CPU, for CUDA and for the derivative check of the test suite.

/// X(name) for every unary functor of this header.
#define TAPEGRAD_ACTIVATION_UNARY_FUNCTORS(X) \
    X(Step) X(Identity) X(LeakyRelu) X(Elu) X(Softplus) X(Gelu) X(Silu) X(Softsign) X(NormalCdf)
/// X(name) for every binary functor of this header.
#define TAPEGRAD_ACTIVATION_BINARY_FUNCTORS(X) X(Prelu)
