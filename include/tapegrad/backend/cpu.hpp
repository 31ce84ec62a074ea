#pragma once
/// \file
/// The CPU backend: the small set of primitives that autograd and the layers are written against. Each
/// takes raw buffers and sizes and knows nothing of `Tensor`, so a second backend (CUDA) implements the same
/// list and every backward formula is written once, above this floor.
///
/// Broadcasting primitives take a `Strided` plan (backend/strided.hpp).

#include <tapegrad/backend/counter_rng.hpp>
#include <tapegrad/backend/cpu_threads.hpp>
#include <tapegrad/backend/functors.hpp>
#include <tapegrad/backend/multi_tensor.hpp>
#include <tapegrad/backend/pool.hpp>
#include <tapegrad/backend/strided.hpp>
#include <tapegrad/core/device.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/live_counters.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

namespace tapegrad::backend {

/// Live bytes allocated by the CPU backend (all threads), for tests that check memory returns to its
/// baseline: `cpu_live_bytes().load()`.
inline detail::LiveCounter<detail::Live::cpu_bytes> cpu_live_bytes() noexcept { return {}; }

template <class T>
using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned64>;
template <class T>
using CVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned64>;
template <class T>
using UVec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CUVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Primitives of one device. Only specialisations exist.
template <Device D>
struct Ops;

template <>
struct Ops<Cpu> {
    static constexpr size_t alignment = 64;

    // ---- memory ---------------------------------------------------------------------------------------
    template <class T>
    static T* allocate(int64_t n) {
        TAPEGRAD_CHECK(n >= 0 && static_cast<uint64_t>(n) <= std::numeric_limits<size_t>::max() / sizeof(T) / 2,
                       ValueError, "allocate: cannot allocate ", n, " elements");
        const size_t bytes = static_cast<size_t>(n) * sizeof(T);
        void* p = HostPool::allocate(bytes);
        cpu_live_bytes().add(static_cast<int64_t>(HostPool::block_size(bytes)));
        return static_cast<T*>(p);
    }
    template <class T>
    static void deallocate(T* p, int64_t n) noexcept {
        const size_t bytes = static_cast<size_t>(n) * sizeof(T);
        cpu_live_bytes().add(-static_cast<int64_t>(HostPool::block_size(bytes)));
        HostPool::deallocate(p, bytes);
    }

    /// Whether work is being recorded into a device graph instead of run (never on the CPU; see cuda::Graph).
    static constexpr bool capturing() noexcept { return false; }

    // ---- host transfers (the same memory here; a copy to and from the device elsewhere) ------------------
    /// dst = host values.
    template <class T>
    static void upload(int64_t n, const T* host, T* dst) { copy(n, host, dst); }
    /// host = src.
    template <class T>
    static void download(int64_t n, const T* src, T* host) { copy(n, src, host); }

    // ---- data: a device-resident loader's batch gather (data::DeviceLoader) -----------------------------
    /// With start = *cursor: out[i, :] = src[perm[start + i], :] and out_labels[i] = labels[perm[start + i]]
    /// for i < rows (rows of `cols` elements); then *cursor = start + rows, or 0 when another batch would
    /// pass `limit` (the permutation's length), so that the next gather stays within it.
    template <class T>
    static void gather_batch(int64_t rows, int64_t cols, const T* src, const int64_t* labels, const int64_t* perm,
                             int64_t limit, int64_t* cursor, T* out, int64_t* out_labels) {
        const int64_t start = *cursor;
        for (int64_t i = 0; i < rows; ++i) {
            const int64_t k = perm[start + i];
            if (cols > 0) std::memcpy(out + i * cols, src + k * cols, static_cast<size_t>(cols) * sizeof(T));
            out_labels[i] = labels[k];
        }
        *cursor = start + 2 * rows <= limit ? start + rows : 0;
    }

