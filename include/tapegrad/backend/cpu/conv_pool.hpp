#pragma once
/// \file
/// The CPU backend's convolution and pooling (family `ConvPoolFamily`, backend/contract.hpp): the
/// convolution (im2col + matrix products, the batch split across threads), im2col / col2im, and max,
/// average and adaptive average pooling with their backwards. Like every primitive they take raw buffers
/// and sizes (and a `Window2d` plan, backend/common/window.hpp) and know nothing of `Tensor`.
/// Twin: backend/cuda/conv_pool.hpp (kernels in conv_pool.cu).
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
///
/// Threads (cpu/threads.hpp): the convolution and the pooling split the batch into parts, one per thread,
/// when the work pays for it. The split is decided here, never by the callers.

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/common/window.hpp>
#include <tapegrad/backend/cpu/blas.hpp>
#include <tapegrad/backend/cpu/memory.hpp>
#include <tapegrad/backend/cpu/threads.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace tapegrad::backend {

/// Convolution and pooling on the host.
struct CpuConvPool {
    // ==== the convolution ===================================================================================
    // Per image n, with L = OH*OW, K = C*kh*kw and G groups (each with O/G outputs and K/G column rows):
    //   forward   Y_n [O, L] = W [O, K] * im2col(x_n) [K, L] (+ b), one product per group; Y_n is the image's
    //             NCHW output as it stands, so no layout change follows.
    //   backward  dW += dY_n col_n^T;  dx_n += col2im(W^T dY_n);  db[o] += sum_l dY_n[o, l].
    // One image's column matrix (K*L elements) stays in cache between im2col and the product that reads it.
    // A 1x1 convolution with stride 1 and no padding needs no im2col: x_n [C, H*W] is the column matrix.

    /// Is im2col the identity for this window (1x1 kernel, stride 1, no padding)?
    [[nodiscard]] static constexpr bool im2col_is_identity(const Window2d& g) noexcept {
        return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
               g.pad_w == 0;
    }
    /// Multiply-adds of one image's forward product: O * (C/groups) * kh * kw * OH * OW. The backward's two
    /// products cost as much again each.
    [[nodiscard]] static double image_work(const Window2d& g, int64_t O, int64_t groups) noexcept {
        return static_cast<double>(O * g.col_rows() / groups * g.out_plane());
    }

    /// y[n, o] = b[o] + sum over the group's c, ki, kj of w[o, c, ki, kj] x[n, c, ...], as im2col lays it out.
    ///  x: [N, C, H, W], w: [O, C/groups, kh, kw], b: [O] or null -> y: [N, O, OH, OW] (overwritten).
    /// With `cols` (not null; not for an identity im2col), image n's column matrix is left at cols + n*K*L
    /// for the backward, which then need not compute it again. The images are split across threads
    /// (cpu::batch_parts) by the multiply-adds they cost.
    template <class T>
    static void conv2d_forward(const Window2d& g, int64_t N, int64_t O, int64_t groups, const T* x, const T* w,
                               const T* b, T* y, T* cols = nullptr) {
        conv2d_forward_in_parts(g, N, O, groups, x, w, b, y, cpu::batch_parts(N, image_work(g, O, groups)), cols);
    }

    /// The adjoint of conv2d_forward for the output gradient dy [N, O, OH, OW]:
    ///   dw [O, C/groups, kh, kw]: sum over n of dY_n im2col(x_n)^T per group, overwritten when dw_overwrite
    ///                             (a fresh buffer), else accumulated;
    ///   dx [N, C, H, W]:          += col2im(W_g^T dY_n) per image;
    ///   db [O]:                   += sum of dy over n and the pixels.
    /// Any of dw, dx, db may be null (not wanted). `cols`, when not null, holds the column matrices that
    /// conv2d_forward left there. The images are split across threads by the products they cost.
    template <class T>
    static void conv2d_backward(const Window2d& g, int64_t N, int64_t O, int64_t groups, const T* x, const T* w,
                                const T* dy, T* dx, T* dw, bool dw_overwrite, T* db, const T* cols = nullptr) {
        const double products = (dw ? 1.0 : 0.0) + (dx ? 1.0 : 0.0);
        conv2d_backward_in_parts(g, N, O, groups, x, w, dy, dx, dw, dw_overwrite, db,
                                 cpu::batch_parts(N, image_work(g, O, groups) * std::max(products, 0.1)), cols);
    }

