#pragma once
/// \file
/// Pooling layers and Flatten: the glue of a convolutional network.
///
/// Pooling replaces each small window of a feature map by one number, its maximum or its mean. It has no
/// weights; what it buys is a smaller map (2x2 pooling quarters the pixels, so the next convolution costs
/// four times less and sees twice as far in the original image) and tolerance to small shifts: max pooling
/// reports that a feature fired somewhere in the window, not exactly where. Global average pooling keeps one
/// number per channel, so a network can end in a small dense layer whatever the image size. Flatten turns the
/// last [N, C, H, W] maps into the [N, C*H*W] rows a dense classifier takes.

#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/pooling.hpp>
#include <tapegrad/ops/shape.hpp>

#include <sstream>
#include <string>

namespace tapegrad::nn {

/// Max pooling. x: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 p - d (k - 1) - 1) / s) + 1, the stride
/// defaulting to the kernel: `MaxPool2d(2)` halves each side. See tapegrad::max_pool2d.
template <Scalar T = float, Device D = Cpu>
class MaxPool2d : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// Throws ValueError for a non-positive kernel or stride, a negative padding or one above half the kernel.
    explicit MaxPool2d(Size2 kernel_size, MaxPool2dParams params = {}) : kernel_(kernel_size), p_(params) {
        tapegrad::detail::check_pool_params("MaxPool2d", kernel_, p_.stride.value_or(kernel_), p_.padding, p_.dilation);
    }
    /// x: [N, C, H, W] -> [N, C, OH, OW]
    TensorT forward(const TensorT& x) override { return max_pool2d(x, kernel_, p_); }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "MaxPool2d(kernel=" << kernel_ << ", stride=" << p_.stride.value_or(kernel_) << ", padding=" << p_.padding;
        if (!(p_.dilation == Size2{1})) os << ", dilation=" << p_.dilation;
        os << ')';
        return os.str();
    }
    [[nodiscard]] Size2 kernel_size() const noexcept { return kernel_; }
    [[nodiscard]] const MaxPool2dParams& params() const noexcept { return p_; }

private:
    Size2 kernel_;
    MaxPool2dParams p_;
};

/// Average pooling. x: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 p - k) / s) + 1, the stride defaulting
/// to the kernel; padded zeros count in the divisor unless count_include_pad is false. See
/// tapegrad::avg_pool2d.
template <Scalar T = float, Device D = Cpu>
class AvgPool2d : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// Throws ValueError for a non-positive kernel or stride, a negative padding or one above half the kernel.
    explicit AvgPool2d(Size2 kernel_size, AvgPool2dParams params = {}) : kernel_(kernel_size), p_(params) {
        tapegrad::detail::check_pool_params("AvgPool2d", kernel_, p_.stride.value_or(kernel_), p_.padding, 1);
    }
    /// x: [N, C, H, W] -> [N, C, OH, OW]
    TensorT forward(const TensorT& x) override { return avg_pool2d(x, kernel_, p_); }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "AvgPool2d(kernel=" << kernel_ << ", stride=" << p_.stride.value_or(kernel_) << ", padding=" << p_.padding;
        if (!p_.count_include_pad) os << ", count_include_pad=false";
        os << ')';
        return os.str();
    }
    [[nodiscard]] Size2 kernel_size() const noexcept { return kernel_; }
    [[nodiscard]] const AvgPool2dParams& params() const noexcept { return p_; }

private:
    Size2 kernel_;
    AvgPool2dParams p_;
};

/// Adaptive average pooling to a fixed output size. x: [N, C, H, W] -> [N, C, out_h, out_w] for any H, W.
template <Scalar T = float, Device D = Cpu>
class AdaptiveAvgPool2d : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// Throws ValueError for a non-positive output size.
    explicit AdaptiveAvgPool2d(Size2 output_size) : out_(output_size) {
        TAPEGRAD_CHECK(out_.h >= 1 && out_.w >= 1, ValueError, "AdaptiveAvgPool2d: output size must be positive, got ",
                       out_);
    }
    /// x: [N, C, H, W] -> [N, C, out_h, out_w]
    TensorT forward(const TensorT& x) override { return adaptive_avg_pool2d(x, out_); }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "AdaptiveAvgPool2d(output_size=" << out_ << ')';
        return os.str();
    }
    [[nodiscard]] Size2 output_size() const noexcept { return out_; }

private:
    Size2 out_;
};

/// Global average pooling: the mean of each channel. x: [N, C, H, W] -> [N, C] (already flat for a dense
/// layer, unlike PyTorch's AdaptiveAvgPool2d(1), which gives [N, C, 1, 1]).
template <Scalar T = float, Device D = Cpu>
class GlobalAvgPool2d : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// x: [N, C, H, W] -> [N, C]
    TensorT forward(const TensorT& x) override { return global_avg_pool2d(x); }
    [[nodiscard]] std::string describe() const override { return "GlobalAvgPool2d()"; }
};

/// Flattens dimensions [start_dim, end_dim] into one, as torch.nn.Flatten (default start_dim = 1: the batch
/// axis stays). x: [N, C, H, W] -> [N, C*H*W]. A view: no copy.
template <Scalar T = float, Device D = Cpu>
class Flatten : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    explicit Flatten(int start_dim = 1, int end_dim = -1) : start_(start_dim), end_(end_dim) {}
    /// x: [N, d1, ..., dk] -> [N, d1*...*dk] (for the default dims)
    TensorT forward(const TensorT& x) override { return tapegrad::flatten(x, start_, end_); }
    [[nodiscard]] std::string describe() const override {
        return "Flatten(start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_) + ")";
    }
    [[nodiscard]] int start_dim() const noexcept { return start_; }
    [[nodiscard]] int end_dim() const noexcept { return end_; }

private:
    int start_, end_;
};

}  // namespace tapegrad::nn
