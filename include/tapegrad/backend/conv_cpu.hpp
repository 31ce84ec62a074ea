#pragma once
/// \file
/// The CPU primitives of the convolutional layers: im2col / col2im, max and average pooling, and the
/// per-channel statistics of batch normalisation. Like backend/cpu.hpp they take raw buffers and sizes and
/// know nothing of `Tensor`; the ops in ops/conv.hpp and nn/batchnorm.hpp are written once against this list,
/// and a CUDA backend would specialise `ConvOps<Cuda>` with the same members.
///
/// Everything is NCHW: an image batch is [N, C, H, W], row-major, so each of the N*C planes of H*W pixels is
/// contiguous.
///
/// im2col turns a convolution into one matrix product. For every output pixel (oy, ox) of every image, the
/// C*kh*kw input values under the kernel become one column of a matrix `col` [C*kh*kw, N*OH*OW]; then the
/// convolution is W [O, C*kh*kw] times col, and its input gradient is col2im of W^T times the output gradient.
/// Rows are ordered (c, ki, kj), the order of a weight [O, C, kh, kw] flattened, so with `groups` the rows of
/// group g are the contiguous block [g*C/groups*kh*kw, (g+1)*C/groups*kh*kw): the same matrix serves any
/// number of groups, each taking its own block of rows.

#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/device.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

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
    [[nodiscard]] constexpr int64_t col_rows() const noexcept { return channels * kernel_h * kernel_w; }
    /// L = OH*OW: output pixels per plane.
    [[nodiscard]] constexpr int64_t out_plane() const noexcept { return out_h * out_w; }
    /// H*W: input pixels per plane.
    [[nodiscard]] constexpr int64_t in_plane() const noexcept { return height * width; }
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
constexpr TapRange tap_range(int64_t out, int64_t in, int64_t stride, int64_t offset) noexcept {
    const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const int64_t last = in - 1 - offset;  // o*stride <= last
    const int64_t hi = last < 0 ? 0 : last / stride + 1;
    const int64_t l = std::min(lo, out), h = std::min(hi, out);
    return {l, std::max(l, h)};
}

}  // namespace detail

/// Convolution-family primitives of one device. Only specialisations exist.
template <Device D>
struct ConvOps;

template <>
struct ConvOps<Cpu> {
    // ==== im2col / col2im =================================================================================

    /// col[(c*kh + ki)*kw + kj, n*OH*OW + oy*OW + ox] = x[n, c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw], or 0
    /// where that position lies in the padding.
    ///  x: [images, C, H, W] -> col: [C*kh*kw, images*OH*OW] (overwritten)
    template <class T>
    static void im2col(const Window2d& g, int64_t images, const T* x, T* col) {
        walk_columns(g, images, [&](int64_t plane_off, int64_t col_off, int64_t lo, int64_t hi, int64_t off) {
            T* dst = col + col_off;
            if (plane_off < 0) {
                std::fill_n(dst, g.out_w, T(0));
                return;
            }
            const T* src = x + plane_off;
            std::fill_n(dst, lo, T(0));
            if (g.stride_w == 1)
                std::copy_n(src + lo + off, hi - lo, dst + lo);
            else
                for (int64_t ox = lo; ox < hi; ++ox) dst[ox] = src[ox * g.stride_w + off];
            std::fill_n(dst + hi, g.out_w - hi, T(0));
        });
    }

    /// The adjoint of im2col: dx[n, c, iy, ix] += every col entry that im2col copied from (iy, ix); entries
    /// that came from the padding are dropped.
    ///  col: [C*kh*kw, images*OH*OW] -> dx: [images, C, H, W] (accumulated)
    template <class T>
    static void col2im(const Window2d& g, int64_t images, const T* col, T* dx) {
        walk_columns(g, images, [&](int64_t plane_off, int64_t col_off, int64_t lo, int64_t hi, int64_t off) {
            if (plane_off < 0) return;
            const T* src = col + col_off;
            T* dst = dx + plane_off;
            if (g.stride_w == 1)
                for (int64_t ox = lo; ox < hi; ++ox) dst[ox + off] += src[ox];
            else
                for (int64_t ox = lo; ox < hi; ++ox) dst[ox * g.stride_w + off] += src[ox];
        });
    }

    // ==== layout changes around the convolution's matrix product ============================================

