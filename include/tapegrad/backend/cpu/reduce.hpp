#pragma once
/// \file
/// The CPU backend's reductions (family `ReductionFamily`, backend/contract.hpp): sums, maxima and their
/// adjoints over the middle axis of an [outer, n, inner] view, block copies along that axis, and the row
/// vector of a bias with its column sums. Twin: backend/cuda/reduce.hpp (kernels in reduce.cu).

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/cpu/memory.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>

namespace tapegrad::backend {

/// Reductions on the host.
struct CpuReduce {
    // ---- reductions over the middle axis of an [outer, n, inner] view -----------------------------------
    /// out[o, i] = sum_k x[o, k, i]
    template <class T>
    static void sum_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out) {
        for (int64_t o = 0; o < outer; ++o) {  // blocked, with double totals (common/accumulate.hpp)
            if (inner == 1)
                out[o] = sum_contiguous(x + o * n, n);
            else
                sum_rows(n, inner, x + o * n * inner, out + o * inner, false);
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
                CpuMemory::copy(m, s, d);
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
        sum_rows(rows, cols, g, out, true);  // blocked, with double totals (common/accumulate.hpp)
    }
};

}  // namespace tapegrad::backend
