#pragma once
/// \file
/// The CUDA launchers of the attention family (defined in attention.cu): layer norm over rows and its
/// backward, the masked / causal row softmax of attention scores. Twin of backend/cpu/attention.hpp (the
/// batched products go through cuBLAS in attention.hpp).

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen.

#include <tapegrad/backend/common/attention_mask.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

/// As CpuAttention::layer_norm: one block per row, sums in double in a fixed tree (deterministic).
template <class T>
void layer_norm(int64_t rows, int64_t n, const T* x, const T* gamma, const T* beta, T eps, T* y, T* mean, T* rstd,
                cudaStream_t stream);
/// As CpuAttention::layer_norm_backward: dx one block per row; dgamma and dbeta one block per column,
/// summing over the rows in double. Any of dx, dgamma, dbeta may be null; a null gamma is 1.
template <class T>
void layer_norm_backward(int64_t rows, int64_t n, const T* x, const T* mean, const T* rstd, const T* gamma,
                         const T* dy, T* dx, T* dgamma, T* dbeta, cudaStream_t stream);
/// As CpuAttention::masked_softmax: one block per (batch entry, query) row; fully masked rows get zeros.
template <class T>
void masked_softmax(int64_t batch, int64_t L, int64_t S, const T* x, backend::SoftmaxMask<T> m1,
                    backend::SoftmaxMask<T> m2, bool causal, T* y, cudaStream_t stream);

}  // namespace tapegrad::cuda
