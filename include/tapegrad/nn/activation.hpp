#pragma once
/// \file
/// Activation modules: each elementwise activation of ops/activation.hpp as a layer (nn::ReLU, nn::GELU,
/// ...), plus PReLU and Maxout, which own parameters. Why one nonlinearity rather than another is told in
/// ops/activation.hpp.
///
/// A module is one line from its functor: `Activation<"Name", Functor, T, D>` applies `unary(x, f)` and
/// prints `Name(...)`; a functor's parameters are its constructor's arguments, in member order
/// (`LeakyReLU<float>(0.2)` holds fn::LeakyRelu{0.2}). `ActivationArgs<F>` (specialise it for a functor
/// with parameters) says how describe() prints them and checks them at construction.
///     template <Scalar T = float, Device D = Cpu>
///     using Softsign = Activation<"Softsign", fn::Softsign, T, D>;

#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/activation.hpp>
#include <tapegrad/ops/elementwise.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <sstream>
#include <string>
#include <type_traits>

namespace tapegrad::detail {
/// `0.01`, `1`, `20`: a parameter as a module's describe() prints it.
inline std::string activation_number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}
}  // namespace tapegrad::detail

namespace tapegrad::nn {

/// A module's name as a template argument: `Activation<"ReLU", ...>`.
template <size_t N>
struct ModuleName {
    char text[N]{};
    constexpr ModuleName(const char (&s)[N]) noexcept { std::copy_n(s, N, text); }  // NOLINT: implicit on purpose
};

/// How an activation module prints its functor's parameters and checks them; the default (a functor
/// without parameters) prints nothing and checks nothing. Specialised below for the functors that have some.
template <class F>
struct ActivationArgs {
    static std::string describe(const F&) { return ""; }
    static void check(const char*, const F&) {}
};

/// An elementwise activation as a module: forward(x) = unary(x, f), f a functor of backend/common/functors.hpp or
/// backend/common/activation_functors.hpp. x: any shape -> same shape. Constructed from the functor, or from its
/// parameters in member order.
template <ModuleName Name, class F, Scalar T = float, Device D = Cpu>
class Activation : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    Activation() { ActivationArgs<F>::check(Name.text, f_); }
    explicit Activation(const F& f) : f_(f) { ActivationArgs<F>::check(Name.text, f_); }
    /// The functor's parameters, in member order, as numbers: `LeakyReLU<float>(0.2)`.
    template <class... A>
        requires(sizeof...(A) > 0 && (std::is_arithmetic_v<A> && ...))
    explicit Activation(A... params) : Activation(F{static_cast<double>(params)...}) {}

    TensorT forward(const TensorT& x) override { return unary(x, f_); }
    [[nodiscard]] std::string describe() const override {
        return std::string(Name.text) + "(" + ActivationArgs<F>::describe(f_) + ")";
    }
    /// The functor, with its parameters.
    [[nodiscard]] const F& functor() const noexcept { return f_; }

private:
    F f_{};
};

template <>
struct ActivationArgs<fn::LeakyRelu> {
    static std::string describe(const fn::LeakyRelu& f) {
        return "negative_slope=" + tapegrad::detail::activation_number(f.alpha);
    }
    static void check(const char*, const fn::LeakyRelu&) {}
};
template <>
struct ActivationArgs<fn::Elu> {
    static std::string describe(const fn::Elu& f) { return "alpha=" + tapegrad::detail::activation_number(f.alpha); }
    static void check(const char*, const fn::Elu&) {}
};
template <>
struct ActivationArgs<fn::Softplus> {
    static std::string describe(const fn::Softplus& f) {
        return "beta=" + tapegrad::detail::activation_number(f.beta) +
               ", threshold=" + tapegrad::detail::activation_number(f.threshold);
    }
    static void check(const char* name, const fn::Softplus& f) {
        TAPEGRAD_CHECK(f.beta > 0.0, ValueError, name, ": beta must be positive, got ", f.beta);
    }
};
template <>
struct ActivationArgs<fn::Gelu> {
    static std::string describe(const fn::Gelu& f) {
        return f.tanh_approx ? "approximate='tanh'" : "approximate='none'";
    }
    static void check(const char*, const fn::Gelu&) {}
};

