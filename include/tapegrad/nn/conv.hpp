#pragma once
/// \file
/// The convolutional layer: a bank of small learned filters slid over the image (see ops/conv.hpp).
///
/// A dense layer on a 28x28 image gives every output unit its own 784 weights and ignores that neighbouring
/// pixels belong together. A convolution instead learns `out` filters of in x k x k weights each and applies
/// every filter at every position: few parameters (LeNet's first layer has 156 against 784 per unit for a
/// dense one), and a feature detected in one corner is detected anywhere. Each output channel is the map of
/// where its filter matched; padding keeps border pixels in play and stride skips positions to downsample.

#include <tapegrad/core/random.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/conv.hpp>

#include <cmath>
#include <sstream>
#include <string>

namespace tapegrad::nn {

/// Options of `Conv2d`, as torch.nn.Conv2d's keyword arguments.
struct Conv2dOptions {
    Size2 stride = 1;    ///< >= 1
    Size2 padding = 0;   ///< zeros added on each side, >= 0
    Size2 dilation = 1;  ///< >= 1
    int64_t groups = 1;  ///< must divide in_channels and out_channels
    bool bias = true;    ///< learn one additive bias per output channel
};

/// 2-D convolution layer. x: [N, in, H, W] -> [N, out, OH, OW] with OH = floor((H + 2 p - d (k - 1) - 1) / s) + 1.
/// Parameters `weight` [out, in/groups, kh, kw] and `bias` [out], named and laid out as torch.nn.Conv2d's,
/// initialised as PyTorch does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both, fan_in = in/groups * kh * kw.
///   nn::Conv2d<float> conv(1, 6, 5, {.padding = 2}, gen);   // LeNet's first layer: 28x28 -> 28x28
template <Scalar T = float, Device D = Cpu>
class Conv2d : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;

    /// Throws ValueError for non-positive channel counts or kernel sizes, invalid stride, padding, dilation or
    /// groups, and groups that do not divide both channel counts.
    /// The options are taken by reference: g++ 12 with -march=native (AVX-512) miscompiled `Conv2d(1, 1, 2,
    /// {}, gen)` with the options by value, giving the layer padding 1.
    Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, const Conv2dOptions& opt, Generator& gen)
        : in_(in_channels), out_(out_channels), kernel_(kernel_size), opt_(opt) {
        TAPEGRAD_CHECK(in_channels > 0 && out_channels > 0, ValueError, "Conv2d: in_channels (", in_channels,
                       ") and out_channels (", out_channels, ") must be positive");
        TAPEGRAD_CHECK(kernel_size.h > 0 && kernel_size.w > 0, ValueError, "Conv2d: kernel size must be positive, got ",
                       kernel_size);
        tapegrad::detail::check_window_params("Conv2d", opt.stride, opt.padding, opt.dilation);
        TAPEGRAD_CHECK(opt.groups >= 1 && in_channels % opt.groups == 0 && out_channels % opt.groups == 0, ValueError,
                       "Conv2d: groups ", opt.groups, " must be positive and divide in_channels (", in_channels,
                       ") and out_channels (", out_channels, ")");
        const int64_t fan_in = in_channels / opt.groups * kernel_size.h * kernel_size.w;
        const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
        TensorT w = TensorT::empty({out_channels, in_channels / opt.groups, kernel_size.h, kernel_size.w});
        init::uniform_(w, -bound, bound, gen);
        weight_ = this->register_parameter("weight", w);
        if (opt.bias) {
            TensorT b = TensorT::empty({out_channels});
            init::uniform_(b, -bound, bound, gen);
            bias_ = this->register_parameter("bias", b);
        }
    }
    /// The same, with the generator first (as nn::Linear takes it).
    Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Generator& gen,
           const Conv2dOptions& opt = {})
        : Conv2d(in_channels, out_channels, kernel_size, opt, gen) {}
    /// Draws the initial weights from this thread's default generator (see manual_seed).
    Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, const Conv2dOptions& opt = {})
        : Conv2d(in_channels, out_channels, kernel_size, opt, default_generator()) {}

    /// x: [N, in, H, W] -> [N, out, OH, OW]
    TensorT forward(const TensorT& x) override {
        return conv2d(x, weight_, bias_,
                      Conv2dParams{.stride = opt_.stride, .padding = opt_.padding, .dilation = opt_.dilation,
                                   .groups = opt_.groups});
    }
    /// `Conv2d(in=1, out=6, kernel=5x5, stride=1, padding=2, bias=true)`; dilation and groups appear when
    /// not 1.
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "Conv2d(in=" << in_ << ", out=" << out_ << ", kernel=" << kernel_.h << 'x' << kernel_.w
           << ", stride=" << opt_.stride << ", padding=" << opt_.padding;
        if (!(opt_.dilation == Size2{1})) os << ", dilation=" << opt_.dilation;
        if (opt_.groups != 1) os << ", groups=" << opt_.groups;
        os << ", bias=" << (bias_.defined() ? "true" : "false") << ')';
        return os.str();
    }
    /// [out, in/groups, kh, kw]
    [[nodiscard]] TensorT& weight() noexcept { return weight_; }
    /// [out], undefined without bias
    [[nodiscard]] TensorT& bias() noexcept { return bias_; }
    [[nodiscard]] int64_t in_channels() const noexcept { return in_; }
    [[nodiscard]] int64_t out_channels() const noexcept { return out_; }
    [[nodiscard]] Size2 kernel_size() const noexcept { return kernel_; }
    [[nodiscard]] const Conv2dOptions& options() const noexcept { return opt_; }

private:
    int64_t in_, out_;
    Size2 kernel_;
    Conv2dOptions opt_;
    TensorT weight_, bias_;
};

}  // namespace tapegrad::nn
