#pragma once
/// \file
/// The CPU backend's softmax and row-wise losses (family `SoftmaxLossFamily`, backend/contract.hpp):
/// softmax / log-softmax along the middle axis of an [outer, n, inner] view, and the fused cross-entropy /
/// NLL over the rows of an [N, C] matrix. Labels are class indices in [0, C), checked by the caller.
/// Twin: backend/cuda/softmax_loss.hpp (kernels in softmax_loss.cu).
///
/// Float rows (the cross-entropy's, and softmax along a contiguous last axis) run in vectors: the row's
/// max over integer keys that order like the floats, e^(x - max) by detail::exp_nonpositive (1.05 ulp, no libm
/// call), the sum by sum_contiguous's lanes; the rows are split between threads when there are enough of
/// them (cpu::batch_parts), each row computed alike on any thread count. Double keeps std::exp.

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/cpu/elementwise.hpp>
#include <tapegrad/backend/cpu/threads.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace tapegrad::backend {

namespace detail {

/// A key that orders like the float x as a signed integer: the bits, with a negative float's magnitude bits
/// flipped (-0 just below +0). A NaN with its sign bit clear is above +inf, one with it set below -inf.
inline int32_t float_order_key(float x) noexcept {
    const auto b = std::bit_cast<int32_t>(x);
    return b ^ ((b >> 31) & 0x7fffffff);
}
inline float float_from_order_key(int32_t k) noexcept { return std::bit_cast<float>(k ^ ((k >> 31) & 0x7fffffff)); }

/// The exponentials of one row of C >= 1 floats, shifted by its max: p[k] = e^(x[k] - m). Returns m and sets
/// `sum` to sum_k p[k] (>= 1 when the row is finite). Any NaN in x makes the sum NaN (a NaN max makes every
/// term NaN; a NaN below the max makes its own).
inline float exp_row(int64_t C, const float* __restrict x, float* __restrict p, float& sum) noexcept {
    constexpr int64_t lanes = 16;
    int32_t lane[lanes];
    for (int64_t j = 0; j < lanes; ++j) lane[j] = std::numeric_limits<int32_t>::min();
    int64_t k = 0;
    for (; k + lanes <= C; k += lanes)
        for (int64_t j = 0; j < lanes; ++j) lane[j] = std::max(lane[j], float_order_key(x[k + j]));
    for (; k < C; ++k) lane[0] = std::max(lane[0], float_order_key(x[k]));
    for (int64_t w = lanes / 2; w > 0; w /= 2)
        for (int64_t j = 0; j < w; ++j) lane[j] = std::max(lane[j], lane[j + w]);
    const float m = float_from_order_key(lane[0]);
    for (int64_t i = 0; i < C; ++i) p[i] = exp_nonpositive(x[i] - m);
    sum = sum_contiguous(p, C);
    return m;
}

}  // namespace detail

