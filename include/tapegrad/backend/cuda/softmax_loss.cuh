#pragma once
/// \file
/// The CUDA launchers of the softmax and row-wise loss family (defined in softmax_loss.cu). Twin of
/// backend/cpu/softmax_loss.hpp.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen:
/// host code compiled by any C++20 compiler and the nvcc-compiled .cu file both include it.

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

// ---- softmax and the row-wise losses (labels: device int64 class indices, already range-checked) ---------
/// y = softmax (or log_softmax when `log`) along the middle axis of [outer, n, inner], max-shifted.
template <class T>
void softmax_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log, cudaStream_t stream);
/// dx += the softmax (or log_softmax) backward from the output y and its gradient dy.
template <class T>
void softmax_axis_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx, bool log,
                           cudaStream_t stream);
/// Fused softmax-cross-entropy forward over the rows of logits [N, C]: probs = softmax(row) and
/// loss[r] = logsumexp(row) - row[labels[r]], max-shifted (finite for logits of magnitude 1e4).
template <class T>
void softmax_xent_rows(int64_t N, int64_t C, const T* logits, const int64_t* labels, T* probs, T* loss,
                       cudaStream_t stream);
/// dlogits[r, :] += scale * dloss[r * dloss_stride] * (probs[r, :] - onehot(labels[r])).
template <class T>
void softmax_xent_rows_backward(int64_t N, int64_t C, const T* probs, const int64_t* labels, const T* dloss,
                                int64_t dloss_stride, T scale, T* dlogits, cudaStream_t stream);
/// loss[r] = -logp[r, labels[r]]
template <class T>
void nll_rows(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss, cudaStream_t stream);
/// dlogp[r, labels[r]] -= scale * dloss[r * dloss_stride]
template <class T>
void nll_rows_backward(int64_t N, int64_t C, const int64_t* labels, const T* dloss, int64_t dloss_stride, T scale,
                       T* dlogp, cudaStream_t stream);

}  // namespace tapegrad::cuda
