// Tests for tapegrad/nn/linear.hpp (Linear / Dense) and the fused `linear` op of tapegrad/ops/linalg.hpp:
// shapes, the y = x W^T + b formula on hand-computed numbers, PyTorch's initialisation, seeding, the
// argument checks, and gradcheck of the op with and without bias.

#include <tapegrad/autograd/gradcheck.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>

#include <doctest/doctest.h>

#include "../test_support.hpp"
#include "../../support/tensor_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::TensorD;
using tapegrad::TensorF;
namespace nn = tapegrad::nn;

/// The exception message of `f`, or "" if it does not throw `E`.
using tapegrad::testing::message_of;

using tapegrad::testing::random_tensor;
using tapegrad::testing::same_bits;

}  // namespace

TEST_CASE("Linear: x [N, in] -> [N, out]; x [B, T, in] -> [B, T, out]; x [in] -> [out]") {
    Generator gen(1);
    nn::Linear<float> fc(5, 3, gen);
    CHECK(fc.in_features() == 5);
    CHECK(fc.out_features() == 3);
    CHECK(fc.weight().shape() == Shape{3, 5});
    CHECK(fc.bias().shape() == Shape{3});
    CHECK(fc.forward(TensorF::ones({4, 5})).shape() == Shape{4, 3});
    CHECK(fc.forward(TensorF::ones({2, 7, 5})).shape() == Shape{2, 7, 3});
    CHECK(fc.forward(TensorF::ones({5})).shape() == Shape{3});
    CHECK(fc.forward(TensorF::ones({0, 5})).shape() == Shape{0, 3});

    // [B, T, in] is the same product row by row as [B*T, in].
    const TensorF x = TensorF::uniform({2, 7, 5}, -1.0f, 1.0f, gen);
    const TensorF y3 = fc.forward(x);
    const TensorF y2 = fc.forward(x.reshape({14, 5}));
    CHECK(y3.to_vector() == y2.to_vector());
}

TEST_CASE("Linear: bias=false registers only the weight") {
    Generator gen(2);
    nn::Linear<float> fc(4, 2, gen, {.bias = false});
    const auto named = fc.named_parameters();
    REQUIRE(named.size() == 1);
    CHECK(named[0].first == "weight");
    CHECK_FALSE(fc.bias().defined());
    CHECK(fc.num_parameters() == 8);
    // With x = 0 the output is exactly 0 (no hidden offset).
    const TensorF y = fc.forward(TensorF::zeros({3, 4}));
    for (float v : y.span()) CHECK(v == 0.0f);
    CHECK(fc.describe() == "Linear(in=4, out=2, bias=false)");
    nn::Dense<float> dense(4, 2, gen);  // the textbook alias
    CHECK(dense.named_parameters().size() == 2);
}

TEST_CASE("Linear: forward is x W^T + b (hand-computed)") {
    // W = [[1, 2, 3], [4, 5, 6]], b = [0.5, -1], x = [[1, 0, -1], [2, 1, 0]]
    // x W^T = [[1 - 3, 4 - 6], [2 + 2, 8 + 5]] = [[-2, -2], [4, 13]];  + b = [[-1.5, -3], [4.5, 12]]
    Generator gen(3);
    nn::Linear<float> fc(3, 2, gen);
    {
        tapegrad::NoGradGuard ng;
        fc.weight().copy_(TensorF::from({2, 3}, {1, 2, 3, 4, 5, 6}));
        fc.bias().copy_(TensorF::from({2}, {0.5f, -1.0f}));
    }
    const TensorF y = fc.forward(TensorF::from({2, 3}, {1, 0, -1, 2, 1, 0}));
    CHECK(y.shape() == Shape{2, 2});
    CHECK(y.to_vector() == std::vector<float>{-1.5f, -3.0f, 4.5f, 12.0f});

    // Backward by hand for L = sum(y): dW[j, :] = sum of x's rows = [3, 1, -1]; db = [2, 2];
    // dx[i, :] = sum of W's rows = [5, 7, 9].
    TensorF x = TensorF::from({2, 3}, {1, 0, -1, 2, 1, 0});
    x.requires_grad_(true);
    tapegrad::sum(fc.forward(x)).backward();
    CHECK(fc.weight().grad().to_vector() == std::vector<float>{3, 1, -1, 3, 1, -1});
    CHECK(fc.bias().grad().to_vector() == std::vector<float>{2, 2});
    CHECK(x.grad().to_vector() == std::vector<float>{5, 7, 9, 5, 7, 9});
    CHECK(y.grad_fn_name() == std::string("linear"));
}

