/// \file
/// The CUDA kernels of batch normalisation (ops and nn batch_norm): the per-channel statistics of an [N, C, L]
/// batch, with the running averages' update, the normalisation and its backward, as the channel_*
/// primitives of backend::CpuNorm (backend/cpu/norm.hpp). Kernels, then launchers, then the explicit
/// instantiations for float and double.
///
/// Each per-channel sum is formed by one block, its threads striding over the channel's M = N*L values
/// (value i is x[(i / L) * C + c) * L + i % L]) and adding their partial sums in a fixed tree
/// (detail::block_reduce): deterministic, no atomics. Sums are accumulated in double, as on the CPU, so
/// the two differ by rounding only. A grid of min(C, max_grid) blocks strides over the channels.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/norm.cuh>

namespace tapegrad::cuda {
namespace detail {

/// The offset in an [N, C, L] batch of value i (0 <= i < N*L) of channel c.
__device__ inline int64_t channel_value(int64_t i, int64_t c, int64_t C, int64_t L) {
    const int64_t n = i / L, l = i - n * L;
    return (n * C + c) * L + l;
}

/// Per channel c: mean[c] and the biased variance var[c] in two passes (sum, then the sum of squared
/// deviations from the mean), each summed in double over the block. Thread 0 writes mean[c] and, in
/// `second`, var[c] or, with `want_invstd`, 1 / sqrt(var[c] + eps); with running_mean (then running_var) not
/// null it also updates the running averages with momentum and the unbiased variance var M / (M - 1).
template <class T>
__global__ void channel_stats_kernel(int64_t N, int64_t C, int64_t L, const T* x, T eps, T momentum,
                                     bool want_invstd, T* mean, T* second, T* running_mean, T* running_var) {
    __shared__ double scratch[32];
    const int64_t M = N * L;
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        double s = 0.0;
        for (int64_t i = threadIdx.x; i < M; i += blockDim.x) s += static_cast<double>(x[channel_value(i, c, C, L)]);
        s = block_reduce(s, SumOp{}, scratch);
        const double m = s / static_cast<double>(M);
        double q = 0.0;
        for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
            const double d = static_cast<double>(x[channel_value(i, c, C, L)]) - m;
            q += d * d;
        }
        q = block_reduce(q, SumOp{}, scratch);
        if (threadIdx.x == 0) {
            const T mt = static_cast<T>(m), var = static_cast<T>(q / static_cast<double>(M));
            mean[c] = mt;
            if (running_mean) {
                const T unbias = static_cast<T>(M) / static_cast<T>(M - 1);
                running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mt;
                running_var[c] = (T(1) - momentum) * running_var[c] + momentum * var * unbias;
            }
            second[c] = want_invstd ? T(1) / sqrt(var + eps) : var;
        }
    }
}

/// mean[c] = running_mean[c], invstd[c] = 1 / sqrt(running_var[c] + eps); one thread per channel.
template <class T>
__global__ void channel_running_stats_kernel(int64_t C, const T* running_mean, const T* running_var, T eps, T* mean,
                                             T* invstd) {
    for (int64_t c = global_thread(); c < C; c += grid_threads()) {
        mean[c] = running_mean[c];
        invstd[c] = T(1) / sqrt(running_var[c] + eps);
    }
}

/// y[j] = x[j] a + b with a = invstd[c] gamma[c], b = beta[c] - mean[c] a for the channel c = (j / L) % C
/// of element j; one thread per element. A null gamma is 1, a null beta 0.
template <class T>
__global__ void channel_normalize_kernel(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                                         const T* invstd, const T* gamma, const T* beta, T* y) {
    const int64_t total = N * C * L;
    for (int64_t j = global_thread(); j < total; j += grid_threads()) {
        const int64_t c = (j / L) % C;
        const T a = invstd[c] * (gamma ? gamma[c] : T(1));
        const T b = (beta ? beta[c] : T(0)) - mean[c] * a;
        y[j] = x[j] * a + b;
    }
}

