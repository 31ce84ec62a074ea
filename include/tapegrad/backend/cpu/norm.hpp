#pragma once
/// \file
/// The CPU backend's normalisation primitives (family `NormFamily`, backend/contract.hpp): the per-channel
/// statistics of batch normalisation (its running averages included), the normalisation and its backward,
/// over x: [N, C, L] (L is H*W for an image batch, the length for [N, C, L], 1 for [N, C]).
/// Twin: backend/cuda/norm.hpp (kernels in norm.cu).

#include <tapegrad/backend/cpu/memory.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdint>

namespace tapegrad::backend {

/// Batch normalisation's per-channel primitives on the host. Sums are accumulated in double.
struct CpuNorm {

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
    /// Batch norm's statistics in training, in one call: mean[c] as channel_mean_var, invstd[c] =
    /// 1 / sqrt(var[c] + eps) with the biased var[c], and, when running_mean and running_var are not null,
    /// the running averages updated in place with the unbiased variance (M = N*L >= 2):
    ///   running_mean = (1 - momentum) running_mean + momentum mean
    ///   running_var  = (1 - momentum) running_var  + momentum var M / (M - 1)
    ///  x: [N, C, L] -> mean, invstd: [C] (overwritten); running_mean, running_var: [C] (updated) or null
    template <class T>
    static void channel_batch_stats(int64_t N, int64_t C, int64_t L, const T* x, T eps, T momentum, T* mean,
                                    T* invstd, T* running_mean, T* running_var) {
        channel_mean_var(N, C, L, x, mean, invstd);  // the variance goes to invstd first, then is replaced
        const int64_t M = N * L;
        const T unbias = static_cast<T>(M) / static_cast<T>(M - 1);
        for (int64_t c = 0; c < C; ++c) {
            const T var = invstd[c];
            if (running_mean) {
                running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mean[c];
                running_var[c] = (T(1) - momentum) * running_var[c] + momentum * var * unbias;
            }
            invstd[c] = T(1) / std::sqrt(var + eps);
        }
    }
    /// Batch norm's statistics in evaluation: mean[c] = running_mean[c], invstd[c] = 1 / sqrt(running_var[c]
    /// + eps) (copies, so that a later training step's update of the running averages leaves a recorded
    /// backward alone).  running_mean, running_var: [C] -> mean, invstd: [C]
    template <class T>
    static void channel_running_stats(int64_t C, const T* running_mean, const T* running_var, T eps, T* mean,
                                      T* invstd) {
        for (int64_t c = 0; c < C; ++c) {
            mean[c] = running_mean[c];
            invstd[c] = T(1) / std::sqrt(running_var[c] + eps);
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

};

}  // namespace tapegrad::backend