/// Softmax and the row-wise losses on the host.
struct CpuSoftmaxLoss {
    /// y[o, :, i] = softmax(x[o, :, i]) along the middle axis, or log_softmax when `log`. Max-shifted: with
    /// m = max_k x_k, y_k = e^(x_k - m) / s and log y_k = x_k - m - log s, s = sum_k e^(x_k - m). Every
    /// exponent is <= 0 and the largest term is exactly 1, so nothing overflows and s >= 1.
    template <class T>
    static void softmax_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
        if constexpr (std::is_same_v<T, float>) {
            if (inner == 1 && n > 0) {
                cpu::for_each_part(outer, cpu::batch_parts(outer, 24.0 * static_cast<double>(n)),
                                   [&](int64_t, int64_t o0, int64_t o1) {
                                       float ls = 0.0f;
                                       for (int64_t o = o0; o < o1; ++o)
                                           softmax_row_float(n, x + o * n, y + o * n, log, ls);
                                   });
                return;
            }
        }
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                const T* xs = x + o * n * inner + i;
                T* ys = y + o * n * inner + i;
                T m = -std::numeric_limits<T>::infinity();
                for (int64_t k = 0; k < n; ++k)
                    if (!(xs[k * inner] <= m)) m = xs[k * inner];  // a NaN becomes the max: NaN out
                BlockSum<T> sum;  // common/accumulate.hpp
                for (int64_t k = 0; k < n; ++k) {
                    const T e = std::exp(xs[k * inner] - m);
                    ys[k * inner] = e;
                    sum.add(e);
                }
                const T s = sum.value();
                if (log) {
                    const T ls = std::log(s);
                    for (int64_t k = 0; k < n; ++k) ys[k * inner] = (xs[k * inner] - m) - ls;
                } else {
                    const T inv = T(1) / s;
                    for (int64_t k = 0; k < n; ++k) ys[k * inner] *= inv;
                }
            }
    }
    /// The adjoint of softmax_axis, given its output y:
    ///   softmax:     dx_k += y_k (dy_k - sum_j dy_j y_j)
    ///   log_softmax: dx_k += dy_k - e^(y_k) sum_j dy_j      (e^(y_k) is the softmax)
    template <class T>
    static void softmax_axis_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx,
                                      bool log) {
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                const int64_t base = o * n * inner + i;
                BlockSum<T> sum;  // common/accumulate.hpp
                for (int64_t k = 0; k < n; ++k) {
                    const int64_t j = base + k * inner;
                    sum.add(log ? dy[j] : dy[j] * y[j]);
                }
                const T dot = sum.value();
                for (int64_t k = 0; k < n; ++k) {
                    const int64_t j = base + k * inner;
                    dx[j] += log ? dy[j] - std::exp(y[j]) * dot : y[j] * (dy[j] - dot);
                }
            }
    }

    /// Fused softmax + cross-entropy over the rows of logits [N, C]: probs[r, :] = softmax(logits[r, :]) and
    /// loss[r] = -log probs[r, labels[r]] = (m + log s) - logits[r, labels[r]] (max-shifted as above), so a
    /// confident wrong answer costs its full margin instead of log(0) = -inf.
    template <class T>
    static void softmax_xent_rows(int64_t N, int64_t C, const T* logits, const int64_t* labels, T* probs, T* loss) {
        if constexpr (std::is_same_v<T, float>) {
            if (C > 0) {
                cpu::for_each_part(N, cpu::batch_parts(N, 24.0 * static_cast<double>(C)),
                                   [&](int64_t, int64_t r0, int64_t r1) {
                                       for (int64_t r = r0; r < r1; ++r) {
                                           const float* x = logits + r * C;
                                           float ls = 0.0f;
                                           const float m = softmax_row_float(C, x, probs + r * C, false, ls);
                                           loss[r] = ls - (x[labels[r]] - m);
                                       }
                                   });
                return;
            }
        }
        for (int64_t r = 0; r < N; ++r) {
            const T* x = logits + r * C;
            T* p = probs + r * C;
            T m = -std::numeric_limits<T>::infinity();
            for (int64_t k = 0; k < C; ++k)
                if (!(x[k] <= m)) m = x[k];
            BlockSum<T> sum;  // common/accumulate.hpp
            for (int64_t k = 0; k < C; ++k) {
                p[k] = std::exp(x[k] - m);
                sum.add(p[k]);
            }
            const T s = sum.value();
            const T inv = T(1) / s;
            for (int64_t k = 0; k < C; ++k) p[k] *= inv;
            loss[r] = std::log(s) - (x[labels[r]] - m);
        }
    }
    /// dlogits[r, c] += scale * dloss[r * dloss_stride] * (probs[r, c] - [c == labels[r]]). A stride of 0
    /// broadcasts one scalar gradient (a mean or sum reduction) to every row.
    template <class T>
    static void softmax_xent_rows_backward(int64_t N, int64_t C, const T* probs, const int64_t* labels,
                                           const T* dloss, int64_t dloss_stride, T scale, T* dlogits) {
        cpu::for_each_part(N, cpu::batch_parts(N, 2.0 * static_cast<double>(C)), [&](int64_t, int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const T g = scale * dloss[r * dloss_stride];
                const T* __restrict p = probs + r * C;
                T* __restrict d = dlogits + r * C;
                for (int64_t c = 0; c < C; ++c) d[c] += g * p[c];
                d[labels[r]] -= g;
            }
        });
    }

    /// Negative log-likelihood over the rows of log-probabilities [N, C]: loss[r] = -logp[r, labels[r]].
    template <class T>
    static void nll_rows(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss) {
        for (int64_t r = 0; r < N; ++r) loss[r] = -logp[r * C + labels[r]];
    }
    /// dlogp[r, labels[r]] -= scale * dloss[r * dloss_stride] (stride 0: one scalar for every row).
    template <class T>
    static void nll_rows_backward(int64_t N, int64_t C, const int64_t* labels, const T* dloss, int64_t dloss_stride,
                                  T scale, T* dlogp) {
        for (int64_t r = 0; r < N; ++r) dlogp[r * C + labels[r]] -= scale * dloss[r * dloss_stride];
    }

private:
    /// One contiguous float row of C > 0: y = softmax(x), or log_softmax(x) when `log`. Returns the row's
    /// max m and sets ls = log s (see softmax_axis).
    static float softmax_row_float(int64_t C, const float* __restrict x, float* __restrict y, bool log,
                                   float& ls) noexcept {
        float s = 0.0f;
        const float m = detail::exp_row(C, x, y, s);
        ls = std::log(s);
        if (log) {
            for (int64_t k = 0; k < C; ++k) y[k] = (x[k] - m) - ls;
        } else {
            const float inv = 1.0f / s;
            for (int64_t k = 0; k < C; ++k) y[k] *= inv;
        }
        return m;
    }
};

}  // namespace tapegrad::backend
