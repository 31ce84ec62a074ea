#pragma once
/// \file
/// The CPU backend's softmax and row-wise losses (family `SoftmaxLossFamily`, backend/contract.hpp):
/// softmax / log-softmax along the middle axis of an [outer, n, inner] view, and the fused cross-entropy /
/// NLL over the rows of an [N, C] matrix. Labels are class indices in [0, C), checked by the caller.
/// Twin: backend/cuda/softmax_loss.hpp (kernels in softmax_loss.cu).

#include <tapegrad/backend/common/accumulate.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

namespace tapegrad::backend {

/// Softmax and the row-wise losses on the host.
struct CpuSoftmaxLoss {
    /// y[o, :, i] = softmax(x[o, :, i]) along the middle axis, or log_softmax when `log`. Max-shifted: with
    /// m = max_k x_k, y_k = e^(x_k - m) / s and log y_k = x_k - m - log s, s = sum_k e^(x_k - m). Every
    /// exponent is <= 0 and the largest term is exactly 1, so nothing overflows and s >= 1.
    template <class T>
    static void softmax_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
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
        for (int64_t r = 0; r < N; ++r) {
            const T g = scale * dloss[r * dloss_stride];
            const T* p = probs + r * C;
            T* d = dlogits + r * C;
            for (int64_t c = 0; c < C; ++c) d[c] += g * p[c];
            d[labels[r]] -= g;
        }
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
};

}  // namespace tapegrad::backend
