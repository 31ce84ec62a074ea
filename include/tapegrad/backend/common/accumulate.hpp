#pragma once
/// \file
/// Accurate sums: the accumulation behind every reduction (sum and mean, the losses' reductions, softmax
/// denominators, gradients summed over broadcast dimensions, bias gradients, pooling windows), on the CPU
/// and, through `BlockSum`, in the CUDA kernels. Plain code and no Eigen, so .cu files include it too.
///
/// Why: adding n floats one by one into one float loses up to about n * eps / 2 of the total, and does
/// when the terms are alike: 1e7 copies of 0.1f summed to 1,087,937 (8.8% high). Here terms are added in
/// short blocks of `sum_block` in T (vectorisable on the CPU, one register on a GPU) and the block sums
/// join a double total, so the error stays below about (sum_block + 4) * eps / 2 * sum |x| (eps of T), for
/// any n: 1e7 copies of 0.1f sum to 1,000,000.19 (their exact sum is 1,000,000.015).
///
///  - `BlockSum<T>`: a running sum of terms given one at a time (host and device);
///  - `sum_contiguous(x, n)`: the sum of n contiguous values, 16 lanes wide (vectorised);
///  - `row_sums(R, C, out, accumulate, term)`, `sum_rows(n, inner, x, out, accumulate)`: column sums of a
///    row-major matrix, of terms or of stored values;
///  - `ScatterSum<T>`: for sums whose target is picked per term (a broadcast's gradient).

#include <tapegrad/backend/common/host_device.hpp>
#include <tapegrad/backend/common/strided.hpp>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace tapegrad::backend {

/// How many terms a block adds in T before its sum joins the double total.
inline constexpr int sum_block = 16;

/// A running sum of terms given one at a time: `BlockSum<float> s; s.add(v); ... float total = s.value();`.
/// Blocks of `sum_block` terms are added in T, their sums in double. Infinities and NaN propagate.
template <class T>
struct BlockSum {
    double total = 0.0;
    T block = T(0);
    int count = 0;

    TAPEGRAD_HD void add(T v) {
        block += v;
        if (++count == sum_block) {
            total += static_cast<double>(block);
            block = T(0);
            count = 0;
        }
    }
    /// The sum so far, rounded once to T.
    TAPEGRAD_HD T value() const { return static_cast<T>(total + static_cast<double>(block)); }
};

/// sum of x[0, n): 16 lanes each add `sum_block` terms in T (the compiler vectorises the lanes), then the
/// lanes are added pairwise and the block's sum joins a double total. What is left after the whole blocks
/// (fewer than 256 terms) is one more block, in lanes as far as it fills them (a softmax row of 64 logits
/// is 4 vector adds, not 64 dependent scalar ones).
template <class T>
TAPEGRAD_HD T sum_contiguous(const T* x, int64_t n) {
    constexpr int64_t lanes = 16, block = lanes * sum_block;
    double total = 0.0;
    int64_t i = 0;
    for (; i + block <= n; i += block) {
        T lane[lanes];
        for (int64_t j = 0; j < lanes; ++j) lane[j] = x[i + j];
        for (int64_t k = lanes; k < block; k += lanes)
            for (int64_t j = 0; j < lanes; ++j) lane[j] += x[i + k + j];
        for (int64_t w = lanes / 2; w > 0; w /= 2)
            for (int64_t j = 0; j < w; ++j) lane[j] += lane[j + w];
        total += static_cast<double>(lane[0]);
    }
    if (i + lanes <= n) {  // a partial block: each lane adds fewer than sum_block terms, still in lanes
        T lane[lanes];
        for (int64_t j = 0; j < lanes; ++j) lane[j] = x[i + j];
        for (i += lanes; i + lanes <= n; i += lanes)
            for (int64_t j = 0; j < lanes; ++j) lane[j] += x[i + j];
        for (int64_t w = lanes / 2; w > 0; w /= 2)
            for (int64_t j = 0; j < w; ++j) lane[j] += lane[j + w];
        total += static_cast<double>(lane[0]);
    }
    BlockSum<T> rest;
    rest.total = total;
    for (; i < n; ++i) rest.add(x[i]);
    return rest.value();
}

