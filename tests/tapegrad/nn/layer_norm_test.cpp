// Tests for include/tapegrad/nn/layer_norm.hpp: PyTorch's values and names, the parameters, errors.
#include <tapegrad/nn/layer_norm.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/attention_reference.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("LayerNorm: outputs and gradients equal PyTorch's (torch.nn.LayerNorm([3, 4]), a row of mean 1000)") {
    const auto& c = reference_case("layer_norm [3, 4] affine");
    nn::LayerNorm<double> ln(Shape{3, 4});
    load_reference_state(ln, c);
    TensorD x = reference_input(c, "x");
    check_reference_run(ln, c, ln(x), {}, {{"x", x}});
}

TEST_CASE("LayerNorm: without elementwise_affine (no parameters), eps 1e-3, equals PyTorch's") {
    const auto& c = reference_case("layer_norm 6 no affine eps 1e-3");
    nn::LayerNorm<double> ln(6, {.eps = 1e-3, .elementwise_affine = false});
    CHECK(ln.parameters().empty());
    load_reference_state(ln, c);
    TensorD x = reference_input(c, "x");
    check_reference_run(ln, c, ln(x), {}, {{"x", x}});
}

TEST_CASE("LayerNorm: parameters named weight and bias, ones and zeros; describe; errors") {
    nn::LayerNorm<float> ln(Shape{2, 3});
    const auto named = ln.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "weight");
    CHECK(named[1].first == "bias");
    CHECK(named[0].second.shape() == Shape{2, 3});
    CHECK(named[0].second.to_vector() == std::vector<float>(6, 1.f));
    CHECK(named[1].second.to_vector() == std::vector<float>(6, 0.f));
    CHECK(ln.describe() == "LayerNorm(normalized_shape=[2, 3], eps=1e-05, elementwise_affine=true)");
    // the same in training and evaluation
    Generator g(3);
    const TensorF x = TensorF::uniform({4, 2, 3}, -2.f, 2.f, g);
    const auto a = ln(x).to_vector();
    ln.eval();
    CHECK(ln(x).to_vector() == a);
    CHECK_THROWS_WITH_AS((void)ln(TensorF::zeros({4, 3, 2})),
                         "layer_norm: input of shape [4, 3, 2] does not end in normalized_shape [2, 3]", ShapeError);
    CHECK_THROWS_WITH_AS(nn::LayerNorm<float>(Shape{0}),
                         "LayerNorm: normalized_shape must be non-empty with positive dimensions, got [0]", ValueError);
    CHECK_THROWS_WITH_AS(nn::LayerNorm<float>(4, {.eps = -1.0}), "LayerNorm: eps must be non-negative, got -1",
                         ValueError);
}
