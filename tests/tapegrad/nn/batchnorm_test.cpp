// Tests for tapegrad/nn/batchnorm.hpp (the batch_norm op, BatchNorm1d and BatchNorm2d): the normalised
// values and the running statistics after one step against hand arithmetic, eval mode using the running
// statistics, the cumulative average (momentum = none), the options, the state_dict names, gradcheck in
// training and eval mode with respect to input, weight and bias, and the shape checks.

#include "../test_support.hpp"

#include <tapegrad/nn/batchnorm.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::TensorD;
using tapegrad::TensorF;
using tapegrad::testing::check_gradient;
using tapegrad::testing::Inputs;
namespace nn = tapegrad::nn;

using tapegrad::testing::message_of;

// Two features over a batch of 4: feature 0 = [1, 2, 3, 4], feature 1 = [2, 2, 2, 6].
const TensorD x4x2 = TensorD::from({4, 2}, {1, 2, 2, 2, 3, 2, 4, 6});

}  // namespace

TEST_CASE("BatchNorm1d: one training step by hand (batch statistics, running statistics)") {
    // Feature 0: mean 2.5, deviations -1.5 -0.5 0.5 1.5, biased var (2.25+0.25+0.25+2.25)/4 = 1.25, unbiased 5/3.
    // Feature 1: mean 3, deviations -1 -1 -1 3, biased var 12/4 = 3, unbiased 12/3 = 4.
    // y = (x - mean) / sqrt(var + 1e-5): feature 0 at x = 1: -1.5 / sqrt(1.25001) = -1.341635;
    // feature 1 at x = 6: 3 / sqrt(3.00001) = 1.732048, at x = 2: -1 / sqrt(3.00001) = -0.577349.
    nn::BatchNorm1d<double> bn(2);
    const TensorD y = bn(x4x2);
    CHECK(y.shape() == Shape{4, 2});
    CHECK(y(0, 0) == doctest::Approx(-1.341635).epsilon(1e-6));
    CHECK(y(3, 0) == doctest::Approx(1.341635).epsilon(1e-6));
    CHECK(y(0, 1) == doctest::Approx(-0.577349).epsilon(1e-6));
    CHECK(y(3, 1) == doctest::Approx(1.732048).epsilon(1e-6));
    // running_mean = 0.9 * 0 + 0.1 * mean = [0.25, 0.3];
    // running_var = 0.9 * 1 + 0.1 * unbiased var = [0.9 + 1/6, 0.9 + 0.4] = [1.0666667, 1.3].
    CHECK(bn.running_mean()(0) == doctest::Approx(0.25));
    CHECK(bn.running_mean()(1) == doctest::Approx(0.3));
    CHECK(bn.running_var()(0) == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0));
    CHECK(bn.running_var()(1) == doctest::Approx(1.3));
    CHECK(bn.num_batches_tracked().item() == 1.0);
    CHECK(bn.num_batches_tracked().dim() == 0);

    // Eval uses the running statistics, and changes nothing: y = (x - 0.25) / sqrt(1.0666667 + 1e-5) for
    // feature 0; at x = 1: 0.75 / 1.0328004 = 0.726181.
    bn.eval();
    const TensorD z = bn(x4x2);
    CHECK(z(0, 0) == doctest::Approx(0.75 / std::sqrt(0.9 + 0.5 / 3.0 + 1e-5)));
    CHECK(z(0, 0) == doctest::Approx(0.726181).epsilon(1e-5));
    CHECK(z(3, 1) == doctest::Approx((6 - 0.3) / std::sqrt(1.3 + 1e-5)));
    CHECK(bn.running_mean()(0) == doctest::Approx(0.25));
    CHECK(bn.num_batches_tracked().item() == 1.0);
}

