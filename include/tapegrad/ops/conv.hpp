#pragma once
/// \file
/// Convolution on NCHW image batches: conv2d, one recorded op, and the window geometry it shares with the
/// pooling ops (ops/pooling.hpp).
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
    using CB = backend::Ops<D>;
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
    const bool rec = detail::needs_grad(x, w, b);
    // The weight gradient needs the column matrices again: keep the forward's (up to 32 MB of float) rather
    // than compute them twice.
    std::optional<detail::DeviceBuffer<T, D>> cols;
    if (rec && w.requires_grad() && !CB::im2col_is_identity(g) && cols_size > 0 && cols_size <= detail::kept_cols_limit)
        cols.emplace(cols_size);
    Tensor<T, D> y = Tensor<T, D>::empty({N, O, g.out_h, g.out_w});
    CB::conv2d_forward(g, N, O, groups, x.data_ptr(), w.data_ptr(), has_bias ? b.data_ptr() : nullptr, y.data_ptr(),
                       cols ? cols->data() : nullptr);

    if (rec) {
        detail::record(y, "conv2d", {&x, &w, &b}, [x, w, b, g, groups, N, O, cols = std::move(cols)](
                                                       const Tensor<T, D>& dy) {
            T* db = detail::grad_buffer_or_null(b);
            bool fresh = false;
            T* dw = w.requires_grad() ? detail::grad_buffer_for_overwrite(w, fresh) : nullptr;
            T* dx = detail::grad_buffer_or_null(x);
            CB::conv2d_backward(g, N, O, groups, x.data_ptr(), w.data_ptr(), dy.data_ptr(), dx, dw, fresh, db,
                                cols ? cols->data() : nullptr);
        });
    }
    return y;
}

/// conv2d with the options spelled out: `conv2d(x, w, b, {.stride = 2, .padding = 1})`.
template <Scalar T, Device D>
Tensor<T, D> conv2d(const Tensor<T, D>& x, const Tensor<T, D>& w, const Conv2dParams& p) {
    return conv2d(x, w, Tensor<T, D>{}, p);
}

}  // namespace tapegrad
