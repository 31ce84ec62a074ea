/// \file
/// The CUDA kernels of the convolutional layers (declared in conv_pool.cuh): im2col and its adjoint col2im, the
/// convolution's output layout change (+ bias) and bias gradient, and max / average / adaptive average
/// pooling with their backwards. The matrix products of the convolution are cuBLAS's, called from
/// backend/cuda/conv_pool.hpp. Kernels, then launchers, then the explicit instantiations for float and double.
/// Semantics are those of backend::CpuConvPool (backend/cpu/conv_pool.hpp).
///
/// Determinism: every backward is a gather. One thread owns one element of the gradient it writes and adds
/// its contributions in an order fixed by the sizes alone (col2im: by kernel tap; the poolings: by output
/// position), so results do not vary between runs, even where windows overlap (stride < kernel).

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/cuda/broadcast_reduce.cuh>
#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/conv_pool.cuh>

#include <cmath>

namespace tapegrad::cuda {
namespace detail {

/// col[r, n*L + l] = x[n, c, iy, ix] (0 in the padding), one thread per element of col, so that
/// neighbouring threads write neighbouring addresses; r = (c*kh + ki)*kw + kj, l = oy*OW + ox
template <class T>
__global__ void im2col_kernel(ConvWindow g, int64_t images, const T* x, T* col) {
    const int64_t L = g.out_h * g.out_w, row = images * L, taps = g.kernel_h * g.kernel_w;
    const int64_t total = g.channels * taps * row;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t r = t / row, j = t - r * row;
        const int64_t n = j / L, l = j - n * L;
        const int64_t oy = l / g.out_w, ox = l - oy * g.out_w;
        const int64_t c = r / taps, k = r - c * taps;
        const int64_t ki = k / g.kernel_w, kj = k - ki * g.kernel_w;
        const int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
        const int64_t ix = ox * g.stride_w - g.pad_w + kj * g.dilation_w;
        const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
        col[t] = inside ? x[((n * g.channels + c) * g.height + iy) * g.width + ix] : T(0);
    }
}

/// dx[n, c, iy, ix] += the col entries copied from (iy, ix): tap (ki, kj) read it for output (oy, ox) when
/// oy*sh = iy + ph - ki*dh (and likewise for x) with oy inside [0, OH); one thread per pixel, taps in order
template <class T>
__global__ void col2im_kernel(ConvWindow g, int64_t images, const T* col, T* dx) {
    const int64_t L = g.out_h * g.out_w, row = images * L, plane = g.height * g.width;
    const int64_t total = images * g.channels * plane;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t q = t / plane, i = t - q * plane;  // q = n*C + c
        const int64_t n = q / g.channels, c = q - n * g.channels;
        const int64_t iy = i / g.width, ix = i - iy * g.width;
        const T* rows = col + c * g.kernel_h * g.kernel_w * row + n * L;  // row (c, 0, 0), image n
        T s = T(0);
        for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
            const int64_t ty = iy + g.pad_h - ki * g.dilation_h;
            if (ty < 0) break;  // larger ki only lower it
            if (ty % g.stride_h != 0 || ty / g.stride_h >= g.out_h) continue;
            const int64_t oy = ty / g.stride_h;
            for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                const int64_t tx = ix + g.pad_w - kj * g.dilation_w;
                if (tx < 0) break;
                if (tx % g.stride_w != 0 || tx / g.stride_w >= g.out_w) continue;
                s += rows[(ki * g.kernel_w + kj) * row + oy * g.out_w + tx / g.stride_w];
            }
        }
        dx[t] += s;
    }
}

/// out[b, a, l] = in[a, b, l] (+ bias[a]), one thread per element of out
template <class T>
__global__ void swap_leading_axes_kernel(int64_t A, int64_t B, int64_t L, const T* in, const T* bias, T* out) {
    const int64_t AL = A * L, total = B * AL;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t b = t / AL, rest = t - b * AL;
        const int64_t a = rest / L, l = rest - a * L;
        const T v = in[(a * B + b) * L + l];
        out[t] = bias ? v + bias[a] : v;
    }
}

/// y[p, o] = max of window o, argmax[p, o] = its first maximum (a NaN beats any number): CpuConvPool's
/// general scan, one thread per output
template <class T>
__global__ void max_pool2d_kernel(ConvWindow g, int64_t planes, const T* x, T* y, int64_t* argmax) {
    const int64_t L = g.out_h * g.out_w, plane = g.height * g.width, total = planes * L;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t p = t / L, o = t - p * L;
        const int64_t oy = o / g.out_w, ox = o - oy * g.out_w;
        const T* src = x + p * plane;
        T best = -static_cast<T>(INFINITY);
        int64_t bi = -1;
        for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
            const int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dilation_h;
            if (iy < 0 || iy >= g.height) continue;
            for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                const int64_t ix = ox * g.stride_w - g.pad_w + kj * g.dilation_w;
                if (ix < 0 || ix >= g.width) continue;
                const T v = src[iy * g.width + ix];
                if (bi < 0 || v > best || (v != v && best == best)) {
                    best = v;
                    bi = iy * g.width + ix;
                }
            }
        }
        y[t] = best;
        if (argmax) argmax[t] = bi;
    }
}