TEST_CASE("BatchNorm1d: weight and bias scale and shift the normalised values") {
    nn::BatchNorm1d<double> bn(2);
    {
        tapegrad::NoGradGuard ng;
        bn.weight().copy_(TensorD::from({2}, {2.0, -1.0}));
        bn.bias().copy_(TensorD::from({2}, {0.5, 3.0}));
    }
    const TensorD y = bn(x4x2);
    // 2 * (-1.341635) + 0.5 and -1 * 1.732048 + 3
    CHECK(y(0, 0) == doctest::Approx(2 * -1.5 / std::sqrt(1.25 + 1e-5) + 0.5));
    CHECK(y(3, 1) == doctest::Approx(-3 / std::sqrt(3 + 1e-5) + 3.0));
}

TEST_CASE("BatchNorm2d: statistics per channel over N, H and W; equals BatchNorm1d on [N, C, H*W]") {
    Generator g(3);
    const TensorD x = TensorD::uniform({3, 4, 5, 6}, -2.0, 2.0, g) + 1.0;
    nn::BatchNorm2d<double> bn2(4);
    nn::BatchNorm1d<double> bn1(4);
    const TensorD y2 = bn2(x);
    const TensorD y1 = bn1(x.reshape({3, 4, 30}));
    CHECK(y2.shape() == x.shape());
    for (int64_t i = 0; i < y2.numel(); ++i) CHECK(y2.data()[i] == doctest::Approx(y1.data()[i]));
    // every channel of the output has mean 0 and (biased) variance var / (var + eps) ~ 1
    for (int64_t c = 0; c < 4; ++c) {
        double s = 0, q = 0;
        for (int64_t n = 0; n < 3; ++n)
            for (int64_t h = 0; h < 5; ++h)
                for (int64_t w = 0; w < 6; ++w) {
                    s += y2(n, c, h, w);
                    q += y2(n, c, h, w) * y2(n, c, h, w);
                }
        CHECK(std::abs(s / 90) < 1e-12);
        CHECK(q / 90 == doctest::Approx(1.0).epsilon(1e-3));
    }
    for (int64_t c = 0; c < 4; ++c) CHECK(bn2.running_var()(c) == doctest::Approx(bn1.running_var()(c)));
}

TEST_CASE("BatchNorm2d: hand values on a [2, 1, 1, 2] batch") {
    // One channel holding 0, 2, 4, 6: mean 3, biased var (9+1+1+9)/4 = 5, unbiased 20/3.
    // running_mean = 0.3, running_var = 0.9 + 0.1 * 20/3 = 1.5666667; y at 6 = 3 / sqrt(5.00001) = 1.341639.
    nn::BatchNorm2d<double> bn(1);
    const TensorD y = bn(TensorD::from({2, 1, 1, 2}, {0, 2, 4, 6}));
    CHECK(y(1, 0, 0, 1) == doctest::Approx(1.341639).epsilon(1e-6));
    CHECK(bn.running_mean()(0) == doctest::Approx(0.3));
    CHECK(bn.running_var()(0) == doctest::Approx(0.9 + 2.0 / 3.0));
}

TEST_CASE("BatchNorm: momentum = none keeps a cumulative average; custom momentum and eps") {
    // Batch means 2.5 and then 10.5 (the same batch shifted by 8): the cumulative average is 6.5.
    nn::BatchNorm1d<double> cum(2, {.momentum = std::nullopt});
    (void)cum(x4x2);
    CHECK(cum.running_mean()(0) == doctest::Approx(2.5));  // factor 1/1 on the first batch
    (void)cum(x4x2 + 8.0);
    CHECK(cum.running_mean()(0) == doctest::Approx(6.5));  // factor 1/2 on the second
    CHECK(cum.num_batches_tracked().item() == 2.0);
    CHECK(cum.running_var()(0) == doctest::Approx(5.0 / 3.0));  // both batches have unbiased var 5/3

    nn::BatchNorm1d<double> m5(2, {.eps = 0.75, .momentum = 0.5});
    const TensorD y = m5(x4x2);
    CHECK(m5.running_mean()(0) == doctest::Approx(1.25));  // 0.5 * 0 + 0.5 * 2.5
    CHECK(y(0, 0) == doctest::Approx(-1.5 / std::sqrt(1.25 + 0.75)));
    CHECK(m5.describe() == "BatchNorm1d(num_features=2, eps=0.75, momentum=0.5, affine=true, track_running_stats=true)");
    CHECK(cum.describe() == "BatchNorm1d(num_features=2, eps=1e-05, momentum=none, affine=true, track_running_stats=true)");
}

