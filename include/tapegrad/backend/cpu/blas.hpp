#pragma once
/// \file
/// The CPU backend's matrix product (family `BlasFamily`, backend/contract.hpp), through Eigen (and
/// OpenBLAS where the build routes Eigen's products there), and the repeated products with one fixed right
/// operand that a recurrent layer runs at every time step (pack_right once, gemm_packed per step: the
/// kernel of cpu/small_gemm.hpp where the target has FMA). Where that kernel is built
/// (TAPEGRAD_PANEL_KERNEL), it also runs the float products that a BLAS runs on one thread and that fill
/// whole panels of columns (cpu::panel_product), split between threads. Twin: backend/cuda/blas.hpp (cuBLAS).

#include <tapegrad/backend/cpu/memory.hpp>
#include <tapegrad/backend/cpu/small_gemm.hpp>
#include <tapegrad/backend/cpu_threads.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <cstring>

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
        if constexpr (cpu::panel_layout<T>()) {
            if (cpu::panel_product(M, N, K)) return cpu::gemm_general(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
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

    // ---- one right operand, many products ---------------------------------------------------------------
    /// Packs P [K, N] (row-major) for gemm_packed into `packed`, which holds K * N values: the panel layout
    /// of cpu/small_gemm.hpp for float on FMA targets, else a plain copy.
    template <class T>
    static void pack_right(int64_t K, int64_t N, const T* P, T* packed) {
        if constexpr (cpu::panel_layout<T>())
            cpu::pack_panels(K, N, P, packed);
        else if (K * N > 0)
            std::memcpy(packed, P, static_cast<size_t>(K * N) * sizeof(T));
    }
    /// C[M, N] = alpha A[M, K] P + beta C, with P packed by pack_right (the same as gemm(false, false, ...)
    /// on the unpacked P). beta = 0 ignores C's contents.
    template <class T>
    static void gemm_packed(int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* packed, T beta, T* C) {
        if constexpr (cpu::panel_layout<T>()) {
            if (K == 0) return gemm(false, false, M, N, K, alpha, A, packed, beta, C);
            cpu::gemm_panels(M, N, K, alpha, A, packed, beta, C);
        } else {
            gemm(false, false, M, N, K, alpha, A, packed, beta, C);
        }
    }
};

}  // namespace tapegrad::backend
