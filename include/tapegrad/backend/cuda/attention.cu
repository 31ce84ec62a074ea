/// \file
/// The CUDA kernels of the attention family: layer normalisation over the last n values of each row (and
/// its backward), and the masked, optionally causal, row softmax of attention scores, as the primitives of
/// backend::CpuAttention (backend/cpu/attention.hpp). Kernels, then launchers, then the explicit
/// instantiations for float and double.
///
/// Every sum is formed by one block in a fixed tree (detail::block_reduce) in double: deterministic, no
/// atomics, and the GPU differs from the CPU by rounding only.

#include <tapegrad/backend/cuda/attention.cuh>
#include <tapegrad/backend/cuda/common.cuh>

namespace tapegrad::cuda {
namespace detail {

/// Per row r (one block, grid-strided over rows): mean and biased variance in two passes, in double;
/// rstd = 1 / sqrt(var + eps); y = (x - mean) rstd gamma + beta (a null gamma is 1, a null beta 0).
template <class T>
__global__ void layer_norm_kernel(int64_t rows, int64_t n, const T* x, const T* gamma, const T* beta, T eps, T* y,
                                  T* mean, T* rstd) {
    __shared__ double scratch[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += static_cast<double>(xr[j]);
        const double m = block_reduce(s, SumOp{}, scratch) / static_cast<double>(n);
        double q = 0.0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            const double d = static_cast<double>(xr[j]) - m;
            q += d * d;
        }
        const double var = block_reduce(q, SumOp{}, scratch) / static_cast<double>(n);
        const T mt = static_cast<T>(m), is = static_cast<T>(1.0 / sqrt(var + static_cast<double>(eps)));
        if (threadIdx.x == 0) {
            mean[r] = mt;
            rstd[r] = is;
        }
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            T v = (xr[j] - mt) * is;
            if (gamma) v *= gamma[j];
            if (beta) v += beta[j];
            y[r * n + j] = v;
        }
    }
}

/// dx for each row (one block per row): with xhat = (x - mean) rstd and g = dy gamma,
/// dx += rstd (g - mean(g) - xhat mean(g xhat)), the means over the row's n values in double.
template <class T>
__global__ void layer_norm_dx_kernel(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd,
                                     const T* gamma, const T* dy, T* dx) {
    __shared__ double scratch[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T m = mean[r], is = rstd[r];
        double sg = 0.0, sgx = 0.0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            const T g = dy[r * n + j] * (gamma ? gamma[j] : T(1));
            sg += static_cast<double>(g);
            sgx += static_cast<double>(g * ((x[r * n + j] - m) * is));
        }
        sg = block_reduce(sg, SumOp{}, scratch);
        sgx = block_reduce(sgx, SumOp{}, scratch);
        const T a = static_cast<T>(sg / static_cast<double>(n)), b = static_cast<T>(sgx / static_cast<double>(n));
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            const T g = dy[r * n + j] * (gamma ? gamma[j] : T(1));
            dx[r * n + j] += is * (g - a - (x[r * n + j] - m) * is * b);
        }
    }
}

/// dgamma[j] += sum_r dy xhat and dbeta[j] += sum_r dy, one block per column j (either may be null).
template <class T>
__global__ void layer_norm_params_kernel(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd,
                                         const T* dy, T* dgamma, T* dbeta) {
    __shared__ double scratch[32];
    for (int64_t j = blockIdx.x; j < n; j += gridDim.x) {
        double sg = 0.0, sb = 0.0;
        for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
            const T g = dy[r * n + j];
            sb += static_cast<double>(g);
            sg += static_cast<double>(g * ((x[r * n + j] - mean[r]) * rstd[r]));
        }
        sg = block_reduce(sg, SumOp{}, scratch);
        sb = block_reduce(sb, SumOp{}, scratch);
        if (threadIdx.x == 0) {
            if (dgamma) dgamma[j] += static_cast<T>(sg);
            if (dbeta) dbeta[j] += static_cast<T>(sb);
        }
    }
}

