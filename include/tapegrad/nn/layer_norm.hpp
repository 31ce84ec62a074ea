#pragma once
/// \file
/// The layer-normalisation layer, over `tapegrad::layer_norm` (ops/layer_norm.hpp, which tells what it
/// normalises and why transformers use it).

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/layer_norm.hpp>

#include <sstream>
#include <string>

namespace tapegrad::nn {

/// Options of LayerNorm, as torch.nn.LayerNorm's keyword arguments.
struct LayerNormOptions {
    double eps = 1e-5;               ///< added to the variance before the square root, >= 0
    bool elementwise_affine = true;  ///< learn `weight` (starts at 1) and `bias` (starts at 0)
};

/// Layer normalisation over the trailing dimensions `normalized_shape` (torch.nn.LayerNorm).
///  x: [*, normalized_shape...] -> same shape. Parameters `weight` and `bias`, each of shape
///  normalized_shape (ones and zeros), when elementwise_affine; the names of PyTorch's state_dict.
/// The same in training and evaluation (no running statistics).
template <Scalar T = float, Device D = Cpu>
class LayerNorm : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// Throws ValueError for an empty or non-positive normalized_shape or a negative eps.
    explicit LayerNorm(const Shape& normalized_shape, LayerNormOptions opt = {}) : shape_(normalized_shape), opt_(opt) {
        TAPEGRAD_CHECK(shape_.rank() >= 1 && shape_.numel() > 0, ValueError,
                       "LayerNorm: normalized_shape must be non-empty with positive dimensions, got ", shape_);
        TAPEGRAD_CHECK(opt.eps >= 0.0, ValueError, "LayerNorm: eps must be non-negative, got ", opt.eps);
        if (opt.elementwise_affine) {
            weight_ = this->register_parameter("weight", TensorT::ones(shape_));
            bias_ = this->register_parameter("bias", TensorT::zeros(shape_));
        }
    }
    /// LayerNorm over the last dimension of size `features`.
    explicit LayerNorm(int64_t features, LayerNormOptions opt = {}) : LayerNorm(Shape{features}, opt) {}

    TensorT forward(const TensorT& x) override { return layer_norm(x, shape_, weight_, bias_, opt_.eps); }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "LayerNorm(normalized_shape=" << shape_ << ", eps=" << opt_.eps
           << ", elementwise_affine=" << (opt_.elementwise_affine ? "true" : "false") << ')';
        return os.str();
    }
    /// normalized_shape (undefined without elementwise_affine)
    [[nodiscard]] TensorT& weight() noexcept { return weight_; }
    /// normalized_shape (undefined without elementwise_affine)
    [[nodiscard]] TensorT& bias() noexcept { return bias_; }
    [[nodiscard]] const Shape& normalized_shape() const noexcept { return shape_; }
    [[nodiscard]] const LayerNormOptions& options() const noexcept { return opt_; }

private:
    Shape shape_;
    LayerNormOptions opt_;
    TensorT weight_, bias_;
};

}  // namespace tapegrad::nn
