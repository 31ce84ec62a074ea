#pragma once
/// \file
/// The CUDA backend's sequence-model primitives (family `AttentionFamily`, backend/contract.hpp): batched
/// products as one cuBLAS strided-batched call, layer norm and the masked softmax of attention scores
/// (kernels in attention.cu). Twin of backend/cpu/attention.hpp.

#include <tapegrad/backend/common/attention_mask.hpp>
#include <tapegrad/backend/cuda/attention.cuh>
#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/elementwise.hpp>
#include <tapegrad/backend/cuda/memory.hpp>
#include <tapegrad/core/error.hpp>

#include <cublas_v2.h>

#include <concepts>
#include <cstdint>
#include <limits>

namespace tapegrad::backend {

/// Batched products, layer norm and masked softmax on the GPU.
struct CudaAttention {
    /// As CpuAttention::gemm_batched: for each g < batch, C + g*sc = alpha op(A + g*sa) op(B + g*sb) +
    /// beta (C + g*sc), row-major. One cublas<t>gemmStridedBatched call, with the operands swapped
    /// (C^T = op(B)^T op(A)^T in cuBLAS's column-major terms), as CudaBlas::gemm.
    template <class T>
    static void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha,
                             const T* A, int64_t sa, const T* B, int64_t sb, T beta, T* C, int64_t sc) {
        if (batch == 0 || M == 0 || N == 0) return;
        if (K == 0) {  // C = beta C, group by group (the groups of C need not be contiguous)
            for (int64_t g = 0; g < batch; ++g) {
                if (beta == T(0))
                    CudaMemory::fill(M * N, T(0), C + g * sc);
                else
                    CudaElementwise::scale(M * N, beta, C + g * sc);
            }
            return;
        }
        constexpr int64_t max_int = std::numeric_limits<int>::max();
        TAPEGRAD_CHECK(M <= max_int && N <= max_int && K <= max_int && batch <= max_int, ShapeError,
                       "bmm (CUDA): ", batch, " products of ", M, "x", K, " by ", K, "x", N,
                       " exceed cuBLAS's 32-bit sizes");
        const cublasOperation_t opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
        const int ldb = static_cast<int>(trans_b ? K : N);  // B stored [N, K] when trans_b, else [K, N]
        const int lda = static_cast<int>(trans_a ? M : K);  // A stored [K, M] when trans_a, else [M, K]
        const int ldc = static_cast<int>(N);
        const int count = static_cast<int>(batch);
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

    /// As CpuAttention::layer_norm (mean, rstd: [rows]; y: [rows, n]).
    template <class T>
    static void layer_norm(int64_t rows, int64_t n, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean,
                           T* rstd) {
        cuda::layer_norm(rows, n, x, gamma, beta, eps, y, mean, rstd, cuda::stream());
        cuda::check_launch("layer_norm");
    }
    /// As CpuAttention::layer_norm_backward (dx, dgamma, dbeta accumulated; any may be null).
    template <class T>
    static void layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd, const T* gamma,
                                    const T* dy, T* dx, T* dgamma, T* dbeta) {
        cuda::layer_norm_backward(rows, n, x, mean, rstd, gamma, dy, dx, dgamma, dbeta, cuda::stream());
        cuda::check_launch("layer_norm backward");
    }
    /// As CpuAttention::masked_softmax (x, y: [batch, L, S]; fully masked rows get zeros).
    template <class T>
    static void masked_softmax(int64_t batch, int64_t L, int64_t S, const T* x, SoftmaxMask<T> m1, SoftmaxMask<T> m2,
                               bool causal, T* y) {
        cuda::masked_softmax(batch, L, S, x, m1, m2, causal, y, cuda::stream());
        cuda::check_launch("masked_softmax");
    }
};

}  // namespace tapegrad::backend
