#pragma once
/// \file
/// The CUDA backend's recurrent-cell primitives (family `RnnFamily`, backend/contract.hpp): one time step's
/// fused gate nonlinearities of an Elman RNN, an LSTM and a GRU and their adjoints, one thread per unit of a
/// row, so a step is one launch whatever B and H. The products around them are cuBLAS's (BlasFamily), the
/// time loop is ops/rnn.hpp's. Kernels in rnn.cu. Twin of backend/cpu/rnn.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/rnn.cuh>

#include <cstdint>

namespace tapegrad::backend {

/// Fused recurrent cells on the GPU; as CpuRnn's members (same parameters, device pointers).
struct CudaRnn {
    template <class T>
    static void rnn_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu, const T* h_prev,
                                 T* pre, T* h_next, T* y) {
        cuda::rnn_cell_forward(B, H, t, lengths, relu, h_prev, pre, h_next, y, cuda::stream());
        cuda::check_launch("rnn cell");
    }
    template <class T>
    static void rnn_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu, const T* h,
                                  const T* dy, T* dh, T* dpre) {
        cuda::rnn_cell_backward(B, H, t, lengths, relu, h, dy, dh, dpre, cuda::stream());
        cuda::check_launch("rnn cell backward");
    }
    template <class T>
    static void lstm_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev,
                                  const T* c_prev, T* gates, T* h_next, T* c_next, T* y) {
        cuda::lstm_cell_forward(B, H, t, lengths, h_prev, c_prev, gates, h_next, c_next, y, cuda::stream());
        cuda::check_launch("lstm cell");
    }
    template <class T>
    static void lstm_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates,
                                   const T* c_prev, const T* dy, T* dh, T* dc, T* dgates) {
        cuda::lstm_cell_backward(B, H, t, lengths, gates, c_prev, dy, dh, dc, dgates, cuda::stream());
        cuda::check_launch("lstm cell backward");
    }
    template <class T>
    static void gru_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev, T* gates,
                                 const T* hg, T* h_next, T* y) {
        cuda::gru_cell_forward(B, H, t, lengths, h_prev, gates, hg, h_next, y, cuda::stream());
        cuda::check_launch("gru cell");
    }
    template <class T>
    static void gru_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates,
                                  const T* hg, const T* h_prev, const T* dy, T* dh, T* dgx, T* dgh) {
        cuda::gru_cell_backward(B, H, t, lengths, gates, hg, h_prev, dy, dh, dgx, dgh, cuda::stream());
        cuda::check_launch("gru cell backward");
    }
};

}  // namespace tapegrad::backend