/// dx[p, i] += dy[p, o] for every window o holding pixel i whose argmax is i; one thread per pixel, taps
/// walked backwards so that the windows come in increasing o (the CPU's order of addition)
template <class T>
__global__ void max_pool2d_backward_kernel(ConvWindow g, int64_t planes, const int64_t* argmax, const T* dy, T* dx) {
    const int64_t L = g.out_h * g.out_w, plane = g.height * g.width, total = planes * plane;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t p = t / plane, i = t - p * plane;
        const int64_t iy = i / g.width, ix = i - iy * g.width;
        const int64_t* arg = argmax + p * L;
        const T* gy = dy + p * L;
        T s = T(0);
        bool hit = false;
        for (int64_t ki = g.kernel_h - 1; ki >= 0; --ki) {
            const int64_t ty = iy + g.pad_h - ki * g.dilation_h;
            if (ty < 0 || ty % g.stride_h != 0 || ty / g.stride_h >= g.out_h) continue;
            const int64_t oy = ty / g.stride_h;
            for (int64_t kj = g.kernel_w - 1; kj >= 0; --kj) {
                const int64_t tx = ix + g.pad_w - kj * g.dilation_w;
                if (tx < 0 || tx % g.stride_w != 0 || tx / g.stride_w >= g.out_w) continue;
                const int64_t o = oy * g.out_w + tx / g.stride_w;
                if (arg[o] == i) {
                    s += gy[o];
                    hit = true;
                }
            }
        }
        if (hit) dx[t] += s;
    }
}

/// The part [y0, y1) x [x0, x1) of average-pooling window (oy, ox) inside the input, and the divisor:
/// CpuConvPool::for_each_avg_window's arithmetic
struct AvgWindow {
    int64_t y0, y1, x0, x1, count;
};
__device__ inline AvgWindow avg_window(const ConvWindow& g, int64_t oy, int64_t ox, bool count_include_pad) {
    int64_t y0 = oy * g.stride_h - g.pad_h;
    int64_t y1 = y0 + g.kernel_h < g.height + g.pad_h ? y0 + g.kernel_h : g.height + g.pad_h;
    const int64_t ny = y1 - y0;
    y0 = y0 > 0 ? y0 : 0;
    y1 = y1 < g.height ? y1 : g.height;
    int64_t x0 = ox * g.stride_w - g.pad_w;
    int64_t x1 = x0 + g.kernel_w < g.width + g.pad_w ? x0 + g.kernel_w : g.width + g.pad_w;
    const int64_t nx = x1 - x0;
    x0 = x0 > 0 ? x0 : 0;
    x1 = x1 < g.width ? x1 : g.width;
    return {y0, y1, x0, x1, count_include_pad ? ny * nx : (y1 - y0) * (x1 - x0)};
}

/// y[p, o] = the window's sum / divisor, one thread per output, pixels in row-major order
template <class T>
__global__ void avg_pool2d_kernel(ConvWindow g, int64_t planes, const T* x, T* y, bool count_include_pad) {
    const int64_t L = g.out_h * g.out_w, plane = g.height * g.width, total = planes * L;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t p = t / L, o = t - p * L;
        const int64_t oy = o / g.out_w, ox = o - oy * g.out_w;
        const AvgWindow w = avg_window(g, oy, ox, count_include_pad);
        const T* src = x + p * plane;
        backend::BlockSum<T> s;  // accumulate.hpp
        for (int64_t iy = w.y0; iy < w.y1; ++iy)
            for (int64_t ix = w.x0; ix < w.x1; ++ix) s.add(src[iy * g.width + ix]);
        y[t] = s.value() * (T(1) / static_cast<T>(w.count));
    }
}

