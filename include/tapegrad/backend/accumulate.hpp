#pragma once
/// \file
/// Accurate sums: the accumulation behind every reduction (sum and mean, the losses' reductions, softmax
/// denominators, gradients summed over broadcast dimensions, bias gradients, pooling windows), on the CPU
/// and, through `BlockSum`, in the CUDA kernels. Plain code and no Eigen, so .cu files include it too.
///
/// Why: adding n floats one by one into one float loses up to about n * eps / 2 of the total, and does
/// when the terms are alike: 1e7 copies of 0.1f summed to 1,087,937 (8.8% high). Here terms are added in
/// short blocks of `sum_block` in T (vectorisable on the CPU, one register on a GPU) and the block sums
/// join a double total, so the error stays below about (sum_block + 1) * eps * sum |x| (eps of T), for any
/// n: 1e7 copies of 0.1f sum to 1,000,000 within 1 ulp.
///
///  - `BlockSum<T>`: a running sum of terms given one at a time (host and device);
///  - `sum_contiguous(x, n)`: the sum of n contiguous values, 16 lanes wide (vectorised);
///  - `sum_rows(n, inner, x, out, accumulate)`: the column sums of a row-major [n, inner] matrix;
///  - `accumulate_wide(out, size, reduces, body)`: for sums whose target is picked per term (a broadcast's
///    gradient), in a double buffer.

#include <tapegrad/backend/host_device.hpp>
#include <tapegrad/backend/strided.hpp>

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
/// lanes are added pairwise and the block's sum joins a double total.
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
    BlockSum<T> rest;
    rest.total = total;
    for (; i < n; ++i) rest.add(x[i]);
    return rest.value();
}

/// out[i] = sum_k x[k * inner + i] for i < inner, k < n (the column sums of a row-major [n, inner]); with
/// `accumulate`, out[i] += that sum instead (the sum and out rounded once together). Rows are added in
/// blocks of `sum_block` in T, a column chunk at a time, and the blocks in double.
template <class T>
void sum_rows(int64_t n, int64_t inner, const T* x, T* out, bool accumulate) {
    constexpr int64_t chunk = 1024;
    T blk[chunk];
    double total[chunk];
    for (int64_t c0 = 0; c0 < inner; c0 += chunk) {
        const int64_t w = std::min(chunk, inner - c0);
        for (int64_t i = 0; i < w; ++i) total[i] = accumulate ? static_cast<double>(out[c0 + i]) : 0.0;
        for (int64_t k0 = 0; k0 < n; k0 += sum_block) {
            const int64_t k1 = std::min<int64_t>(n, k0 + sum_block);
            const T* src = x + k0 * inner + c0;
            for (int64_t i = 0; i < w; ++i) blk[i] = src[i];
            for (int64_t k = k0 + 1; k < k1; ++k) {
                src += inner;
                for (int64_t i = 0; i < w; ++i) blk[i] += src[i];
            }
            for (int64_t i = 0; i < w; ++i) total[i] += static_cast<double>(blk[i]);
        }
        for (int64_t i = 0; i < w; ++i) out[c0 + i] = static_cast<T>(total[i]);
    }
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

/// Calls `body(acc)`, where `acc[j] += term` must add into out[j] for j < size. When `reduces` and T is
/// float, acc is a double copy of out written back once at the end (each element rounded once, however
/// many terms it got); otherwise acc is out itself. A null out calls body(out) as is.
template <class T, class F>
void accumulate_wide(T* out, int64_t size, bool reduces, F&& body) {
    if constexpr (std::is_same_v<T, float>) {
        if (reduces && out && size > 0) {
            std::vector<double> acc(out, out + size);
            body(acc.data());
            for (int64_t j = 0; j < size; ++j) out[j] = static_cast<T>(acc[static_cast<size_t>(j)]);
            return;
        }
    }
    body(out);
}

}  // namespace tapegrad::backend