TEST_CASE("BatchNorm: state_dict names as PyTorch's; affine=false and track_running_stats=false") {
    nn::BatchNorm2d<float> bn(3);
    const auto sd = bn.state_dict();
    REQUIRE(sd.size() == 5);
    CHECK(sd[0].first == "weight");
    CHECK(sd[1].first == "bias");
    CHECK(sd[2].first == "running_mean");
    CHECK(sd[3].first == "running_var");
    CHECK(sd[4].first == "num_batches_tracked");
    CHECK(bn.weight().to_vector() == std::vector<float>{1, 1, 1});
    CHECK(bn.bias().to_vector() == std::vector<float>{0, 0, 0});
    CHECK(bn.running_var().to_vector() == std::vector<float>{1, 1, 1});
    CHECK(bn.parameters().size() == 2);

    nn::BatchNorm1d<double> plain(2, {.affine = false, .track_running_stats = false});
    CHECK(plain.state_dict().empty());
    plain.eval();  // no running statistics: eval normalises with the batch's own
    const TensorD y = plain(x4x2);
    CHECK(y(0, 0) == doctest::Approx(-1.5 / std::sqrt(1.25 + 1e-5)));
}

TEST_CASE("gradcheck: batch_norm in training mode w.r.t. input, weight and bias ([N, C], [N, C, L], [N, C, H, W])") {
    Generator g(41);
    for (const Shape& s : {Shape{5, 3}, Shape{3, 2, 4}, Shape{2, 3, 3, 2}}) {
        CAPTURE(s);
        const int64_t C = s[1];
        const TensorD x = TensorD::uniform(s, -1.0, 1.0, g) * 2.0 + 0.5;
        const TensorD w = TensorD::uniform({C}, 0.5, 1.5, g), b = TensorD::uniform({C}, -1.0, 1.0, g);
        check_gradient(
            "batch_norm (training)",
            [](const Inputs& in) { return tapegrad::batch_norm(in[0], TensorD{}, TensorD{}, in[1], in[2], true); },
            {x, w, b});
        // through the layer, whose running statistics update on every call (they do not affect training output)
        auto bn = std::make_shared<nn::BatchNorm1d<double>>(C);
        if (s.rank() == 4) continue;
        check_gradient("BatchNorm1d (training)", [bn](const Inputs& in) { return bn->forward(in[0]); }, {x});
    }
    // BatchNorm2d with its own parameters as the checked inputs
    const TensorD x = TensorD::uniform({2, 3, 3, 3}, -1.0, 1.0, g);
    check_gradient(
        "BatchNorm2d weight and bias",
        [](const Inputs& in) {
            return tapegrad::batch_norm(in[0], TensorD::zeros({3}), TensorD::ones({3}), in[1], in[2], true);
        },
        {x, TensorD::uniform({3}, 0.5, 1.5, g), TensorD::uniform({3}, -1.0, 1.0, g)});
    // no affine parameters
    check_gradient(
        "batch_norm (no weight, no bias)",
        [](const Inputs& in) { return tapegrad::batch_norm(in[0], TensorD{}, TensorD{}, TensorD{}, TensorD{}, true); },
        {x});
}

