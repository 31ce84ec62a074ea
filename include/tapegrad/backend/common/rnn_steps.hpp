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
///
/// The forward computes every step's pre-activations itself, from the input and the weights as stored:
/// x_t W_ih^T + b_ih + b_hh + h_prev W_hh^T (a GRU keeps h_prev W_hh^T + b_hh apart, in hg), so the input
/// projection is shared between the threads like the rest of the step (the caller's own step loop instead
/// computes it for all steps at once, before the loop).
template <class T>
struct RnnSteps {
    int64_t steps = 0, batch = 0, hidden = 0, gate_count = 1, input = 0;
    bool relu = false, reverse = false;
    const int64_t* lengths = nullptr;  ///< B lengths, or null: every row runs every step
    const T* x = nullptr;              ///< [T, B, input] the layer's input
    const T* w_ih = nullptr;           ///< [G*H, input]
    const T* w_hh = nullptr;           ///< [G*H, H]
    const T* b_ih = nullptr;           ///< [G*H], or null (then b_hh is null too): no biases
    const T* b_hh = nullptr;           ///< [G*H], or null
    T* hs = nullptr;     ///< [T + 1, B, H] states; the initial one in place
    T* cs = nullptr;     ///< [T + 1, B, H] cell states (LSTM), else null
    T* gates = nullptr;  ///< [T, B, G*H] pre-activations, written; activations out (kept for the backward)
    T* hg = nullptr;     ///< [T, B, G*H] a GRU's recurrent projections with b_hh, written; else null
    T* y = nullptr;      ///< [T, B, H] outputs
    // the backward's
    const T* dy = nullptr;  ///< [T, B, H] the outputs' gradient
    T* dh = nullptr;        ///< [B, H] the final state's gradient in, the initial state's out
    T* dc = nullptr;        ///< [B, H] the same for the cell state (LSTM), else null
    T* dg = nullptr;        ///< [T, B, G*H] the pre-activations' gradients, written
    T* dgh = nullptr;       ///< [T, B, G*H] a GRU's recurrent projections' gradients (else dg itself)
    // Where the backend's backward loop computes them (it says so by returning true), the gradients of the
    // input and the weights; null: not wanted. Each is written, or added to with its `accumulate` flag.
    T* dx = nullptr;     ///< [T, B, input]: dG W_ih
    T* dw_ih = nullptr;  ///< [G*H, input]: dG^T x
    T* dw_hh = nullptr;  ///< [G*H, H]: dG_h^T h_prev, over every step's h_prev
    bool dx_accumulate = false, dw_ih_accumulate = false, dw_hh_accumulate = false;
    T* db = nullptr;   ///< [G*H]: the column sums of dG (b_ih's gradient), written
    T* dbh = nullptr;  ///< [G*H]: the column sums of dG_h (b_hh's; a GRU's differ), written
};

}  // namespace tapegrad::backend
