#pragma once
/// \file
/// The plan of a 2-D sliding-window pass over an NCHW batch (a convolution or a pooling): `Window2d`, its
/// output size (`window_out_size`) and the range of output positions whose tap lands inside the input
/// (`detail::tap_range`). Plain data and no Eigen: the CPU primitives (backend/cpu/conv_pool.hpp) and the
/// CUDA kernels (backend/cuda/conv_pool.cu) take the same struct.

#include <tapegrad/backend/common/host_device.hpp>

#include <cstdint>

namespace tapegrad::backend {

/// The sizes of one 2-D sliding-window pass over an NCHW batch (a convolution or a pooling).
struct Window2d {
    int64_t channels = 1;                    ///< C: planes per image (im2col only; pooling takes a plane count)
    int64_t height = 0, width = 0;           ///< H, W: the input plane
    int64_t kernel_h = 1, kernel_w = 1;      ///< kh, kw
    int64_t stride_h = 1, stride_w = 1;      ///< sh, sw (>= 1)
    int64_t pad_h = 0, pad_w = 0;            ///< ph, pw: implicit zeros (or -inf for max pooling) on each side
    int64_t dilation_h = 1, dilation_w = 1;  ///< dh, dw: spacing of the kernel taps (1: adjacent)
    int64_t out_h = 0, out_w = 0;            ///< OH, OW: see window_out_size

    /// K = C*kh*kw: rows of the column matrix.
    [[nodiscard]] TAPEGRAD_HD constexpr int64_t col_rows() const noexcept { return channels * kernel_h * kernel_w; }
    /// L = OH*OW: output pixels per plane.
    [[nodiscard]] TAPEGRAD_HD constexpr int64_t out_plane() const noexcept { return out_h * out_w; }
    /// H*W: input pixels per plane.
    [[nodiscard]] TAPEGRAD_HD constexpr int64_t in_plane() const noexcept { return height * width; }
};

/// The number of window positions along one axis: floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1,
/// or 0 when the dilated kernel does not fit in the padded input. stride must be >= 1.
[[nodiscard]] constexpr int64_t window_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                                int64_t dilation) noexcept {
    const int64_t span = dilation * (kernel - 1) + 1;
    const int64_t room = in + 2 * pad - span;
    return room < 0 ? 0 : room / stride + 1;
}

namespace detail {

/// The output positions o in [0, out) whose tap o*stride + offset falls inside [0, in): a contiguous
/// range [lo, hi), empty (lo == hi) when none does.
struct TapRange {
    int64_t lo, hi;
};
TAPEGRAD_HD constexpr TapRange tap_range(int64_t out, int64_t in, int64_t stride, int64_t offset) noexcept {
    const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const int64_t last = in - 1 - offset;  // o*stride <= last
    const int64_t hi = last < 0 ? 0 : last / stride + 1;
    const int64_t l = lo < out ? lo : out, h = hi < out ? hi : out;
    return {l, l > h ? l : h};
}

}  // namespace detail

}  // namespace tapegrad::backend
