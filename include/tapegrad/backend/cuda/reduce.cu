/// \file
/// The CUDA backend's primitives over the middle axis of an [outer, n, inner] view (sum_axis and its
/// adjoint expand_axis_add, max_axis and its adjoint scatter_axis_add, copy_axis_block) and the dense
/// layer's bias add and bias gradient (add_row_vector, add_column_sums). Sums go through the deterministic
/// reductions of broadcast_reduce.cuh. Kernels, then launchers, then the explicit instantiations for float
/// and double. Semantics are those of backend/cpu/reduce.hpp.

#include <tapegrad/backend/cuda/broadcast_reduce.cuh>
#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/reduce.cuh>

namespace tapegrad::cuda {
namespace detail {

/// out[i] = 0
template <class T>
__global__ void zero_kernel(int64_t n, T* out) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = T(0);
}

/// dx[o, k, i] += alpha * g[o, i], one thread per element of dx
template <class T>
__global__ void expand_axis_add_kernel(int64_t outer, int64_t n, int64_t inner, T alpha, const T* g, T* dx) {
    const int64_t total = outer * n * inner, block = n * inner;
    for (int64_t j = global_thread(); j < total; j += grid_threads()) {
        const int64_t o = j / block, i = j % inner;
        dx[j] += alpha * g[o * inner + i];
    }
}

/// out[o, i] = max_k x[o, k, i], arg[o, i] = the first k reaching it, a NaN beating any number: the CPU loop,
/// one thread per (o, i)
template <class T>
__global__ void max_axis_kernel(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, int64_t* arg) {
    const int64_t total = outer * inner;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t o = t / inner, i = t - o * inner;
        const T* src = x + o * n * inner + i;
        T best = src[0];
        int64_t bi = 0;
        for (int64_t k = 1; k < n; ++k) {
            const T v = src[k * inner];
            if (v > best || (v != v && best == best)) {
                best = v;
                bi = k;
            }
        }
        out[t] = best;
        arg[t] = bi;
    }
}

/// dx[o, arg[o, i], i] += g[o, i], one thread per (o, i): distinct (o, i) write distinct elements
template <class T>
__global__ void scatter_axis_add_kernel(int64_t outer, int64_t n, int64_t inner, const int64_t* arg, const T* g,
                                        T* dx) {
    const int64_t total = outer * inner;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t o = t / inner, i = t - o * inner;
        dx[(o * n + arg[t]) * inner + i] += g[t];
    }
}

/// dst[o, dst_start + k, i] (+)= src[o, start + k, i] for k < len; (k, i) flattened to r = k * inner + i
template <class T>
__global__ void copy_axis_block_kernel(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len,
                                       const T* src, int64_t dst_n, int64_t dst_start, T* dst, bool add) {
    const int64_t m = len * inner, total = outer * m;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t o = t / m, r = t - o * m;
        const T v = src[(o * n + start) * inner + r];
        T& d = dst[(o * dst_n + dst_start) * inner + r];
        d = add ? d + v : v;
    }
}

/// y[r, c] += v[c]
template <class T>
__global__ void add_row_vector_kernel(int64_t rows, int64_t cols, const T* v, T* y) {
    const int64_t total = rows * cols;
    for (int64_t j = global_thread(); j < total; j += grid_threads()) y[j] += v[j % cols];
}

/// The walk over x [outer, n, inner] with st[0] = x's strides and st[1] = the strides of a sum over the middle
/// axis, [inner, 0, 1]; all extents > 0.
inline Walk axis_sum_walk(int64_t outer, int64_t n, int64_t inner) {
    Walk w;
    w.rank = 3;
    w.dims[0] = outer;
    w.dims[1] = n;
    w.dims[2] = inner;
    w.st[0][0] = n * inner;
    w.st[0][1] = inner;
    w.st[0][2] = 1;
    w.st[1][0] = inner;
    w.st[1][1] = 0;
    w.st[1][2] = 1;
    return simplified(w);
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

/// One owner per output element (detail::reduce_into): the tile kernel (32 (o, i) per block, k split over
/// 8 or 32 threads each) when inner > 1, one block per row when inner == 1.
template <class T>
void sum_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, cudaStream_t stream) {
    const int64_t total = outer * inner;
    if (total <= 0) return;
    if (n <= 0) {
        detail::zero_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(total, out);
        return;
    }
    detail::reduce_into<1>(detail::axis_sum_walk(outer, n, inner), detail::Take<T>{x}, out, true, stream);
}

template <class T>
void expand_axis_add(int64_t outer, int64_t n, int64_t inner, T alpha, const T* g, T* dx, cudaStream_t stream) {
    const int64_t total = outer * n * inner;
    if (total <= 0) return;
    detail::expand_axis_add_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(outer, n, inner, alpha,
                                                                                               g, dx);
}

template <class T>
void max_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, int64_t* arg, cudaStream_t stream) {
    const int64_t total = outer * inner;
    if (total <= 0 || n <= 0) return;
    detail::max_axis_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(outer, n, inner, x, out, arg);
}

template <class T>
void scatter_axis_add(int64_t outer, int64_t n, int64_t inner, const int64_t* arg, const T* g, T* dx,
                      cudaStream_t stream) {
    const int64_t total = outer * inner;
    if (total <= 0 || n <= 0) return;
    detail::scatter_axis_add_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(outer, n, inner, arg,
                                                                                                g, dx);
}

template <class T>
void copy_axis_block(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* src, int64_t dst_n,
                     int64_t dst_start, T* dst, bool add, cudaStream_t stream) {
    const int64_t total = outer * len * inner;
    if (total <= 0) return;
    detail::copy_axis_block_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(
        outer, n, inner, start, len, src, dst_n, dst_start, dst, add);
}

template <class T>
void add_row_vector(int64_t rows, int64_t cols, const T* v, T* y, cudaStream_t stream) {
    const int64_t total = rows * cols;
    if (total <= 0) return;
    detail::add_row_vector_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(rows, cols, v, y);
}

/// out[c] += sum_r g[r, c]: a sum over the middle axis of [1, rows, cols] (detail::reduce_into's tile
/// kernel: 32 columns per block, the rows split over 8 or 32 threads per column, neighbouring threads
/// reading neighbouring columns).
template <class T>
void add_column_sums(int64_t rows, int64_t cols, const T* g, T* out, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    detail::reduce_into<1>(detail::axis_sum_walk(1, rows, cols), detail::Take<T>{g}, out, false, stream);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_REDUCE(T)                                                                                  \
    template void sum_axis<T>(int64_t, int64_t, int64_t, const T*, T*, cudaStream_t);                            \
    template void expand_axis_add<T>(int64_t, int64_t, int64_t, T, const T*, T*, cudaStream_t);                  \
    template void max_axis<T>(int64_t, int64_t, int64_t, const T*, T*, int64_t*, cudaStream_t);                  \
    template void scatter_axis_add<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, T*, cudaStream_t);    \
    template void copy_axis_block<T>(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, int64_t, int64_t, T*, \
                                     bool, cudaStream_t);                                                        \
    template void add_row_vector<T>(int64_t, int64_t, const T*, T*, cudaStream_t);                               \
    template void add_column_sums<T>(int64_t, int64_t, const T*, T*, cudaStream_t);
TAPEGRAD_CUDA_REDUCE(float)
TAPEGRAD_CUDA_REDUCE(double)
#undef TAPEGRAD_CUDA_REDUCE

}  // namespace tapegrad::cuda
