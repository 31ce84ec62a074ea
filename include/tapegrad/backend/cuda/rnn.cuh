#pragma once
/// \file
/// The CUDA launchers of the recurrent-cell family (defined in rnn.cu): one time step's fused gate
/// nonlinearities of an Elman RNN, an LSTM and a GRU and their adjoints, over B rows of H units, with
/// per-row lengths masking. Twin of backend/cpu/rnn.hpp, whose members document each one (same parameters,
/// device pointers; `lengths` is a device array of B values or null).

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen.

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

/// pre: [B, H] -> h = act(pre) in place; h_next, y: [B, H] (masked rows: h_next = h_prev, y = 0).
template <class T>
void rnn_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu, const T* h_prev, T* pre,
                      T* h_next, T* y, cudaStream_t stream);
/// dpre = (dh + dy) act'(h); dh = 0 on active rows (masked rows: dpre = 0, dh kept).
template <class T>
void rnn_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu, const T* h, const T* dy,
                       T* dh, T* dpre, cudaStream_t stream);
/// gates: [B, 4H] pre-activations -> i, f, g, o; c_next = f c_prev + i g, h_next = y = o tanh(c_next).
template <class T>
void lstm_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev, const T* c_prev,
                       T* gates, T* h_next, T* c_next, T* y, cudaStream_t stream);
/// The adjoint of lstm_cell_forward: dgates [B, 4H] written, dh and dc updated.
template <class T>
void lstm_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates, const T* c_prev,
                        const T* dy, T* dh, T* dc, T* dgates, cudaStream_t stream);
/// gates: [B, 3H] input projections -> r, z, n with hg: [B, 3H] the recurrent projections;
/// h_next = y = (1 - z) n + z h_prev.
template <class T>
void gru_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev, T* gates, const T* hg,
                      T* h_next, T* y, cudaStream_t stream);
/// The adjoint of gru_cell_forward: dgx, dgh [B, 3H] written, dh updated.
template <class T>
void gru_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates, const T* hg,
                       const T* h_prev, const T* dy, T* dh, T* dgx, T* dgh, cudaStream_t stream);

}  // namespace tapegrad::cuda