    /// dst[n, c, l] = src[c, n*L + l] (+ bias[c] when bias is not null): the product W * col, which comes out
    /// channel-major, back to NCHW.  src: [C, N*L], bias: [C] or null -> dst: [N, C, L]
    template <class T>
    static void channel_major_to_nchw(int64_t N, int64_t C, int64_t L, const T* src, const T* bias, T* dst) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) {
                const T* s = src + (c * N + n) * L;
                T* d = dst + (n * C + c) * L;
                if (bias == nullptr) {
                    std::copy_n(s, L, d);
                } else {
                    const T b = bias[c];
                    for (int64_t l = 0; l < L; ++l) d[l] = s[l] + b;
                }
            }
    }
    /// dst[c, n*L + l] = src[n, c, l], the inverse of channel_major_to_nchw.  src: [N, C, L] -> dst: [C, N*L]
    template <class T>
    static void nchw_to_channel_major(int64_t N, int64_t C, int64_t L, const T* src, T* dst) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) std::copy_n(src + (n * C + c) * L, L, dst + (c * N + n) * L);
    }
    /// out[c] += sum over n and l of x[n, c, l] (a convolution's bias gradient).  x: [N, C, L] -> out: [C]
    template <class T>
    static void channel_sums(int64_t N, int64_t C, int64_t L, const T* x, T* out) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) out[c] += CUVec<T>(x + (n * C + c) * L, L).sum();
    }

    // ==== pooling over `planes` independent H x W planes (N*C for an NCHW batch; g.channels unused) ==========

    /// y[p, oy, ox] = max over the window of x[p, ...], padding ignored (as if -inf); argmax[p, oy, ox] = the
    /// flat index iy*W + ix of the first maximum within plane p (NaN counts as the maximum, as in PyTorch).
    /// Every window must hold at least one input pixel (padding <= kernel/2 guarantees it). A null argmax
    /// is not written (inference needs no routing).
    ///  x: [planes, H, W] -> y, argmax: [planes, OH, OW]
    template <class T>
    static void max_pool2d(const Window2d& g, int64_t planes, const T* x, T* y, int64_t* argmax) {
        const int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
        for (int64_t p = 0; p < planes; ++p) {
            const T* src = x + p * in_plane;
            T* dst = y + p * out_plane;
            int64_t* arg = argmax ? argmax + p * out_plane : nullptr;
            for (int64_t oy = 0; oy < g.out_h; ++oy)
                for (int64_t ox = 0; ox < g.out_w; ++ox) {
                    T best = -std::numeric_limits<T>::infinity();
                    int64_t bi = -1;
                    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
                        const int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
                        if (iy < 0 || iy >= g.height) continue;
                        for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                            const int64_t ix = ox * g.stride_w - g.pad_w + kj * g.dilation_w;
                            if (ix < 0 || ix >= g.width) continue;
                            const T v = src[iy * g.width + ix];
                            if (bi < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
                                best = v;
                                bi = iy * g.width + ix;
                            }
                        }
                    }
                    dst[oy * g.out_w + ox] = best;
                    if (arg) arg[oy * g.out_w + ox] = bi;
                }
        }
    }
    /// dx[p, argmax[p, o]] += dy[p, o]: each output's gradient goes to the pixel that won its window.
    ///  argmax, dy: [planes, OH, OW] -> dx: [planes, H, W] (accumulated)
    template <class T>
    static void max_pool2d_backward(const Window2d& g, int64_t planes, const int64_t* argmax, const T* dy, T* dx) {
        const int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
        for (int64_t p = 0; p < planes; ++p) {
            T* d = dx + p * in_plane;
            for (int64_t o = 0; o < out_plane; ++o) d[argmax[p * out_plane + o]] += dy[p * out_plane + o];
        }
    }

    /// y[p, oy, ox] = (sum of the window's input pixels) / divisor (no dilation), where, as in PyTorch, the
    /// divisor counts the window's positions inside the padded input when count_include_pad (kh*kw here,
    /// since a window never leaves the padded input) and only the real pixels otherwise.
    ///  x: [planes, H, W] -> y: [planes, OH, OW]
    template <class T>
    static void avg_pool2d(const Window2d& g, int64_t planes, const T* x, T* y, bool count_include_pad) {
        for_each_avg_window<T>(g, planes, count_include_pad,
                            [&](int64_t p, int64_t o, int64_t y0, int64_t y1, int64_t x0, int64_t x1, T scale) {
                                const T* src = x + p * g.in_plane();
                                T s = T(0);
                                for (int64_t iy = y0; iy < y1; ++iy)
                                    for (int64_t ix = x0; ix < x1; ++ix) s += src[iy * g.width + ix];
                                y[p * g.out_plane() + o] = s * scale;
                            });
    }
    /// dx[p, iy, ix] += dy[p, o] / divisor for every window o holding (iy, ix) (divisor as in avg_pool2d).
    ///  dy: [planes, OH, OW] -> dx: [planes, H, W] (accumulated)
    template <class T>
    static void avg_pool2d_backward(const Window2d& g, int64_t planes, const T* dy, T* dx, bool count_include_pad) {
        for_each_avg_window<T>(g, planes, count_include_pad,
                            [&](int64_t p, int64_t o, int64_t y0, int64_t y1, int64_t x0, int64_t x1, T scale) {
                                T* d = dx + p * g.in_plane();
                                const T v = dy[p * g.out_plane() + o] * scale;
                                for (int64_t iy = y0; iy < y1; ++iy)
                                    for (int64_t ix = x0; ix < x1; ++ix) d[iy * g.width + ix] += v;
                            });
    }

    /// Adaptive average pooling to OH x OW: output (oy, ox) averages rows [floor(oy H / OH), ceil((oy+1) H / OH))
    /// and the columns likewise (PyTorch's windows; OH = OW = 1 is the global average).
    ///  x: [planes, H, W] -> y: [planes, OH, OW]  (g.height, g.width, g.out_h, g.out_w used)
    template <class T>
    static void adaptive_avg_pool2d(const Window2d& g, int64_t planes, const T* x, T* y) {
        for_each_adaptive_window(g, planes, [&](int64_t p, int64_t o, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
            const T* src = x + p * g.in_plane();
            T s = T(0);
            for (int64_t iy = y0; iy < y1; ++iy)
                for (int64_t ix = x0; ix < x1; ++ix) s += src[iy * g.width + ix];
            y[p * g.out_plane() + o] = s / static_cast<T>((y1 - y0) * (x1 - x0));
        });
    }
    /// dx[p, iy, ix] += dy[p, o] / (window size) for every window o holding (iy, ix).
    ///  dy: [planes, OH, OW] -> dx: [planes, H, W] (accumulated)
    template <class T>
    static void adaptive_avg_pool2d_backward(const Window2d& g, int64_t planes, const T* dy, T* dx) {
        for_each_adaptive_window(g, planes, [&](int64_t p, int64_t o, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
            T* d = dx + p * g.in_plane();
            const T v = dy[p * g.out_plane() + o] / static_cast<T>((y1 - y0) * (x1 - x0));
            for (int64_t iy = y0; iy < y1; ++iy)
                for (int64_t ix = x0; ix < x1; ++ix) d[iy * g.width + ix] += v;
        });
    }

    // ==== per-channel statistics and normalisation (batch norm) over x: [N, C, L] ===========================
    // L is H*W for an image batch, the length for [N, C, L], 1 for [N, C]. Sums are accumulated in double.

    /// mean[c] = (1/M) sum x[n, c, l] and var[c] = (1/M) sum (x[n, c, l] - mean[c])^2 (biased), M = N*L >= 1,
    /// in two passes (no cancellation when the mean is large against the spread).
    template <class T>
    static void channel_mean_var(int64_t N, int64_t C, int64_t L, const T* x, T* mean, T* var) {
        const double M = static_cast<double>(N * L);
        for (int64_t c = 0; c < C; ++c) {
            double s = 0.0;
            for (int64_t n = 0; n < N; ++n) s += CUVec<T>(x + (n * C + c) * L, L).template cast<double>().sum();
            const double m = s / M;
            double q = 0.0;
            for (int64_t n = 0; n < N; ++n)
                q += (CUVec<T>(x + (n * C + c) * L, L).template cast<double>() - m).square().sum();
            mean[c] = static_cast<T>(m);
            var[c] = static_cast<T>(q / M);
        }
    }
    /// y[n, c, l] = (x[n, c, l] - mean[c]) * invstd[c] * gamma[c] + beta[c]; a null gamma is 1, a null beta 0.
    template <class T>
    static void channel_normalize(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd,
                                  const T* gamma, const T* beta, T* y) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) {
                const T a = invstd[c] * (gamma ? gamma[c] : T(1));
                const T b = (beta ? beta[c] : T(0)) - mean[c] * a;
                UVec<T>(y + (n * C + c) * L, L) = CUVec<T>(x + (n * C + c) * L, L) * a + b;
            }
    }
    /// The adjoint of channel_normalize, with xhat = (x - mean) * invstd and M = N*L:
    ///   dbeta[c]  += sum dy                 dgamma[c] += sum dy * xhat
    ///   batch statistics (mean and invstd computed from this x):
    ///     dx += gamma invstd (dy - sum(dy) / M - xhat * sum(dy xhat) / M)
    ///   fixed statistics (running estimates): dx += gamma invstd dy
    /// Any of dx, dgamma, dbeta may be null (not wanted); a null gamma is 1.
    template <class T>
    static void channel_normalize_backward(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                                           const T* invstd, const T* gamma, const T* dy, bool batch_stats, T* dx,
                                           T* dgamma, T* dbeta) {
        const double M = static_cast<double>(N * L);
        for (int64_t c = 0; c < C; ++c) {
            const T m = mean[c], is = invstd[c];
            double sum_dy = 0.0, sum_dy_xhat = 0.0;
            for (int64_t n = 0; n < N; ++n) {
                const int64_t off = (n * C + c) * L;
                const auto g = CUVec<T>(dy + off, L).template cast<double>();
                sum_dy += g.sum();
                sum_dy_xhat += (g * ((CUVec<T>(x + off, L) - m) * is).template cast<double>()).sum();
            }
            if (dbeta) dbeta[c] += static_cast<T>(sum_dy);
            if (dgamma) dgamma[c] += static_cast<T>(sum_dy_xhat);
            if (!dx) continue;
            const T k = is * (gamma ? gamma[c] : T(1));
            const T mean_dy = batch_stats ? static_cast<T>(sum_dy / M) : T(0);
            const T mean_dy_xhat = batch_stats ? static_cast<T>(sum_dy_xhat / M) : T(0);
            for (int64_t n = 0; n < N; ++n) {
                const int64_t off = (n * C + c) * L;
                UVec<T>(dx + off, L) +=
                    k * (CUVec<T>(dy + off, L) - mean_dy - (CUVec<T>(x + off, L) - m) * is * mean_dy_xhat);
            }
        }
    }

