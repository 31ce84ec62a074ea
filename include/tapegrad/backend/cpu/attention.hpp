#pragma once
/// \file
/// The CPU backend's sequence-model primitives (family `AttentionFamily`, backend/contract.hpp): batched
/// matrix products over strided groups, layer normalisation over the last n values of each row with its
/// backward, and the row softmax of attention scores under additive masks and causal masking.
/// Twin: backend/cuda/attention.hpp (kernels in attention.cu).

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/common/attention_mask.hpp>
#include <tapegrad/backend/cpu/blas.hpp>
#include <tapegrad/backend/cpu/memory.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <limits>

namespace tapegrad::backend {

/// Batched products, layer norm and masked softmax on the host.
struct CpuAttention {
    // ---- batched matrix products ------------------------------------------------------------------------
    /// For each g < batch: C + g*sc [M, N] = alpha op(A + g*sa) op(B + g*sb) + beta (C + g*sc), each product
    /// as CpuBlas::gemm (row-major; op(A) [M, K], op(B) [K, N]). A stride of 0 shares one operand.
    template <class T>
    static void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha,
                             const T* A, int64_t sa, const T* B, int64_t sb, T beta, T* C, int64_t sc) {
        for (int64_t g = 0; g < batch; ++g)
            CpuBlas::gemm(trans_a, trans_b, M, N, K, alpha, A + g * sa, B + g * sb, beta, C + g * sc);
    }

    // ---- layer normalisation over rows of n values ------------------------------------------------------
    /// For each row r of x [rows, n] (n >= 1): mean[r], rstd[r] = 1 / sqrt(var + eps) with the biased
    /// variance (two passes in double: no cancellation when the mean is large against the spread), and
    /// y[r, j] = (x[r, j] - mean[r]) rstd[r] gamma[j] + beta[j]; a null gamma is 1, a null beta 0.
    template <class T>
    static void layer_norm(int64_t rows, int64_t n, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                           T* rstd) {
        for (int64_t r = 0; r < rows; ++r) {
            const auto xr = CUVec<T>(x + r * n, n).template cast<double>();
            const double m = xr.sum() / static_cast<double>(n);
            const double var = (xr - m).square().sum() / static_cast<double>(n);
            const T mt = static_cast<T>(m);
            const T is = static_cast<T>(1.0 / std::sqrt(var + static_cast<double>(eps)));
            mean[r] = mt;
            rstd[r] = is;
            UVec<T> yr(y + r * n, n);
            yr = (CUVec<T>(x + r * n, n) - mt) * is;
            if (gamma) yr *= CUVec<T>(gamma, n);
            if (beta) yr += CUVec<T>(beta, n);
        }
    }
    /// The adjoint of layer_norm, with xhat = (x - mean) rstd and g = dy gamma (per row, n values):
    ///   dx     += rstd (g - mean_j(g) - xhat mean_j(g xhat))
    ///   dgamma += sum over rows of dy xhat,   dbeta += sum over rows of dy
    /// Any of dx, dgamma, dbeta may be null (not wanted); a null gamma is 1. Row sums in double.
    template <class T>
    static void layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd, const T* gamma,
                                    const T* dy, T* dx, T* dgamma, T* dbeta) {
        if (dx) {
            for (int64_t r = 0; r < rows; ++r) {
                const T m = mean[r], is = rstd[r];
                const auto xhat = (CUVec<T>(x + r * n, n) - m) * is;
                const auto dyr = CUVec<T>(dy + r * n, n);
                double sg = 0.0, sgx = 0.0;
                if (gamma) {
                    const auto g = dyr * CUVec<T>(gamma, n);
                    sg = g.template cast<double>().sum();
                    sgx = (g * xhat).template cast<double>().sum();
                    const T a = static_cast<T>(sg / static_cast<double>(n)), b = static_cast<T>(sgx / static_cast<double>(n));
                    UVec<T>(dx + r * n, n) += is * (g - a - xhat * b);
                } else {
                    sg = dyr.template cast<double>().sum();
                    sgx = (dyr * xhat).template cast<double>().sum();
                    const T a = static_cast<T>(sg / static_cast<double>(n)), b = static_cast<T>(sgx / static_cast<double>(n));
                    UVec<T>(dx + r * n, n) += is * (dyr - a - xhat * b);
                }
            }
        }
        if (dgamma)
            row_sums(rows, n, dgamma, true, [x, dy, mean, rstd, n](int64_t r, int64_t j) {
                return dy[r * n + j] * ((x[r * n + j] - mean[r]) * rstd[r]);
            });
        if (dbeta) sum_rows(rows, n, dy, dbeta, true);
    }

    // ---- masked softmax of attention scores -------------------------------------------------------------
    /// For each batch entry bt < batch and query l < L, over the S keys: z_s = x[bt, l, s] + m1 + m2 (the
    /// masks' values for (bt, l, s), see SoftmaxMask; a null mask adds 0), with z_s = -inf for s > l when
    /// `causal`; y[bt, l, :] = softmax(z) (max-shifted). A row whose every z is -inf (fully masked) gets
    /// zeros, not NaN. x, y: [batch, L, S] contiguous (y may be x).
    template <class T>
    static void masked_softmax(int64_t batch, int64_t L, int64_t S, const T* x, SoftmaxMask<T> m1, SoftmaxMask<T> m2,
                               bool causal, T* y) {
        constexpr T ninf = -std::numeric_limits<T>::infinity();
        for (int64_t bt = 0; bt < batch; ++bt)
            for (int64_t l = 0; l < L; ++l) {
                const int64_t r = bt * L + l;
                const T* xr = x + r * S;
                T* yr = y + r * S;
                const T* a = m1.row(bt, l);
                const T* b = m2.row(bt, l);
                const int64_t live = causal ? (l + 1 < S ? l + 1 : S) : S;  // keys [live, S) are masked
                T m = ninf;
                for (int64_t s = 0; s < live; ++s) {
                    const T z = xr[s] + (a ? a[s] : T(0)) + (b ? b[s] : T(0));
                    yr[s] = z;
                    if (!(z <= m)) m = z;  // a NaN becomes the max: NaN out
                }
                if (m == ninf) {  // fully masked: zeros
                    for (int64_t s = 0; s < S; ++s) yr[s] = T(0);
                    continue;
                }
                BlockSum<T> sum;
                for (int64_t s = 0; s < live; ++s) {
                    const T e = std::exp(yr[s] - m);
                    yr[s] = e;
                    sum.add(e);
                }
                const T inv = T(1) / sum.value();
                for (int64_t s = 0; s < live; ++s) yr[s] *= inv;
                for (int64_t s = live; s < S; ++s) yr[s] = T(0);
            }
    }
};

}  // namespace tapegrad::backend