    /// conv2d_forward with the images split into exactly `parts` (cpu::for_each_part); tests check that every
    /// split gives the one-part result.
    template <class T>
    static void conv2d_forward_in_parts(const Window2d& g, int64_t N, int64_t O, int64_t groups, const T* x, const T* w,
                               const T* b, T* y, int64_t parts, T* cols = nullptr) {
        const int64_t K = g.col_rows(), L = g.out_plane(), Kg = K / groups, Og = O / groups;
        const int64_t in_image = g.channels * g.in_plane();
        const bool identity = im2col_is_identity(g);
        cpu::for_each_part(N, parts, [&](int64_t, int64_t n0, int64_t n1) {
            T* const buf = identity || cols ? nullptr : cpu::scratch<T, 0>().get(K * L);
            for (int64_t n = n0; n < n1; ++n) {
                const T* col = x + n * in_image;
                if (!identity) {
                    T* dst = cols ? cols + n * K * L : buf;
                    im2col(g, 1, col, dst);
                    col = dst;
                }
                T* yn = y + n * O * L;
                if (b)
                    for (int64_t o = 0; o < O; ++o) std::fill_n(yn + o * L, L, b[o]);
                for (int64_t k = 0; k < groups; ++k)
                    CpuBlas::gemm(false, false, Og, L, Kg, T(1), w + k * Og * Kg, col + k * Kg * L, b ? T(1) : T(0),
                                   yn + k * Og * L);
            }
        });
    }

    /// The adjoint of conv2d_forward for the output gradient dy [N, O, OH, OW]:
    ///   dw [O, C/groups, kh, kw]: sum over n of dY_n im2col(x_n)^T per group, overwritten when dw_overwrite
    ///                             (a fresh buffer), else accumulated;
    ///   dx [N, C, H, W]:          += col2im(W_g^T dY_n) per image;
    ///   db [O]:                   += sum of dy over n and the pixels.
    /// Any of dw, dx, db may be null (not wanted). `cols`, when not null, holds the column matrices that
    /// conv2d_forward left there. With several parts, each part sums its images' dw and db into its own
    /// conv2d_backward with the images split into exactly `parts`. With several parts, each part sums its
    /// images' dw and db into its own buffer and the buffers are added in part order.
    template <class T>
    static void conv2d_backward_in_parts(const Window2d& g, int64_t N, int64_t O, int64_t groups, const T* x, const T* w,
                                const T* dy, T* dx, T* dw, bool dw_overwrite, T* db, int64_t parts,
                                const T* cols = nullptr) {
        const int64_t K = g.col_rows(), L = g.out_plane(), Kg = K / groups, Og = O / groups;
        const int64_t in_image = g.channels * g.in_plane(), wsize = O * Kg;
        const bool identity = im2col_is_identity(g);
        parts = std::clamp<int64_t>(parts, 1, std::max<int64_t>(N, 1));
        // Part p's sums: dw_p [O*Kg] and db_p [O]; a single part adds straight into dw and db.
        T* const partial = parts > 1 ? cpu::scratch<T, 1>().get(parts * (wsize + O)) : nullptr;
        cpu::for_each_part(N, parts, [&](int64_t p, int64_t n0, int64_t n1) {
            T* const pdw = !dw ? nullptr : partial ? partial + p * (wsize + O) : dw;
            T* const pdb = !db ? nullptr : partial ? partial + p * (wsize + O) + wsize : db;
            bool overwrite = partial ? true : dw_overwrite;
            if (pdb && partial) std::fill_n(pdb, O, T(0));
            if (pdw && overwrite && n0 == n1) std::fill_n(pdw, wsize, T(0));
            const bool need_col = pdw && !identity && !cols, need_dcol = dx && !identity;
            T* const buf = need_col || need_dcol ? cpu::scratch<T, 0>().get(K * L * 2) : nullptr;
            T* const colbuf = buf, *const dcol = buf ? buf + K * L : nullptr;
            for (int64_t o = 0; pdb && o < O; ++o) {  // blocked sums over pixels and images: accumulate.hpp
                BlockSum<T> s;
                for (int64_t n = n0; n < n1; ++n) s.add(sum_contiguous(dy + (n * O + o) * L, L));
                pdb[o] += s.value();
            }
            for (int64_t n = n0; n < n1; ++n) {
                const T* dyn = dy + n * O * L;
                if (pdw) {  // dW_g (+)= dY_g col_g^T
                    const T* col = x + n * in_image;
                    if (cols) {
                        col = cols + n * K * L;
                    } else if (!identity) {
                        im2col(g, 1, col, colbuf);
                        col = colbuf;
                    }
                    for (int64_t k = 0; k < groups; ++k)
                        CpuBlas::gemm(false, true, Og, Kg, L, T(1), dyn + k * Og * L, col + k * Kg * L,
                                       overwrite ? T(0) : T(1), pdw + k * Og * Kg);
                    overwrite = false;
                }
                if (dx) {  // dx_n += col2im(W_g^T dY_g); for a 1x1 kernel the product adds into dx_n directly
                    T* dxn = dx + n * in_image;
                    for (int64_t k = 0; k < groups; ++k)
                        CpuBlas::gemm(true, false, Kg, L, Og, T(1), w + k * Og * Kg, dyn + k * Og * L,
                                       identity ? T(1) : T(0), identity ? dxn + k * Kg * L : dcol + k * Kg * L);
                    if (!identity) col2im(g, 1, dcol, dxn);
                }
            }
        });
        if (!partial) return;
        for (int64_t p = 0; p < parts; ++p) {
            const T* pw = partial + p * (wsize + O);
            if (dw) {
                if (p == 0 && dw_overwrite)
                    std::copy_n(pw, wsize, dw);
                else
                    UVec<T>(dw, wsize) += CUVec<T>(pw, wsize);
            }
            if (db) UVec<T>(db, O) += CUVec<T>(pw + wsize, O);
        }
    }

