/// \file
/// The CUDA backend's softmax / log-softmax along the middle axis of [outer, n, inner] and its backward, and
/// the row-wise losses over [N, C]: fused softmax-cross-entropy and NLL, forward and backward. Softmax is
/// max-shifted as on the CPU, so logits of magnitude 1e4 stay finite. Rows of contiguous memory (inner == 1,
/// and the losses) get one block per row with shared-memory max and sum reductions; inner > 1 gets one
/// thread per (o, i) running the CPU loop. Kernels, then launchers, then the explicit instantiations for float
/// and double. Semantics are those of backend/cpu/softmax_loss.hpp.

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/softmax_loss.cuh>

#include <cmath>

namespace tapegrad::cuda {
namespace detail {

/// y[r, :] = e^(x - m) / s, or (x - m) - log s when `log`, with m = max_k x[r, k], s = sum_k e^(x[r, k] - m);
/// one block per row
template <class T>
__global__ void softmax_rows_kernel(int64_t rows, int64_t n, const T* x, T* y, bool log) {
    __shared__ T scratch[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xs = x + r * n;
        T* ys = y + r * n;
        T m = MaxOp::identity<T>();
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) m = MaxOp{}(m, xs[k]);
        m = block_reduce(m, MaxOp{}, scratch);  // a NaN becomes the max: NaN out, as on the CPU
        backend::BlockSum<T> part;  // accumulate.hpp
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
            const T e = std::exp(xs[k] - m);
            if (!log) ys[k] = e;
            part.add(e);
        }
        const T s = block_reduce(part.value(), SumOp{}, scratch);
        if (log) {
            const T ls = std::log(s);
            for (int64_t k = threadIdx.x; k < n; k += blockDim.x) ys[k] = (xs[k] - m) - ls;
        } else {
            const T inv = T(1) / s;
            for (int64_t k = threadIdx.x; k < n; k += blockDim.x) ys[k] *= inv;  // this thread's own e above
        }
    }
}

/// y[o, :, i] = softmax or log_softmax of x[o, :, i] (as softmax_rows_kernel); one thread per (o, i)
template <class T>
__global__ void softmax_cols_kernel(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
    const int64_t total = outer * inner;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t o = t / inner, i = t - o * inner;
        const T* xs = x + o * n * inner + i;
        T* ys = y + o * n * inner + i;
        T m = MaxOp::identity<T>();
        for (int64_t k = 0; k < n; ++k)
            if (!(xs[k * inner] <= m)) m = xs[k * inner];
        backend::BlockSum<T> sum;  // accumulate.hpp
        for (int64_t k = 0; k < n; ++k) {
            const T e = std::exp(xs[k * inner] - m);
            if (!log) ys[k * inner] = e;
            sum.add(e);
        }
        const T s = sum.value();
        if (log) {
            const T ls = std::log(s);
            for (int64_t k = 0; k < n; ++k) ys[k * inner] = (xs[k * inner] - m) - ls;
        } else {
            const T inv = T(1) / s;
            for (int64_t k = 0; k < n; ++k) ys[k * inner] *= inv;
        }
    }
}

/// softmax: dx_k += y_k (dy_k - sum_j dy_j y_j);  log_softmax: dx_k += dy_k - e^(y_k) sum_j dy_j;
/// one block per row
template <class T>
__global__ void softmax_rows_backward_kernel(int64_t rows, int64_t n, const T* y, const T* dy, T* dx, bool log) {
    __shared__ T scratch[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* ys = y + r * n;
        const T* gs = dy + r * n;
        T* ds = dx + r * n;
        backend::BlockSum<T> part;  // accumulate.hpp
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) part.add(log ? gs[k] : gs[k] * ys[k]);
        const T dot = block_reduce(part.value(), SumOp{}, scratch);
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
            ds[k] += log ? gs[k] - std::exp(ys[k]) * dot : ys[k] * (gs[k] - dot);
    }
}

/// softmax_rows_backward_kernel's formulas along the middle axis; one thread per (o, i)
template <class T>
__global__ void softmax_cols_backward_kernel(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx,
                                             bool log) {
    const int64_t total = outer * inner;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t o = t / inner, i = t - o * inner;
        const int64_t base = o * n * inner + i;
        backend::BlockSum<T> sum;  // accumulate.hpp
        for (int64_t k = 0; k < n; ++k) {
            const int64_t j = base + k * inner;
            sum.add(log ? dy[j] : dy[j] * y[j]);
        }
        const T dot = sum.value();
        for (int64_t k = 0; k < n; ++k) {
            const int64_t j = base + k * inner;
            dx[j] += log ? dy[j] - std::exp(y[j]) * dot : y[j] * (dy[j] - dot);
        }
    }
}

/// probs[r, :] = e^(x - m) / s and loss[r] = log s - (x[r, labels[r]] - m), m = max_k x[r, k],
/// s = sum_k e^(x[r, k] - m); one block per row
template <class T>
__global__ void softmax_xent_rows_kernel(int64_t N, int64_t C, const T* logits, const int64_t* labels, T* probs,
                                         T* loss) {
    __shared__ T scratch[32];
    for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
        const T* x = logits + r * C;
        T* p = probs + r * C;
        T m = MaxOp::identity<T>();
        for (int64_t k = threadIdx.x; k < C; k += blockDim.x) m = MaxOp{}(m, x[k]);
        m = block_reduce(m, MaxOp{}, scratch);
        backend::BlockSum<T> part;  // accumulate.hpp
        for (int64_t k = threadIdx.x; k < C; k += blockDim.x) {
            p[k] = std::exp(x[k] - m);
            part.add(p[k]);
        }
        const T s = block_reduce(part.value(), SumOp{}, scratch);
        const T inv = T(1) / s;
        for (int64_t k = threadIdx.x; k < C; k += blockDim.x) p[k] *= inv;  // this thread's own p[k] above
        if (threadIdx.x == 0) loss[r] = std::log(s) - (x[labels[r]] - m);
    }
}

