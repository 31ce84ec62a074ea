#pragma once
/// \file
/// The device-generic tables of the sequence-model ops (ops/stack.hpp, ops/layer_norm.hpp, bmm and the
/// broadcasting matmul of ops/linalg.hpp, ops/attention.hpp), in the form of tests/support/op_tables.hpp:
/// each row is gradchecked in double on the CPU by the op's own test file and through the GPU, and compared
/// with the CPU in float, by tests/cuda/attention_test.cpp.
///
/// Masks travel as inputs (additive, with -inf entries); gradcheck checks only the `checked` inputs, so
/// a mask is never perturbed. Integer arguments (axes, lengths, permutations) travel as constants.

#include "op_tables.hpp"

#include <tapegrad/tapegrad.hpp>

#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace tapegrad::testing {

inline constexpr double kNegInf = -std::numeric_limits<double>::infinity();

/// n tensors of one random shape (rank 1..3, n in [1, 3]) and a constant axis in [-(rank+1), rank].
inline Inputs stack_inputs(Generator& g) {
    const Shape s = random_shape(g, 1, 3);
    const int n = 1 + static_cast<int>(g.below(3));
    Inputs xs;
    for (int i = 0; i < n; ++i) xs.push_back(checked(random_tensor(s, g)));
    const int r = s.rank();
    xs.push_back(constants({static_cast<int64_t>(g.below(static_cast<uint64_t>(2 * r + 2))) - (r + 1)}));
    return xs;
}
/// x of a random shape, a constant axis and an index along it (negative half the time).
inline Inputs select_inputs(Generator& g) {
    const Shape s = random_shape(g);
    const int axis = random_axis(g, s.rank());
    const int64_t n = s[axis < 0 ? axis + s.rank() : axis];
    int64_t i = static_cast<int64_t>(g.below(static_cast<uint64_t>(n)));
    if (g.below(2)) i -= n;
    return {checked(random_tensor(s, g)), constants({axis, i})};
}
/// x of rank 1..4 and a random permutation of its axes.
inline Inputs permute_inputs(Generator& g) {
    const Shape s = random_shape(g);
    std::vector<int64_t> p(static_cast<size_t>(s.rank()));
    std::iota(p.begin(), p.end(), int64_t{0});
    for (size_t i = p.size(); i > 1; --i) std::swap(p[i - 1], p[static_cast<size_t>(g.below(i))]);
    return {checked(random_tensor(s, g)), constants(p)};
}
/// x [lead..., norm...] with 1 or 2 normalised dimensions, weight and bias of the normalised shape, and
/// constant k (the normalised rank).
inline Inputs layer_norm_inputs(Generator& g) {
    const Shape lead = random_shape(g, 0, 2, 3);
    const Shape norm = random_shape(g, 1, 2, 5);
    Shape s = lead;
    for (const int64_t d : norm) s.push_back(d);
    TensorD x = random_tensor(s, g, wide_value);
    return {checked(x), checked(random_tensor(norm, g, wide_value)), checked(random_tensor(norm, g)),
            constants({norm.rank()})};
}
template <class T, class D>
Shape trailing(const Tensor<T, D>& x, int k) {
    Shape s;
    for (int i = x.shape().rank() - k; i < x.shape().rank(); ++i) s.push_back(x.shape()[i]);
    return s;
}

/// q [lead..., L, E], k [lead..., S, E], v [lead..., S, Ev], dims drawn in [1, 4], lead = [N, H].
inline Inputs qkv(Generator& g, int64_t N, int64_t H, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    return {checked(random_tensor({N, H, L, E}, g, wide_value)), checked(random_tensor({N, H, S, E}, g, wide_value)),
            checked(random_tensor({N, H, S, Ev}, g))};
}
inline int64_t dim4(Generator& g) { return 1 + static_cast<int64_t>(g.below(4)); }
/// An additive mask of `shape` (values in [-1, 1], about a quarter -inf), keeping at least the first
/// entry of every row of its last axis finite so that no row is fully masked by it alone.
inline TensorD additive_mask(const Shape& shape, Generator& g) {
    TensorD m = random_tensor(shape, g);
    const int64_t S = shape[shape.rank() - 1];
    for (int64_t i = 0; i < m.numel(); ++i)
        if (i % S != 0 && g.below(4) == 0) m.data()[i] = kNegInf;
    return m;
}