private:
    /// Walks im2col's correspondence: for every column-matrix row (c, ki, kj), image n and output row oy, calls
    /// f(plane_off, col_off, lo, hi, off): that row's OW entries start at col_off in the column matrix, and the
    /// input row iy they read starts at plane_off in x (-1 when iy lies in the padding); entry ox in [lo, hi)
    /// reads input column ox*sw + off, the others read the padding.
    template <class F>
    static void walk_columns(const Window2d& g, int64_t images, F&& f) {
        const int64_t L = g.out_plane(), row_len = images * L, in_plane = g.in_plane();
        for (int64_t c = 0; c < g.channels; ++c)
            for (int64_t ki = 0; ki < g.kernel_h; ++ki)
                for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                    const int64_t r = (c * g.kernel_h + ki) * g.kernel_w + kj;
                    const int64_t dy = ki * g.dilation_h - g.pad_h, off = kj * g.dilation_w - g.pad_w;
                    const detail::TapRange xr = detail::tap_range(g.out_w, g.width, g.stride_w, off);
                    for (int64_t n = 0; n < images; ++n)
                        for (int64_t oy = 0; oy < g.out_h; ++oy) {
                            const int64_t iy = oy * g.stride_h + dy;
                            const int64_t plane_off =
                                iy >= 0 && iy < g.height ? (n * g.channels + c) * in_plane + iy * g.width : -1;
                            f(plane_off, r * row_len + n * L + oy * g.out_w, xr.lo, xr.hi, off);
                        }
                }
    }

    /// Calls f(plane, o, y0, y1, x0, x1, 1/divisor) for every average-pooling window, [y0, y1) x [x0, x1) being
    /// its part inside the real input.
    template <class T, class F>
    static void for_each_avg_window(const Window2d& g, int64_t planes, bool count_include_pad, F&& f) {
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t oy = 0; oy < g.out_h; ++oy) {
                int64_t y0 = oy * g.stride_h - g.pad_h;
                int64_t y1 = std::min(y0 + g.kernel_h, g.height + g.pad_h);
                const int64_t ny = y1 - y0;
                y0 = std::max<int64_t>(y0, 0);
                y1 = std::min(y1, g.height);
                for (int64_t ox = 0; ox < g.out_w; ++ox) {
                    int64_t x0 = ox * g.stride_w - g.pad_w;
                    int64_t x1 = std::min(x0 + g.kernel_w, g.width + g.pad_w);
                    const int64_t nx = x1 - x0;
                    x0 = std::max<int64_t>(x0, 0);
                    x1 = std::min(x1, g.width);
                    const int64_t count = count_include_pad ? ny * nx : (y1 - y0) * (x1 - x0);
                    f(p, oy * g.out_w + ox, y0, y1, x0, x1, T(1) / static_cast<T>(count));
                }
            }
    }
    template <class F>
    static void for_each_adaptive_window(const Window2d& g, int64_t planes, F&& f) {
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t oy = 0; oy < g.out_h; ++oy) {
                const int64_t y0 = oy * g.height / g.out_h, y1 = ((oy + 1) * g.height + g.out_h - 1) / g.out_h;
                for (int64_t ox = 0; ox < g.out_w; ++ox) {
                    const int64_t x0 = ox * g.width / g.out_w, x1 = ((ox + 1) * g.width + g.out_w - 1) / g.out_w;
                    f(p, oy * g.out_w + ox, y0, y1, x0, x1);
                }
            }
    }
};

}  // namespace tapegrad::backend
