#pragma once
/// \file
/// The CUDA backend's normalisation primitives (family `NormFamily`, backend/contract.hpp): batch norm's
/// per-channel statistics, normalisation and backward, so nn::BatchNorm1d / BatchNorm2d work on the GPU: one
/// block per channel sums in double in a fixed order, so results are deterministic and differ from the
/// CPU's by rounding only. Kernels in norm.cu. Twin of backend/cpu/norm.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/norm.cuh>

#include <cstdint>

namespace tapegrad::backend {

/// Batch normalisation's per-channel primitives on the GPU.
struct CudaNorm {
    // ==== per-channel statistics and normalisation (batch norm) over x: [N, C, L] ===========================
    // As CpuNorm's channel_* members (same parameters, device pointers); see backend/cuda/norm.cu.

    /// mean[c] and the biased variance var[c] of the channel's N*L values.  x -> mean, var: [C]
    template <class T>
    static void channel_mean_var(int64_t N, int64_t C, int64_t L, const T* x, T* mean, T* var) {
        cuda::channel_mean_var(N, C, L, x, mean, var, cuda::stream());
        cuda::check_launch("batch_norm (statistics)");
    }
    /// As CpuNorm::channel_batch_stats: mean, invstd, and the running averages' update when not null.
    template <class T>
    static void channel_batch_stats(int64_t N, int64_t C, int64_t L, const T* x, T eps, T momentum, T* mean,
                                    T* invstd, T* running_mean, T* running_var) {
        cuda::channel_batch_stats(N, C, L, x, eps, momentum, mean, invstd, running_mean, running_var, cuda::stream());
        cuda::check_launch("batch_norm (statistics)");
    }
    /// As CpuNorm::channel_running_stats: mean = running_mean, invstd = 1 / sqrt(running_var + eps).
    template <class T>
    static void channel_running_stats(int64_t C, const T* running_mean, const T* running_var, T eps, T* mean,
                                      T* invstd) {
        cuda::channel_running_stats(C, running_mean, running_var, eps, mean, invstd, cuda::stream());
        cuda::check_launch("batch_norm (running statistics)");
    }
    /// y = (x - mean[c]) invstd[c] gamma[c] + beta[c]; a null gamma is 1, a null beta 0.
    template <class T>
    static void channel_normalize(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd,
                                  const T* gamma, const T* beta, T* y) {
        cuda::channel_normalize(N, C, L, x, mean, invstd, gamma, beta, y, cuda::stream());
        cuda::check_launch("batch_norm");
    }
    /// As CpuNorm::channel_normalize_backward (dx, dgamma, dbeta accumulated; any may be null).
    template <class T>
    static void channel_normalize_backward(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                                           const T* invstd, const T* gamma, const T* dy, bool batch_stats, T* dx,
                                           T* dgamma, T* dbeta) {
        cuda::channel_normalize_backward(N, C, L, x, mean, invstd, gamma, dy, batch_stats, dx, dgamma, dbeta,
                                         cuda::stream());
        cuda::check_launch("batch_norm backward");
    }
};

}  // namespace tapegrad::backend