/// out[c] = sum_r term(r, c) for c < C, r < R; with `accumulate`, out[c] += that sum instead (the sum and
/// out rounded once together). Rows are added in blocks of `sum_block` in T, a chunk of columns at a time
/// (vectorised over c), and the blocks in double.
template <class T, class F>
void row_sums(int64_t R, int64_t C, T* out, bool accumulate, F&& term) {
    constexpr int64_t chunk = 1024;
    T blk[chunk];
    double total[chunk];
    for (int64_t c0 = 0; c0 < C; c0 += chunk) {
        const int64_t w = std::min(chunk, C - c0);
        for (int64_t i = 0; i < w; ++i) total[i] = accumulate ? static_cast<double>(out[c0 + i]) : 0.0;
        for (int64_t r0 = 0; r0 < R; r0 += sum_block) {
            const int64_t r1 = std::min<int64_t>(R, r0 + sum_block);
            for (int64_t i = 0; i < w; ++i) blk[i] = term(r0, c0 + i);
            for (int64_t r = r0 + 1; r < r1; ++r)
                for (int64_t i = 0; i < w; ++i) blk[i] += term(r, c0 + i);
            for (int64_t i = 0; i < w; ++i) total[i] += static_cast<double>(blk[i]);
        }
        for (int64_t i = 0; i < w; ++i) out[c0 + i] = static_cast<T>(total[i]);
    }
}

/// out[i] = sum_k x[k * inner + i] for i < inner, k < n (the column sums of a row-major [n, inner]); with
/// `accumulate`, out[i] += that sum instead. See row_sums.
template <class T>
void sum_rows(int64_t n, int64_t inner, const T* x, T* out, bool accumulate) {
    row_sums(n, inner, out, accumulate, [x, inner](int64_t k, int64_t i) { return x[k * inner + i]; });
}

/// The elements an operand of a broadcasting plan spans (its largest offset + 1; 0 when the plan is
/// empty), and in `reduces` whether several output elements map to one of them (a stride 0 on a dimension
/// longer than 1): then a gradient into it is a sum.
inline int64_t operand_extent(const Strided& p, const std::array<int64_t, max_rank>& strides, bool& reduces) {
    int64_t extent = 1;
    reduces = false;
    for (int d = 0; d < p.rank; ++d) {
        const auto ds = static_cast<size_t>(d);
        if (p.dims[ds] == 0) return 0;
        extent += (p.dims[ds] - 1) * strides[ds];
        reduces = reduces || (strides[ds] == 0 && p.dims[ds] > 1);
    }
    return extent;
}

/// C when b is broadcast over leading dimensions only and laid out contiguously over the rest (a bias:
/// out [R, C] from b [C], or [N, C, H, W] from [C, H, W]), so that out is R rows of C whose elements j map
/// to b[j]; else 0.
inline int64_t broadcast_row_length(const Strided& p, const std::array<int64_t, max_rank>& strides) {
    int64_t c = 1;
    int d = p.rank - 1;
    for (; d >= 0 && strides[static_cast<size_t>(d)] != 0; --d) {  // the trailing dimensions b keeps
        const auto ds = static_cast<size_t>(d);
        if (strides[ds] != c && p.dims[ds] != 1) return 0;
        c *= p.dims[ds];
    }
    for (; d >= 0; --d)  // the leading dimensions: all broadcast
        if (strides[static_cast<size_t>(d)] != 0 && p.dims[static_cast<size_t>(d)] != 1) return 0;
    return c;
}

/// Sums into out[j], j < size, whose targets are picked per term (a gradient summed over broadcast
/// dimensions in general; the bias pattern goes through row_sums): `ScatterSum<T> acc(out, size, reduces);
/// acc.add_run(j0, n, stride, term); ... acc.finish();`. When `reduces` and T is float, the terms add into
/// double totals that finish() writes to out (each element rounded once); otherwise into out itself.
template <class T>
class ScatterSum {
public:
    ScatterSum(T* out, int64_t size, bool reduces)
        : out_(out), size_(size), wide_(std::is_same_v<T, float> && reduces && out != nullptr && size > 0) {
        if (!wide_) return;
        if (size > on_stack) {
            heap_.resize(static_cast<size_t>(size));
            total_ = heap_.data();
        }
        for (int64_t j = 0; j < size; ++j) total_[j] = static_cast<double>(out[j]);
    }
    ScatterSum(const ScatterSum&) = delete;
    ScatterSum& operator=(const ScatterSum&) = delete;

    /// out[j0 + i * stride] += term(i) for i < n.
    template <class F>
    void add_run(int64_t j0, int64_t n, int64_t stride, F&& term) {
        if (wide_)
            for (int64_t i = 0; i < n; ++i) total_[j0 + i * stride] += static_cast<double>(term(i));
        else
            for (int64_t i = 0; i < n; ++i) out_[j0 + i * stride] += term(i);
    }
    /// Writes the sums to out (when accumulated on the side). Call once, after the last run.
    void finish() {
        if (wide_)
            for (int64_t j = 0; j < size_; ++j) out_[j] = static_cast<T>(total_[j]);
    }

private:
    static constexpr int64_t on_stack = 512;  // no heap allocation for small targets
    T* out_;
    int64_t size_;
    bool wide_;
    double local_[on_stack];
    std::vector<double> heap_;
    double* total_ = local_;
};

}  // namespace tapegrad::backend