/// Every op of the attention family.
struct AttentionTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        using Tn = Tensor<T, D>;
        using V = std::vector<Tn>;
        auto sdpa = [](const Tn& q, const Tn& k, const Tn& v, AttentionOptions<T, D> o = {}) {
            return scaled_dot_product_attention(q, k, v, o).output;
        };
        return {
            // ---- shape ops ----
            {"stack", stack_inputs,
             [](const V& x) {
                 const V ins(x.begin(), x.end() - 1);
                 return stack(ins, static_cast<int>(ints(x.back())[0]));
             }},
            {"stack of one tensor twice", one_input(), [](const V& x) { return stack({x[0], x[0] * 2.0}, -1); }},
            {"select", select_inputs,
             [](const V& x) {
                 const auto c = ints(x[1]);
                 return select(x[0], static_cast<int>(c[0]), c[1]);
             }},
            {"unbind (each slice weighted differently)",
             [](Generator& g) {
                 const Shape s = random_shape(g);
                 return Inputs{checked(random_tensor(s, g)), constants({random_axis(g, s.rank())})};
             },
             [](const V& x) {
                 const V parts = unbind(x[0], static_cast<int>(ints(x[1])[0]));
                 Tn y = parts[0];
                 for (size_t i = 1; i < parts.size(); ++i) y = y + parts[i] * static_cast<T>(i + 1);
                 return y;
             }},
            {"permute", permute_inputs,
             [](const V& x) {
                 std::vector<int> p;
                 for (const int64_t d : ints(x[1])) p.push_back(static_cast<int>(d));
                 return permute(x[0], std::span<const int>(p));
             }},
            // ---- layer norm ----
            {"layer_norm with weight and bias", layer_norm_inputs,
             [](const V& x) {
                 const int k = static_cast<int>(ints(x[3])[0]);
                 return layer_norm(x[0], trailing(x[0], k), x[1], x[2]);
             },
             32},
            {"layer_norm without affine, eps 1e-3", layer_norm_inputs,
             [](const V& x) {
                 const int k = static_cast<int>(ints(x[3])[0]);
                 return layer_norm(x[0], trailing(x[0], k), Tn{}, Tn{}, 1e-3);
             },
             32},
            {"layer_norm with weight only, large mean", layer_norm_inputs,
             [](const V& x) {
                 const int k = static_cast<int>(ints(x[3])[0]);
                 return layer_norm(x[0] + static_cast<T>(50), trailing(x[0], k), x[1]);
             },
             256},
            // ---- batched products ----
            {"bmm", [](Generator& g) {
                 const int64_t b = dim4(g), m = dim4(g), k = dim4(g), n = dim4(g);
                 return Inputs{checked(random_tensor({b, m, k}, g)), checked(random_tensor({b, k, n}, g))};
             },
             [](const V& x) { return bmm(x[0], x[1]); }, 8},
            {"matmul 4-D, equal batches", shaped({{2, 3, 2, 4}, {2, 3, 4, 3}}),
             [](const V& x) { return matmul(x[0], x[1]); }, 8},
            {"matmul broadcast batches [2, 1, M, K] x [3, K, N]", shaped({{2, 1, 3, 4}, {3, 4, 2}}),
             [](const V& x) { return matmul(x[0], x[1]); }, 8},
            {"matmul [M, K] x [B, K, N]", shaped({{3, 4}, {2, 4, 5}}), [](const V& x) { return matmul(x[0], x[1]); },
             16},
            // ---- masked softmax ----
            {"masked_softmax, mask broadcast over rows",
             [](Generator& g) {
                 const int64_t r = dim4(g), s = 1 + dim4(g);
                 return Inputs{checked(random_tensor({r, s}, g, wide_value)), additive_mask({s}, g)};
             },
             [](const V& x) { return masked_softmax(x[0], x[1]); }, 8},
            {"masked_softmax, a fully masked row gives zeros",
             [](Generator& g) {
                 TensorD m = additive_mask({3, 4}, g);
                 for (int64_t j = 0; j < 4; ++j) m(1, j) = kNegInf;
                 return Inputs{checked(random_tensor({3, 4}, g, wide_value)), m};
             },
             [](const V& x) { return masked_softmax(x[0], x[1]) * static_cast<T>(3); }, 8},
            {"masked_softmax along axis 0, no mask", shaped({{4, 3}}, wide_value),
             [](const V& x) { return masked_softmax(x[0], Tn{}, 0); }, 8},
            // ---- scaled dot-product attention ----
            {"sdpa [N, H, L, E], no mask",
             [](Generator& g) { return qkv(g, dim4(g), dim4(g), dim4(g), dim4(g), dim4(g), dim4(g)); },
             [sdpa](const V& x) { return sdpa(x[0], x[1], x[2]); }, 16},
            {"sdpa 3-D, causal, L > S and L < S",
             [](Generator& g) {
                 const int64_t n = dim4(g), l = dim4(g), s = dim4(g), e = dim4(g);
                 return Inputs{checked(random_tensor({n, l, e}, g, wide_value)),
                               checked(random_tensor({n, s, e}, g, wide_value)), checked(random_tensor({n, s, 3}, g))};
             },
             [sdpa](const V& x) { return sdpa(x[0], x[1], x[2], {.is_causal = true}); }, 16},
            {"sdpa attn_mask [L, S] and scale 0.3",
             [](Generator& g) {
                 Inputs in = qkv(g, 2, 2, 3, 4, 3, 2);
                 in.push_back(additive_mask({3, 4}, g));
                 return in;
             },
             [sdpa](const V& x) { return sdpa(x[0], x[1], x[2], {.attn_mask = x[3], .scale = 0.3}); }, 16},
            {"sdpa attn_mask [N, 1, L, S] (read in place) with causal",
             [](Generator& g) {
                 Inputs in = qkv(g, 2, 3, 4, 4, 2, 2);
                 in.push_back(additive_mask({2, 1, 4, 4}, g));
                 return in;
             },
             [sdpa](const V& x) { return sdpa(x[0], x[1], x[2], {.attn_mask = x[3], .is_causal = true}); }, 16},
            {"sdpa attn_mask [1, H, 1, S] (materialised)",
             [](Generator& g) {
                 Inputs in = qkv(g, 2, 3, 2, 4, 2, 2);
                 in.push_back(additive_mask({1, 3, 1, 4}, g));
                 return in;
             },
             [sdpa](const V& x) { return sdpa(x[0], x[1], x[2], {.attn_mask = x[3]}); }, 16},
            {"sdpa key_padding_mask [N, S]",
             [](Generator& g) {
                 Inputs in = qkv(g, 3, 2, 3, 5, 2, 3);
                 in.push_back(additive_mask({3, 5}, g));
                 return in;
             },
             [sdpa](const V& x) { return sdpa(x[0], x[1], x[2], {.key_padding_mask = x[3]}); }, 16},
            {"sdpa lengths, one sequence empty (its rows give zeros)",
             [](Generator& g) {
                 Inputs in = qkv(g, 3, 2, 3, 4, 2, 2);
                 in.push_back(constants({4, 0, 2}));
                 return in;
             },
             [sdpa](const V& x) { return sdpa(x[0], x[1], x[2], {.lengths = ints(x[3])}); }, 16},
            {"sdpa dropout 0.3 (seeded, the same mask on every device)",
             [](Generator& g) { return qkv(g, 2, 2, 3, 4, 2, 2); },
             [sdpa](const V& x) {
                 Generator gen(99);
                 return sdpa(x[0], x[1], x[2], {.dropout_p = 0.3, .generator = &gen});
             },
             16},
            // ---- multi-head attention with its weights as inputs ----
            {"multi_head_attention self, [L, N, E], weights checked",
             shaped({{3, 2, 4}, {12, 4}, {12}, {4, 4}, {4}}),
             [](const V& x) {
                 return multi_head_attention(x[0], x[0], x[0], 2, x[1], x[2], x[3], x[4], {.need_weights = false})
                     .output;
             },
             32},
            {"multi_head_attention cross, batch_first, masks",
             [](Generator& g) {
                 Inputs in = shaped({{2, 3, 4}, {2, 5, 4}, {2, 5, 4}, {12, 4}, {12}, {4, 4}, {4}})(g);
                 for (auto& t : in) t = checked(t);
                 in.push_back(additive_mask({3, 5}, g));
                 in.push_back(additive_mask({2, 5}, g));
                 return in;
             },
             [](const V& x) {
                 return multi_head_attention(x[0], x[1], x[2], 2, x[3], x[4], x[5], x[6],
                                             {.key_padding_mask = x[8], .attn_mask = x[7], .batch_first = true})
                     .output;
             },
             32},
        };
    }
};

}  // namespace tapegrad::testing