/// dlogits[r, c] += g p[r, c], then -= g where c == labels[r] (the CPU's order), g = scale dloss[r stride];
/// one thread per element
template <class T>
__global__ void softmax_xent_rows_backward_kernel(int64_t N, int64_t C, const T* probs, const int64_t* labels,
                                                  const T* dloss, int64_t dloss_stride, T scale, T* dlogits) {
    const int64_t total = N * C;
    for (int64_t j = global_thread(); j < total; j += grid_threads()) {
        const int64_t r = j / C, c = j - r * C;
        const T g = scale * dloss[r * dloss_stride];
        T v = dlogits[j] + g * probs[j];
        if (c == labels[r]) v -= g;
        dlogits[j] = v;
    }
}

/// loss[r] = -logp[r, labels[r]]; one thread per row
template <class T>
__global__ void nll_rows_kernel(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss) {
    for (int64_t r = global_thread(); r < N; r += grid_threads()) loss[r] = -logp[r * C + labels[r]];
}

/// dlogp[r, labels[r]] -= scale dloss[r stride]; one thread per row (each writes its own row)
template <class T>
__global__ void nll_rows_backward_kernel(int64_t N, int64_t C, const int64_t* labels, const T* dloss,
                                         int64_t dloss_stride, T scale, T* dlogp) {
    for (int64_t r = global_thread(); r < N; r += grid_threads())
        dlogp[r * C + labels[r]] -= scale * dloss[r * dloss_stride];
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

template <class T>
void softmax_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log, cudaStream_t stream) {
    if (outer <= 0 || n <= 0 || inner <= 0) return;
    if (inner == 1) {
        detail::softmax_rows_kernel<<<detail::grid_for(outer, 1), detail::row_block_for(n), 0, stream>>>(outer, n, x,
                                                                                                       y, log);
        return;
    }
    detail::softmax_cols_kernel<<<detail::grid_for(outer * inner), detail::block_size, 0, stream>>>(outer, n, inner,
                                                                                                  x, y, log);
}

template <class T>
void softmax_axis_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx, bool log,
                           cudaStream_t stream) {
    if (outer <= 0 || n <= 0 || inner <= 0) return;
    if (inner == 1) {
        detail::softmax_rows_backward_kernel<<<detail::grid_for(outer, 1), detail::row_block_for(n), 0, stream>>>(
            outer, n, y, dy, dx, log);
        return;
    }
    detail::softmax_cols_backward_kernel<<<detail::grid_for(outer * inner), detail::block_size, 0, stream>>>(
        outer, n, inner, y, dy, dx, log);
}

template <class T>
void softmax_xent_rows(int64_t N, int64_t C, const T* logits, const int64_t* labels, T* probs, T* loss,
                       cudaStream_t stream) {
    if (N <= 0 || C <= 0) return;
    detail::softmax_xent_rows_kernel<<<detail::grid_for(N, 1), detail::row_block_for(C), 0, stream>>>(
        N, C, logits, labels, probs, loss);
}

template <class T>
void softmax_xent_rows_backward(int64_t N, int64_t C, const T* probs, const int64_t* labels, const T* dloss,
                                int64_t dloss_stride, T scale, T* dlogits, cudaStream_t stream) {
    if (N <= 0 || C <= 0) return;
    detail::softmax_xent_rows_backward_kernel<<<detail::grid_for(N * C), detail::block_size, 0, stream>>>(
        N, C, probs, labels, dloss, dloss_stride, scale, dlogits);
}

template <class T>
void nll_rows(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss, cudaStream_t stream) {
    if (N <= 0 || C <= 0) return;
    detail::nll_rows_kernel<<<detail::grid_for(N), detail::block_size, 0, stream>>>(N, C, logp, labels, loss);
}

template <class T>
void nll_rows_backward(int64_t N, int64_t C, const int64_t* labels, const T* dloss, int64_t dloss_stride, T scale,
                       T* dlogp, cudaStream_t stream) {
    if (N <= 0 || C <= 0) return;
    detail::nll_rows_backward_kernel<<<detail::grid_for(N), detail::block_size, 0, stream>>>(N, C, labels, dloss,
                                                                                           dloss_stride, scale, dlogp);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_SOFTMAX(T)                                                                                    \
    template void softmax_axis<T>(int64_t, int64_t, int64_t, const T*, T*, bool, cudaStream_t);                     \
    template void softmax_axis_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, T*, bool, cudaStream_t);  \
    template void softmax_xent_rows<T>(int64_t, int64_t, const T*, const int64_t*, T*, T*, cudaStream_t);           \
    template void softmax_xent_rows_backward<T>(int64_t, int64_t, const T*, const int64_t*, const T*, int64_t, T,   \
                                                T*, cudaStream_t);                                                 \
    template void nll_rows<T>(int64_t, int64_t, const T*, const int64_t*, T*, cudaStream_t);                        \
    template void nll_rows_backward<T>(int64_t, int64_t, const int64_t*, const T*, int64_t, T, T*, cudaStream_t);
TAPEGRAD_CUDA_SOFTMAX(float)
TAPEGRAD_CUDA_SOFTMAX(double)
#undef TAPEGRAD_CUDA_SOFTMAX

}  // namespace tapegrad::cuda
