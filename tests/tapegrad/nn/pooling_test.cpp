// Tests for tapegrad/nn/pooling.hpp (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d, Flatten):
// output shapes, hand-computed values and gradient routing through the modules, describe(), gradcheck, and
// the constructor checks.

#include "../test_support.hpp"

#include <tapegrad/nn/pooling.hpp>

#include <doctest/doctest.h>

#include <limits>
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

}  // namespace

TEST_CASE("MaxPool2d: halves each side by default; values and argmax routing") {
    nn::MaxPool2d<double> pool(2);
    CHECK(pool.forward(TensorD::zeros({2, 6, 28, 28})).shape() == Shape{2, 6, 14, 14});
    CHECK(pool.forward(TensorD::zeros({2, 16, 10, 10})).shape() == Shape{2, 16, 5, 5});
    CHECK(pool.forward(TensorD::zeros({1, 1, 5, 5})).shape() == Shape{1, 1, 2, 2});  // the last row/col is dropped
    CHECK(pool.describe() == "MaxPool2d(kernel=2, stride=2, padding=0)");

    // Two channels of 2x4: channel 0 windows {1, 5, 2, 0} -> 5 at (0,1), {7, 3, 4, 8} -> 8 at (1,3);
    // channel 1 windows {-1, -2, -3, -4} -> -1 at (0,0), {0, 0, 0, 1} -> 1 at (1,3).
    TensorD x = TensorD::from({1, 2, 2, 4}, {1, 5, 7, 3, 2, 0, 4, 8, -1, -2, 0, 0, -3, -4, 0, 1});
    x.requires_grad_();
    const TensorD y = pool(x);
    CHECK(y.to_vector() == std::vector<double>{5, 8, -1, 1});
    y.backward(TensorD::from({1, 2, 1, 2}, {10, 20, 30, 40}));
    CHECK(x.grad().to_vector() == std::vector<double>{0, 10, 0, 0, 0, 0, 0, 20, 30, 0, 0, 0, 0, 0, 0, 40});
}

TEST_CASE("max_pool2d: a dilated window wholly in the padding gives -inf and passes no gradient") {
    // H = W = 2, kernel 2, padding 1, dilation 3: the one window's taps sit at -1 and 2 on each axis, all
    // padding (PyTorch allows it: padding 1 is at most half the dilated kernel's 4).
    TensorD x = TensorD::from({1, 1, 2, 2}, {1, 2, 3, 4});
    x.requires_grad_();
    const TensorD y = tapegrad::max_pool2d(x, 2, {.stride = 1, .padding = 1, .dilation = 3});
    REQUIRE(y.shape() == Shape{1, 1, 1, 1});
    CHECK(y.item() == -std::numeric_limits<double>::infinity());
    y.backward(TensorD::ones({1, 1, 1, 1}));
    CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 0, 0});
}

TEST_CASE("MaxPool2d and AvgPool2d: overlapping windows with padding") {
    nn::MaxPool2d<double> mp(3, {.stride = 2, .padding = 1});
    CHECK(mp.describe() == "MaxPool2d(kernel=3, stride=2, padding=1)");
    // ResNet's stem pool: floor((112 + 2 - 3) / 2) + 1 = 56
    CHECK(mp.forward(TensorD::zeros({1, 1, 112, 112})).shape() == Shape{1, 1, 56, 56});
    nn::AvgPool2d<double> ap(3, {.stride = 1, .padding = 1, .count_include_pad = false});
    CHECK(ap.describe() == "AvgPool2d(kernel=3, stride=1, padding=1, count_include_pad=false)");
    // On 1..9 (3x3) without padding in the divisor the corner is (1+2+4+5)/4 = 3 and the centre 45/9 = 5.
    const TensorD y = ap(TensorD::arange(1.0, 10.0).reshape({1, 1, 3, 3}));
    CHECK(y(0, 0, 0, 0) == doctest::Approx(3.0));
    CHECK(y(0, 0, 1, 1) == doctest::Approx(5.0));
    // with the default count_include_pad the corner is 12/9
    CHECK(nn::AvgPool2d<double>(3, {.stride = 1, .padding = 1})(TensorD::arange(1.0, 10.0).reshape({1, 1, 3, 3}))(0, 0, 0, 0) ==
          doctest::Approx(12.0 / 9));
    CHECK(nn::AvgPool2d<double>(2).describe() == "AvgPool2d(kernel=2, stride=2, padding=0)");
}

