#pragma once
/// \file
/// The time loop of one recurrent layer as plain data (`RnnSteps`), for a backend that runs the whole loop
/// in one call instead of one product and one fused cell per step (CpuRnn::rnn_steps_forward and
/// rnn_steps_backward: both cores work on every step, each on its own hidden units). ops/rnn.hpp fills it
/// and falls back to its own step loop where a backend has no such call or declines the shapes.
///
/// Plain data and no Eigen, so CUDA code may include it.

#include <cstdint>

namespace tapegrad::backend {

/// One layer, one direction (see rnn_layer in ops/rnn.hpp for the buffers' layouts and the recurrences).
/// gate_count 4 is an LSTM, 3 a GRU, 1 an Elman RNN (tanh, or relu with `relu`). Row r of hs (and cs) is a
/// state [B, H]: the step at time t reads row t (forward) or t + 1 (reverse) and writes the other.
template <class T>
struct RnnSteps {
    int64_t steps = 0, batch = 0, hidden = 0, gate_count = 1;
    bool relu = false, reverse = false;
    const int64_t* lengths = nullptr;  ///< B lengths, or null: every row runs every step
    /// The recurrent weights as the packed right operand (BlasFamily::pack_right): W_hh^T [H, G*H] for the
    /// forward, W_hh [G*H, H] for the backward.
    const T* packed = nullptr;
    T* hs = nullptr;     ///< [T + 1, B, H] states; the initial one in place
    T* cs = nullptr;     ///< [T + 1, B, H] cell states (LSTM), else null
    T* gates = nullptr;  ///< [T, B, G*H] pre-activations in, activations out (kept for the backward)
    T* hg = nullptr;     ///< [T, B, G*H] a GRU's recurrent projections (b_hh in place), else null
    T* y = nullptr;      ///< [T, B, H] outputs
    // the backward's
    const T* dy = nullptr;  ///< [T, B, H] the outputs' gradient
    T* dh = nullptr;        ///< [B, H] the final state's gradient in, the initial state's out
    T* dc = nullptr;        ///< [B, H] the same for the cell state (LSTM), else null
    T* dg = nullptr;        ///< [T, B, G*H] the pre-activations' gradients, written
    T* dgh = nullptr;       ///< [T, B, G*H] a GRU's recurrent projections' gradients (else dg itself)
};

}  // namespace tapegrad::backend
