#pragma once
/// \file
/// Convolution and pooling on NCHW image batches: conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d and
/// global_avg_pool2d, each one recorded op.
///
/// A convolution slides a small learned filter (the kernel) over the image and, at each position, takes the
/// dot product of the filter with the pixels under it: out[n, o, y, x] = b[o] + sum over c, i, j of
/// w[o, c, i, j] * in[n, c, y*s + i*d - p, x*s + j*d - p]. The same few weights are used at every position,
/// so a layer that detects an edge here detects it anywhere (translation equivariance), with kh*kw*C weights
/// per output channel instead of H*W*C for a dense layer. Stacking convolutions grows the receptive field:
/// two 3x3 layers see 5x5 pixels.
///
///  - padding p adds p rows/columns of zeros around the input, so the kernel can centre on border pixels and
///    a 'same' convolution (k = 2p + 1, stride 1) keeps the size: otherwise each layer trims k - 1 pixels.
///  - stride s moves the kernel s pixels at a time, downsampling the output by s (cheaper than pooling after).
///  - dilation d spaces the kernel taps d pixels apart: a wider view for the same weights.
///  - groups g splits the channels into g independent convolutions (g = C: one filter per channel,
///    "depthwise").
///  Output size per axis: floor((in + 2p - d (k - 1) - 1) / s) + 1.
///
/// Pooling summarises each window by its maximum or mean: no weights, a smaller map (2x2 halves each side)
/// and so cheaper later layers, and some tolerance to small shifts (max pooling keeps "the feature is
/// somewhere here", not where exactly). Global average pooling reduces each channel to one number, replacing
/// a large dense layer at the end of a network.
///
/// The convolution is computed image by image as im2col + one matrix product per group, the batch split
/// across threads (see backend/cpu/conv_pool.hpp), with the column matrices in per-thread buffers that are reused
/// from call to call, so a training step allocates only its output tensors.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