    // ==== im2col / col2im =================================================================================

    /// col[(c*kh + ki)*kw + kj, n*OH*OW + oy*OW + ox] = x[n, c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw], or 0
    /// where that position lies in the padding.
    ///  x: [images, C, H, W] -> col: [C*kh*kw, images*OH*OW] (overwritten)
    template <class T>
    static void im2col(const Window2d& g, int64_t images, const T* x, T* col) {
        walk_rows(g, images, [&](const RowWalk& w) {
            T* const dst = col + w.col_off;
            for (int64_t i = 0; i < w.y_lo * g.out_w; ++i) dst[i] = T(0);
            for (int64_t oy = w.y_lo; oy < w.y_hi; ++oy) {
                T* d = dst + oy * g.out_w;
                const T* s = x + w.plane_off + (oy * g.stride_h + w.dy) * g.width + w.dx;
                for (int64_t ox = 0; ox < w.x_lo; ++ox) d[ox] = T(0);
                if (g.stride_w == 1)
                    for (int64_t ox = w.x_lo; ox < w.x_hi; ++ox) d[ox] = s[ox];
                else
                    for (int64_t ox = w.x_lo; ox < w.x_hi; ++ox) d[ox] = s[ox * g.stride_w];
                for (int64_t ox = w.x_hi; ox < g.out_w; ++ox) d[ox] = T(0);
            }
            for (int64_t i = w.y_hi * g.out_w; i < g.out_plane(); ++i) dst[i] = T(0);
        });
    }