    // ---- simple fills and copies ------------------------------------------------------------------------
    template <class T>
    static void fill(int64_t n, T v, T* out) { std::fill_n(out, n, v); }
    template <class T>
    static void copy(int64_t n, const T* x, T* out) {
        if (n > 0) std::memcpy(out, x, static_cast<size_t>(n) * sizeof(T));
    }
    /// y += alpha * x
    template <class T>
    static void axpy(int64_t n, T alpha, const T* x, T* y) {
        if (alpha == T(1))
            UVec<T>(y, n) += CUVec<T>(x, n);
        else
            UVec<T>(y, n) += alpha * CUVec<T>(x, n);
    }
    /// y *= alpha
    template <class T>
    static void scale(int64_t n, T alpha, T* y) { UVec<T>(y, n) *= alpha; }

    // ---- elementwise ----------------------------------------------------------------------------------
    /// y[i] = f(x[i])
    template <class T, class F>
    static void map(int64_t n, const T* x, T* y, const F& f) {
        if constexpr (std::is_same_v<F, fn::Tanh> && std::is_same_v<T, float>) {
            // Eigen's vectorised float tanh (a rational approximation, within 8 ulp of std::tanh and exactly
            // +-1 beyond |x| ~ 7.9) is about 40x faster than calling std::tanh per element. Double keeps
            // std::tanh: Eigen 3.4 has no vectorised double tanh, and gradcheck runs in double.
            UVec<T>(y, n) = CUVec<T>(x, n).tanh();
            return;
        }
        for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
    }
    /// dx[i] += f.backward(x[i], y[i], dy[i]), or = when `assign` (then dx may be dy itself).
    template <class T, class F>
    static void map_backward(int64_t n, const T* x, const T* y, const T* dy, T* dx, const F& f, bool assign = false) {
        if (assign)
            for (int64_t i = 0; i < n; ++i) dx[i] = f.backward(x[i], y[i], dy[i]);
        else
            for (int64_t i = 0; i < n; ++i) dx[i] += f.backward(x[i], y[i], dy[i]);
    }
    /// out = f(a, b) with broadcasting.
    template <class T, class F>
    static void zip(const Strided& p, const T* a, const T* b, T* out, const F& f) {
        if (p.a_contig && p.b_contig) {
            const int64_t n = p.numel();
            for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
            return;
        }
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
            T* y = out + o;
            const T* pa = a + ia;
            const T* pb = b + ib;
            if (sa == 1 && sb == 0) {
                const T bv = *pb;
                for (int64_t i = 0; i < n; ++i) y[i] = f(pa[i], bv);
            } else if (sa == 1 && sb == 1) {
                for (int64_t i = 0; i < n; ++i) y[i] = f(pa[i], pb[i]);
            } else {
                for (int64_t i = 0; i < n; ++i) y[i] = f(pa[i * sa], pb[i * sb]);
            }
        });
    }
    /// da[a index] += f.da(a, b, y, dy) and/or db[b index] += f.db(...) over the broadcast output; either
    /// target may be null. Because the plan's strides are 0 on broadcast dimensions, each output element
    /// adds into the operand element it was computed from: the sum over broadcast dimensions is fused in.
    /// With `assign_a` (only when a has the output's shape) da is overwritten instead, and may be dy itself:
    /// db is computed from dy before da replaces it.
    template <class T, class F>
    static void zip_backward(const Strided& p, const T* a, const T* b, const T* y, const T* dy, T* da, T* db,
                             const F& f, bool assign_a = false) {
        if (p.a_contig && p.b_contig) {
            const int64_t n = p.numel();
            if (db)
                for (int64_t i = 0; i < n; ++i) db[i] += f.db(a[i], b[i], y[i], dy[i]);
            if (da && assign_a)
                for (int64_t i = 0; i < n; ++i) da[i] = f.da(a[i], b[i], y[i], dy[i]);
            else if (da)
                for (int64_t i = 0; i < n; ++i) da[i] += f.da(a[i], b[i], y[i], dy[i]);
            return;
        }
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
            for (int64_t i = 0; i < n; ++i) {
                const int64_t ja = ia + i * sa, jb = ib + i * sb;
                const T g = dy[o + i];
                if (db) db[jb] += f.db(a[ja], b[jb], y[o + i], g);
                if (da) {
                    const T v = f.da(a[ja], b[jb], y[o + i], g);
                    da[ja] = assign_a ? v : da[ja] + v;
                }
            }
        });
    }
    /// out[contiguous] = in[strided by p.sa]: transposes, permutes and broadcasts (expand) in one walk.
    template <class T>
    static void strided_copy(const Strided& p, const T* in, T* out) {
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t, int64_t n, int64_t sa, int64_t) {
            for (int64_t i = 0; i < n; ++i) out[o + i] = in[ia + i * sa];
        });
    }
    /// out[strided by p.sa] += in[contiguous]: the adjoint of strided_copy (sums over broadcast dims).
    template <class T>
    static void strided_add(const Strided& p, const T* in, T* out) {
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t, int64_t n, int64_t sa, int64_t) {
            for (int64_t i = 0; i < n; ++i) out[ia + i * sa] += in[o + i];
        });
    }

    // ---- reductions over the middle axis of an [outer, n, inner] view -----------------------------------
    /// out[o, i] = sum_k x[o, k, i]
    template <class T>
    static void sum_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out) {
        for (int64_t o = 0; o < outer; ++o) {
            T* dst = out + o * inner;
            std::fill_n(dst, inner, T(0));
            for (int64_t k = 0; k < n; ++k) {
                const T* src = x + (o * n + k) * inner;
                for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
            }
        }
    }
    /// dx[o, k, i] += alpha * g[o, i]  (the adjoint of sum_axis, scaled)
    template <class T>
    static void expand_axis_add(int64_t outer, int64_t n, int64_t inner, T alpha, const T* g, T* dx) {
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t k = 0; k < n; ++k) {
                T* dst = dx + (o * n + k) * inner;
                const T* src = g + o * inner;
                for (int64_t i = 0; i < inner; ++i) dst[i] += alpha * src[i];
            }
    }
    /// out[o, i] = max_k x[o, k, i], arg[o, i] = the first k reaching it (NaN counts as the maximum).
    template <class T>
    static void max_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, int64_t* arg) {
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                const T* src = x + o * n * inner + i;
                T best = src[0];
                int64_t bi = 0;
                for (int64_t k = 1; k < n; ++k) {
                    const T v = src[k * inner];
                    if (v > best || (v != v && best == best)) {
                        best = v;
                        bi = k;
                    }
                }
                out[o * inner + i] = best;
                arg[o * inner + i] = bi;
            }
    }
    /// dx[o, arg[o,i], i] += g[o, i]
    template <class T>
    static void scatter_axis_add(int64_t outer, int64_t n, int64_t inner, const int64_t* arg, const T* g, T* dx) {
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) dx[(o * n + arg[o * inner + i]) * inner + i] += g[o * inner + i];
    }
    /// Copies the block [outer, len, inner] starting at `start` along the middle axis of an [outer, n, inner]
    /// source into an [outer, len, inner] destination (`add` accumulates; `reverse` copies dst -> src).
    template <class T>
    static void copy_axis_block(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* src,
                                int64_t dst_n, int64_t dst_start, T* dst, bool add) {
        for (int64_t o = 0; o < outer; ++o) {
            const T* s = src + (o * n + start) * inner;
            T* d = dst + (o * dst_n + dst_start) * inner;
            const int64_t m = len * inner;
            if (add)
                for (int64_t i = 0; i < m; ++i) d[i] += s[i];
            else
                copy(m, s, d);
        }
    }

    /// y[r, :] += v for every row r of a [rows, cols] matrix (bias add).
    template <class T>
    static void add_row_vector(int64_t rows, int64_t cols, const T* v, T* y) {
        Eigen::Map<RowMat<T>> m(y, rows, cols);
        m.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(v, cols);
    }
    /// out[c] += sum_r g[r, c] (the bias gradient).
    template <class T>
    static void add_column_sums(int64_t rows, int64_t cols, const T* g, T* out) {
        Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(out, cols) +=
            Eigen::Map<const RowMat<T>>(g, rows, cols).colwise().sum();
    }

    // ---- matrix products ------------------------------------------------------------------------------
    /// C[M,N] = alpha * op(A) * op(B) + beta * C, all row-major and contiguous; op(A) is [M,K] (A stored
    /// [K,M] when trans_a), op(B) is [K,N] (B stored [N,K] when trans_b). beta = 0 ignores C's contents.
    template <class T>
    static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B,
                     T beta, T* C) {
        using Map = Eigen::Map<const RowMat<T>>;
        Eigen::Map<RowMat<T>> c(C, M, N);
        if (K == 0) {
            if (beta == T(0))
                c.setZero();
            else
                c *= beta;
            return;
        }
        const Map a(A, trans_a ? K : M, trans_a ? M : K);
        const Map b(B, trans_b ? N : K, trans_b ? K : N);
        const tapegrad::detail::ProductThreads threads(M, N, K);  // one thread for small products
        if (beta == T(0)) {
            if (!trans_a && !trans_b) c.noalias() = alpha * (a * b);
            else if (trans_a && !trans_b) c.noalias() = alpha * (a.transpose() * b);
            else if (!trans_a && trans_b) c.noalias() = alpha * (a * b.transpose());
            else c.noalias() = alpha * (a.transpose() * b.transpose());
        } else {
            if (beta != T(1)) c *= beta;
            if (!trans_a && !trans_b) c.noalias() += alpha * (a * b);
            else if (trans_a && !trans_b) c.noalias() += alpha * (a.transpose() * b);
            else if (!trans_a && trans_b) c.noalias() += alpha * (a * b.transpose());
            else c.noalias() += alpha * (a.transpose() * b.transpose());
        }
    }

    // ---- optimizer updates (optim/sgd.hpp, optim/adam.hpp), one pass over each parameter ------------------
    /// torch.optim.SGD: g = grad + weight_decay p; with momentum, buf = g on the first step, else
    /// momentum buf + (1 - dampening) g, and the step uses nesterov ? g + momentum buf : buf; p -= lr step.
    /// momentum_buf is ignored (may be null) when momentum is 0.
    template <class T>
    static void sgd_step(int64_t n, T* p, const T* grad, T* momentum_buf, T lr, T momentum, T dampening,
                         T weight_decay, bool nesterov, bool first_step) {
        const T keep = T(1) - dampening;
        const bool decay = weight_decay != T(0);
        if (momentum == T(0)) {
            for (int64_t k = 0; k < n; ++k) {
                const T g = decay ? grad[k] + weight_decay * p[k] : grad[k];
                p[k] -= lr * g;
            }
            return;
        }
        T* b = momentum_buf;
        for (int64_t k = 0; k < n; ++k) {
            const T g = decay ? grad[k] + weight_decay * p[k] : grad[k];
            b[k] = first_step ? g : momentum * b[k] + keep * g;
            p[k] -= lr * (nesterov ? g + momentum * b[k] : b[k]);
        }
    }
    /// torch.optim.Adam / AdamW with bias corrections bc1 = 1 - beta1^t, bc2 = 1 - beta2^t: weight decay is
    /// L2 (g += wd p) unless `decoupled` (p *= 1 - lr wd first); m = lerp(m, g, 1 - beta1) (torch.lerp's
    /// form); v = beta2 v + (1 - beta2) g^2; with amsgrad vmax = max(vmax, v) (NaN propagates) replaces v;
    /// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), arranged as PyTorch does.
    template <class T>
    static void adam_step(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, T lr, T beta1, T beta2, T eps,
                          T weight_decay, bool decoupled, bool amsgrad, T bc1, T bc2) {
        const T w1 = T(1) - beta1, w2 = T(1) - beta2, shrink = T(1) - lr * weight_decay;
        const bool l2 = !decoupled && weight_decay != T(0);
        const T step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
        for (int64_t k = 0; k < n; ++k) {
            if (decoupled) p[k] *= shrink;
            const T g = l2 ? grad[k] + weight_decay * p[k] : grad[k];
            m[k] = std::abs(w1) < T(0.5) ? m[k] + w1 * (g - m[k]) : g - (g - m[k]) * (T(1) - w1);
            v[k] = beta2 * v[k] + w2 * g * g;
            T vk = v[k];
            if (amsgrad) {
                vmax[k] = (vk > vmax[k] || std::isnan(vk)) ? vk : vmax[k];
                vk = vmax[k];
            }
            const T denom = std::sqrt(vk) / bc2_sqrt + eps;
            p[k] -= step_size * (m[k] / denom);
        }
    }

    // ---- multi-tensor optimizer updates (backend/multi_tensor.hpp): one call per list ----------------------
    // The optimizers call these once per step for all their parameters. Here they are loops over the
    // one-tensor updates above (same results, bit for bit); on the GPU one kernel launch does the whole list.

    /// sgd_step on every parameter of params[0, count), each with its own buffer and first-step flag.
    template <class T>
    static void sgd_step_many(int64_t count, const SgdParam<T>* params, T lr, T momentum, T dampening,
                              T weight_decay, bool nesterov) {
        for (int64_t i = 0; i < count; ++i) {
            const SgdParam<T>& q = params[i];
            sgd_step(q.n, q.p, q.grad, q.momentum_buf, lr, momentum, dampening, weight_decay, nesterov, q.first_step);
        }
    }
    /// adam_step on every parameter of params[0, count), each with its own bias corrections bc1, bc2.
    template <class T>
    static void adam_step_many(int64_t count, const AdamParam<T>* params, T lr, T beta1, T beta2, T eps,
                               T weight_decay, bool decoupled, bool amsgrad) {
        for (int64_t i = 0; i < count; ++i) {
            const AdamParam<T>& q = params[i];
            adam_step(q.n, q.p, q.grad, q.m, q.v, q.vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                      q.bc1, q.bc2);
        }
    }
    /// fill on every buffer of buffers[0, count).
    template <class T>
    static void fill_many(int64_t count, const Buffer<T>* buffers, T value) {
        for (int64_t i = 0; i < count; ++i) fill(buffers[i].n, value, buffers[i].data);
    }

    // ==== softmax, log-softmax and the row-wise losses (ops/softmax.hpp, nn/loss.hpp) ====================
    // Appended section: softmax along the middle axis of an [outer, n, inner] view, and the fused
    // cross-entropy / NLL over the rows of an [N, C] matrix. Labels are class indices in [0, C), checked by
    // the caller.

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
                T s = T(0);
                for (int64_t k = 0; k < n; ++k) {
                    const T e = std::exp(xs[k * inner] - m);
                    ys[k * inner] = e;
                    s += e;
                }
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
                T dot = T(0);
                for (int64_t k = 0; k < n; ++k) {
                    const int64_t j = base + k * inner;
                    dot += log ? dy[j] : dy[j] * y[j];
                }
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
            T s = T(0);
            for (int64_t k = 0; k < C; ++k) {
                p[k] = std::exp(x[k] - m);
                s += p[k];
            }
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
    // ==== end of the softmax / row-wise loss section =====================================================

    // ==== random masks (nn/dropout.hpp), from the counter-based generator of backend/counter_rng.hpp ======
    /// mask[i] = 1/(1-p) where dropout_keeps(seed, offset + i, dropout_threshold(p)), else 0, for i < n:
    /// element i of the stream `seed` counted from `offset`, so Ops<Cuda>::dropout_mask draws the same values.
    /// p in [0, 1).  -> mask: [n]
    template <class T>
    static void dropout_mask(int64_t n, double p, uint64_t seed, uint64_t offset, T* mask) {
        const uint64_t threshold = dropout_threshold(p);
        const T keep = static_cast<T>(1.0 / (1.0 - p));
        for (int64_t i = 0; i < n; ++i)
            mask[i] = dropout_keeps(seed, offset + static_cast<uint64_t>(i), threshold) ? keep : T(0);
    }
    // ==== end of the random-mask section ===================================================================
};

}  // namespace tapegrad::backend
