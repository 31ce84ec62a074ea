/// \file
/// The CUDA kernels of the recurrent cells (ops/rnn.hpp's fast path): one time step's fused gate
/// nonlinearities of an Elman RNN, an LSTM and a GRU, and their adjoints, as the members of
/// backend::CpuRnn (backend/cpu/rnn.hpp), which document the formulas. Kernels, then launchers, then the
/// explicit instantiations for float and double.
///
/// One thread per (row b, unit j) of the B x H step, grid-stride: each thread reads its unit's gates
/// (G blocks of H in the row), writes the state, the output and, in the backward, the gate gradients. A
/// row past its sequence's length (t >= lengths[b]) keeps its state and writes zeros, as on the CPU.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/rnn.cuh>

namespace tapegrad::cuda {
namespace detail {

__device__ inline bool row_active(const int64_t* lengths, int64_t b, int64_t t) {
    return lengths == nullptr || t < lengths[b];
}
template <class T>
__device__ inline T sigmoid(T x) {
    if (x >= T(0)) return T(1) / (T(1) + exp(-x));
    const T e = exp(x);
    return e / (T(1) + e);
}

template <class T>
__global__ void rnn_cell_forward_kernel(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu,
                                        const T* h_prev, T* pre, T* h_next, T* y) {
    for (int64_t i = global_thread(); i < B * H; i += grid_threads()) {
        const int64_t b = i / H;
        if (!row_active(lengths, b, t)) {
            h_next[i] = h_prev[i];
            y[i] = T(0);
            continue;
        }
        const T p = pre[i];
        const T h = relu ? (p > T(0) ? p : T(0)) : tanh(p);
        pre[i] = h;
        h_next[i] = h;
        y[i] = h;
    }
}

template <class T>
__global__ void rnn_cell_backward_kernel(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu,
                                         const T* h, const T* dy, T* dh, T* dpre) {
    for (int64_t i = global_thread(); i < B * H; i += grid_threads()) {
        const int64_t b = i / H;
        if (!row_active(lengths, b, t)) {
            dpre[i] = T(0);
            continue;
        }
        const T g = dh[i] + dy[i], v = h[i];
        dpre[i] = relu ? (v > T(0) ? g : T(0)) : g * (T(1) - v * v);
        dh[i] = T(0);
    }
}

template <class T>
__global__ void lstm_cell_forward_kernel(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev,
                                         const T* c_prev, T* gates, T* h_next, T* c_next, T* y) {
    for (int64_t i = global_thread(); i < B * H; i += grid_threads()) {
        const int64_t b = i / H, j = i - b * H;
        if (!row_active(lengths, b, t)) {
            h_next[i] = h_prev[i];
            c_next[i] = c_prev[i];
            y[i] = T(0);
            continue;
        }
        T* g = gates + b * 4 * H + j;
        const T gi = sigmoid(g[0]), gf = sigmoid(g[H]), gg = tanh(g[2 * H]), go = sigmoid(g[3 * H]);
        g[0] = gi, g[H] = gf, g[2 * H] = gg, g[3 * H] = go;
        const T c = gf * c_prev[i] + gi * gg;
        const T h = go * tanh(c);
        c_next[i] = c;
        h_next[i] = h;
        y[i] = h;
    }
}

template <class T>
__global__ void lstm_cell_backward_kernel(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates,
                                          const T* c_prev, const T* dy, T* dh, T* dc, T* dgates) {
    for (int64_t i = global_thread(); i < B * H; i += grid_threads()) {
        const int64_t b = i / H, j = i - b * H;
        T* dg = dgates + b * 4 * H + j;
        if (!row_active(lengths, b, t)) {
            dg[0] = T(0), dg[H] = T(0), dg[2 * H] = T(0), dg[3 * H] = T(0);
            continue;
        }
        const T* g = gates + b * 4 * H + j;
        const T gi = g[0], gf = g[H], gg = g[2 * H], go = g[3 * H], cp = c_prev[i];
        const T tc = tanh(gf * cp + gi * gg);
        const T dht = dh[i] + dy[i];
        const T dct = dc[i] + dht * go * (T(1) - tc * tc);
        dg[0] = dct * gg * gi * (T(1) - gi);
        dg[H] = dct * cp * gf * (T(1) - gf);
        dg[2 * H] = dct * gi * (T(1) - gg * gg);
        dg[3 * H] = dht * tc * go * (T(1) - go);
        dc[i] = dct * gf;
        dh[i] = T(0);
    }
}

template <class T>
__global__ void gru_cell_forward_kernel(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev,
                                        T* gates, const T* hg, T* h_next, T* y) {
    for (int64_t i = global_thread(); i < B * H; i += grid_threads()) {
        const int64_t b = i / H, j = i - b * H;
        if (!row_active(lengths, b, t)) {
            h_next[i] = h_prev[i];
            y[i] = T(0);
            continue;
        }
        T* g = gates + b * 3 * H + j;
        const T* r = hg + b * 3 * H + j;
        const T gr = sigmoid(g[0] + r[0]), gz = sigmoid(g[H] + r[H]);
        const T gn = tanh(g[2 * H] + gr * r[2 * H]);
        g[0] = gr, g[H] = gz, g[2 * H] = gn;
        const T h = gn + gz * (h_prev[i] - gn);
        h_next[i] = h;
        y[i] = h;
    }
}

template <class T>
__global__ void gru_cell_backward_kernel(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates,
                                         const T* hg, const T* h_prev, const T* dy, T* dh, T* dgx, T* dgh) {
    for (int64_t i = global_thread(); i < B * H; i += grid_threads()) {
        const int64_t b = i / H, j = i - b * H;
        T* dx = dgx + b * 3 * H + j;
        T* dr_h = dgh + b * 3 * H + j;
        if (!row_active(lengths, b, t)) {
            dx[0] = T(0), dx[H] = T(0), dx[2 * H] = T(0);
            dr_h[0] = T(0), dr_h[H] = T(0), dr_h[2 * H] = T(0);
            continue;
        }
        const T* g = gates + b * 3 * H + j;
        const T r = g[0], z = g[H], n = g[2 * H];
        const T dht = dh[i] + dy[i];
        const T dn = dht * (T(1) - z) * (T(1) - n * n);
        const T dz = dht * (h_prev[i] - n) * z * (T(1) - z);
        const T dr = dn * hg[b * 3 * H + 2 * H + j] * r * (T(1) - r);
        dx[0] = dr, dx[H] = dz, dx[2 * H] = dn;
        dr_h[0] = dr, dr_h[H] = dz, dr_h[2 * H] = dn * r;
        dh[i] = dht * z;
    }
}

}  // namespace detail

// ---- launchers ------------------------------------------------------------------------------------------

#define TAPEGRAD_RNN_LAUNCH(kernel, ...)                                                              \
    if (B * H <= 0) return;                                                                          \
    detail::kernel<<<detail::grid_for(B * H), detail::block_size, 0, stream>>>(B, H, t, lengths, __VA_ARGS__)

template <class T>
void rnn_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu, const T* h_prev, T* pre,
                      T* h_next, T* y, cudaStream_t stream) {
    TAPEGRAD_RNN_LAUNCH(rnn_cell_forward_kernel<T>, relu, h_prev, pre, h_next, y);
}
template <class T>
void rnn_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, bool relu, const T* h, const T* dy,
                       T* dh, T* dpre, cudaStream_t stream) {
    TAPEGRAD_RNN_LAUNCH(rnn_cell_backward_kernel<T>, relu, h, dy, dh, dpre);
}
template <class T>
void lstm_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev, const T* c_prev,
                       T* gates, T* h_next, T* c_next, T* y, cudaStream_t stream) {
    TAPEGRAD_RNN_LAUNCH(lstm_cell_forward_kernel<T>, h_prev, c_prev, gates, h_next, c_next, y);
}
template <class T>
void lstm_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates, const T* c_prev,
                        const T* dy, T* dh, T* dc, T* dgates, cudaStream_t stream) {
    TAPEGRAD_RNN_LAUNCH(lstm_cell_backward_kernel<T>, gates, c_prev, dy, dh, dc, dgates);
}
template <class T>
void gru_cell_forward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* h_prev, T* gates, const T* hg,
                      T* h_next, T* y, cudaStream_t stream) {
    TAPEGRAD_RNN_LAUNCH(gru_cell_forward_kernel<T>, h_prev, gates, hg, h_next, y);
}
template <class T>
void gru_cell_backward(int64_t B, int64_t H, int64_t t, const int64_t* lengths, const T* gates, const T* hg,
                       const T* h_prev, const T* dy, T* dh, T* dgx, T* dgh, cudaStream_t stream) {
    TAPEGRAD_RNN_LAUNCH(gru_cell_backward_kernel<T>, gates, hg, h_prev, dy, dh, dgx, dgh);
}

#undef TAPEGRAD_RNN_LAUNCH

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_RNN_INSTANTIATE(T)                                                                                 \
    template void rnn_cell_forward<T>(int64_t, int64_t, int64_t, const int64_t*, bool, const T*, T*, T*, T*,        \
                                      cudaStream_t);                                                                \
    template void rnn_cell_backward<T>(int64_t, int64_t, int64_t, const int64_t*, bool, const T*, const T*, T*, T*, \
                                       cudaStream_t);                                                               \
    template void lstm_cell_forward<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, const T*, T*, T*, T*,   \
                                       T*, cudaStream_t);                                                           \
    template void lstm_cell_backward<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, const T*, const T*,    \
                                        T*, T*, T*, cudaStream_t);                                                  \
    template void gru_cell_forward<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, T*, const T*, T*, T*,    \
                                      cudaStream_t);                                                                \
    template void gru_cell_backward<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, const T*, const T*,     \
                                       const T*, T*, T*, T*, cudaStream_t);
TAPEGRAD_RNN_INSTANTIATE(float)
TAPEGRAD_RNN_INSTANTIATE(double)
#undef TAPEGRAD_RNN_INSTANTIATE

}  // namespace tapegrad::cuda
