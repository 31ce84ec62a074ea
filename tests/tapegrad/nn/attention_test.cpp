// Tests for include/tapegrad/nn/attention.hpp: MultiheadAttention against PyTorch (outputs, weights, every
// gradient), its names and layout, batch_first and unbatched inputs, dropout only in training, errors.
#include <tapegrad/nn/attention.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/attention_reference.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("MultiheadAttention: self-attention [L, N, E] equals PyTorch's (output, averaged weights, gradients)") {
    const auto& c = reference_case("mha self-attention [L, N, E]");
    nn::MultiheadAttention<double> mha(8, 2);
    load_reference_state(mha, c);
    TensorD x = reference_input(c, "query");
    const auto r = mha.forward(x, x, x);
    check_reference_run(mha, c, r.output, r.weights, {{"query", x}});
}

TEST_CASE("MultiheadAttention: cross-attention, batch_first, attn_mask with -inf and key padding, per-head weights") {
    const auto& c = reference_case("mha cross-attention batch_first, attn_mask and key_padding_mask, weights per head");
    nn::MultiheadAttention<double> mha(8, 2, {.batch_first = true});
    load_reference_state(mha, c);
    TensorD q = reference_input(c, "query"), k = reference_input(c, "key"), v = reference_input(c, "value");
    const auto r = mha.forward(q, k, v,
                               {.key_padding_mask = reference_input(c, "key_padding_mask"),
                                .attn_mask = reference_input(c, "attn_mask"),
                                .average_attn_weights = false});
    check_reference_run(mha, c, r.output, r.weights, {{"query", q}, {"key", k}, {"value", v}});
}

TEST_CASE("MultiheadAttention: key is value, no bias, a 3-D attn_mask [N * H, L, S]") {
    const auto& c = reference_case("mha key is value, no bias, 3-D attn_mask");
    nn::MultiheadAttention<double> mha(8, 2, {.bias = false});
    CHECK(!mha.in_proj_bias().defined());
    load_reference_state(mha, c);
    TensorD q = reference_input(c, "query"), kv = reference_input(c, "key");
    const auto r = mha.forward(q, kv, kv, {.attn_mask = reference_input(c, "attn_mask")});
    check_reference_run(mha, c, r.output, r.weights, {{"query", q}, {"key", kv}});
}

TEST_CASE("MultiheadAttention: PyTorch's parameter names, shapes and initialisation") {
    Generator g(1);
    nn::MultiheadAttention<float> mha(12, 3, g);
    const auto named = mha.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "in_proj_weight");
    CHECK(named[0].second.shape() == Shape{36, 12});
    CHECK(named[1].first == "in_proj_bias");
    CHECK(named[2].first == "out_proj.weight");
    CHECK(named[2].second.shape() == Shape{12, 12});
    CHECK(named[3].first == "out_proj.bias");
    CHECK(named[1].second.to_vector() == std::vector<float>(36, 0.f));
    CHECK(named[3].second.to_vector() == std::vector<float>(12, 0.f));
    const double xavier = std::sqrt(6.0 / (12 + 36));
    double mx = 0;
    for (const float w : named[0].second.to_vector()) mx = std::max(mx, std::abs(static_cast<double>(w)));
    CHECK(mx <= xavier);
    CHECK(mx > 0.8 * xavier);
    CHECK(mha.describe() == "MultiheadAttention(embed_dim=12, num_heads=3, dropout=0, bias=true, batch_first=false)");
}

TEST_CASE("MultiheadAttention: unbatched [L, E] equals the batch of one; is_causal equals a -inf triangle") {
    Generator g(2);
    nn::MultiheadAttention<double> mha(6, 2, g, {.batch_first = true});
    const TensorD x = TensorD::uniform({5, 6}, -1, 1, g);
    const auto one = mha.forward(x, x, x);
    const auto batch = mha.forward(x.reshape({1, 5, 6}), x.reshape({1, 5, 6}), x.reshape({1, 5, 6}));
    CHECK(one.output.shape() == Shape{5, 6});
    CHECK(one.weights.shape() == Shape{5, 5});
    check_close("unbatched output", batch.output.to_vector(), one.output.to_vector(), 1e-12);
    TensorD tri = TensorD::zeros({5, 5});
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = i + 1; j < 5; ++j) tri(i, j) = -std::numeric_limits<double>::infinity();
    const auto causal = mha.forward(x, x, x, {.is_causal = true});
    const auto masked = mha.forward(x, x, x, {.attn_mask = tri});
    check_close("causal output", masked.output.to_vector(), causal.output.to_vector(), 1e-12);
    CHECK(causal.weights(0, 1) == 0.0);
    CHECK(causal.weights(0, 0) == doctest::Approx(1.0));
}

TEST_CASE("MultiheadAttention: dropout on the weights in training only; forward(x) is self-attention") {
    Generator g(4);
    nn::MultiheadAttention<double> mha(4, 2, g, {.dropout = 0.5});
    const TensorD x = TensorD::uniform({3, 2, 4}, -1, 1, g);
    const auto a = mha.forward(x, x, x).output.to_vector();
    const auto b = mha.forward(x, x, x).output.to_vector();
    CHECK(a != b);  // two masks
    mha.eval();
    const auto e1 = mha.forward(x, x, x).output.to_vector();
    CHECK(mha(x).to_vector() == e1);
}

TEST_CASE("MultiheadAttention: errors name the sizes") {
    CHECK_THROWS_WITH_AS(nn::MultiheadAttention<float>(10, 3),
                         "MultiheadAttention: embed_dim (10) must be a positive multiple of num_heads (3)", ValueError);
    CHECK_THROWS_WITH_AS(nn::MultiheadAttention<float>(4, 2, {.dropout = 1.0}),
                         "MultiheadAttention: dropout must be in [0, 1), got 1", ValueError);
    nn::MultiheadAttention<float> mha(4, 2);
    const TensorF x = TensorF::zeros({3, 2, 4});
    CHECK_THROWS_WITH_AS((void)mha.forward(x, x, x, {.attn_mask = TensorF::zeros({3, 4})}),
                         "multi_head_attention: attn_mask shape [3, 4] should be [3, 3] or [4, 3, 3] (N * num_heads, L, S)",
                         ShapeError);
    CHECK_THROWS_WITH_AS((void)mha.forward(x, x, x, {.key_padding_mask = TensorF::zeros({3, 2})}),
                         "multi_head_attention: key_padding_mask shape [3, 2] should be [2, 3]", ShapeError);
    CHECK_THROWS_WITH_AS((void)mha.forward(x, TensorF::zeros({3, 2, 5}), x),
                         "multi_head_attention: key [3, 2, 5] and value [3, 2, 4] must end in embed_dim 4 (query [3, 2, 4])",
                         ShapeError);
}
