#pragma once
/// \file
/// The CPU backend's index primitives (family `IndexFamily`, backend/contract.hpp): conversions between
/// element types, comparisons, argmax/argmin, strided copies of any element type, the range check of
/// index tensors, and the index ops with their adjoints (embedding, index_select, gather, where,
/// masked_fill). Twin: backend/cuda/index.hpp (kernels in backend/cuda/index.cu).
///
/// Determinism: every adjoint that sums several contributions into one gradient element adds them in
/// ascending order of their position in the index tensor, starting from the element's current value. The
/// CUDA twin gives each gradient element to one thread, which adds in the same order: the same bits on
/// both devices, every run (no atomics).

#include <tapegrad/backend/common/index_plan.hpp>
#include <tapegrad/backend/common/strided.hpp>

#include <array>
#include <cstdint>
#include <cstring>

namespace tapegrad::backend {

namespace detail {
/// Row-major strides of the first `rank` entries of `dims`.
inline std::array<int64_t, max_rank> strides_of(const std::array<int64_t, max_rank>& dims, int rank) {
    std::array<int64_t, max_rank> s{};
    int64_t acc = 1;
    for (int d = rank - 1; d >= 0; --d) {
        s[static_cast<size_t>(d)] = acc;
        acc *= dims[static_cast<size_t>(d)];
    }
    return s;
}
}  // namespace detail

/// Index primitives on the host.
struct CpuIndex {
    /// out[i] = U(x[i]), as static_cast converts (float to integer truncates toward zero).
    template <class S, class U>
    static void convert(int64_t n, const S* x, U* out) {
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<U>(x[i]);
    }

