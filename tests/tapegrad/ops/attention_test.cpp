// Tests for include/tapegrad/ops/attention.hpp: the attention family's device-generic table on the CPU
// (every op of stack.hpp, layer_norm.hpp, bmm/matmul and attention.hpp gradchecked in double), masked
// softmax's stability and fully masked rows, scaled_dot_product_attention against its composition from
// matmul and softmax, its masks, and errors.
#include <tapegrad/ops/attention.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/attention_tables.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

namespace {
constexpr double inf = std::numeric_limits<double>::infinity();
}

TEST_CASE("attention family: every op passes gradcheck on random shapes (the device-generic table, on the CPU)") {
    check_table<AttentionTable, Cpu>(14000);
}

TEST_CASE("masked_softmax: logits of magnitude 1e4 in float, an additive -inf mask, a fully masked row") {
    const TensorF x = TensorF::from({3, 3}, {1e4f, -1e4f, 0.f, 1e4f, 1e4f - 1.f, -1e4f, 5.f, 6.f, 7.f});
    const float ninf = -std::numeric_limits<float>::infinity();
    const TensorF mask = TensorF::from({3, 3}, {0.f, 0.f, 0.f, 0.f, ninf, 0.f, ninf, ninf, ninf});
    const auto y = masked_softmax(x, mask).to_vector();
    CHECK(y[0] == 1.f);
    CHECK(y[1] == 0.f);
    CHECK(y[2] == 0.f);
    CHECK(y[3] == 1.f);  // the masked 1e4 - 1 takes nothing
    CHECK(y[4] == 0.f);
    for (int i = 6; i < 9; ++i) CHECK(y[static_cast<size_t>(i)] == 0.f);  // fully masked: zeros, not NaN
    // a fully masked row passes no gradient (and no NaN)
    TensorD xd = TensorD::from({2, 2}, {1, 2, 3, 4}).requires_grad_();
    sum(masked_softmax(xd, TensorD::from({2, 2}, {0, 0, -inf, -inf})) * TensorD::from({2, 2}, {1, 2, 3, 4})).backward();
    const auto g = xd.grad().to_vector();
    CHECK(g[2] == 0.0);
    CHECK(g[3] == 0.0);
    CHECK(g[0] == doctest::Approx(-std::exp(1.0) * std::exp(2.0) / std::pow(std::exp(1.0) + std::exp(2.0), 2)));
    CHECK_THROWS_WITH_AS(masked_softmax(xd, TensorD::zeros({3})),
                         "masked_softmax: shapes [2, 2] and [3] cannot be broadcast (dimension 1: 2 vs 3)", ShapeError);
    CHECK_THROWS_WITH_AS(masked_softmax(xd, TensorD::zeros({2, 2, 2})),
                         "masked_softmax: mask of shape [2, 2, 2] does not broadcast to the input's shape [2, 2]",
                         ShapeError);
}

TEST_CASE("scaled_dot_product_attention: equals softmax(q k^T / sqrt(E) + mask) v built from matmul and softmax") {
    Generator g(11);
    const TensorD q = TensorD::uniform({2, 3, 4, 5}, -1, 1, g);
    const TensorD k = TensorD::uniform({2, 3, 6, 5}, -1, 1, g);
    const TensorD v = TensorD::uniform({2, 3, 6, 2}, -1, 1, g);
    TensorD mask = TensorD::uniform({4, 6}, -1, 1, g);
    mask(1, 2) = -inf;
    TensorD pad = TensorD::zeros({2, 6});
    pad(1, 5) = -inf;
    pad(1, 4) = -inf;
    const auto r = scaled_dot_product_attention(q, k, v, {.attn_mask = mask, .key_padding_mask = pad, .need_weights = true});
    const TensorD full = mask + reshape(pad, {2, 1, 1, 6});
    const TensorD w = softmax(matmul(q, transpose(k, -1, -2)) * (1.0 / std::sqrt(5.0)) + full, -1);
    check_close("weights", w.to_vector(), r.weights.to_vector(), 1e-12);
    check_close("output", matmul(w, v).to_vector(), r.output.to_vector(), 1e-12);
    CHECK(r.weights(1, 2, 3, 5) == 0.0);
    CHECK(r.weights(0, 2, 1, 2) == 0.0);
    // lengths mask the same keys as the padding mask
    const auto l = scaled_dot_product_attention(q, k, v, {.attn_mask = mask, .lengths = {6, 4}});
    check_close("lengths", r.output.to_vector(), l.output.to_vector(), 1e-12);
}

TEST_CASE("scaled_dot_product_attention: causal needs no mask and equals the -inf upper triangle") {
    Generator g(12);
    const TensorD q = TensorD::uniform({3, 5, 4}, -1, 1, g);
    const TensorD k = TensorD::uniform({3, 5, 4}, -1, 1, g);
    const TensorD v = TensorD::uniform({3, 5, 4}, -1, 1, g);
    TensorD tri = TensorD::zeros({5, 5});
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = i + 1; j < 5; ++j) tri(i, j) = -inf;
    const auto c = scaled_dot_product_attention(q, k, v, {.is_causal = true, .need_weights = true});
    const auto m = scaled_dot_product_attention(q, k, v, {.attn_mask = tri, .need_weights = true});
    check_close("causal output", m.output.to_vector(), c.output.to_vector(), 1e-14);
    CHECK(c.weights(2, 0, 0) == doctest::Approx(1.0));
    CHECK(c.weights(2, 1, 2) == 0.0);
    // the first query sees only the first key: its output is v's first row
    for (int64_t e = 0; e < 4; ++e) CHECK(c.output(1, 0, e) == doctest::Approx(v(1, 0, e)));
}