/// dx[p, i] += sum of dy[p, o] / divisor_o over the windows o holding pixel i: those with
/// oy*sh - ph <= iy < oy*sh - ph + kh (and likewise for x); one thread per pixel, windows in increasing o
template <class T>
__global__ void avg_pool2d_backward_kernel(ConvWindow g, int64_t planes, const T* dy, T* dx, bool count_include_pad) {
    const int64_t L = g.out_h * g.out_w, plane = g.height * g.width, total = planes * plane;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t p = t / plane, i = t - p * plane;
        const int64_t iy = i / g.width, ix = i - iy * g.width;
        const int64_t ay = iy + g.pad_h - g.kernel_h + 1, ax = ix + g.pad_w - g.kernel_w + 1;
        const int64_t oy0 = ay <= 0 ? 0 : (ay + g.stride_h - 1) / g.stride_h;
        const int64_t ox0 = ax <= 0 ? 0 : (ax + g.stride_w - 1) / g.stride_w;
        const int64_t oy1 = (iy + g.pad_h) / g.stride_h + 1, ox1 = (ix + g.pad_w) / g.stride_w + 1;
        const int64_t oy_end = oy1 < g.out_h ? oy1 : g.out_h, ox_end = ox1 < g.out_w ? ox1 : g.out_w;
        const T* gy = dy + p * L;
        T s = T(0);
        for (int64_t oy = oy0; oy < oy_end; ++oy)
            for (int64_t ox = ox0; ox < ox_end; ++ox) {
                const AvgWindow w = avg_window(g, oy, ox, count_include_pad);
                s += gy[oy * g.out_w + ox] * (T(1) / static_cast<T>(w.count));
            }
        if (oy0 < oy_end && ox0 < ox_end) dx[t] += s;
    }
}

/// y[p, o] = the mean of adaptive window o (rows [floor(oy H / OH), ceil((oy+1) H / OH)), columns likewise),
/// one thread per output
template <class T>
__global__ void adaptive_avg_pool2d_kernel(ConvWindow g, int64_t planes, const T* x, T* y) {
    const int64_t L = g.out_h * g.out_w, plane = g.height * g.width, total = planes * L;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t p = t / L, o = t - p * L;
        const int64_t oy = o / g.out_w, ox = o - oy * g.out_w;
        const int64_t y0 = oy * g.height / g.out_h, y1 = ((oy + 1) * g.height + g.out_h - 1) / g.out_h;
        const int64_t x0 = ox * g.width / g.out_w, x1 = ((ox + 1) * g.width + g.out_w - 1) / g.out_w;
        const T* src = x + p * plane;
        backend::BlockSum<T> s;  // a whole plane for global pooling: blocked (accumulate.hpp)
        for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) s.add(src[iy * g.width + ix]);
        y[t] = s.value() / static_cast<T>((y1 - y0) * (x1 - x0));
    }
}

/// dx[p, i] += sum of dy[p, o] / |window o| over the adaptive windows holding pixel i. Row window oy holds iy
/// iff floor(oy H / OH) <= iy < ceil((oy+1) H / OH), i.e. floor(iy OH / H) <= oy <= floor(((iy+1) OH - 1) / H)
/// (columns likewise); one thread per pixel, windows in increasing o
template <class T>
__global__ void adaptive_avg_pool2d_backward_kernel(ConvWindow g, int64_t planes, const T* dy, T* dx) {
    const int64_t L = g.out_h * g.out_w, plane = g.height * g.width, total = planes * plane;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t p = t / plane, i = t - p * plane;
        const int64_t iy = i / g.width, ix = i - iy * g.width;
        const int64_t oy0 = iy * g.out_h / g.height, oy1 = ((iy + 1) * g.out_h - 1) / g.height + 1;
        const int64_t ox0 = ix * g.out_w / g.width, ox1 = ((ix + 1) * g.out_w - 1) / g.width + 1;
        const int64_t oy_end = oy1 < g.out_h ? oy1 : g.out_h, ox_end = ox1 < g.out_w ? ox1 : g.out_w;
        const T* gy = dy + p * L;
        T s = T(0);
        for (int64_t oy = oy0; oy < oy_end; ++oy) {
            const int64_t ny = ((oy + 1) * g.height + g.out_h - 1) / g.out_h - oy * g.height / g.out_h;
            for (int64_t ox = ox0; ox < ox_end; ++ox) {
                const int64_t nx = ((ox + 1) * g.width + g.out_w - 1) / g.out_w - ox * g.width / g.out_w;
                s += gy[oy * g.out_w + ox] / static_cast<T>(ny * nx);
            }
        }
        dx[t] += s;
    }
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

template <class T>
void im2col(const ConvWindow& g, int64_t images, const T* x, T* col, cudaStream_t stream) {
    const int64_t total = g.channels * g.kernel_h * g.kernel_w * images * g.out_h * g.out_w;
    if (total <= 0) return;
    detail::im2col_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(g, images, x, col);
}

template <class T>
void col2im(const ConvWindow& g, int64_t images, const T* col, T* dx, cudaStream_t stream) {
    const int64_t total = images * g.channels * g.height * g.width;
    if (total <= 0) return;
    detail::col2im_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(g, images, col, dx);
}