/// One block per row (bt, l): z = x + masks (-inf past the diagonal when causal); the max over the block,
/// then y = e^(z - max) / sum, the sum in double. A fully masked row (max -inf) gets zeros.
template <class T>
__global__ void masked_softmax_kernel(int64_t batch, int64_t L, int64_t S, const T* x, backend::SoftmaxMask<T> m1,
                                      backend::SoftmaxMask<T> m2, bool causal, T* y) {
    __shared__ double scratch[32];
    __shared__ T tscratch[32];
    const T ninf = -static_cast<T>(INFINITY);
    for (int64_t r = blockIdx.x; r < batch * L; r += gridDim.x) {
        const int64_t bt = r / L, l = r - bt * L;
        const T* xr = x + r * S;
        T* yr = y + r * S;
        const T* a = m1.row(bt, l);
        const T* b = m2.row(bt, l);
        const int64_t live = causal ? (l + 1 < S ? l + 1 : S) : S;
        T mx = ninf;
        for (int64_t s = threadIdx.x; s < live; s += blockDim.x) {
            const T z = xr[s] + (a ? a[s] : T(0)) + (b ? b[s] : T(0));
            mx = MaxOp{}(mx, z);
        }
        mx = block_reduce(mx, MaxOp{}, tscratch);
        if (mx == ninf) {
            for (int64_t s = threadIdx.x; s < S; s += blockDim.x) yr[s] = T(0);
            continue;
        }
        double sum = 0.0;
        for (int64_t s = threadIdx.x; s < live; s += blockDim.x) {
            const T e = exp(xr[s] + (a ? a[s] : T(0)) + (b ? b[s] : T(0)) - mx);
            sum += static_cast<double>(e);
        }
        const T inv = static_cast<T>(1.0 / block_reduce(sum, SumOp{}, scratch));
        // the exponentials are recomputed, not stored first: y may be x (in place)
        for (int64_t s = threadIdx.x; s < S; s += blockDim.x)
            yr[s] = s < live ? exp(xr[s] + (a ? a[s] : T(0)) + (b ? b[s] : T(0)) - mx) * inv : T(0);
    }
}

inline unsigned rows_grid(int64_t rows) { return static_cast<unsigned>(rows < max_grid ? rows : max_grid); }

}  // namespace detail

// ---- launchers ---------------------------------------------------------------------------------------------

template <class T>
void layer_norm(int64_t rows, int64_t n, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean, T* rstd,
                cudaStream_t stream) {
    if (rows <= 0 || n <= 0) return;
    detail::layer_norm_kernel<<<detail::rows_grid(rows), detail::row_block_for(n), 0, stream>>>(rows, n, x, gamma,
                                                                                               beta, eps, y, mean, rstd);
}

template <class T>
void layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd, const T* gamma,
                         const T* dy, T* dx, T* dgamma, T* dbeta, cudaStream_t stream) {
    if (rows <= 0 || n <= 0) return;
    if (dx)
        detail::layer_norm_dx_kernel<<<detail::rows_grid(rows), detail::row_block_for(n), 0, stream>>>(
            rows, n, x, mean, rstd, gamma, dy, dx);
    if (dgamma || dbeta)
        detail::layer_norm_params_kernel<<<detail::rows_grid(n), detail::row_block_for(rows), 0, stream>>>(
            rows, n, x, mean, rstd, dy, dgamma, dbeta);
}

template <class T>
void masked_softmax(int64_t batch, int64_t L, int64_t S, const T* x, backend::SoftmaxMask<T> m1,
                    backend::SoftmaxMask<T> m2, bool causal, T* y, cudaStream_t stream) {
    if (batch <= 0 || L <= 0 || S <= 0) return;
    detail::masked_softmax_kernel<<<detail::rows_grid(batch * L), detail::row_block_for(S), 0, stream>>>(
        batch, L, S, x, m1, m2, causal, y);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_ATTENTION(T)                                                                                 \
    template void layer_norm<T>(int64_t, int64_t, const T*, const T*, const T*, T, T*, T*, T*, cudaStream_t);     \
    template void layer_norm_backward<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, T*,  \
                                         T*, T*, cudaStream_t);                                                   \
    template void masked_softmax<T>(int64_t, int64_t, int64_t, const T*, backend::SoftmaxMask<T>,                 \
                                    backend::SoftmaxMask<T>, bool, T*, cudaStream_t);
TAPEGRAD_CUDA_ATTENTION(float)
TAPEGRAD_CUDA_ATTENTION(double)
#undef TAPEGRAD_CUDA_ATTENTION

}  // namespace tapegrad::cuda