TEST_CASE("GlobalAvgPool2d gives [N, C]; AdaptiveAvgPool2d a fixed size; Flatten keeps the batch axis") {
    nn::GlobalAvgPool2d<double> gap;
    // (1+2+3+4)/4 = 2.5, (5+6+7+8)/4 = 6.5
    CHECK(gap(TensorD::arange(1.0, 9.0).reshape({1, 2, 2, 2})).to_vector() == std::vector<double>{2.5, 6.5});
    CHECK(gap(TensorD::zeros({3, 7, 5, 4})).shape() == Shape{3, 7});
    CHECK(gap.describe() == "GlobalAvgPool2d()");

    nn::AdaptiveAvgPool2d<double> ad({2, 3});
    CHECK(ad(TensorD::zeros({2, 4, 9, 7})).shape() == Shape{2, 4, 2, 3});
    CHECK(ad.describe() == "AdaptiveAvgPool2d(output_size=2x3)");

    nn::Flatten<double> flat;
    const TensorD x = TensorD::arange(24).reshape({2, 3, 2, 2});
    const TensorD f = flat(x);
    CHECK(f.shape() == Shape{2, 12});
    CHECK(f.to_vector() == x.to_vector());  // a view: the same row-major order
    CHECK(nn::Flatten<double>(1, 2)(x).shape() == Shape{2, 6, 2});
    CHECK(nn::Flatten<double>(0)(x).shape() == Shape{24});
    CHECK(flat.describe() == "Flatten(start_dim=1, end_dim=-1)");
}

TEST_CASE("gradcheck: through every pooling module, with padding") {
    Generator g(31);
    const TensorD distinct = tapegrad::testing::distinct_tensor({2, 2, 6, 5}, g);
    const TensorD any = TensorD::uniform({2, 2, 6, 5}, -1.0, 1.0, g);
    auto mp = std::make_shared<nn::MaxPool2d<double>>(3, tapegrad::MaxPool2dParams{.stride = 2, .padding = 1});
    auto ap = std::make_shared<nn::AvgPool2d<double>>(3, tapegrad::AvgPool2dParams{.stride = 2, .padding = 1});
    auto ap2 = std::make_shared<nn::AvgPool2d<double>>(
        2, tapegrad::AvgPool2dParams{.stride = 1, .padding = 1, .count_include_pad = false});
    auto ad = std::make_shared<nn::AdaptiveAvgPool2d<double>>(tapegrad::Size2{4, 3});
    auto gap = std::make_shared<nn::GlobalAvgPool2d<double>>();
    auto fl = std::make_shared<nn::Flatten<double>>();
    check_gradient("MaxPool2d", [mp](const Inputs& in) { return mp->forward(in[0]); }, {distinct});
    check_gradient("AvgPool2d", [ap](const Inputs& in) { return ap->forward(in[0]); }, {any});
    check_gradient("AvgPool2d (count_include_pad=false)", [ap2](const Inputs& in) { return ap2->forward(in[0]); }, {any});
    check_gradient("AdaptiveAvgPool2d", [ad](const Inputs& in) { return ad->forward(in[0]); }, {any});
    check_gradient("GlobalAvgPool2d", [gap](const Inputs& in) { return gap->forward(in[0]); }, {any});
    check_gradient("Flatten", [fl](const Inputs& in) { return fl->forward(in[0]); }, {any});
}

TEST_CASE("pooling modules: constructor checks") {
    CHECK(message_of<tapegrad::ValueError>([] { nn::MaxPool2d<float>(3, {.padding = 2}); }) ==
          "MaxPool2d: padding 2 should be at most half the kernel 3x3 (1x1)");
    CHECK(message_of<tapegrad::ValueError>([] { nn::MaxPool2d<float>(0); }) ==
          "MaxPool2d: kernel size must be positive, got 0");
    CHECK(message_of<tapegrad::ValueError>([] { nn::AvgPool2d<float>(2, {.stride = 0}); }) ==
          "AvgPool2d: stride must be positive, got 0");
    CHECK(message_of<tapegrad::ValueError>([] { nn::AvgPool2d<float>(2, {.padding = -1}); }) ==
          "AvgPool2d: padding must be non-negative, got -1");
    CHECK(message_of<tapegrad::ValueError>([] { nn::AdaptiveAvgPool2d<float>({0, 2}); }) ==
          "AdaptiveAvgPool2d: output size must be positive, got 0x2");
    // shape errors come from the op when the input arrives
    nn::MaxPool2d<float> pool(3);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)pool(TensorF::zeros({1, 1, 2, 2})); }) ==
          "max_pool2d: kernel 3x3 (dilation 1) is larger than the padded input 2x2 (input shape [1, 1, 2, 2], padding 0)");
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)nn::GlobalAvgPool2d<float>()(TensorF::zeros({4, 4})); }) ==
          "global_avg_pool2d: input must be 4-D [N, C, H, W], got shape [4, 4]");
}
