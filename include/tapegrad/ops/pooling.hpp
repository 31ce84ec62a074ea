#pragma once
/// \file
/// Pooling on NCHW image batches: max_pool2d, avg_pool2d, adaptive_avg_pool2d and global_avg_pool2d, each one
/// recorded op over the window primitives of backend::Ops<D>.
///
/// Pooling summarises each window by its maximum or mean: no weights, a smaller map (2x2 halves each side)
/// and so cheaper later layers, and some tolerance to small shifts (max pooling keeps "the feature is
/// somewhere here", not where exactly). Global average pooling reduces each channel to one number, replacing
/// a large dense layer at the end of a network.
///
/// Output size per axis: floor((in + 2p - d (k - 1) - 1) / s) + 1, as a convolution's (ops/conv.hpp).

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/conv.hpp>

#include <cstdint>

namespace tapegrad {

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

/// Max pooling: the largest value of each kh x kw window.
///  x: [N, C, H, W] -> [N, C, OH, OW], OH = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1, stride defaulting to the
///  kernel. Padded positions never win (as if -inf).
/// Backward: each output's gradient goes to the input pixel that won its window (the first one on ties);
/// a pixel that wins several overlapping windows receives the sum.
/// Throws ValueError for a non-positive kernel or stride or a padding above half the kernel, ShapeError for a
/// kernel larger than the padded input.
template <Scalar T, Device D>
Tensor<T, D> max_pool2d(const Tensor<T, D>& x, Size2 kernel, const MaxPool2dParams& p = {}) {
    using CB = backend::Ops<D>;
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
    using CB = backend::Ops<D>;
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
    using CB = backend::Ops<D>;
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