/// Per channel c, one block: sum(dy) and sum(dy xhat) in double over the block (xhat = (x - mean) invstd),
/// added by thread 0 to dbeta[c] and dgamma[c]; then, when dx is wanted, the block's threads add to the
/// channel's dx values gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), the means taken as 0 for fixed
/// (running) statistics. Any of dx, dgamma, dbeta may be null; a null gamma is 1.
template <class T>
__global__ void channel_normalize_backward_kernel(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                                                  const T* invstd, const T* gamma, const T* dy, bool batch_stats,
                                                  T* dx, T* dgamma, T* dbeta) {
    __shared__ double scratch[32];
    const int64_t M = N * L;
    const bool need_sums = dgamma || dbeta || (dx && batch_stats);
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        const T m = mean[c], is = invstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        if (need_sums) {
            for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
                const int64_t off = channel_value(i, c, C, L);
                const double g = static_cast<double>(dy[off]);
                sum_dy += g;
                sum_dy_xhat += g * static_cast<double>((x[off] - m) * is);
            }
            sum_dy = block_reduce(sum_dy, SumOp{}, scratch);
            sum_dy_xhat = block_reduce(sum_dy_xhat, SumOp{}, scratch);
        }
        if (threadIdx.x == 0) {
            if (dbeta) dbeta[c] += static_cast<T>(sum_dy);
            if (dgamma) dgamma[c] += static_cast<T>(sum_dy_xhat);
        }
        if (!dx) continue;
        const T k = is * (gamma ? gamma[c] : T(1));
        const T mean_dy = batch_stats ? static_cast<T>(sum_dy / static_cast<double>(M)) : T(0);
        const T mean_dy_xhat = batch_stats ? static_cast<T>(sum_dy_xhat / static_cast<double>(M)) : T(0);
        for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
            const int64_t off = channel_value(i, c, C, L);
            dx[off] += k * (dy[off] - mean_dy - (x[off] - m) * is * mean_dy_xhat);
        }
    }
}

/// One block per channel (at most max_grid blocks), of a whole number of warps up to 256 threads.
inline unsigned channel_grid(int64_t C) { return static_cast<unsigned>(C < max_grid ? C : max_grid); }

}  // namespace detail

// ---- launchers ---------------------------------------------------------------------------------------------

template <class T>
void channel_mean_var(int64_t N, int64_t C, int64_t L, const T* x, T* mean, T* var, cudaStream_t stream) {
    if (C <= 0) return;
    detail::channel_stats_kernel<<<detail::channel_grid(C), detail::row_block_for(N * L), 0, stream>>>(
        N, C, L, x, T(0), T(0), false, mean, var, static_cast<T*>(nullptr), static_cast<T*>(nullptr));
}

template <class T>
void channel_batch_stats(int64_t N, int64_t C, int64_t L, const T* x, T eps, T momentum, T* mean, T* invstd,
                         T* running_mean, T* running_var, cudaStream_t stream) {
    if (C <= 0) return;
    detail::channel_stats_kernel<<<detail::channel_grid(C), detail::row_block_for(N * L), 0, stream>>>(
        N, C, L, x, eps, momentum, true, mean, invstd, running_mean, running_var);
}

template <class T>
void channel_running_stats(int64_t C, const T* running_mean, const T* running_var, T eps, T* mean, T* invstd,
                           cudaStream_t stream) {
    if (C <= 0) return;
    detail::channel_running_stats_kernel<<<detail::grid_for(C), detail::block_size, 0, stream>>>(
        C, running_mean, running_var, eps, mean, invstd);
}

template <class T>
void channel_normalize(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd, const T* gamma,
                       const T* beta, T* y, cudaStream_t stream) {
    const int64_t total = N * C * L;
    if (total <= 0) return;
    detail::channel_normalize_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(
        N, C, L, x, mean, invstd, gamma, beta, y);
}

template <class T>
void channel_normalize_backward(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd,
                                const T* gamma, const T* dy, bool batch_stats, T* dx, T* dgamma, T* dbeta,
                                cudaStream_t stream) {
    if (C <= 0 || (!dx && !dgamma && !dbeta)) return;
    detail::channel_normalize_backward_kernel<<<detail::channel_grid(C), detail::row_block_for(N * L), 0, stream>>>(
        N, C, L, x, mean, invstd, gamma, dy, batch_stats, dx, dgamma, dbeta);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_BATCHNORM(T)                                                                                 \
    template void channel_mean_var<T>(int64_t, int64_t, int64_t, const T*, T*, T*, cudaStream_t);                 \
    template void channel_batch_stats<T>(int64_t, int64_t, int64_t, const T*, T, T, T*, T*, T*, T*, cudaStream_t); \
    template void channel_running_stats<T>(int64_t, const T*, const T*, T, T*, T*, cudaStream_t);                 \
    template void channel_normalize<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, const T*,         \
                                       const T*, T*, cudaStream_t);                                               \
    template void channel_normalize_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*,          \
                                                const T*, const T*, bool, T*, T*, T*, cudaStream_t);
TAPEGRAD_CUDA_BATCHNORM(float)
TAPEGRAD_CUDA_BATCHNORM(double)
#undef TAPEGRAD_CUDA_BATCHNORM

}  // namespace tapegrad::cuda
