#pragma once
/// \file
/// The dense (fully connected) layer: every output unit sees every input, y = x W^T + b.
///
/// A single unit computes a weighted sum of its inputs plus a bias -- the perceptron's "net input" --
/// and a layer of `out` units is that sum done `out` times at once, i.e. one matrix product. Stacking
/// layers with a nonlinearity between them is what lets a network bend its decision boundary (XOR needs
/// one hidden layer); without the nonlinearity, two dense layers collapse into one.

#include <tapegrad/core/random.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/linalg.hpp>

#include <cmath>
#include <string>

namespace tapegrad::nn {

struct LinearOptions {
    bool bias = true;  ///< learn an additive bias
};

/// Dense layer. x: [N, in] (or [..., in]) -> [N, out]. Parameters `weight` [out, in] and `bias` [out], named
/// and laid out as torch.nn.Linear's. Initialised as PyTorch does: U(-1/sqrt(in), 1/sqrt(in)) for both.
template <Scalar T = float, Device D = Cpu>
class Linear : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    Linear(int64_t in_features, int64_t out_features, Generator& gen, LinearOptions opt = {})
        : in_(in_features), out_(out_features) {
        TAPEGRAD_CHECK(in_features > 0 && out_features > 0, ValueError, "Linear: in_features (", in_features,
                       ") and out_features (", out_features, ") must be positive");
        const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
        TensorT w = TensorT::empty({out_features, in_features});
        init::uniform_(w, -bound, bound, gen);
        weight_ = this->register_parameter("weight", w);
        if (opt.bias) {
            TensorT b = TensorT::empty({out_features});
            init::uniform_(b, -bound, bound, gen);
            bias_ = this->register_parameter("bias", b);
        }
    }
    /// Draws the initial weights from this thread's default generator (see manual_seed).
    Linear(int64_t in_features, int64_t out_features, LinearOptions opt = {})
        : Linear(in_features, out_features, default_generator(), opt) {}

    TensorT forward(const TensorT& x) override { return linear(x, weight_, bias_); }
    [[nodiscard]] std::string describe() const override {
        return "Linear(in=" + std::to_string(in_) + ", out=" + std::to_string(out_) +
               ", bias=" + (bias_.defined() ? "true" : "false") + ")";
    }
    [[nodiscard]] TensorT& weight() noexcept { return weight_; }
    [[nodiscard]] TensorT& bias() noexcept { return bias_; }
    [[nodiscard]] int64_t in_features() const noexcept { return in_; }
    [[nodiscard]] int64_t out_features() const noexcept { return out_; }

private:
    int64_t in_, out_;
    TensorT weight_, bias_;
};

/// The textbook name for the same layer.
template <Scalar T = float, Device D = Cpu>
using Dense = Linear<T, D>;

}  // namespace tapegrad::nn
