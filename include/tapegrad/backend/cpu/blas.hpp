#pragma once
/// \file
/// The CPU backend's matrix product (family `BlasFamily`, backend/contract.hpp), through Eigen (and
/// OpenBLAS where the build routes Eigen's products there). Twin: backend/cuda/blas.hpp (cuBLAS).

#include <tapegrad/backend/cpu/memory.hpp>
#include <tapegrad/backend/cpu_threads.hpp>

#include <Eigen/Core>

#include <cstdint>

namespace tapegrad::backend {

/// Matrix products on the host.
struct CpuBlas {
    // ---- matrix products ------------------------------------------------------------------------------
    /// C[M,N] = alpha * op(A) * op(B) + beta * C, all row-major and contiguous; op(A) is [M,K] (A stored
    /// [K,M] when trans_a), op(B) is [K,N] (B stored [N,K] when trans_b). beta = 0 ignores C's contents.
    template <class T>
    static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B,
                     T beta, T* C) {
        using Map = Eigen::Map<const RowMat<T>>;
        Eigen::Map<RowMat<T>> c(C, M, N);
        if (K == 0) {
            if (beta == T(0))
                c.setZero();
            else
                c *= beta;
            return;
        }
        const Map a(A, trans_a ? K : M, trans_a ? M : K);
        const Map b(B, trans_b ? N : K, trans_b ? K : N);
        const tapegrad::detail::ProductThreads threads(M, N, K);  // one thread for small products
        if (beta == T(0)) {
            if (!trans_a && !trans_b) c.noalias() = alpha * (a * b);
            else if (trans_a && !trans_b) c.noalias() = alpha * (a.transpose() * b);
            else if (!trans_a && trans_b) c.noalias() = alpha * (a * b.transpose());
            else c.noalias() = alpha * (a.transpose() * b.transpose());
        } else {
            if (beta != T(1)) c *= beta;
            if (!trans_a && !trans_b) c.noalias() += alpha * (a * b);
            else if (trans_a && !trans_b) c.noalias() += alpha * (a.transpose() * b);
            else if (!trans_a && trans_b) c.noalias() += alpha * (a * b.transpose());
            else c.noalias() += alpha * (a.transpose() * b.transpose());
        }
    }
};

}  // namespace tapegrad::backend
