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
/// tanh and relu) plus a one-line wrapper through `unary`; prelu and maxout, which have parameters, are
/// their own ops. All of them stay finite for inputs of magnitude 1e4.

#include <tapegrad/backend/common/activation_functors.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>

#include <cmath>
#include <sstream>
#include <string>

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
        detail::record(y, "prelu", {&x, &weight},
                       [x, weight, p](const Tensor<T, D>& dy, const detail::TensorImpl<T, D>& out) {
                           T* dx = x.requires_grad() ? detail::grad_buffer(x) : nullptr;
                           T* dw = weight.requires_grad() ? detail::grad_buffer(weight) : nullptr;
                           B::zip_backward(p, x.data_ptr(), weight.data_ptr(), out.data(), dy.data_ptr(), dx, dw,
                                           fn::Prelu{});
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

namespace detail {
/// `0.01`, `1`, `20`: a parameter as a module's describe() prints it.
inline std::string activation_number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}
}  // namespace detail

}  // namespace tapegrad

namespace tapegrad::nn {

/// Heaviside step as a module. x: any shape -> same shape. Zero gradient (not trainable through).
template <Scalar T = float, Device D = Cpu>
class Step : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    TensorT forward(const TensorT& x) override { return tapegrad::step(x); }
    [[nodiscard]] std::string describe() const override { return "Step()"; }
};

/// Passes its input through unchanged (a placeholder layer, as torch.nn.Identity).
template <Scalar T = float, Device D = Cpu>
class Identity : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    TensorT forward(const TensorT& x) override { return tapegrad::identity(x); }
    [[nodiscard]] std::string describe() const override { return "Identity()"; }
};

/// Logistic sigmoid. x: any shape -> same shape, values in (0, 1).
template <Scalar T = float, Device D = Cpu>
class Sigmoid : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    TensorT forward(const TensorT& x) override { return tapegrad::sigmoid(x); }
    [[nodiscard]] std::string describe() const override { return "Sigmoid()"; }
};

/// Hyperbolic tangent. x: any shape -> same shape, values in (-1, 1).
template <Scalar T = float, Device D = Cpu>
class Tanh : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    TensorT forward(const TensorT& x) override { return tapegrad::tanh(x); }
    [[nodiscard]] std::string describe() const override { return "Tanh()"; }
};

/// max(x, 0). x: any shape -> same shape.
template <Scalar T = float, Device D = Cpu>
class ReLU : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    TensorT forward(const TensorT& x) override { return tapegrad::relu(x); }
    [[nodiscard]] std::string describe() const override { return "ReLU()"; }
};

/// x for x > 0, negative_slope x otherwise. x: any shape -> same shape.
template <Scalar T = float, Device D = Cpu>
class LeakyReLU : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    explicit LeakyReLU(double negative_slope = 0.01) : alpha_(negative_slope) {}
    TensorT forward(const TensorT& x) override { return tapegrad::leaky_relu(x, alpha_); }
    [[nodiscard]] std::string describe() const override {
        return "LeakyReLU(negative_slope=" + tapegrad::detail::activation_number(alpha_) + ")";
    }
    [[nodiscard]] double negative_slope() const noexcept { return alpha_; }

private:
    double alpha_;
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

/// x for x > 0, alpha (e^x - 1) otherwise. x: any shape -> same shape.
template <Scalar T = float, Device D = Cpu>
class ELU : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
    TensorT forward(const TensorT& x) override { return tapegrad::elu(x, alpha_); }
    [[nodiscard]] std::string describe() const override {
        return "ELU(alpha=" + tapegrad::detail::activation_number(alpha_) + ")";
    }

private:
    double alpha_;
};

/// log(1 + e^(beta x)) / beta, linear above `threshold`. x: any shape -> same shape.
/// Throws ValueError unless beta > 0.
template <Scalar T = float, Device D = Cpu>
class Softplus : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    explicit Softplus(double beta = 1.0, double threshold = 20.0) : beta_(beta), threshold_(threshold) {
        TAPEGRAD_CHECK(beta > 0.0, ValueError, "Softplus: beta must be positive, got ", beta);
    }
    TensorT forward(const TensorT& x) override { return tapegrad::softplus(x, beta_, threshold_); }
    [[nodiscard]] std::string describe() const override {
        return "Softplus(beta=" + tapegrad::detail::activation_number(beta_) +
               ", threshold=" + tapegrad::detail::activation_number(threshold_) + ")";
    }

private:
    double beta_, threshold_;
};

/// x Phi(x), exact or with the tanh approximation. x: any shape -> same shape.
template <Scalar T = float, Device D = Cpu>
class GELU : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    explicit GELU(GeluApproximation approximate = GeluApproximation::none) : approximate_(approximate) {}
    TensorT forward(const TensorT& x) override { return tapegrad::gelu(x, approximate_); }
    [[nodiscard]] std::string describe() const override {
        return approximate_ == GeluApproximation::tanh ? "GELU(approximate='tanh')" : "GELU(approximate='none')";
    }

private:
    GeluApproximation approximate_;
};

/// x sigmoid(x). x: any shape -> same shape.
template <Scalar T = float, Device D = Cpu>
class SiLU : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    TensorT forward(const TensorT& x) override { return tapegrad::silu(x); }
    [[nodiscard]] std::string describe() const override { return "SiLU()"; }
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
