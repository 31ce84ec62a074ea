// Tests for include/tapegrad/ops/layer_norm.hpp: values, accuracy with a large mean in float, errors (the
// gradchecks are rows of tests/support/attention_tables.hpp, run in ops/attention_test; PyTorch's values in
// nn/layer_norm_test).
#include <tapegrad/ops/layer_norm.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace tapegrad;

TEST_CASE("layer_norm: each row normalised by its own mean and biased variance, then weight and bias") {
    const TensorD x = TensorD::from({2, 4}, {1, 2, 3, 4, 10, 10, 10, 14});
    const TensorD y = layer_norm(x, {4}, TensorD::from({4}, {1, 2, 1, 1}), TensorD::from({4}, {0, 0, 0, 0.5}), 0.0);
    // row 0: mean 2.5, var 1.25; row 1: mean 11, var 3
    const double s0 = std::sqrt(1.25), s1 = std::sqrt(3.0);
    const std::vector<double> want{-1.5 / s0, 2 * -0.5 / s0, 0.5 / s0, 1.5 / s0 + 0.5,
                                   -1 / s1,   2 * -1 / s1,   -1 / s1,  3 / s1 + 0.5};
    const auto got = y.to_vector();
    for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
    // over two trailing dimensions: the same as over their product
    const TensorD z = layer_norm(x.reshape({2, 2, 2}), {2, 2});
    const TensorD w = layer_norm(x, {4});
    CHECK(z.to_vector() == w.to_vector());
}

TEST_CASE("layer_norm: float rows with a mean of 1e4 and a spread of 1 keep their digits (two-pass, in double)") {
    const TensorF x = TensorF::from({1, 4}, {10000.f, 10001.f, 10002.f, 10003.f});
    const auto y = layer_norm(x, {4}).to_vector();
    const double s = std::sqrt(1.25 + 1e-5);
    const std::vector<double> want{-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s};
    for (size_t i = 0; i < 4; ++i) CHECK(static_cast<double>(y[i]) == doctest::Approx(want[i]).epsilon(1e-6));
}

TEST_CASE("layer_norm: the gradients of weight and bias are column sums over every row") {
    TensorD x = TensorD::from({3, 2}, {0, 2, 5, 1, -1, 1}).requires_grad_();
    TensorD w = TensorD::ones({2}).requires_grad_();
    TensorD b = TensorD::zeros({2}).requires_grad_();
    sum(layer_norm(x, {2}, w, b, 0.0) * TensorD::from({3, 2}, {1, 1, 2, 2, 3, 3})).backward();
    CHECK(b.grad().to_vector() == std::vector<double>{6, 6});
    // xhat rows: (-1, 1), (1, -1), (-1, 1)
    CHECK(w.grad().to_vector()[0] == doctest::Approx(-1 + 2 - 3));
    CHECK(w.grad().to_vector()[1] == doctest::Approx(1 - 2 + 3));
    // a constant dy along a row passes no gradient to x (the mean absorbs it)
    for (const double g : x.grad().to_vector()) CHECK(std::abs(g) < 1e-12);
}

TEST_CASE("layer_norm: errors name the shapes") {
    const TensorD x = TensorD::zeros({2, 3});
    CHECK_THROWS_WITH_AS(layer_norm(x, {2}), "layer_norm: input of shape [2, 3] does not end in normalized_shape [2]",
                         ShapeError);
    CHECK_THROWS_WITH_AS(layer_norm(x, {2, 2, 3}),
                         "layer_norm: input of shape [2, 3] does not end in normalized_shape [2, 2, 3]", ShapeError);
    CHECK_THROWS_WITH_AS(layer_norm(x, {3}, TensorD::zeros({2})), "layer_norm: weight shape [2] should be normalized_shape [3]",
                         ShapeError);
    CHECK_THROWS_WITH_AS(layer_norm(x, {3}, {}, TensorD::zeros({3, 1})),
                         "layer_norm: bias shape [3, 1] should be normalized_shape [3]", ShapeError);
    CHECK_THROWS_WITH_AS(layer_norm(x, Shape{}), "layer_norm: normalized_shape must have at least one dimension", ValueError);
    CHECK_THROWS_WITH_AS(layer_norm(x, {3}, {}, {}, -1.0), "layer_norm: eps must be non-negative, got -1", ValueError);
    CHECK(layer_norm(TensorD::zeros({0, 3}), {3}).shape() == Shape{0, 3});
}
