#pragma once
/// \file
/// The CPU backend's recurrent-cell primitives (family `RnnFamily`, backend/contract.hpp): the fused gate
/// nonlinearities of one time step of an Elman RNN, an LSTM and a GRU, forward and backward, over a batch of
/// B rows of H units. In the op's own time loop (ops/rnn.hpp) the matrix products around them (the input
/// projection of every step at once, the recurrent product of each step, the weight gradients) are the BLAS
/// family's gemm. Twin: backend/cuda/rnn.hpp (kernels in rnn.cu).
///
/// Variable lengths: `lengths` (B values, or null for "every row runs every step") masks step t of row b
/// when t >= lengths[b]. A masked row keeps its state (h_next = h_prev, c_next = c_prev), writes a zero
/// output, and in the backward passes its state gradients through unchanged with zero gate gradients --
/// pack_padded_sequence's semantics, for both directions.
///
/// The buffers a call gets never overlap (`__restrict`), so the compiler vectorises the gate loops.
///
/// The whole time loop in one call (`rnn_steps_forward`, `rnn_steps_backward`), where floats use the packed
/// panels of cpu/small_gemm.hpp and H is a multiple of their width: the threads share every step, each
/// owning a range of hidden units. A unit's gates (its column in each gate block) depend only on the previous
/// state and its own pre-activations, so a thread computes its units' columns of the step's product, applies
/// the cell to them and writes its units of the new state; one barrier per step then publishes the state to
/// the others. The backward mirrors it: the cell's adjoint for its units, a barrier (the next product reads
/// every unit's gate gradients), then its units' columns of dh += dG W_hh. Nothing runs on one thread while
/// the other waits, and each step costs one barrier instead of a parallel region per product. The products
/// around the recurrence run in the same threads: each step's input projection x_t W_ih^T and the biases
/// (a thread's own columns), and after the last step dx = dG W_ih (a share of the rows) and dW_ih, dW_hh
/// (its units' rows) over all steps at once. Each thread packs the panels it reads from the weights as they
/// are stored. Every output element is computed by one thread in a fixed order, so results do not depend
/// on the thread count. (With OpenBLAS for these products, its packing of the narrow operands cost more
/// than the arithmetic: x W_ih^T at K = 32 ran at 45 GFLOP/s a core, and the second core idled meanwhile.)
///
/// Float gates use the vectorised tanh of backend/cpu/elementwise.hpp (sigmoid(x) = (1 + tanh(x/2)) / 2);
/// double uses std::tanh and std::exp (the reference that gradcheck relies on).

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/common/functors.hpp>
#include <tapegrad/backend/common/rnn_steps.hpp>
#include <tapegrad/backend/cpu/elementwise.hpp>
#include <tapegrad/backend/cpu/small_gemm.hpp>
#include <tapegrad/backend/cpu_threads.hpp>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tapegrad::backend {

namespace detail {

/// p[i] = tanh(p[i]) for n values.
template <class T>
void tanh_inplace(int64_t n, T* p) {
    if constexpr (std::is_same_v<T, float>) {
        tanh_float(n, p, p);
    } else {
        for (int64_t i = 0; i < n; ++i) p[i] = std::tanh(p[i]);
    }
}
/// p[i] = sigmoid(p[i]) for n values.
template <class T>
void sigmoid_inplace(int64_t n, T* p) {
    if constexpr (std::is_same_v<T, float>) {
        for (int64_t i = 0; i < n; ++i) p[i] *= 0.5f;
        tanh_float(n, p, p);
        for (int64_t i = 0; i < n; ++i) p[i] = 0.5f + 0.5f * p[i];
    } else {
        for (int64_t i = 0; i < n; ++i) p[i] = fn::Sigmoid{}(p[i]);
    }
}
/// Whether row b runs step t.
inline bool rnn_row_active(const int64_t* lengths, int64_t b, int64_t t) { return lengths == nullptr || t < lengths[b]; }

}  // namespace detail