/// Heaviside step. x: any shape -> same shape. Zero gradient (not trainable through).
template <Scalar T = float, Device D = Cpu>
using Step = Activation<"Step", fn::Step, T, D>;
/// Passes its input through unchanged (a placeholder layer, as torch.nn.Identity).
template <Scalar T = float, Device D = Cpu>
using Identity = Activation<"Identity", fn::Identity, T, D>;
/// Logistic sigmoid. x: any shape -> same shape, values in (0, 1).
template <Scalar T = float, Device D = Cpu>
using Sigmoid = Activation<"Sigmoid", fn::Sigmoid, T, D>;
/// Hyperbolic tangent. x: any shape -> same shape, values in (-1, 1).
template <Scalar T = float, Device D = Cpu>
using Tanh = Activation<"Tanh", fn::Tanh, T, D>;
/// max(x, 0). x: any shape -> same shape.
template <Scalar T = float, Device D = Cpu>
using ReLU = Activation<"ReLU", fn::Relu, T, D>;
/// x for x > 0, negative_slope x otherwise: `LeakyReLU<float>(0.2)`, default 0.01.
template <Scalar T = float, Device D = Cpu>
using LeakyReLU = Activation<"LeakyReLU", fn::LeakyRelu, T, D>;
/// x for x > 0, alpha (e^x - 1) otherwise: `ELU<float>(alpha)`, default 1.
template <Scalar T = float, Device D = Cpu>
using ELU = Activation<"ELU", fn::Elu, T, D>;
/// log(1 + e^(beta x)) / beta, linear above `threshold`: `Softplus<float>(beta, threshold)`, defaults 1 and
/// 20. Throws ValueError unless beta > 0.
template <Scalar T = float, Device D = Cpu>
using Softplus = Activation<"Softplus", fn::Softplus, T, D>;
/// x sigmoid(x).
template <Scalar T = float, Device D = Cpu>
using SiLU = Activation<"SiLU", fn::Silu, T, D>;

/// x Phi(x), exact or with the tanh approximation: `GELU<float>(GeluApproximation::tanh)`.
template <Scalar T = float, Device D = Cpu>
class GELU : public Activation<"GELU", fn::Gelu, T, D> {
public:
    explicit GELU(GeluApproximation approximate = GeluApproximation::none)
        : Activation<"GELU", fn::Gelu, T, D>(fn::Gelu{approximate == GeluApproximation::tanh}) {}
};

/// Parametric ReLU with learned slopes: parameter `weight` [num_parameters], initialised to `init`
/// (torch.nn.PReLU's name, shape and default 0.25). num_parameters = 1 shares one slope; otherwise it must
/// equal the number of channels C of x: [N, C, ...] -> same shape.
template <Scalar T = float, Device D = Cpu>
class PReLU : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    explicit PReLU(int64_t num_parameters = 1, double init = 0.25) {
        TAPEGRAD_CHECK(num_parameters >= 1, ValueError, "PReLU: num_parameters must be at least 1, got ",
                       num_parameters);
        weight_ = this->register_parameter("weight", TensorT::full({num_parameters}, static_cast<T>(init)));
    }
    TensorT forward(const TensorT& x) override { return tapegrad::prelu(x, weight_); }
    [[nodiscard]] std::string describe() const override {
        return "PReLU(num_parameters=" + std::to_string(weight_.numel()) + ")";
    }
    [[nodiscard]] TensorT& weight() noexcept { return weight_; }

private:
    TensorT weight_;
};

/// Maxout layer: `out` units, each the maximum of `k` linear pieces of the input (see tapegrad::maxout).
/// x: [N, in] (or [..., in]) -> [N, out]. Parameters `weight` [out*k, in] and `bias` [out*k], row j*k + i
/// being piece i of unit j, initialised as k dense layers would be: U(-1/sqrt(in), 1/sqrt(in)).
template <Scalar T = float, Device D = Cpu>
class Maxout : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    Maxout(int64_t in_features, int64_t out_features, int64_t k, Generator& gen)
        : in_(in_features), out_(out_features), k_(k) {
        TAPEGRAD_CHECK(in_features > 0 && out_features > 0 && k > 0, ValueError, "Maxout: in_features (",
                       in_features, "), out_features (", out_features, ") and k (", k, ") must be positive");
        const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
        TensorT w = TensorT::empty({out_features * k, in_features});
        init::uniform_(w, -bound, bound, gen);
        weight_ = this->register_parameter("weight", w);
        TensorT b = TensorT::empty({out_features * k});
        init::uniform_(b, -bound, bound, gen);
        bias_ = this->register_parameter("bias", b);
    }
    /// Draws the initial weights from this thread's default generator (see manual_seed).
    Maxout(int64_t in_features, int64_t out_features, int64_t k)
        : Maxout(in_features, out_features, k, default_generator()) {}

    TensorT forward(const TensorT& x) override { return tapegrad::maxout(x, weight_, bias_, k_); }
    [[nodiscard]] std::string describe() const override {
        return "Maxout(in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + ", k=" + std::to_string(k_) +
               ")";
    }
    [[nodiscard]] TensorT& weight() noexcept { return weight_; }
    [[nodiscard]] TensorT& bias() noexcept { return bias_; }
    [[nodiscard]] int64_t in_features() const noexcept { return in_; }
    [[nodiscard]] int64_t out_features() const noexcept { return out_; }
    [[nodiscard]] int64_t pieces() const noexcept { return k_; }

private:
    int64_t in_, out_, k_;
    TensorT weight_, bias_;
};

}  // namespace tapegrad::nn