template <class T>
void swap_leading_axes(int64_t A, int64_t B, int64_t L, const T* in, const T* bias, T* out, cudaStream_t stream) {
    const int64_t total = A * B * L;
    if (total <= 0) return;
    detail::swap_leading_axes_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(A, B, L, in, bias,
                                                                                                 out);
}

/// A sum over dimensions 0 and 2 of dy [N, O, L] into db [O]: detail::reduce_into, one owner per o (a block
/// per channel when L > 1).
template <class T>
void conv_bias_backward(int64_t N, int64_t O, int64_t L, const T* dy, T* db, cudaStream_t stream) {
    if (N <= 0 || O <= 0 || L <= 0) return;
    detail::Walk w;
    w.rank = 3;
    w.dims[0] = N;
    w.dims[1] = O;
    w.dims[2] = L;
    w.st[0][0] = O * L;  // dy, contiguous
    w.st[0][1] = L;
    w.st[0][2] = 1;
    w.st[1][0] = 0;  // db: one element per channel
    w.st[1][1] = 1;
    w.st[1][2] = 0;
    detail::reduce_into<1>(detail::simplified(w), detail::Take<T>{dy}, db, false, stream);
}

template <class T>
void max_pool2d(const ConvWindow& g, int64_t planes, const T* x, T* y, int64_t* argmax, cudaStream_t stream) {
    const int64_t total = planes * g.out_h * g.out_w;
    if (total <= 0) return;
    detail::max_pool2d_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(g, planes, x, y, argmax);
}

template <class T>
void max_pool2d_backward(const ConvWindow& g, int64_t planes, const int64_t* argmax, const T* dy, T* dx,
                         cudaStream_t stream) {
    const int64_t total = planes * g.height * g.width;
    if (total <= 0 || g.out_h * g.out_w <= 0) return;
    detail::max_pool2d_backward_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(g, planes, argmax,
                                                                                                   dy, dx);
}

template <class T>
void avg_pool2d(const ConvWindow& g, int64_t planes, const T* x, T* y, bool count_include_pad, cudaStream_t stream) {
    const int64_t total = planes * g.out_h * g.out_w;
    if (total <= 0) return;
    detail::avg_pool2d_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(g, planes, x, y,
                                                                                          count_include_pad);
}

template <class T>
void avg_pool2d_backward(const ConvWindow& g, int64_t planes, const T* dy, T* dx, bool count_include_pad,
                         cudaStream_t stream) {
    const int64_t total = planes * g.height * g.width;
    if (total <= 0 || g.out_h * g.out_w <= 0) return;
    detail::avg_pool2d_backward_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(
        g, planes, dy, dx, count_include_pad);
}

template <class T>
void adaptive_avg_pool2d(const ConvWindow& g, int64_t planes, const T* x, T* y, cudaStream_t stream) {
    const int64_t total = planes * g.out_h * g.out_w;
    if (total <= 0 || g.height * g.width <= 0) return;
    detail::adaptive_avg_pool2d_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(g, planes, x, y);
}

template <class T>
void adaptive_avg_pool2d_backward(const ConvWindow& g, int64_t planes, const T* dy, T* dx, cudaStream_t stream) {
    const int64_t total = planes * g.height * g.width;
    if (total <= 0 || g.out_h * g.out_w <= 0) return;
    detail::adaptive_avg_pool2d_backward_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(
        g, planes, dy, dx);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_CONV(T)                                                                                       \
    template void im2col<T>(const ConvWindow&, int64_t, const T*, T*, cudaStream_t);                                \
    template void col2im<T>(const ConvWindow&, int64_t, const T*, T*, cudaStream_t);                                \
    template void swap_leading_axes<T>(int64_t, int64_t, int64_t, const T*, const T*, T*, cudaStream_t);            \
    template void conv_bias_backward<T>(int64_t, int64_t, int64_t, const T*, T*, cudaStream_t);                     \
    template void max_pool2d<T>(const ConvWindow&, int64_t, const T*, T*, int64_t*, cudaStream_t);                  \
    template void max_pool2d_backward<T>(const ConvWindow&, int64_t, const int64_t*, const T*, T*, cudaStream_t);   \
    template void avg_pool2d<T>(const ConvWindow&, int64_t, const T*, T*, bool, cudaStream_t);                      \
    template void avg_pool2d_backward<T>(const ConvWindow&, int64_t, const T*, T*, bool, cudaStream_t);             \
    template void adaptive_avg_pool2d<T>(const ConvWindow&, int64_t, const T*, T*, cudaStream_t);                   \
    template void adaptive_avg_pool2d_backward<T>(const ConvWindow&, int64_t, const T*, T*, cudaStream_t);
TAPEGRAD_CUDA_CONV(float)
TAPEGRAD_CUDA_CONV(double)
#undef TAPEGRAD_CUDA_CONV

}  // namespace tapegrad::cuda