    /// out[i] = a[i] <op> b[i] ? 1 : 0 with broadcasting: p.dims is out's shape, p.sa / p.sb the strides
    /// of a and b (0 where broadcast).
    template <class T>
    static void compare(const Strided& p, CompareOp op, const T* a, const T* b, uint8_t* out) {
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
            for (int64_t i = 0; i < n; ++i) out[o + i] = compare_values(op, a[ia + i * sa], b[ib + i * sb]) ? 1 : 0;
        });
    }

    /// out[o, i] = the index k along the middle axis of x: [outer, n, inner] of the largest (is_min: the
    /// smallest) x[o, k, i]; the first one on ties; a NaN wins (as PyTorch). n >= 1.  -> out: [outer, inner]
    template <class T>
    static void arg_reduce_axis(int64_t outer, int64_t n, int64_t inner, bool is_min, const T* x, int64_t* out) {
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                const T* src = x + o * n * inner + i;
                T best = src[0];
                int64_t bi = 0;
                for (int64_t k = 1; k < n; ++k) {
                    const T v = src[k * inner];
                    const bool better = is_min ? v < best : v > best;
                    if (better || (v != v && best == best)) {
                        best = v;
                        bi = k;
                    }
                }
                out[o * inner + i] = bi;
            }
    }

    /// out[contiguous over p.dims] = x[strided by p.sa], for any element type (transposes and slices of
    /// integer and mask tensors).
    template <class T>
    static void copy_strided(const Strided& p, const T* x, T* out) {
        for_each_run(p, [&](int64_t o, int64_t ia, int64_t, int64_t n, int64_t sa, int64_t) {
            for (int64_t i = 0; i < n; ++i) out[o + i] = x[ia + i * sa];
        });
    }

    /// The first position i < n whose ids[i] lies outside [lo, hi), or -1 when all are inside. The answer is
    /// on the host (a GPU waits for the ids).
    static int64_t find_out_of_range(int64_t n, const int64_t* ids, int64_t lo, int64_t hi) {
        for (int64_t i = 0; i < n; ++i)
            if (ids[i] < lo || ids[i] >= hi) return i;
        return -1;
    }

    /// out[p, :] = w[ids[p], :] for p < n (rows of `dim` elements); ids checked to lie in w's rows.
    /// ids: [n], w: [rows, dim] -> out: [n, dim]
    template <class T>
    static void embedding(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, const T* w, T* out) {
        static_cast<void>(rows);
        if (dim == 0) return;
        for (int64_t p = 0; p < n; ++p)
            std::memcpy(out + p * dim, w + ids[p] * dim, static_cast<size_t>(dim) * sizeof(T));
    }
    /// dw[ids[p], :] += dy[p, :] for every p < n whose id is not padding_idx (-1: none), in ascending p.
    /// ids: [n], dy: [n, dim] -> dw: [rows, dim]
    template <class T>
    static void embedding_backward(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, int64_t padding_idx,
                                   const T* dy, T* dw) {
        static_cast<void>(rows);
        for (int64_t p = 0; p < n; ++p) {
            const int64_t r = ids[p];
            if (r == padding_idx) continue;
            T* dst = dw + r * dim;
            const T* src = dy + p * dim;
            for (int64_t c = 0; c < dim; ++c) dst[c] += src[c];
        }
    }

    /// out[o, j, i] = x[o, idx[j], i]. x: [outer, n, inner], idx: [k] -> out: [outer, k, inner]
    template <class T>
    static void index_select_axis(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx, const T* x,
                                  T* out) {
        if (inner == 0) return;
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t j = 0; j < k; ++j)
                std::memcpy(out + (o * k + j) * inner, x + (o * n + idx[j]) * inner, static_cast<size_t>(inner) * sizeof(T));
    }
    /// dx[o, idx[j], i] += dy[o, j, i], in ascending j. dy: [outer, k, inner] -> dx: [outer, n, inner]
    template <class T>
    static void index_select_axis_backward(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx,
                                           const T* dy, T* dx) {
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t j = 0; j < k; ++j) {
                T* dst = dx + (o * n + idx[j]) * inner;
                const T* src = dy + (o * k + j) * inner;
                for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
            }
    }

    /// out[m] = x[m with coordinate g.dim replaced by idx[m]] for every multi-index m of idx's shape g.di.
    template <class T>
    static void gather_axis(const GatherPlan& g, const int64_t* idx, const T* x, T* out) {
        walk_gather(g, [&](int64_t m, int64_t xo) { out[m] = x[xo]; }, idx);
    }
    /// dx[m with coordinate g.dim replaced by idx[m]] += dy[m], in row-major order of m.
    template <class T>
    static void gather_axis_backward(const GatherPlan& g, const int64_t* idx, const T* dy, T* dx) {
        walk_gather(g, [&](int64_t m, int64_t xo) { dx[xo] += dy[m]; }, idx);
    }

    /// out[i] = mask[i] ? a[i] : b[i]; p.dims is out's shape (a, b and out contiguous in it), p.sa the mask's
    /// strides (0 where the mask is broadcast).
    template <class T>
    static void where(const Strided& p, const uint8_t* mask, const T* a, const T* b, T* out) {
        for_each_run(p, [&](int64_t o, int64_t im, int64_t, int64_t n, int64_t sm, int64_t) {
            for (int64_t i = 0; i < n; ++i) out[o + i] = mask[im + i * sm] ? a[o + i] : b[o + i];
        });
    }
    /// out[i] = mask[i] ? v : x[i] (the plan as for where).
    template <class T>
    static void masked_fill(const Strided& p, const uint8_t* mask, const T* x, T v, T* out) {
        for_each_run(p, [&](int64_t o, int64_t im, int64_t, int64_t n, int64_t sm, int64_t) {
            for (int64_t i = 0; i < n; ++i) out[o + i] = mask[im + i * sm] ? v : x[o + i];
        });
    }
    /// da[i] += mask[i] ? dy[i] : 0 and db[i] += mask[i] ? 0 : dy[i]; a null da or db is skipped.
    template <class T>
    static void where_backward(const Strided& p, const uint8_t* mask, const T* dy, T* da, T* db) {
        for_each_run(p, [&](int64_t o, int64_t im, int64_t, int64_t n, int64_t sm, int64_t) {
            for (int64_t i = 0; i < n; ++i) {
                const bool m = mask[im + i * sm] != 0;
                if (m && da) da[o + i] += dy[o + i];
                if (!m && db) db[o + i] += dy[o + i];
            }
        });
    }

private:
    /// Calls f(m, x_offset) for every flat index m of idx's shape, in row-major order.
    template <class F>
    static void walk_gather(const GatherPlan& g, F&& f, const int64_t* idx) {
        const auto xs = detail::strides_of(g.dx, g.rank);
        int64_t total = 1;
        for (int d = 0; d < g.rank; ++d) total *= g.di[static_cast<size_t>(d)];
        if (total == 0) return;
        std::array<int64_t, max_rank> m{};
        int64_t base = 0;  // x offset of m without the dim coordinate
        const auto dimz = static_cast<size_t>(g.dim);
        for (int64_t flat = 0; flat < total; ++flat) {
            f(flat, base + idx[flat] * xs[dimz]);
            for (int d = g.rank - 1; d >= 0; --d) {
                const auto ds = static_cast<size_t>(d);
                if (ds != dimz) base += xs[ds];
                if (++m[ds] < g.di[ds]) break;
                if (ds != dimz) base -= xs[ds] * g.di[ds];
                m[ds] = 0;
            }
        }
    }
};

}  // namespace tapegrad::backend
