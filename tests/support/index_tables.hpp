#pragma once
/// \file
/// The device-generic table of the index ops (ops/index.hpp): embedding, index_select, gather, where and
/// masked_fill, written once for any element type T and device D and run by `check_table<IndexTable, D>`
/// on the CPU (tests/tapegrad/ops/index_test.cpp) and on CUDA (tests/cuda/index_test.cpp).
///
/// Index and mask inputs travel as constant double tensors of their own shape (integers, or 0/1), which the
/// row turns into a Tensor<int64_t, D> or a Mask<D>; the float inputs are marked `checked` (gradcheck checks
/// them only). Ids are drawn with repeats on purpose, so the backward's sums over repeated ids are checked.

#include "device_ops.hpp"
#include "op_tables.hpp"

#include <tapegrad/tapegrad.hpp>

#include <cstdint>
#include <vector>

namespace tapegrad::testing {

/// A constant tensor of `shape` holding integers drawn from [0, hi).
inline TensorD index_tensor(const Shape& shape, uint64_t hi, Generator& g) {
    std::vector<double> v(static_cast<size_t>(shape.numel()));
    for (double& e : v) e = static_cast<double>(g.below(hi));
    return TensorD::from(shape, v);
}
/// A constant 0/1 tensor of `shape`.
inline TensorD mask_tensor(const Shape& shape, Generator& g) { return index_tensor(shape, 2, g); }

/// Row constants as the int64 ids of device D (same shape).
template <class D, class T>
Tensor<int64_t, D> as_ids(const Tensor<T, D>& x) {
    return Tensor<int64_t, D>::from(x.shape(), ints(x));
}
/// Row constants as the mask of device D (same shape).
template <class D, class T>
Mask<D> as_mask(const Tensor<T, D>& x) {
    const std::vector<int64_t> v = ints(x);
    return Mask<D>::from(x.shape(), std::vector<uint8_t>(v.begin(), v.end()));
}

struct IndexTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        return {
            {"embedding, [2, 5] ids with repeats",
             [](Generator& g) {
                 return Inputs{checked(random_tensor({6, 3}, g)), index_tensor({2, 5}, 6, g)};
             },
             [](const auto& x) { return embedding(x[0], as_ids<D>(x[1])) * 1.5; }, 2},
            // The padding row is read by the forward but gets no gradient (as in PyTorch), so it is a constant
            // input here (x[2]), joined to the checked rows, rather than part of what gradcheck perturbs.
            {"embedding, padding_idx 1",
             [](Generator& g) {
                 TensorD ids = index_tensor({9}, 4, g);
                 ids.at({3}) = 1;  // the padding id occurs at least once
                 return Inputs{checked(random_tensor({3, 2}, g)), ids, random_tensor({1, 2}, g)};
             },
             [](const auto& x) {
                 const auto w = concat({slice(x[0], 0, 0, 1), x[2], slice(x[0], 0, 1, 3)}, 0);
                 return embedding(w, as_ids<D>(x[1]), 1) * -2.0;
             },
             9},
            {"embedding, rank-3 ids, padding_idx -1 (the last row)",
             [](Generator& g) {
                 return Inputs{checked(random_tensor({4, 4}, g)), index_tensor({2, 2, 3}, 5, g),
                               random_tensor({1, 4}, g)};
             },
             [](const auto& x) { return embedding(concat({x[0], x[2]}, 0), as_ids<D>(x[1]), -1); }, 12},
            {"index_select along a random axis",
             [](Generator& g) {
                 const TensorD x = checked(random_tensor(random_shape(g, 1, 3), g));
                 const int axis = random_axis(g, x.dim());
                 const int64_t n = x.shape().size(axis);
                 return Inputs{x, index_tensor({1 + static_cast<int64_t>(g.below(5))}, static_cast<uint64_t>(n), g),
                               constants({axis})};
             },
             [](const auto& x) { return index_select(x[0], static_cast<int>(ints(x[2])[0]), as_ids<D>(x[1])); }, 5},
            {"gather along a random axis",
             [](Generator& g) {
                 const TensorD x = checked(random_tensor(random_shape(g, 1, 3), g));
                 const int axis = random_axis(g, x.dim());
                 const int a = x.shape().normalize_axis(axis, "test");
                 Shape is = x.shape();
                 for (int d = 0; d < is.rank(); ++d)
                     is[d] = d == a ? 1 + static_cast<int64_t>(g.below(4))
                                    : 1 + static_cast<int64_t>(g.below(static_cast<uint64_t>(is[d])));
                 return Inputs{x, index_tensor(is, static_cast<uint64_t>(x.shape()[a]), g), constants({axis})};
             },
             [](const auto& x) { return gather(x[0], static_cast<int>(ints(x[2])[0]), as_ids<D>(x[1])) * 1.5; }, 4},
            {"where, mask of the branches' shape",
             [](Generator& g) {
                 const Shape s = random_shape(g);
                 return Inputs{mask_tensor(s, g), checked(random_tensor(s, g)), checked(random_tensor(s, g))};
             },
             [](const auto& x) { return where(as_mask<D>(x[0]), x[1], x[2]); }},
            {"where, broadcast mask [3, 1, 4] over [3, 2, 4], one input in both branches",
             [](Generator& g) { return Inputs{mask_tensor({3, 1, 4}, g), checked(random_tensor({3, 2, 4}, g))}; },
             [](const auto& x) { return where(as_mask<D>(x[0]), x[1], x[1] * -3.0); }, 2},
            {"masked_fill, broadcast mask [2, 1, 3] over [2, 4, 3]",
             [](Generator& g) { return Inputs{checked(random_tensor({2, 4, 3}, g)), mask_tensor({2, 1, 3}, g)}; },
             [](const auto& x) { return masked_fill(x[0], as_mask<D>(x[1]), -1e4) * 0.5; }},
        };
    }
};

}  // namespace tapegrad::testing