/// Fused recurrent cells on the host. Shapes per call: B rows, H units; `gates` rows hold the gate blocks
/// side by side in PyTorch's order.
struct CpuRnn {
    // ==== the whole time loop =================================================================================
    /// Runs the forward time loop of s (see RnnSteps), or returns false where it does not apply (then the caller
    /// runs its own step loop): not float with the panel layout, or H not a multiple of the panel width. Each
    /// thread packs the panels of its own columns of W_ih^T and W_hh^T (no other thread reads them) and, per
    /// step, computes those columns of x_t W_ih^T, adds the biases and h_prev W_hh^T.
    template <class T>
    static bool rnn_steps_forward(const RnnSteps<T>& s) {
        if constexpr (!cpu::panel_layout<T>()) {
            static_cast<void>(s);
            return false;
        } else {
            const int64_t B = s.batch, H = s.hidden, G = s.gate_count, GH = G * H, BH = B * H, I = s.input;
            return split_units(s, GH, H + I, [&](int64_t u0, int64_t u1, int64_t, int64_t parts) {
                constexpr int64_t nr = cpu::panel_width();
                const int64_t n = u1 - u0;
                // this part's columns q H + [u0, u1) of each gate block q: local column c = q n + (u - u0)
                T* const ih = cpu::scratch<T, 2>().get(G * n * (I + H + 2));
                T* const hh = ih + G * n * I;
                // the biases of its columns: b_ih (+ b_hh, added once here, except in a GRU) and a GRU's b_hh
                T* const bx = hh + G * n * H;
                T* const bh = bx + G * n;
                const bool bias = s.b_ih != nullptr;
                for (int64_t q = 0; q < G; ++q)
                    for (int64_t u = u0; u < u1; u += nr) {
                        const int64_t col = q * H + u, c = q * n + (u - u0);
                        if (I > 0) cpu::pack_panel_transposed(I, s.w_ih + col * I, I, ih + c * I);
                        cpu::pack_panel_transposed(H, s.w_hh + col * H, H, hh + c * H);
                        for (int64_t j = 0; j < nr && bias; ++j) {
                            bx[c + j] = G == 3 ? s.b_ih[col + j] : s.b_ih[col + j] + s.b_hh[col + j];
                            bh[c + j] = s.b_hh[col + j];
                        }
                    }
                for (int64_t k = 0; k < s.steps; ++k) {
                    const int64_t t = s.reverse ? s.steps - 1 - k : k;
                    const int64_t in_row = s.reverse ? t + 1 : t, out_row = s.reverse ? t : t + 1;
                    const T* hp = s.hs + in_row * BH;
                    T* hn = s.hs + out_row * BH;
                    T* g = s.gates + t * B * GH;
                    T* yt = s.y + t * BH;
                    T* hgt = G == 3 ? s.hg + t * B * GH : nullptr;
                    const T* xt = s.x + t * B * I;
                    for (int64_t q = 0; q < G; ++q)
                        for (int64_t u = u0; u < u1; u += nr) {
                            const int64_t col = q * H + u, c = q * n + (u - u0);
                            if (G == 3) {  // x_t W_ih^T + b_ih, and h_prev W_hh^T + b_hh apart
                                cpu::gemm_panel_pair(B, I, xt, I, ih + c * I, 0, nullptr, 0, nullptr,
                                                     bias ? bx + c : nullptr, g + col, GH);
                                cpu::gemm_panel_pair(B, 0, nullptr, 0, nullptr, H, hp, H, hh + c * H,
                                                     bias ? bh + c : nullptr, hgt + col, GH);
                            } else {  // x_t W_ih^T + b_ih + b_hh + h_prev W_hh^T
                                cpu::gemm_panel_pair(B, I, xt, I, ih + c * I, H, hp, H, hh + c * H,
                                                     bias ? bx + c : nullptr, g + col, GH);
                            }
                        }
                    if (G == 4)
                        lstm_units_forward(B, H, u0, u1, t, s.lengths, hp,
                                           static_cast<const T*>(s.cs + in_row * BH), g, hn, s.cs + out_row * BH, yt);
                    else if (G == 3)
                        gru_units_forward(B, H, u0, u1, t, s.lengths, hp, g, static_cast<const T*>(hgt), hn, yt);
                    else
                        rnn_units_forward(B, H, u0, u1, t, s.lengths, s.relu, hp, g, hn, yt);
                    sync_parts(parts);  // the new state, whole, before any part's next product reads it
                }
            });
        }
    }
    /// Runs the backward time loop of s (see RnnSteps), or returns false where rnn_steps_forward would. Each
    /// thread packs the panels of W_hh for its own units, and its share of the rows of W_ih (packed whole,
    /// for dx). Per step, after the barrier, a thread adds its units' columns of dG_h W_hh to dh. After the
    /// last step, each computes its share of the rows of dx = dG W_ih and its units' rows of dW_ih = dG^T x
    /// and dW_hh = dG_h^T h_prev (all steps at once, so the right operands stay in cache across rows), and
    /// its units' column sums of dG and dG_h (the biases' gradients).
    template <class T>
    static bool rnn_steps_backward(const RnnSteps<T>& s) {
        if constexpr (!cpu::panel_layout<T>()) {
            static_cast<void>(s);
            return false;
        } else {
            const int64_t B = s.batch, H = s.hidden, G = s.gate_count, GH = G * H, BH = B * H, I = s.input;
            const bool dx = s.dx != nullptr && I > 0;
            T* const wih = dx ? cpu::scratch<T, 3>().get(GH * I) : nullptr;  // W_ih [GH, I] packed, shared
            return split_units(s, H, GH + (dx ? I : 0), [&](int64_t u0, int64_t u1, int64_t p, int64_t parts) {
                constexpr int64_t nr = cpu::panel_width();
                T* const wp = cpu::scratch<T, 2>().get(GH * (u1 - u0));  // panel u / nr of W_hh at (u - u0) GH
                for (int64_t u = u0; u < u1; u += nr) cpu::pack_panel(GH, s.w_hh + u, H, wp + (u - u0) * GH);
                if (dx) {
                    cpu::pack_panel_rows(GH, I, s.w_ih, wih, GH * p / parts, GH * (p + 1) / parts);
                    sync_parts(parts);  // W_ih packed whole before any part reads it
                }
                for (int64_t k = s.steps - 1; k >= 0; --k) {
                    const int64_t t = s.reverse ? s.steps - 1 - k : k;
                    const int64_t in_row = s.reverse ? t + 1 : t;
                    const T* g = s.gates + t * B * GH;
                    T* dgt = s.dg + t * B * GH;
                    T* dght = s.dgh + t * B * GH;
                    const T* dyt = s.dy + t * BH;
                    if (G == 4)
                        lstm_units_backward(B, H, u0, u1, t, s.lengths, g, static_cast<const T*>(s.cs + in_row * BH),
                                            dyt, s.dh, s.dc, dgt);
                    else if (G == 3)
                        gru_units_backward(B, H, u0, u1, t, s.lengths, g, static_cast<const T*>(s.hg + t * B * GH),
                                           static_cast<const T*>(s.hs + in_row * BH), dyt, s.dh, dgt, dght);
                    else
                        rnn_units_backward(B, H, u0, u1, t, s.lengths, s.relu, g, dyt, s.dh, dgt);
                    sync_parts(parts);  // every unit's gate gradients, before this part's columns of the product
                    for (int64_t u = u0; u < u1; u += nr)  // dh += dG_h W_hh, this part's units
                        cpu::gemm_panel(B, GH, T(1), static_cast<const T*>(dght), GH, wp + (u - u0) * GH, T(1),
                                        s.dh + u, H);
                }
                // Over all steps at once, each part its share: rows of dx, its units' rows of dW_ih and dW_hh.
                const int64_t rows = s.steps * B;
                if (dx) {  // dx = dG W_ih (or +=), once dG is whole
                    sync_parts(parts);
                    const int64_t r0 = rows * p / parts, r1 = rows * (p + 1) / parts;
                    if (r1 > r0)
                        cpu::gemm_panels(r1 - r0, I, GH, T(1), static_cast<const T*>(s.dg + r0 * GH), wih,
                                         s.dx_accumulate ? T(1) : T(0), s.dx + r0 * I);
                }
                const T* h_prev = s.hs + (s.reverse ? BH : 0);  // every step's h_prev, in time order
                for (int64_t q = 0; q < G; ++q) {  // this part's columns of dG are its own: no barrier
                    const int64_t r = q * H + u0;
                    if (s.dw_ih && I > 0)  // dW_ih = dG^T x
                        cpu::gemm_at(u1 - u0, I, rows, T(1), s.dg + r, GH, s.x, I, s.dw_ih_accumulate ? T(1) : T(0),
                                     s.dw_ih + r * I, I);
                    if (s.dw_hh)  // dW_hh = dG_h^T h_prev
                        cpu::gemm_at(u1 - u0, H, rows, T(1), s.dgh + r, GH, h_prev, H,
                                     s.dw_hh_accumulate ? T(1) : T(0), s.dw_hh + r * H, H);
                    for (const auto& [sums, d] : {std::pair{s.db, s.dg}, std::pair{s.dbh, s.dgh}})
                        if (sums)  // the biases' gradients: column sums over every row (common/accumulate.hpp)
                            row_sums(rows, u1 - u0, sums + r, false,
                                     [d = d + r, GH](int64_t i, int64_t j) { return d[i * GH + j]; });
                }
            });
        }
    }