    /// The adjoint of im2col: dx[n, c, iy, ix] += every col entry that im2col copied from (iy, ix); entries
    /// that came from the padding are dropped.
    ///  col: [C*kh*kw, images*OH*OW] -> dx: [images, C, H, W] (accumulated)
    template <class T>
    static void col2im(const Window2d& g, int64_t images, const T* col, T* dx) {
        walk_rows(g, images, [&](const RowWalk& w) {
            for (int64_t oy = w.y_lo; oy < w.y_hi; ++oy) {
                const T* s = col + w.col_off + oy * g.out_w;
                T* d = dx + w.plane_off + (oy * g.stride_h + w.dy) * g.width + w.dx;
                if (g.stride_w == 1)
                    for (int64_t ox = w.x_lo; ox < w.x_hi; ++ox) d[ox] += s[ox];
                else
                    for (int64_t ox = w.x_lo; ox < w.x_hi; ++ox) d[ox * g.stride_w] += s[ox];
            }
        });
    }

    // ==== pooling over `planes` independent H x W planes (N*C for an NCHW batch; g.channels unused) ==========

    /// y[p, oy, ox] = max over the window of x[p, ...], padding ignored (as if -inf); argmax[p, oy, ox] = the
    /// flat index iy*W + ix of the first maximum within plane p, in row-major window order (NaN counts as the
    /// maximum, as in PyTorch). Every window must hold at least one input pixel (padding <= kernel/2
    /// guarantees it). A null argmax is not written (inference needs no routing). The 2x2, stride 2 windows
    /// of most networks take a loop of their own (max_pool2d_2x2), with the same results; the planes are
    /// split across threads.
    ///  x: [planes, H, W] -> y, argmax: [planes, OH, OW]
    template <class T>
    static void max_pool2d(const Window2d& g, int64_t planes, const T* x, T* y, int64_t* argmax) {
        const bool fast = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 &&
                          g.pad_h == 0 && g.pad_w == 0 && g.dilation_h == 1 && g.dilation_w == 1;
        // work per output, in multiply-adds' worth of time: about 16 for a 2x2 window, 64 for others
        const int64_t parts = cpu::batch_parts(planes, 16.0 * static_cast<double>(g.out_plane()) * (fast ? 1 : 4));
        cpu::for_each_part(planes, parts, [&](int64_t, int64_t p0, int64_t p1) {
            const int64_t in_off = p0 * g.in_plane(), out_off = p0 * g.out_plane();
            int64_t* arg = argmax ? argmax + out_off : nullptr;
            if (fast)
                max_pool2d_2x2(g, p1 - p0, x + in_off, y + out_off, arg);
            else
                max_pool2d_general(g, p1 - p0, x + in_off, y + out_off, arg);
        });
    }
    /// max_pool2d for any window, on the calling thread.
    template <class T>
    static void max_pool2d_general(const Window2d& g, int64_t planes, const T* x, T* y, int64_t* argmax) {
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
    /// max_pool2d for 2x2 windows with stride 2, no padding and no dilation, on the calling thread, with the
    /// results of max_pool2d_general. Finite input (checked first) takes a loop that the compiler
    /// vectorises: each window is a tournament, max(top left, top right) against max(bottom left, bottom
    /// right), ties to the first, which picks the same pixel as the general scan; input with a NaN or an
    /// infinity takes the general scan.
    template <class T>
    static void max_pool2d_2x2(const Window2d& g, int64_t planes, const T* x, T* y, int64_t* argmax) {
        // Sizes in locals: stores through the int64_t argmax could alias g, which would stop the vectoriser.
        const int64_t W = g.width, OH = g.out_h, OW = g.out_w, in_plane = g.in_plane(), out_plane = g.out_plane();
        // sum(x * 0) is NaN iff x holds a NaN or an infinity; a vectorised sum, unlike isNaN().any()
        const T probe = (CUVec<T>(x, planes * in_plane) * T(0)).sum();
        if (probe != probe) return max_pool2d_general(g, planes, x, y, argmax);
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t oy = 0; oy < OH; ++oy) {
                const int64_t i0 = 2 * oy * W;
                const T* r0 = x + p * in_plane + i0;
                const T* r1 = r0 + W;
                T* dst = y + p * out_plane + oy * OW;
                if (!argmax) {
                    for (int64_t ox = 0; ox < OW; ++ox) {
                        const T top = r0[2 * ox + 1] > r0[2 * ox] ? r0[2 * ox + 1] : r0[2 * ox];
                        const T bottom = r1[2 * ox + 1] > r1[2 * ox] ? r1[2 * ox + 1] : r1[2 * ox];
                        dst[ox] = bottom > top ? bottom : top;
                    }
                    continue;
                }
                int64_t* arg = argmax + p * out_plane + oy * OW;
                for (int64_t ox = 0; ox < OW; ++ox) {
                    // The index arithmetic is on 0/1 values rather than selects, which keeps the loop free of
                    // branches for the vectoriser.
                    const T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
                    const int64_t right_top = b > a, right_bottom = d > c;
                    const T top = b > a ? b : a, bottom = d > c ? d : c;
                    const int64_t down = bottom > top;
                    dst[ox] = bottom > top ? bottom : top;
                    arg[ox] = i0 + 2 * ox + down * (W + right_bottom) + (1 - down) * right_top;
                }
            }
    }
    /// dx[p, argmax[p, o]] += dy[p, o]: each output's gradient goes to the pixel that won its window. The
    /// planes are split across threads.
    ///  argmax, dy: [planes, OH, OW] -> dx: [planes, H, W] (accumulated)
    template <class T>
    static void max_pool2d_backward(const Window2d& g, int64_t planes, const int64_t* argmax, const T* dy, T* dx) {
        const int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
        cpu::for_each_part(planes, cpu::batch_parts(planes, 8.0 * static_cast<double>(out_plane)),
                      [&](int64_t, int64_t p0, int64_t p1) {
                          for (int64_t p = p0; p < p1; ++p) {
                              T* d = dx + p * in_plane;
                              const int64_t* a = argmax + p * out_plane;
                              const T* gy = dy + p * out_plane;
                              // -1: a dilated window that lies wholly in the padding (its output is -inf
                              // and no input pixel receives its gradient).
                              for (int64_t o = 0; o < out_plane; ++o)
                                  if (a[o] >= 0) d[a[o]] += gy[o];
                          }
                      });
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
                                BlockSum<T> s;  // accumulate.hpp
                                for (int64_t iy = y0; iy < y1; ++iy)
                                    for (int64_t ix = x0; ix < x1; ++ix) s.add(src[iy * g.width + ix]);
                                y[p * g.out_plane() + o] = s.value() * scale;
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
            BlockSum<T> s;  // accumulate.hpp
            for (int64_t iy = y0; iy < y1; ++iy)
                for (int64_t ix = x0; ix < x1; ++ix) s.add(src[iy * g.width + ix]);
            y[p * g.out_plane() + o] = s.value() / static_cast<T>((y1 - y0) * (x1 - x0));
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

private:
    /// One row (c, ki, kj) of im2col's column matrix for one image: its OH*OW entries start at col_off in the
    /// column matrix; entry (oy, ox) reads x at plane_off + (oy*sh + dy)*W + ox*sw + dx when oy lies in
    /// [y_lo, y_hi) and ox in [x_lo, x_hi), and the padding otherwise.
    struct RowWalk {
        int64_t col_off, plane_off, dy, dx, y_lo, y_hi, x_lo, x_hi;
    };
    /// Calls f(RowWalk) for every row of the column matrix and every image.
    template <class F>
    static void walk_rows(const Window2d& g, int64_t images, F&& f) {
        const int64_t L = g.out_plane(), row_len = images * L, in_plane = g.in_plane();
        for (int64_t c = 0; c < g.channels; ++c)
            for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
                const int64_t dy = ki * g.dilation_h - g.pad_h;
                const detail::TapRange yr = detail::tap_range(g.out_h, g.height, g.stride_h, dy);
                for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                    const int64_t r = (c * g.kernel_h + ki) * g.kernel_w + kj;
                    const int64_t dx = kj * g.dilation_w - g.pad_w;
                    const detail::TapRange xr = detail::tap_range(g.out_w, g.width, g.stride_w, dx);
                    for (int64_t n = 0; n < images; ++n)
                        f(RowWalk{r * row_len + n * L, (n * g.channels + c) * in_plane, dy, dx, yr.lo, yr.hi, xr.lo,
                                  xr.hi});
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