TEST_CASE("scaled_dot_product_attention: dropout scales the kept weights, is seeded, and keeps rows' expectations") {
    Generator g(13);
    const TensorD q = TensorD::uniform({1, 4, 3}, -1, 1, g);
    const TensorD k = TensorD::uniform({1, 4, 3}, -1, 1, g);
    const TensorD v = TensorD::uniform({1, 4, 3}, -1, 1, g);
    Generator a(7), b(7);
    const auto ra = scaled_dot_product_attention(q, k, v, {.dropout_p = 0.5, .need_weights = true, .generator = &a});
    const auto rb = scaled_dot_product_attention(q, k, v, {.dropout_p = 0.5, .need_weights = true, .generator = &b});
    CHECK(ra.output.to_vector() == rb.output.to_vector());
    const auto plain = scaled_dot_product_attention(q, k, v, {.need_weights = true});
    const auto wd = ra.weights.to_vector(), wp = plain.weights.to_vector();
    int dropped = 0;
    for (size_t i = 0; i < wd.size(); ++i) {
        if (wd[i] == 0.0) ++dropped;
        else CHECK(wd[i] == doctest::Approx(2 * wp[i]));
    }
    CHECK(dropped > 0);
    CHECK(dropped < 16);
}

TEST_CASE("scaled_dot_product_attention: errors name the shapes and values") {
    const TensorD q = TensorD::zeros({2, 3, 4}), k = TensorD::zeros({2, 5, 4}), v = TensorD::zeros({2, 5, 6});
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, TensorD::zeros({2, 5, 3}), v),
                         "scaled_dot_product_attention: shapes do not fit: q [2, 3, 4], k [2, 5, 3], v [2, 5, 6] "
                         "(expected [..., L, E], [..., S, E], [..., S, Ev] with the same leading dimensions)",
                         ShapeError);
    CHECK_THROWS_AS(scaled_dot_product_attention(q, k, TensorD::zeros({5, 6})), ShapeError);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, {.attn_mask = TensorD::zeros({3, 4})}),
                         "scaled_dot_product_attention: shapes [2, 3, 5] and [3, 4] cannot be broadcast (dimension 2: 5 "
                         "vs 4)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, {.key_padding_mask = TensorD::zeros({5})}),
                         "scaled_dot_product_attention: key_padding_mask of shape [5] should be [2, 5] for q of shape "
                         "[2, 3, 4]",
                         ShapeError);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, {.key_padding_mask = TensorD::zeros({2, 5}), .lengths = {1, 2}}),
                         "scaled_dot_product_attention: give key_padding_mask or lengths, not both", ValueError);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, {.lengths = {1, 6}}),
                         "scaled_dot_product_attention: length 6 of sequence 1 is outside [0, 5]", ValueError);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, {.lengths = {1}}),
                         "scaled_dot_product_attention: 1 lengths given for 2 sequences (q of shape [2, 3, 4])",
                         ShapeError);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, k, v, {.dropout_p = 1.0}),
                         "scaled_dot_product_attention: dropout_p must be in [0, 1), got 1", ValueError);
}

TEST_CASE("boolean masks (Mask, 1 = masked out): masked_softmax takes one, additive_mask converts for attention") {
    const TensorD x = TensorD::from({2, 3}, {1, 2, 3, 4, 5, 6});
    const Mask<> m = Mask<>::from({2, 3}, {0, 1, 0, 1, 1, 1});
    const auto y = masked_softmax(x, m).to_vector();
    CHECK(y[0] == doctest::Approx(1 / (1 + std::exp(2.0))));
    CHECK(y[1] == 0.0);
    CHECK(y[2] == doctest::Approx(1 / (1 + std::exp(-2.0))));
    CHECK(y[3] == 0.0);  // a fully masked row: zeros
    const TensorD a = additive_mask<double>(m);
    CHECK(a.to_vector() == std::vector<double>{0, -inf, 0, -inf, -inf, -inf});
    CHECK(masked_softmax(x, a).to_vector() == y);
    Generator g(14);
    const TensorD q = TensorD::uniform({2, 3, 4}, -1, 1, g);
    const Mask<> pad = Mask<>::from({2, 3}, {0, 0, 1, 0, 1, 1});
    const auto r1 = scaled_dot_product_attention(q, q, q, {.key_padding_mask = additive_mask<double>(pad)});
    const auto r2 = scaled_dot_product_attention(q, q, q, {.lengths = {2, 1}});
    check_close("padding from a boolean mask", r2.output.to_vector(), r1.output.to_vector(), 1e-14);
}