    // ==== Elman RNN: h = act(pre), act = tanh or relu ==========================================================
    /// pre: [B, H] pre-activations (x W_ih^T + b_ih + h_prev W_hh^T + b_hh), overwritten by h = act(pre) (kept
    /// for the backward). Active rows: h_next = y = h; masked rows: h_next = h_prev, y = 0.
    template <class T>
    static void rnn_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu,
                                 const T* __restrict h_prev, T* __restrict pre, T* __restrict h_next,
                                 T* __restrict y) {
        rnn_units_forward(B, H, 0, H, t, lengths, relu, h_prev, pre, h_next, y);
    }
    /// rnn_cell_forward for units [u0, u1) of every row (the buffers keep their full [B, H] layout).
    template <class T>
    static void rnn_units_forward(int64_t B, int64_t H, int64_t u0, int64_t u1, int64_t t, const int64_t* lengths,
                                  bool relu, const T* __restrict h_prev, T* __restrict pre, T* __restrict h_next,
                                  T* __restrict y) {
        const int64_t n = u1 - u0;
        for (int64_t b = 0; b < B; ++b) {
            T* p = pre + b * H + u0;
            T* hn = h_next + b * H + u0;
            T* yr = y + b * H + u0;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < n; ++j) hn[j] = h_prev[b * H + u0 + j], yr[j] = T(0);
                continue;
            }
            if (relu)
                for (int64_t j = 0; j < n; ++j) p[j] = p[j] > T(0) ? p[j] : T(0);
            else
                detail::tanh_inplace(n, p);
            for (int64_t j = 0; j < n; ++j) hn[j] = p[j], yr[j] = p[j];
        }
    }
    /// The adjoint of rnn_cell_forward. h: [B, H] the saved activations; dy: [B, H] the output's gradient at
    /// this step; dh: [B, H] the gradient of h_next on entry, of h_prev's direct share on exit (0 for active
    /// rows: their share comes through the recurrent product, which the caller adds); dpre: [B, H] written
    /// (0 for masked rows). dpre = (dh + dy) act'(h), act' = 1 - h^2 (tanh) or [h > 0] (relu).
    template <class T>
    static void rnn_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu,
                                  const T* __restrict h, const T* __restrict dy, T* __restrict dh,
                                  T* __restrict dpre) {
        rnn_units_backward(B, H, 0, H, t, lengths, relu, h, dy, dh, dpre);
    }
    /// rnn_cell_backward for units [u0, u1) of every row.
    template <class T>
    static void rnn_units_backward(int64_t B, int64_t H, int64_t u0, int64_t u1, int64_t t, const int64_t* lengths,
                                   bool relu, const T* __restrict h, const T* __restrict dy, T* __restrict dh,
                                   T* __restrict dpre) {
        const int64_t n = u1 - u0;
        for (int64_t b = 0; b < B; ++b) {
            T* dp = dpre + b * H + u0;
            T* dhr = dh + b * H + u0;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < n; ++j) dp[j] = T(0);
                continue;
            }
            const T* hr = h + b * H + u0;
            const T* dyr = dy + b * H + u0;
            for (int64_t j = 0; j < n; ++j) {
                const T g = dhr[j] + dyr[j];
                dp[j] = relu ? (hr[j] > T(0) ? g : T(0)) : g * (T(1) - hr[j] * hr[j]);
                dhr[j] = T(0);
            }
        }
    }

    // ==== LSTM: gates i, f, g, o ===============================================================================
    /// gates: [B, 4H] pre-activations (both projections and both biases), overwritten by the activations
    /// i = sigmoid, f = sigmoid, g = tanh, o = sigmoid (kept for the backward). Active rows:
    /// c_next = f c_prev + i g, h_next = y = o tanh(c_next); masked rows keep the state and write y = 0.
    template <class T>
    static void lstm_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* __restrict h_prev,
                                  const T* __restrict c_prev, T* __restrict gates, T* __restrict h_next,
                                  T* __restrict c_next, T* __restrict y) {
        lstm_units_forward(B, H, 0, H, t, lengths, h_prev, c_prev, gates, h_next, c_next, y);
    }
    /// lstm_cell_forward for units [u0, u1) of every row (and their columns of each gate block).
    template <class T>
    static void lstm_units_forward(int64_t B, int64_t H, int64_t u0, int64_t u1, int64_t t, const int64_t* lengths,
                                   const T* __restrict h_prev, const T* __restrict c_prev, T* __restrict gates,
                                   T* __restrict h_next, T* __restrict c_next, T* __restrict y) {
        const int64_t n = u1 - u0;
        for (int64_t b = 0; b < B; ++b) {
            T* hn = h_next + b * H + u0;
            T* cn = c_next + b * H + u0;
            T* yr = y + b * H + u0;
            const T* cp = c_prev + b * H + u0;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < n; ++j) hn[j] = h_prev[b * H + u0 + j], cn[j] = cp[j], yr[j] = T(0);
                continue;
            }
            T* gi = gates + b * 4 * H + u0;
            T* gf = gi + H;
            T* gg = gi + 2 * H;
            T* go = gi + 3 * H;
            if (n == H) {
                detail::sigmoid_inplace(2 * H, gi);  // i and f, side by side
            } else {
                detail::sigmoid_inplace(n, gi);
                detail::sigmoid_inplace(n, gf);
            }
            detail::tanh_inplace(n, gg);
            detail::sigmoid_inplace(n, go);
            for (int64_t j = 0; j < n; ++j) cn[j] = gf[j] * cp[j] + gi[j] * gg[j];
            for (int64_t j = 0; j < n; ++j) hn[j] = cn[j];
            detail::tanh_inplace(n, hn);
            for (int64_t j = 0; j < n; ++j) {
                hn[j] *= go[j];
                yr[j] = hn[j];
            }
        }
    }
    /// The adjoint of lstm_cell_forward. gates: [B, 4H] the saved activations; c_prev: [B, H]; dy: [B, H];
    /// dh, dc: [B, H] the gradients of h_next and c_next on entry, of h_prev's direct share (0 for active rows)
    /// and of c_prev on exit; dgates: [B, 4H] the gradients of the pre-activations (0 for masked rows). With
    /// c = f c_prev + i g and dh' = dh + dy, dc' = dc + dh' o (1 - tanh(c)^2):
    ///   d(i) = dc' g i (1 - i), d(f) = dc' c_prev f (1 - f), d(g) = dc' i (1 - g^2),
    ///   d(o) = dh' tanh(c) o (1 - o), dc_prev = dc' f.
    template <class T>
    static void lstm_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* __restrict gates,
                                   const T* __restrict c_prev, const T* __restrict dy, T* __restrict dh,
                                   T* __restrict dc, T* __restrict dgates) {
        lstm_units_backward(B, H, 0, H, t, lengths, gates, c_prev, dy, dh, dc, dgates);
    }
    /// lstm_cell_backward for units [u0, u1) of every row (and their columns of each gate block).
    template <class T>
    static void lstm_units_backward(int64_t B, int64_t H, int64_t u0, int64_t u1, int64_t t, const int64_t* lengths,
                                    const T* __restrict gates, const T* __restrict c_prev, const T* __restrict dy,
                                    T* __restrict dh, T* __restrict dc, T* __restrict dgates) {
        const int64_t n = u1 - u0;
        for (int64_t b = 0; b < B; ++b) {
            T* dg = dgates + b * 4 * H + u0;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t q = 0; q < 4; ++q)
                    for (int64_t j = 0; j < n; ++j) dg[q * H + j] = T(0);
                continue;
            }
            const T* gi = gates + b * 4 * H + u0;
            const T* gf = gi + H;
            const T* gg = gi + 2 * H;
            const T* go = gi + 3 * H;
            const T* cp = c_prev + b * H + u0;
            const T* dyr = dy + b * H + u0;
            T* dhr = dh + b * H + u0;
            T* dcr = dc + b * H + u0;
            // tanh(c) into d(i)'s slot, read there before d(i) is written
            for (int64_t j = 0; j < n; ++j) dg[j] = gf[j] * cp[j] + gi[j] * gg[j];
            detail::tanh_inplace(n, dg);
            for (int64_t j = 0; j < n; ++j) {
                const T tc = dg[j], i = gi[j], f = gf[j], g = gg[j], o = go[j];
                const T dht = dhr[j] + dyr[j];
                const T dct = dcr[j] + dht * o * (T(1) - tc * tc);
                dg[j] = dct * g * i * (T(1) - i);
                dg[H + j] = dct * cp[j] * f * (T(1) - f);
                dg[2 * H + j] = dct * i * (T(1) - g * g);
                dg[3 * H + j] = dht * tc * o * (T(1) - o);
                dcr[j] = dct * f;
                dhr[j] = T(0);
            }
        }
    }

    // ==== GRU: gates r, z, n, with the recurrent n-projection inside the reset product ==========================
    /// gates: [B, 3H] the input projections x W_ih^T + b_ih, overwritten by the activations
    ///   r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n = tanh(gx_n + r gh_n);
    /// hg: [B, 3H] the recurrent projections h_prev W_hh^T + b_hh (gh_n is kept for the backward). Active rows:
    /// h_next = y = (1 - z) n + z h_prev; masked rows keep the state and write y = 0.
    template <class T>
    static void gru_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* __restrict h_prev,
                                 T* __restrict gates, const T* __restrict hg, T* __restrict h_next, T* __restrict y) {
        gru_units_forward(B, H, 0, H, t, lengths, h_prev, gates, hg, h_next, y);
    }
    /// gru_cell_forward for units [u0, u1) of every row (and their columns of each gate block).
    template <class T>
    static void gru_units_forward(int64_t B, int64_t H, int64_t u0, int64_t u1, int64_t t, const int64_t* lengths,
                                  const T* __restrict h_prev, T* __restrict gates, const T* __restrict hg,
                                  T* __restrict h_next, T* __restrict y) {
        const int64_t n = u1 - u0;
        for (int64_t b = 0; b < B; ++b) {
            T* hn = h_next + b * H + u0;
            T* yr = y + b * H + u0;
            const T* hp = h_prev + b * H + u0;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < n; ++j) hn[j] = hp[j], yr[j] = T(0);
                continue;
            }
            T* gr = gates + b * 3 * H + u0;
            T* gz = gr + H;
            T* gn = gr + 2 * H;
            const T* hr = hg + b * 3 * H + u0;
            for (int64_t j = 0; j < n; ++j) gr[j] += hr[j], gz[j] += hr[H + j];
            if (n == H) {
                detail::sigmoid_inplace(2 * H, gr);  // r and z, side by side
            } else {
                detail::sigmoid_inplace(n, gr);
                detail::sigmoid_inplace(n, gz);
            }
            for (int64_t j = 0; j < n; ++j) gn[j] += gr[j] * hr[2 * H + j];
            detail::tanh_inplace(n, gn);
            for (int64_t j = 0; j < n; ++j) {
                hn[j] = gn[j] + gz[j] * (hp[j] - gn[j]);
                yr[j] = hn[j];
            }
        }
    }
    /// The adjoint of gru_cell_forward. gates: [B, 3H] the saved r, z, n; hg: [B, 3H] the saved recurrent
    /// projections; h_prev, dy: [B, H]; dh: [B, H] the gradient of h_next on entry, of h_prev's direct share
    /// (dh' z) on exit; dgx, dgh: [B, 3H] the gradients of the input and the recurrent projections (0 for
    /// masked rows). With dh' = dh + dy: d(n) = dh' (1 - z) (1 - n^2), d(z) = dh' (h_prev - n) z (1 - z),
    /// d(r) = d(n) gh_n r (1 - r); dgx = [d(r), d(z), d(n)], dgh = [d(r), d(z), d(n) r].
    template <class T>
    static void gru_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* __restrict gates,
                                  const T* __restrict hg, const T* __restrict h_prev, const T* __restrict dy,
                                  T* __restrict dh, T* __restrict dgx, T* __restrict dgh) {
        gru_units_backward(B, H, 0, H, t, lengths, gates, hg, h_prev, dy, dh, dgx, dgh);
    }
    /// gru_cell_backward for units [u0, u1) of every row (and their columns of each gate block).
    template <class T>
    static void gru_units_backward(int64_t B, int64_t H, int64_t u0, int64_t u1, int64_t t, const int64_t* lengths,
                                   const T* __restrict gates, const T* __restrict hg, const T* __restrict h_prev,
                                   const T* __restrict dy, T* __restrict dh, T* __restrict dgx,
                                   T* __restrict dgh) {
        const int64_t n = u1 - u0;
        for (int64_t b = 0; b < B; ++b) {
            T* dx = dgx + b * 3 * H + u0;
            T* dhh = dgh + b * 3 * H + u0;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t q = 0; q < 3; ++q)
                    for (int64_t j = 0; j < n; ++j) dx[q * H + j] = T(0), dhh[q * H + j] = T(0);
                continue;
            }
            const T* gr = gates + b * 3 * H + u0;
            const T* gz = gr + H;
            const T* gn = gr + 2 * H;
            const T* hr = hg + b * 3 * H + u0;
            const T* hp = h_prev + b * H + u0;
            const T* dyr = dy + b * H + u0;
            T* dhr = dh + b * H + u0;
            for (int64_t j = 0; j < n; ++j) {
                const T r = gr[j], z = gz[j], n = gn[j];
                const T dht = dhr[j] + dyr[j];
                const T dn = dht * (T(1) - z) * (T(1) - n * n);
                const T dz = dht * (hp[j] - n) * z * (T(1) - z);
                const T dr = dn * hr[2 * H + j] * r * (T(1) - r);
                dx[j] = dr, dx[H + j] = dz, dx[2 * H + j] = dn;
                dhh[j] = dr, dhh[H + j] = dz, dhh[2 * H + j] = dn * r;
                dhr[j] = dht * z;
            }
        }
    }