namespace tapegrad {

/// A (height, width) pair for kernel sizes, strides, paddings and dilations; one integer means the same for
/// both: `{.stride = 2}` or `{.stride = {2, 1}}`.
struct Size2 {
    int64_t h = 0, w = 0;
    constexpr Size2(int64_t both) noexcept : h(both), w(both) {}  // implicit: `2` means 2x2
    constexpr Size2(int64_t height, int64_t width) noexcept : h(height), w(width) {}
    friend constexpr bool operator==(const Size2&, const Size2&) = default;
    /// Prints `2` when both are equal, else `2x1` (height x width).
    friend std::ostream& operator<<(std::ostream& os, const Size2& s) {
        if (s.h == s.w) return os << s.h;
        return os << s.h << 'x' << s.w;
    }
};

/// Options of conv2d, as torch.nn.functional.conv2d's.
struct Conv2dParams {
    Size2 stride = 1;    ///< >= 1
    Size2 padding = 0;   ///< zeros added on each side, >= 0
    Size2 dilation = 1;  ///< spacing of the kernel taps, >= 1
    int64_t groups = 1;  ///< must divide both the input and the output channels
};

/// The stride of a pooling window: unset (the default) means the kernel size, as PyTorch's stride=None.
/// `{.stride = 2}` and `{.stride = {2, 1}}` set it.
struct PoolStride {
    bool set = false;
    Size2 size = 1;
    constexpr PoolStride() noexcept = default;
    constexpr PoolStride(int64_t both) noexcept : set(true), size(both) {}  // implicit, as Size2
    constexpr PoolStride(int64_t height, int64_t width) noexcept : set(true), size(height, width) {}
    constexpr PoolStride(Size2 s) noexcept : set(true), size(s) {}  // implicit, as Size2
    /// The stride, or `kernel` when unset.
    [[nodiscard]] constexpr Size2 value_or(Size2 kernel) const noexcept { return set ? size : kernel; }
};

/// Options of max_pool2d, as torch.nn.functional.max_pool2d's (ceil_mode is not supported).
struct MaxPool2dParams {
    PoolStride stride = {};  ///< default: the kernel size (non-overlapping windows)
    Size2 padding = 0;       ///< at most half the kernel; padded positions never win
    Size2 dilation = 1;      ///< spacing of the window's taps, >= 1
};

/// Options of avg_pool2d, as torch.nn.functional.avg_pool2d's (ceil_mode is not supported).
struct AvgPool2dParams {
    PoolStride stride = {};         ///< default: the kernel size
    Size2 padding = 0;              ///< at most half the kernel
    bool count_include_pad = true;  ///< padded zeros count in the divisor (PyTorch's default)
};

namespace detail {

/// An uninitialised buffer of n elements from the device's allocator, freed with it; move-only, so that a
/// backward closure can own it (max pooling's argmax).
template <class U, class D>
class DeviceBuffer {
public:
    explicit DeviceBuffer(int64_t n) : data_(backend::Ops<D>::template allocate<U>(n)), size_(n) {}
    DeviceBuffer(DeviceBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&&) = delete;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (data_) backend::Ops<D>::deallocate(data_, size_);
    }
    [[nodiscard]] U* data() const noexcept { return data_; }

private:
    U* data_;
    int64_t size_;
};

/// conv2d keeps its column matrices for the backward up to this many elements (8M: 32 MB of float).
inline constexpr int64_t kept_cols_limit = int64_t{1} << 23;

inline void check_window_params(const char* op, Size2 stride, Size2 padding, Size2 dilation) {
    TAPEGRAD_CHECK(stride.h >= 1 && stride.w >= 1, ValueError, op, ": stride must be positive, got ", stride);
    TAPEGRAD_CHECK(padding.h >= 0 && padding.w >= 0, ValueError, op, ": padding must be non-negative, got ",
                   padding);
    TAPEGRAD_CHECK(dilation.h >= 1 && dilation.w >= 1, ValueError, op, ": dilation must be positive, got ",
                   dilation);
}

/// The window walk of x [N, C, H, W] under a kernel kh x kw; throws ShapeError naming `op` when the (dilated)
/// kernel does not fit in the padded input.
inline backend::Window2d window_geometry(const char* op, const Shape& sx, Size2 kernel, Size2 stride, Size2 padding,
                                         Size2 dilation) {
    backend::Window2d g;
    g.channels = sx[1];
    g.height = sx[2];
    g.width = sx[3];
    g.kernel_h = kernel.h;
    g.kernel_w = kernel.w;
    g.stride_h = stride.h;
    g.stride_w = stride.w;
    g.pad_h = padding.h;
    g.pad_w = padding.w;
    g.dilation_h = dilation.h;
    g.dilation_w = dilation.w;
    const int64_t span_h = dilation.h * (kernel.h - 1) + 1, span_w = dilation.w * (kernel.w - 1) + 1;
    const int64_t ph = g.height + 2 * g.pad_h, pw = g.width + 2 * g.pad_w;
    TAPEGRAD_CHECK(span_h <= ph && span_w <= pw, ShapeError, op, ": kernel ", kernel.h, "x", kernel.w,
                   " (dilation ", dilation, ") is larger than the padded input ", ph, "x", pw, " (input shape ", sx,
                   ", padding ", padding, ")");
    g.out_h = backend::window_out_size(g.height, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
    g.out_w = backend::window_out_size(g.width, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
    return g;
}

inline void check_nchw(const char* op, const Shape& sx) {
    TAPEGRAD_CHECK(sx.rank() == 4, ShapeError, op, ": input must be 4-D [N, C, H, W], got shape ", sx);
}

/// Checks a pooling's arguments by PyTorch's rules: positive kernel and stride, padding at most half the
/// kernel. Throws ValueError naming `op`.
inline void check_pool_params(const char* op, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation) {
    TAPEGRAD_CHECK(kernel.h >= 1 && kernel.w >= 1, ValueError, op, ": kernel size must be positive, got ", kernel);
    check_window_params(op, stride, padding, dilation);
    TAPEGRAD_CHECK(padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2, ValueError, op, ": padding ", padding,
                   " should be at most half the kernel ", kernel.h, "x", kernel.w, " (", kernel.h / 2, "x",
                   kernel.w / 2, ")");
}

/// Checks a pooling's arguments and input, and returns its window walk.
inline backend::Window2d pool_geometry(const char* op, const Shape& sx, Size2 kernel, PoolStride st,
                                       Size2 padding, Size2 dilation) {
    check_nchw(op, sx);
    const Size2 stride = st.value_or(kernel);
    check_pool_params(op, kernel, stride, padding, dilation);
    return window_geometry(op, sx, kernel, stride, padding, dilation);
}

}  // namespace detail

// ==== conv2d ===============================================================================================

/// 2-D convolution (cross-correlation, as in every deep-learning library), one recorded op.
///  x: [N, C, H, W], w: [O, C/groups, kh, kw], b: [O] or undefined -> [N, O, OH, OW],
///  OH = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1 (OW likewise).
/// Forward, per image n and group g: Y_ng [O/g, OH*OW] = W_g [O/g, C/g*kh*kw] * col_ng, col_n = im2col(x_n).
/// Backward: dW_g = sum_n dY_ng col_ng^T;  dx_n = col2im(W_g^T dY_ng);  db[o] = sum of dy over n, y, x.
/// Throws ShapeError for ranks, channel/group mismatches or a kernel larger than the padded input, and
/// ValueError for a non-positive stride, dilation or groups or a negative padding.
template <Scalar T, Device D>
Tensor<T, D> conv2d(const Tensor<T, D>& x, const Tensor<T, D>& w, const Tensor<T, D>& b = {},
                    const Conv2dParams& p = {}) {
    using CB = backend::ConvOps<D>;
    const Shape& sx = x.shape();
    const Shape& sw = w.shape();
    detail::check_nchw("conv2d", sx);
    TAPEGRAD_CHECK(sw.rank() == 4, ShapeError, "conv2d: weight must be 4-D [out, in/groups, kh, kw], got shape ", sw);
    detail::check_window_params("conv2d", p.stride, p.padding, p.dilation);
    TAPEGRAD_CHECK(p.groups >= 1, ValueError, "conv2d: groups must be positive, got ", p.groups);
    const int64_t N = sx[0], C = sx[1], O = sw[0], groups = p.groups;
    TAPEGRAD_CHECK(C % groups == 0 && O % groups == 0, ShapeError, "conv2d: input channels ", C,
                   " and output channels ", O, " must both be divisible by groups ", groups, " (input shape ", sx,
                   ", weight shape ", sw, ")");
    TAPEGRAD_CHECK(sw[1] * groups == C, ShapeError, "conv2d: weight of shape ", sw, " with groups ", groups,
                   " expects ", sw[1] * groups, " input channels, but the input of shape ", sx, " has ", C);
    TAPEGRAD_CHECK(sw[2] >= 1 && sw[3] >= 1 && O >= 1, ShapeError, "conv2d: weight of shape ", sw,
                   " has an empty kernel or no output channels");
    const bool has_bias = b.defined();
    if (has_bias)
        TAPEGRAD_CHECK(b.shape() == Shape{O}, ShapeError, "conv2d: bias shape ", b.shape(), " should be [", O,
                       "] for weight shape ", sw);
    const backend::Window2d g =
        detail::window_geometry("conv2d", sx, Size2{sw[2], sw[3]}, p.stride, p.padding, p.dilation);

    const int64_t L = g.out_plane(), cols_size = N * g.col_rows() * L;
    const bool rec = has_bias ? detail::needs_grad(x, w, b) : detail::needs_grad(x, w);
    // The weight gradient needs the column matrices again: keep the forward's (up to 32 MB of float) rather
    // than compute them twice.
    std::optional<detail::DeviceBuffer<T, D>> cols;
    if (rec && w.requires_grad() && !CB::im2col_is_identity(g) && cols_size > 0 && cols_size <= detail::kept_cols_limit)
        cols.emplace(cols_size);
    Tensor<T, D> y = Tensor<T, D>::empty({N, O, g.out_h, g.out_w});
    CB::conv2d_forward(g, N, O, groups, x.data_ptr(), w.data_ptr(), has_bias ? b.data_ptr() : nullptr, y.data_ptr(),
                       cols ? cols->data() : nullptr);

    if (rec) {
        auto backward = [x, w, b, g, groups, N, O, cols = std::move(cols)](const Tensor<T, D>& dy) {
            T* db = b.defined() && b.requires_grad() ? detail::grad_buffer(b) : nullptr;
            bool fresh = false;
            T* dw = w.requires_grad() ? detail::grad_buffer_for_overwrite(w, fresh) : nullptr;
            T* dx = x.requires_grad() ? detail::grad_buffer(x) : nullptr;
            CB::conv2d_backward(g, N, O, groups, x.data_ptr(), w.data_ptr(), dy.data_ptr(), dx, dw, fresh, db,
                                cols ? cols->data() : nullptr);
        };
        if (has_bias)
            detail::record(y, "conv2d", {&x, &w, &b}, std::move(backward));
        else
            detail::record(y, "conv2d", {&x, &w}, std::move(backward));
    }
    return y;
}

/// conv2d with the options spelled out: `conv2d(x, w, b, {.stride = 2, .padding = 1})`.
template <Scalar T, Device D>
Tensor<T, D> conv2d(const Tensor<T, D>& x, const Tensor<T, D>& w, const Conv2dParams& p) {
    return conv2d(x, w, Tensor<T, D>{}, p);
}

// ==== pooling ==============================================================================================

/// Max pooling: the largest value of each kh x kw window.
///  x: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1, stride defaulting to the
///  kernel. Padded positions never win (as if -inf).
/// Backward: each output's gradient goes to the input pixel that won its window (the first one on ties);
/// a pixel that wins several overlapping windows receives the sum.
/// Throws ValueError for a non-positive kernel or stride or a padding above half the kernel, ShapeError for a
/// kernel larger than the padded input.
template <Scalar T, Device D>
Tensor<T, D> max_pool2d(const Tensor<T, D>& x, Size2 kernel, const MaxPool2dParams& p = {}) {
    using CB = backend::ConvOps<D>;
    const backend::Window2d g = detail::pool_geometry("max_pool2d", x.shape(), kernel, p.stride, p.padding, p.dilation);
    const Shape& sx = x.shape();
    const int64_t planes = sx[0] * sx[1];
    Tensor<T, D> y = Tensor<T, D>::empty({sx[0], sx[1], g.out_h, g.out_w});
    if (!detail::needs_grad(x)) {
        CB::max_pool2d(g, planes, x.data_ptr(), y.data_ptr(), static_cast<int64_t*>(nullptr));
        return y;
    }
    detail::DeviceBuffer<int64_t, D> argmax(planes * g.out_plane());
    CB::max_pool2d(g, planes, x.data_ptr(), y.data_ptr(), argmax.data());
    detail::record(y, "max_pool2d", {&x}, [x, g, planes, argmax = std::move(argmax)](const Tensor<T, D>& dy) {
        CB::max_pool2d_backward(g, planes, argmax.data(), dy.data_ptr(), detail::grad_buffer(x));
    });
    return y;
}

/// Average pooling: the mean of each kh x kw window (stride defaulting to the kernel).
///  x: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 ph - kh) / sh) + 1.
/// With count_include_pad (the default) the padded zeros count in the divisor, so it is always kh*kw;
/// otherwise only the real pixels do.
/// Backward: each input pixel receives dy / divisor from every window holding it.
/// Throws as max_pool2d.
template <Scalar T, Device D>
Tensor<T, D> avg_pool2d(const Tensor<T, D>& x, Size2 kernel, const AvgPool2dParams& p = {}) {
    using CB = backend::ConvOps<D>;
    const backend::Window2d g = detail::pool_geometry("avg_pool2d", x.shape(), kernel, p.stride, p.padding, 1);
    const Shape& sx = x.shape();
    const int64_t planes = sx[0] * sx[1];
    const bool include = p.count_include_pad;
    Tensor<T, D> y = Tensor<T, D>::empty({sx[0], sx[1], g.out_h, g.out_w});
    CB::avg_pool2d(g, planes, x.data_ptr(), y.data_ptr(), include);
    if (detail::needs_grad(x)) {
        detail::record(y, "avg_pool2d", {&x}, [x, g, planes, include](const Tensor<T, D>& dy) {
            CB::avg_pool2d_backward(g, planes, dy.data_ptr(), detail::grad_buffer(x), include);
        });
    }
    return y;
}

namespace detail {

/// Adaptive average pooling of x [N, C, H, W] to out_h x out_w, producing a tensor of shape `out` (which holds
/// N*C*out_h*out_w elements) under the op name `op`.
template <Scalar T, Device D>
Tensor<T, D> adaptive_avg_pool(const Tensor<T, D>& x, Size2 out_size, const Shape& out, const char* op) {
    using CB = backend::ConvOps<D>;
    const Shape& sx = x.shape();
    backend::Window2d g;
    g.height = sx[2];
    g.width = sx[3];
    g.out_h = out_size.h;
    g.out_w = out_size.w;
    const int64_t planes = sx[0] * sx[1];
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    CB::adaptive_avg_pool2d(g, planes, x.data_ptr(), y.data_ptr());
    if (needs_grad(x)) {
        record(y, op, {&x}, [x, g, planes](const Tensor<T, D>& dy) {
            CB::adaptive_avg_pool2d_backward(g, planes, dy.data_ptr(), grad_buffer(x));
        });
    }
    return y;
}

}  // namespace detail

/// Adaptive average pooling: averages over windows chosen so that the output is exactly out_h x out_w,
/// whatever the input size (row window oy spans [floor(oy H / OH), ceil((oy + 1) H / OH)), as PyTorch).
///  x: [N, C, H, W] -> [N, C, out_h, out_w]
/// Backward: each pixel receives dy / (window size) from every window holding it.
/// Throws ShapeError for a non-4-D input or an empty plane, ValueError for a non-positive output size.
template <Scalar T, Device D>
Tensor<T, D> adaptive_avg_pool2d(const Tensor<T, D>& x, Size2 output_size) {
    const Shape& sx = x.shape();
    detail::check_nchw("adaptive_avg_pool2d", sx);
    TAPEGRAD_CHECK(output_size.h >= 1 && output_size.w >= 1, ValueError,
                   "adaptive_avg_pool2d: output size must be positive, got ", output_size);
    TAPEGRAD_CHECK(sx[2] >= 1 && sx[3] >= 1, ShapeError, "adaptive_avg_pool2d: input of shape ", sx,
                   " has an empty plane");
    return detail::adaptive_avg_pool(x, output_size, Shape{sx[0], sx[1], output_size.h, output_size.w},
                                     "adaptive_avg_pool2d");
}

/// Global average pooling: the mean of each channel's plane.  x: [N, C, H, W] -> [N, C]
/// Backward: every pixel of plane (n, c) receives dy[n, c] / (H W).
/// Throws ShapeError for a non-4-D input or an empty plane.
template <Scalar T, Device D>
Tensor<T, D> global_avg_pool2d(const Tensor<T, D>& x) {
    const Shape& sx = x.shape();
    detail::check_nchw("global_avg_pool2d", sx);
    TAPEGRAD_CHECK(sx[2] >= 1 && sx[3] >= 1, ShapeError, "global_avg_pool2d: input of shape ", sx,
                   " has an empty plane");
    return detail::adaptive_avg_pool(x, Size2{1}, Shape{sx[0], sx[1]}, "global_avg_pool2d");
}

}  // namespace tapegrad
