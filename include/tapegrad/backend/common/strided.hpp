#pragma once
/// \file
/// The broadcasting plan every backend's elementwise primitives take: the output dimensions plus, for each
/// of up to two operands, a stride per dimension in elements, 0 where the operand is broadcast along that
/// dimension. Plain data and no Eigen, so CUDA kernels can take it by value.

#include <array>
#include <cstddef>
#include <cstdint>

namespace tapegrad::backend {

/// Maximum rank of a broadcasting plan (equal to Shape::max_rank).
inline constexpr int max_rank = 8;

/// Output dimensions and per-operand strides (0 on broadcast dimensions) for up to two inputs.
struct Strided {
    int rank = 0;
    std::array<int64_t, max_rank> dims{};
    std::array<int64_t, max_rank> sa{};  ///< strides of operand a
    std::array<int64_t, max_rank> sb{};  ///< strides of operand b
    bool a_contig = false;               ///< a has the output's shape (plain contiguous walk)
    bool b_contig = false;
    [[nodiscard]] int64_t numel() const noexcept {
        int64_t n = 1;
        for (int i = 0; i < rank; ++i) n *= dims[static_cast<size_t>(i)];
        return n;
    }
};

/// Calls `f(out_index, a_offset, b_offset, inner_count, inner_stride_a, inner_stride_b)` once per run of
/// the innermost dimension, walking the output in row-major order.
template <class F>
void for_each_run(const Strided& p, F&& f) {
    if (p.rank == 0) {
        f(int64_t{0}, int64_t{0}, int64_t{0}, int64_t{1}, int64_t{0}, int64_t{0});
        return;
    }
    const int last = p.rank - 1;
    const int64_t inner = p.dims[static_cast<size_t>(last)];
    const int64_t isa = p.sa[static_cast<size_t>(last)], isb = p.sb[static_cast<size_t>(last)];
    int64_t outer = 1;
    for (int i = 0; i < last; ++i) outer *= p.dims[static_cast<size_t>(i)];
    if (inner == 0) return;
    std::array<int64_t, max_rank> idx{};
    int64_t oa = 0, ob = 0;
    for (int64_t o = 0; o < outer; ++o) {
        f(o * inner, oa, ob, inner, isa, isb);
        // advance the multi-index over dimensions [0, last)
        for (int d = last - 1; d >= 0; --d) {
            const auto ds = static_cast<size_t>(d);
            oa += p.sa[ds];
            ob += p.sb[ds];
            if (++idx[ds] < p.dims[ds]) break;
            oa -= p.sa[ds] * p.dims[ds];
            ob -= p.sb[ds] * p.dims[ds];
            idx[ds] = 0;
        }
    }
}

}  // namespace tapegrad::backend
