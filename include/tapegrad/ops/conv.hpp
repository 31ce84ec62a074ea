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
/// The convolution is computed as im2col + one matrix product per group (see backend/conv_cpu.hpp), with the
/// column matrix in a per-thread buffer that is reused from call to call, so a training step allocates only
/// its output tensors.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/conv_cpu.hpp>
#include <tapegrad/core/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

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

/// A per-thread scratch buffer that only grows: conv2d's column matrices live here, so steady-state training
/// steps do not allocate them again. Counted in backend::cpu_live_bytes like any CPU buffer.
template <class T, class D>
class Workspace {
public:
    Workspace() = default;
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    ~Workspace() { release(); }
    /// At least n elements; the contents are unspecified.
    [[nodiscard]] T* get(int64_t n) {
        if (n > size_) {
            release();
            data_ = backend::Ops<D>::template allocate<T>(n);
            size_ = n;
        }
        return data_;
    }
    void release() noexcept {
        if (data_) backend::Ops<D>::deallocate(data_, size_);
        data_ = nullptr;
        size_ = 0;
    }

private:
    T* data_ = nullptr;
    int64_t size_ = 0;
};
template <class T, class D>
[[nodiscard]] Workspace<T, D>& conv_workspace() {
    thread_local Workspace<T, D> ws;
    return ws;
}

/// Images per im2col pass: as many as keep the workspace under ~4M elements (16 MB of float), at least one.
inline int64_t conv_chunk(int64_t images, int64_t per_image) {
    constexpr int64_t budget = int64_t{1} << 22;
    return std::clamp<int64_t>(budget / std::max<int64_t>(per_image, 1), 1, std::max<int64_t>(images, 1));
}

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
/// Forward, per group g: Y_g [O/g, N*OH*OW] = W_g [O/g, C/g*kh*kw] * col_g, col = im2col(x).
/// Backward: dW_g = dY_g col_g^T;  dx = col2im(W_g^T dY_g);  db[o] = sum of dy over n, y, x.
/// Throws ShapeError for ranks, channel/group mismatches or a kernel larger than the padded input, and
/// ValueError for a non-positive stride, dilation or groups or a negative padding.
template <Scalar T, Device D>
Tensor<T, D> conv2d(const Tensor<T, D>& x, const Tensor<T, D>& w, const Tensor<T, D>& b = {},
                    const Conv2dParams& p = {}) {
    using B = backend::Ops<D>;
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

    const int64_t K = g.col_rows(), L = g.out_plane(), Kg = K / groups, Og = O / groups, in_image = C * g.in_plane();
    Tensor<T, D> y = Tensor<T, D>::empty({N, O, g.out_h, g.out_w});
    const int64_t chunk = detail::conv_chunk(N, L * (K + O));
    T* const ws = detail::conv_workspace<T, D>().get(chunk * L * (K + O));
    T* const col = ws;                 // [K, nb*L]
    T* const ycol = ws + K * chunk * L;  // [O, nb*L]
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t nb = std::min(chunk, N - n0), NL = nb * L;
        CB::im2col(g, nb, x.data_ptr() + n0 * in_image, col);
        for (int64_t k = 0; k < groups; ++k)
            B::gemm(false, false, Og, NL, Kg, T(1), w.data_ptr() + k * Og * Kg, col + k * Kg * NL, T(0),
                    ycol + k * Og * NL);
        CB::channel_major_to_nchw(nb, O, L, ycol, has_bias ? b.data_ptr() : nullptr, y.data_ptr() + n0 * O * L);
    }

    const bool rec = has_bias ? detail::needs_grad(x, w, b) : detail::needs_grad(x, w);
    if (rec) {
        auto backward = [x, w, b, g, groups, N, O](const Tensor<T, D>& dy) {
            const int64_t K = g.col_rows(), L = g.out_plane(), Kg = K / groups, Og = O / groups,
                          in_image = g.channels * g.in_plane();
            const T* gy = dy.data_ptr();
            if (b.defined() && b.requires_grad()) CB::channel_sums(N, O, L, gy, detail::grad_buffer(b));
            bool fresh = false;
            T* dw = w.requires_grad() ? detail::grad_buffer_for_overwrite(w, fresh) : nullptr;
            if (dw && fresh && N == 0) B::fill(w.numel(), T(0), dw);
            T* dx = x.requires_grad() ? detail::grad_buffer(x) : nullptr;
            if (!dw && !dx) return;
            const int64_t chunk = detail::conv_chunk(N, L * (2 * K + O));
            T* const ws = detail::conv_workspace<T, D>().get(chunk * L * (2 * K + O));
            T* const dycol = ws;                      // [O, nb*L]
            T* const col = ws + O * chunk * L;        // [K, nb*L]: im2col(x), for dW
            T* const dcol = col + K * chunk * L;      // [K, nb*L]: W^T dY, for dx
            for (int64_t n0 = 0; n0 < N; n0 += chunk) {
                const int64_t nb = std::min(chunk, N - n0), NL = nb * L;
                CB::nchw_to_channel_major(nb, O, L, gy + n0 * O * L, dycol);
                if (dw) {  // dW_g += dY_g col_g^T
                    CB::im2col(g, nb, x.data_ptr() + n0 * in_image, col);
                    for (int64_t k = 0; k < groups; ++k)
                        B::gemm(false, true, Og, Kg, NL, T(1), dycol + k * Og * NL, col + k * Kg * NL,
                                fresh ? T(0) : T(1), dw + k * Og * Kg);
                    fresh = false;
                }
                if (dx) {  // dx += col2im(W_g^T dY_g)
                    for (int64_t k = 0; k < groups; ++k)
                        B::gemm(true, false, Kg, NL, Og, T(1), w.data_ptr() + k * Og * Kg, dycol + k * Og * NL, T(0),
                                dcol + k * Kg * NL);
                    CB::col2im(g, nb, dcol, dx + n0 * in_image);
                }
            }
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
    std::vector<int64_t> argmax(static_cast<size_t>(planes * g.out_plane()));
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