private:
    /// For a time loop whose steps each multiply [B, K] by the packed [K, N]: where H is a multiple of the
    /// panel width, calls part(u0, u1, p, parts) on each of `parts` threads at once (p = 0 .. parts - 1), the
    /// threads splitting the H units in whole panels, and returns true; else returns false and calls nothing.
    template <class T, class Part>
    static bool split_units(const RnnSteps<T>& s, int64_t N, int64_t K, const Part& part) {
        constexpr int64_t nr = cpu::panel_width();
        const int64_t blocks = s.hidden / nr;
        if (s.hidden % nr != 0 || s.batch == 0) return false;
        run_parts(step_threads(s.batch, N, K, blocks), [&](int64_t p, int64_t parts) {
            part(blocks * p / parts * nr, blocks * (p + 1) / parts * nr, p, parts);
        });
        return true;
    }
    /// Threads for a time loop whose steps each multiply [M, K] by [K, N], split over `blocks` unit blocks:
    /// the packed products' rule (cpu/small_gemm.hpp), at most one per block, one inside a parallel region.
    static int step_threads(int64_t M, int64_t N, int64_t K, int64_t blocks) {
#ifdef _OPENMP
        if (omp_in_parallel()) return 1;
        return static_cast<int>(std::min<int64_t>({tapegrad::detail::product_threads(M, N, K, cpu::panel_work_per_thread()),
                                                   blocks, static_cast<int64_t>(omp_get_max_threads())}));
#else
        static_cast<void>(M), static_cast<void>(N), static_cast<void>(K), static_cast<void>(blocks);
        return 1;
#endif
    }
    /// loop(part, parts) on `threads` threads at once (part = the thread's number), or loop(0, 1) here.
    template <class F>
    static void run_parts(int threads, const F& loop) {
#ifdef _OPENMP
        if (threads > 1) {
#pragma omp parallel num_threads(threads)
            loop(static_cast<int64_t>(omp_get_thread_num()), static_cast<int64_t>(omp_get_num_threads()));
            return;
        }
#endif
        static_cast<void>(threads);
        loop(int64_t{0}, int64_t{1});
    }
    /// Waits for every part of run_parts's team (nothing for one part).
    static void sync_parts([[maybe_unused]] int64_t parts) {
#ifdef _OPENMP
        if (parts > 1) {
#pragma omp barrier
        }
#endif
    }
};

}  // namespace tapegrad::backend
