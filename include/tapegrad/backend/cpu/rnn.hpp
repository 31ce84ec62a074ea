#pragma once
/// \file
/// The CPU backend's recurrent-cell primitives (family `RnnFamily`, backend/contract.hpp): the fused gate
/// nonlinearities of one time step of an Elman RNN, an LSTM and a GRU, forward and backward, over a batch of
/// B rows of H units. The matrix products around them (the input projection of every step at once, the
/// recurrent product of each step, the weight gradients) are the BLAS family's gemm, called by the op
/// (ops/rnn.hpp), which also owns the time loop. Twin: backend/cuda/rnn.hpp (kernels in rnn.cu).
///
/// Variable lengths: `lengths` (B values, or null for "every row runs every step") masks step t of row b
/// when t >= lengths[b]. A masked row keeps its state (h_next = h_prev, c_next = c_prev), writes a zero
/// output, and in the backward passes its state gradients through unchanged with zero gate gradients --
/// pack_padded_sequence's semantics, for both directions.
///
/// The buffers a call gets never overlap (`__restrict`), so the compiler vectorises the gate loops.
///
/// Float gates use the vectorised tanh of backend/cpu/elementwise.hpp (sigmoid(x) = (1 + tanh(x/2)) / 2);
/// double uses std::tanh and std::exp (the reference that gradcheck relies on).

#include <tapegrad/backend/cpu/elementwise.hpp>
#include <tapegrad/backend/common/functors.hpp>

#include <cstdint>
#include <type_traits>

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
    // ==== Elman RNN: h = act(pre), act = tanh or relu ==========================================================
    /// pre: [B, H] pre-activations (x W_ih^T + b_ih + h_prev W_hh^T + b_hh), overwritten by h = act(pre) (kept
    /// for the backward). Active rows: h_next = y = h; masked rows: h_next = h_prev, y = 0.
    template <class T>
    static void rnn_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu,
                                 const T* __restrict h_prev, T* __restrict pre, T* __restrict h_next,
                                 T* __restrict y) {
        for (int64_t b = 0; b < B; ++b) {
            T* p = pre + b * H;
            T* hn = h_next + b * H;
            T* yr = y + b * H;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < H; ++j) hn[j] = h_prev[b * H + j], yr[j] = T(0);
                continue;
            }
            if (relu)
                for (int64_t j = 0; j < H; ++j) p[j] = p[j] > T(0) ? p[j] : T(0);
            else
                detail::tanh_inplace(H, p);
            for (int64_t j = 0; j < H; ++j) hn[j] = p[j], yr[j] = p[j];
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
        for (int64_t b = 0; b < B; ++b) {
            T* dp = dpre + b * H;
            T* dhr = dh + b * H;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < H; ++j) dp[j] = T(0);
                continue;
            }
            const T* hr = h + b * H;
            const T* dyr = dy + b * H;
            for (int64_t j = 0; j < H; ++j) {
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
        for (int64_t b = 0; b < B; ++b) {
            T* hn = h_next + b * H;
            T* cn = c_next + b * H;
            T* yr = y + b * H;
            const T* cp = c_prev + b * H;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < H; ++j) hn[j] = h_prev[b * H + j], cn[j] = cp[j], yr[j] = T(0);
                continue;
            }
            T* gi = gates + b * 4 * H;
            T* gf = gi + H;
            T* gg = gi + 2 * H;
            T* go = gi + 3 * H;
            detail::sigmoid_inplace(2 * H, gi);  // i and f
            detail::tanh_inplace(H, gg);
            detail::sigmoid_inplace(H, go);
            for (int64_t j = 0; j < H; ++j) cn[j] = gf[j] * cp[j] + gi[j] * gg[j];
            for (int64_t j = 0; j < H; ++j) hn[j] = cn[j];
            detail::tanh_inplace(H, hn);
            for (int64_t j = 0; j < H; ++j) {
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
        for (int64_t b = 0; b < B; ++b) {
            T* dg = dgates + b * 4 * H;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < 4 * H; ++j) dg[j] = T(0);
                continue;
            }
            const T* gi = gates + b * 4 * H;
            const T* gf = gi + H;
            const T* gg = gi + 2 * H;
            const T* go = gi + 3 * H;
            const T* cp = c_prev + b * H;
            const T* dyr = dy + b * H;
            T* dhr = dh + b * H;
            T* dcr = dc + b * H;
            // tanh(c) into d(i)'s slot, read there before d(i) is written
            for (int64_t j = 0; j < H; ++j) dg[j] = gf[j] * cp[j] + gi[j] * gg[j];
            detail::tanh_inplace(H, dg);
            for (int64_t j = 0; j < H; ++j) {
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
        for (int64_t b = 0; b < B; ++b) {
            T* hn = h_next + b * H;
            T* yr = y + b * H;
            const T* hp = h_prev + b * H;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < H; ++j) hn[j] = hp[j], yr[j] = T(0);
                continue;
            }
            T* gr = gates + b * 3 * H;
            T* gz = gr + H;
            T* gn = gr + 2 * H;
            const T* hr = hg + b * 3 * H;
            for (int64_t j = 0; j < 2 * H; ++j) gr[j] += hr[j];
            detail::sigmoid_inplace(2 * H, gr);
            for (int64_t j = 0; j < H; ++j) gn[j] += gr[j] * hr[2 * H + j];
            detail::tanh_inplace(H, gn);
            for (int64_t j = 0; j < H; ++j) {
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
        for (int64_t b = 0; b < B; ++b) {
            T* dx = dgx + b * 3 * H;
            T* dhh = dgh + b * 3 * H;
            if (!detail::rnn_row_active(lengths, b, t)) {
                for (int64_t j = 0; j < 3 * H; ++j) dx[j] = T(0), dhh[j] = T(0);
                continue;
            }
            const T* gr = gates + b * 3 * H;
            const T* gz = gr + H;
            const T* gn = gr + 2 * H;
            const T* hr = hg + b * 3 * H;
            const T* hp = h_prev + b * H;
            const T* dyr = dy + b * H;
            T* dhr = dh + b * H;
            for (int64_t j = 0; j < H; ++j) {
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
};

}  // namespace tapegrad::backend
