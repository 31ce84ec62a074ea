// Tests for include/tapegrad/nn/transformer.hpp: TransformerEncoderLayer against PyTorch, post-norm and
// pre-norm (outputs and every gradient), its names, masks, errors.
#include <tapegrad/nn/transformer.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/attention_reference.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("TransformerEncoderLayer: post-norm, relu, [L, N, E], key padding: equals PyTorch's") {
    const auto& c = reference_case("encoder post-norm relu, key padding");
    nn::TransformerEncoderLayer<double> enc(8, 2, {.dim_feedforward = 16, .dropout = 0.0});
    load_reference_state(enc, c);
    TensorD src = reference_input(c, "src");
    const TensorD y = enc.forward(src, {.src_key_padding_mask = reference_input(c, "src_key_padding_mask")});
    check_reference_run(enc, c, y, {}, {{"src", src}});
}

TEST_CASE("TransformerEncoderLayer: pre-norm (norm_first), gelu, batch_first, causal mask: equals PyTorch's") {
    const auto& c = reference_case("encoder pre-norm gelu batch_first, causal");
    nn::TransformerEncoderLayer<double> enc(8, 2,
                                            {.dim_feedforward = 16, .dropout = 0.0, .activation = "gelu",
                                             .layer_norm_eps = 1e-6, .batch_first = true, .norm_first = true});
    load_reference_state(enc, c);
    TensorD src = reference_input(c, "src");
    const TensorD y = enc.forward(src, {.src_mask = reference_input(c, "src_mask")});
    check_reference_run(enc, c, y, {}, {{"src", src}});
    // is_causal gives the same without a mask
    const TensorD yc = enc.forward(src.detach(), {.is_causal = true});
    check_named(c.name + ": is_causal", c.output, yc);
}

TEST_CASE("TransformerEncoderLayer: PyTorch's parameter names; lengths equal a key padding mask; errors") {
    Generator g(5);
    nn::TransformerEncoderLayer<double> enc(4, 2, g, {.dim_feedforward = 6, .dropout = 0.0});
    std::vector<std::string> names;
    for (const auto& [n, t] : enc.state_dict()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                                            "self_attn.out_proj.weight", "self_attn.out_proj.bias", "linear1.weight",
                                            "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight",
                                            "norm1.bias", "norm2.weight", "norm2.bias"});
    const TensorD x = TensorD::uniform({3, 2, 4}, -1, 1, g);
    TensorD pad = TensorD::zeros({2, 3});
    pad(1, 2) = -std::numeric_limits<double>::infinity();
    const auto a = enc.forward(x, {.src_key_padding_mask = pad}).to_vector();
    const auto b = enc.forward(x, {.lengths = {3, 2}}).to_vector();
    check_close("lengths", a, b, 1e-12);
    CHECK_THROWS_WITH_AS(nn::TransformerEncoderLayer<float>(4, 2, {.activation = "tanh"}),
                         "TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", got \"tanh\"", ValueError);
    CHECK_THROWS_AS(nn::TransformerEncoderLayer<float>(5, 2), ValueError);
}
