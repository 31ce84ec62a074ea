#pragma once
/// \file
/// The CUDA launchers of the normalisation family (defined in norm.cu): batch norm over x: [N, C, L].
/// Twin of backend/cpu/norm.hpp.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen:
/// host code compiled by any C++20 compiler and the nvcc-compiled .cu file both include it.

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

// As the channel_* primitives of backend::CpuNorm. Each channel's sums are formed by one block in a fixed
// order, in double: deterministic, no atomics. C = 0 enqueues nothing.
/// mean[c] and the biased variance var[c] over the channel's N*L values.  x -> mean, var: [C]
template <class T>
void channel_mean_var(int64_t N, int64_t C, int64_t L, const T* x, T* mean, T* var, cudaStream_t stream);
/// mean[c], invstd[c] = 1 / sqrt(var[c] + eps), and, when running_mean and running_var are not null, their
/// update (1 - momentum) running + momentum stat, with the unbiased variance var M / (M - 1), M = N*L >= 2.
template <class T>
void channel_batch_stats(int64_t N, int64_t C, int64_t L, const T* x, T eps, T momentum, T* mean, T* invstd,
                         T* running_mean, T* running_var, cudaStream_t stream);
/// mean[c] = running_mean[c], invstd[c] = 1 / sqrt(running_var[c] + eps).
template <class T>
void channel_running_stats(int64_t C, const T* running_mean, const T* running_var, T eps, T* mean, T* invstd,
                           cudaStream_t stream);
/// y = (x - mean[c]) invstd[c] gamma[c] + beta[c]; a null gamma is 1, a null beta 0.  x -> y: [N, C, L]
template <class T>
void channel_normalize(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd, const T* gamma,
                       const T* beta, T* y, cudaStream_t stream);
/// The adjoint of channel_normalize, as CpuNorm::channel_normalize_backward: dbeta[c] += sum dy,
/// dgamma[c] += sum dy xhat, dx += gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) with batch statistics,
/// gamma invstd dy without. Any of dx, dgamma, dbeta may be null; a null gamma is 1.
template <class T>
void channel_normalize_backward(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd,
                                const T* gamma, const T* dy, bool batch_stats, T* dx, T* dgamma, T* dbeta,
                                cudaStream_t stream);

}  // namespace tapegrad::cuda
