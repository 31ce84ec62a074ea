#pragma once
/// \file
/// The CUDA backend's softmax and row-wise losses (family `SoftmaxLossFamily`, backend/contract.hpp); labels
/// are device memory (Labels<Cuda>). Kernels in softmax_loss.cu. Twin of backend/cpu/softmax_loss.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/softmax_loss.cuh>

#include <cstdint>

namespace tapegrad::backend {

/// Softmax and the row-wise losses on the GPU.
struct CudaSoftmaxLoss {
    template <class T>
    static void softmax_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
        cuda::softmax_axis(outer, n, inner, x, y, log, cuda::stream());
        cuda::check_launch(log ? "log_softmax" : "softmax");
    }
    template <class T>
    static void softmax_axis_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx,
                                      bool log) {
        cuda::softmax_axis_backward(outer, n, inner, y, dy, dx, log, cuda::stream());
        cuda::check_launch(log ? "log_softmax backward" : "softmax backward");
    }
    template <class T>
    static void softmax_xent_rows(int64_t N, int64_t C, const T* logits, const int64_t* labels, T* probs, T* loss) {
        cuda::softmax_xent_rows(N, C, logits, labels, probs, loss, cuda::stream());
        cuda::check_launch("cross_entropy");
    }
    template <class T>
    static void softmax_xent_rows_backward(int64_t N, int64_t C, const T* probs, const int64_t* labels, const T* dloss,
                                           int64_t dloss_stride, T scale, T* dlogits) {
        cuda::softmax_xent_rows_backward(N, C, probs, labels, dloss, dloss_stride, scale, dlogits, cuda::stream());
        cuda::check_launch("cross_entropy backward");
    }
    template <class T>
    static void nll_rows(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss) {
        cuda::nll_rows(N, C, logp, labels, loss, cuda::stream());
        cuda::check_launch("nll_loss");
    }
    template <class T>
    static void nll_rows_backward(int64_t N, int64_t C, const int64_t* labels, const T* dloss, int64_t dloss_stride,
                                  T scale, T* dlogp) {
        cuda::nll_rows_backward(N, C, labels, dloss, dloss_stride, scale, dlogp, cuda::stream());
        cuda::check_launch("nll_loss backward");
    }
};

}  // namespace tapegrad::backend
