#pragma once
/// \file
/// The CUDA backend's matrix products (family `BlasFamily`, backend/contract.hpp), through cuBLAS on the
/// context's handle, with TF32 off unless cuda::set_allow_tf32(true). Twin of backend/cpu/blas.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/elementwise.hpp>
#include <tapegrad/backend/cuda/memory.hpp>
#include <tapegrad/core/error.hpp>

#include <cublas_v2.h>

#include <concepts>
#include <limits>

#include <cstdint>

namespace tapegrad::backend {

/// Matrix products on the GPU.
struct CudaBlas {
    // ---- matrix products (cuBLAS) ---------------------------------------------------------------------
    /// C[M,N] = alpha op(A) op(B) + beta C, row-major, as Ops<Cpu>::gemm. cuBLAS is column-major: a
    /// row-major [M,N] matrix is its column-major transpose, so C^T = op(B)^T op(A)^T is computed instead,
    /// with the operands swapped and no data moved.
    template <class T>
    static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B,
                     T beta, T* C) {
        if (M == 0 || N == 0) return;
        if (K == 0) {
            if (beta == T(0))
                CudaMemory::fill(M * N, T(0), C);
            else
                CudaElementwise::scale(M * N, beta, C);
            return;
        }
        constexpr int64_t max_int = std::numeric_limits<int>::max();
        TAPEGRAD_CHECK(M <= max_int && N <= max_int && K <= max_int, ShapeError, "matmul (CUDA): sizes ", M, "x", K,
                       " and ", K, "x", N, " exceed cuBLAS's 32-bit dimensions");
        const cublasOperation_t opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
        const int ldb = static_cast<int>(trans_b ? K : N);  // B stored [N,K] when trans_b, else [K,N]
        const int lda = static_cast<int>(trans_a ? M : K);  // A stored [K,M] when trans_a, else [M,K]
        const int ldc = static_cast<int>(N);
        cublasHandle_t h = cuda::Context::get().blas;
        if constexpr (std::same_as<T, float>)
            cuda::check(cublasSgemm(h, opb, opa, m, n, k, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasSgemm");
        else
            cuda::check(cublasDgemm(h, opb, opa, m, n, k, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasDgemm");
    }

    /// For each of `batch` groups g: C + g*sc [M, Nc] = op(A + g*sa) op(B + g*sb) + beta C + g*sc, row-major
    /// as Ops<Cpu>::gemm (alpha 1). One group is gemm; several are one cuBLAS strided-batched call,
    /// with the same swap of operands (C^T = op(B)^T op(A)^T in cuBLAS's column-major terms).
    template <class T>
    static void gemm_groups(bool trans_a, bool trans_b, int64_t M, int64_t Nc, int64_t Kc, const T* A, int64_t sa,
                            const T* B, int64_t sb, T beta, T* C, int64_t sc, int64_t batch) {
        if (batch == 1) return gemm(trans_a, trans_b, M, Nc, Kc, T(1), A, B, beta, C);
        if (M == 0 || Nc == 0 || batch == 0) return;
        constexpr int64_t max_int = std::numeric_limits<int>::max();
        TAPEGRAD_CHECK(M <= max_int && Nc <= max_int && Kc <= max_int && batch <= max_int, ShapeError,
                       "conv2d (CUDA): a group's product ", M, "x", Kc, " by ", Kc, "x", Nc, " (", batch,
                       " groups) exceeds cuBLAS's 32-bit sizes");
        const cublasOperation_t opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        const int m = static_cast<int>(Nc), n = static_cast<int>(M), k = static_cast<int>(Kc);
        const int ldb = static_cast<int>(trans_b ? Kc : Nc);  // B stored [Nc, Kc] when trans_b, else [Kc, Nc]
        const int lda = static_cast<int>(trans_a ? M : Kc);   // A stored [Kc, M] when trans_a, else [M, Kc]
        const int ldc = static_cast<int>(Nc);
        const int count = static_cast<int>(batch);
        const T alpha = T(1);
        cublasHandle_t h = cuda::Context::get().blas;
        if constexpr (std::same_as<T, float>)
            cuda::check(cublasSgemmStridedBatched(h, opb, opa, m, n, k, &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc,
                                                  sc, count),
                        "cublasSgemmStridedBatched");
        else
            cuda::check(cublasDgemmStridedBatched(h, opb, opa, m, n, k, &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc,
                                                  sc, count),
                        "cublasDgemmStridedBatched");
    }

    // ---- one right operand, many products (as Ops<Cpu>'s) --------------------------------------------------
    /// The packed form of P [K, N] is P itself (cuBLAS reads it in place): a device-to-device copy.
    template <class T>
    static void pack_right(int64_t K, int64_t N, const T* P, T* packed) {
        CudaMemory::copy(K * N, P, packed);
    }
    /// C[M, N] = alpha A[M, K] P + beta C with P packed by pack_right: gemm(false, false, ...).
    template <class T>
    static void gemm_packed(int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* packed, T beta, T* C) {
        gemm(false, false, M, N, K, alpha, A, packed, beta, C);
    }
};

}  // namespace tapegrad::backend