TEST_CASE("Linear: PyTorch initialisation, U(-1/sqrt(in), 1/sqrt(in)) for weight and bias") {
    Generator gen(4);
    for (int64_t in : {1, 3, 100, 784}) {
        CAPTURE(in);
        nn::Linear<float> fc(in, 64, gen);
        const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in)));
        float wmax = 0, bmax = 0;
        double wsum = 0;
        for (float w : fc.weight().span()) {
            wmax = std::max(wmax, std::abs(w));
            wsum += w;
        }
        for (float b : fc.bias().span()) bmax = std::max(bmax, std::abs(b));
        CHECK(wmax <= bound);
        CHECK(bmax <= bound);
        // The draws use most of the range (64*in samples: the largest is within a few percent of it).
        if (fc.weight().numel() >= 1000) {
            CHECK(wmax > 0.99f * bound);
            // The mean of U(-b, b) is 0; its standard error is b / sqrt(3 n).
            const double n = static_cast<double>(fc.weight().numel());
            CHECK(std::abs(wsum / n) < 5.0 * bound / std::sqrt(3.0 * n));
        }
        CHECK(bmax > 0.5f * bound);  // 64 draws: all below half the bound has probability 2^-64
        CHECK(fc.weight().requires_grad());
        CHECK(fc.bias().requires_grad());
        CHECK(fc.weight().is_leaf());
    }
}

TEST_CASE("Linear: the same seed gives bitwise the same weights; another seed does not") {
    Generator g1(42), g2(42), g3(43);
    nn::Linear<float> a(30, 20, g1), b(30, 20, g2), c(30, 20, g3);
    CHECK(same_bits(a.weight(), b.weight()));
    CHECK(same_bits(a.bias(), b.bias()));
    CHECK_FALSE(same_bits(a.weight(), c.weight()));
    // The constructor without a generator draws from the default generator: manual_seed makes it repeatable.
    tapegrad::manual_seed(7);
    nn::Linear<float> d(30, 20);
    tapegrad::manual_seed(7);
    nn::Linear<float> e(30, 20);
    CHECK(same_bits(d.weight(), e.weight()));
    CHECK(same_bits(d.bias(), e.bias()));
    // ... and it continues the stream: the next layer differs.
    nn::Linear<float> f(30, 20);
    CHECK_FALSE(same_bits(e.weight(), f.weight()));
}

TEST_CASE("Linear: an input whose last dimension is not in_features throws ShapeError naming both shapes") {
    Generator gen(5);
    nn::Linear<float> fc(3, 2, gen);
    const std::string msg = message_of<tapegrad::ShapeError>([&] { static_cast<void>(fc.forward(TensorF::ones({4, 5}))); });
    CHECK(msg == "linear: input shape [4, 5] does not end in the weight's in-features 3 (weight shape [2, 3])");
    CHECK_THROWS_AS(static_cast<void>(fc.forward(TensorF::scalar(1.0f))), tapegrad::ShapeError);
    CHECK_THROWS_AS(static_cast<void>(fc.forward(TensorF::ones({3, 2}))), tapegrad::ShapeError);
}

TEST_CASE("Linear: non-positive sizes throw ValueError naming both") {
    Generator gen(6);
    CHECK_THROWS_WITH_AS(nn::Linear<float>(0, 3, gen),
                         "Linear: in_features (0) and out_features (3) must be positive", tapegrad::ValueError);
    CHECK_THROWS_AS(nn::Linear<float>(3, 0, gen), tapegrad::ValueError);
    CHECK_THROWS_AS(nn::Linear<float>(-1, 3, gen), tapegrad::ValueError);
    CHECK_THROWS_AS(nn::Linear<float>(3, -5), tapegrad::ValueError);
}

TEST_CASE("linear op: argument checks on weight and bias") {
    const TensorF x = TensorF::ones({2, 3});
    CHECK(message_of<tapegrad::ShapeError>([&] { static_cast<void>(tapegrad::linear(x, TensorF::ones({3}))); }) ==
          "linear: weight must be 2-D [out, in], got shape [3]");
    CHECK(message_of<tapegrad::ShapeError>([&] {
              static_cast<void>(tapegrad::linear(x, TensorF::ones({4, 3}), TensorF::ones({3})));
          }) == "linear: bias shape [3] should be [4] for weight shape [4, 3]");
    CHECK_THROWS_AS(static_cast<void>(tapegrad::linear(x, TensorF::ones({4, 3}), TensorF::ones({1, 4}))),
                    tapegrad::ShapeError);
}