TEST_CASE("gradcheck: batch_norm in eval mode (running statistics are constants)") {
    Generator g(42);
    const TensorD rm = TensorD::uniform({3}, -0.5, 0.5, g), rv = TensorD::uniform({3}, 0.5, 2.0, g);
    check_gradient(
        "batch_norm (eval)",
        [rm, rv](const Inputs& in) { return tapegrad::batch_norm(in[0], rm, rv, in[1], in[2], false); },
        {TensorD::uniform({4, 3, 2}, -1.0, 1.0, g), TensorD::uniform({3}, 0.5, 1.5, g),
         TensorD::uniform({3}, -1.0, 1.0, g)});
}

TEST_CASE("batch_norm: backward by hand on the constant direction") {
    // Adding a constant to a channel does not change its normalised values, so for L = sum(w * y) the
    // gradient w.r.t. x sums to zero over each channel; dbias = number of values per channel.
    Generator g(43);
    TensorD x = TensorD::uniform({4, 2, 3}, -1.0, 1.0, g);
    TensorD b = TensorD::zeros({2});
    x.requires_grad_();
    b.requires_grad_();
    const TensorD y = tapegrad::batch_norm(x, TensorD{}, TensorD{}, TensorD{}, b, true);
    CHECK(y.grad_fn_name() == std::string("batch_norm"));
    y.backward(TensorD::uniform({4, 2, 3}, -1.0, 1.0, g));
    for (int64_t c = 0; c < 2; ++c) {
        double s = 0;
        for (int64_t n = 0; n < 4; ++n)
            for (int64_t l = 0; l < 3; ++l) s += x.grad()(n, c, l);
        CHECK(std::abs(s) < 1e-12);
    }
    TensorD b2 = TensorD::zeros({2});
    b2.requires_grad_();
    tapegrad::sum(tapegrad::batch_norm(x.detach(), TensorD{}, TensorD{}, TensorD{}, b2, true)).backward();
    CHECK(b2.grad().to_vector() == std::vector<double>{12, 12});
}

TEST_CASE("BatchNorm: shape and value checks") {
    nn::BatchNorm2d<float> bn2(3);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)bn2(TensorF::zeros({4, 3})); }) ==
          "BatchNorm2d: expected 4-D [N, C, H, W] input, got shape [4, 3]");
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)bn2(TensorF::zeros({2, 4, 2, 2})); }) ==
          "BatchNorm2d: expected 3 channels (dimension 1), got shape [2, 4, 2, 2]");
    nn::BatchNorm1d<float> bn1(3);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)bn1(TensorF::zeros({2, 3, 2, 2})); }) ==
          "BatchNorm1d: expected 2-D [N, C] or 3-D [N, C, L] input, got shape [2, 3, 2, 2]");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)bn1(TensorF::zeros({1, 3})); }) ==
          "batch_norm: expected more than 1 value per channel when training, got input of shape [1, 3]");
    bn1.eval();
    CHECK(bn1(TensorF::zeros({1, 3})).shape() == Shape{1, 3});  // a single example is fine in eval
    CHECK(message_of<tapegrad::ValueError>([] { nn::BatchNorm1d<float>(0); }) ==
          "BatchNorm1d: num_features must be positive, got 0");
    CHECK(message_of<tapegrad::ValueError>([] { nn::BatchNorm2d<float>(2, {.momentum = 1.5}); }) ==
          "BatchNorm2d: momentum must be in [0, 1], got 1.5");
    CHECK(message_of<tapegrad::ShapeError>([] {
              (void)tapegrad::batch_norm(TensorF::zeros({2, 3}), TensorF{}, TensorF{}, TensorF::ones({2}), TensorF{}, true);
          }) == "batch_norm: weight shape [2] should be [3] for input of shape [2, 3]");
    CHECK(message_of<tapegrad::ShapeError>([] {
              (void)tapegrad::batch_norm(TensorF::zeros({2, 3}), TensorF::zeros({3}), TensorF{}, TensorF{}, TensorF{}, false);
          }) == "batch_norm: running_mean and running_var must both be [3] for input of shape [2, 3]");
}