TEST_CASE("linear op: zero in-features gives the bias (or zeros) on every row") {
    // x [5, 0] times W^T [0, 2] is a [5, 2] matrix of zeros; the bias is then added to every row.
    const TensorF x = TensorF::empty({5, 0});
    const TensorF w = TensorF::empty({2, 0});
    const TensorF b = TensorF::from({2}, {1.5f, -2.0f});
    const TensorF y = tapegrad::linear(x, w, b);
    REQUIRE(y.shape() == Shape{5, 2});
    for (int64_t i = 0; i < 5; ++i) {
        CHECK(y(i, 0) == 1.5f);
        CHECK(y(i, 1) == -2.0f);
    }
    const TensorF y0 = tapegrad::linear(TensorF::empty({2, 3, 0}), w);
    REQUIRE(y0.shape() == Shape{2, 3, 2});
    for (float v : y0.span()) CHECK(v == 0.0f);
}

TEST_CASE("linear op: passes gradcheck (double) on random shapes, with and without bias") {
    Generator gen(20260301);
    int checked = 0;
    for (int c = 0; c < 12; ++c) {
        const int64_t in = 1 + static_cast<int64_t>(gen.below(5));
        const int64_t out = 1 + static_cast<int64_t>(gen.below(5));
        // x of rank 1, 2 or 3: [in], [N, in], [B, T, in].
        Shape sx;
        const int rank = 1 + static_cast<int>(gen.below(3));
        for (int r = 0; r + 1 < rank; ++r) sx.push_back(1 + static_cast<int64_t>(gen.below(4)));
        sx.push_back(in);
        const TensorD x = random_tensor(sx, gen);
        const TensorD w = random_tensor({out, in}, gen);
        const TensorD b = random_tensor({out}, gen);
        CAPTURE(sx);
        CAPTURE(out);
        const auto with_bias = tapegrad::gradcheck(
            [](const std::vector<TensorD>& v) { return tapegrad::linear(v[0], v[1], v[2]); }, {x, w, b});
        CHECK_MESSAGE(with_bias.ok, with_bias.message);
        const auto without_bias =
            tapegrad::gradcheck([](const std::vector<TensorD>& v) { return tapegrad::linear(v[0], v[1]); }, {x, w});
        CHECK_MESSAGE(without_bias.ok, without_bias.message);
        // Only some inputs requiring grad: the others get no gradient buffer.
        TensorD xc = x.clone(), wc = w.clone();
        wc.requires_grad_(true);
        tapegrad::sum(tapegrad::linear(xc, wc)).backward();
        CHECK_FALSE(xc.grad().defined());
        CHECK(wc.grad().defined());
        checked += 2;
    }
    CHECK(checked >= 20);
}

TEST_CASE("linear op: gradients accumulate with += over two uses (a reused input)") {
    Generator gen(8);
    const TensorD x = random_tensor({3, 4}, gen);
    const TensorD w = random_tensor({2, 4}, gen);
    const TensorD b = random_tensor({2}, gen);
    const auto r = tapegrad::gradcheck(
        [](const std::vector<TensorD>& v) {
            return tapegrad::linear(v[0], v[1], v[2]) + tapegrad::linear(v[0], v[1], v[2]) * 2.0;
        },
        {x, w, b});
    CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("linear op: matches matmul(x, transpose(w)) + b in value and gradient") {
    Generator gen(9);
    for (int c = 0; c < 10; ++c) {
        const int64_t n = 1 + static_cast<int64_t>(gen.below(6)), in = 1 + static_cast<int64_t>(gen.below(6)),
                      out = 1 + static_cast<int64_t>(gen.below(6));
        TensorD x1 = random_tensor({n, in}, gen), w1 = random_tensor({out, in}, gen), b1 = random_tensor({out}, gen);
        TensorD x2 = x1.clone(), w2 = w1.clone(), b2 = b1.clone();
        for (TensorD* t : {&x1, &w1, &b1, &x2, &w2, &b2}) t->requires_grad_(true);
        const TensorD fused = tapegrad::linear(x1, w1, b1);
        const TensorD ref = tapegrad::matmul(x2, tapegrad::transpose(w2, 0, 1)) + b2;
        REQUIRE(fused.shape() == ref.shape());
        for (int64_t i = 0; i < fused.numel(); ++i) CHECK(fused.data()[i] == doctest::Approx(ref.data()[i]).epsilon(1e-12));
        const TensorD r = random_tensor(fused.shape(), gen);
        fused.backward(r);
        ref.backward(r);
        for (auto [a, e] : {std::pair{&x1, &x2}, std::pair{&w1, &w2}, std::pair{&b1, &b2}})
            for (int64_t i = 0; i < a->numel(); ++i)
                CHECK(a->grad().data()[i] == doctest::Approx(e->grad().data()[i]).epsilon(1e-12));
    }
}
