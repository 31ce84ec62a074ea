// Tests for tapegrad/nn/conv.hpp (the Conv2d layer): shapes, parameter names and layouts, PyTorch's
// initialisation, seeding, options, describe(), gradcheck through the layer, a LeNet-5 forward/backward, and
// the constructor's checks.

#include "../test_support.hpp"
#include "../../support/tensor_checks.hpp"

#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/conv.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/nn/pooling.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
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

using tapegrad::testing::same_bits;

}  // namespace

TEST_CASE("Conv2d: parameters named and shaped as torch.nn.Conv2d's; output sizes") {
    Generator gen(1);
    nn::Conv2d<float> conv(3, 8, 5, {.padding = 2}, gen);
    const auto named = conv.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "weight");
    CHECK(named[0].second.shape() == Shape{8, 3, 5, 5});
    CHECK(named[1].first == "bias");
    CHECK(named[1].second.shape() == Shape{8});
    CHECK(conv.num_parameters() == 8 * 3 * 25 + 8);
    CHECK(conv.forward(TensorF::zeros({2, 3, 28, 28})).shape() == Shape{2, 8, 28, 28});  // 'same'
    CHECK(conv.in_channels() == 3);
    CHECK(conv.out_channels() == 8);
    CHECK(conv.kernel_size() == tapegrad::Size2{5});

    nn::Conv2d<float> strided(4, 6, {3, 2}, {.stride = 2, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2, .bias = false}, gen);
    CHECK(strided.weight().shape() == Shape{6, 2, 3, 2});
    CHECK_FALSE(strided.bias().defined());
    CHECK(strided.named_parameters().size() == 1);
    // OH = floor((9 + 2 - 2 - 1) / 2) + 1 = 5; OW = floor((10 + 0 - 2 - 1) / 2) + 1 = 4
    CHECK(strided.forward(TensorF::zeros({1, 4, 9, 10})).shape() == Shape{1, 6, 5, 4});
}

TEST_CASE("Conv2d: describe() lists the options") {
    Generator gen(2);
    CHECK(nn::Conv2d<float>(1, 6, 5, {.padding = 2}, gen).describe() ==
          "Conv2d(in=1, out=6, kernel=5x5, stride=1, padding=2, bias=true)");
    CHECK(nn::Conv2d<float>(4, 4, {3, 1}, {.stride = {2, 1}, .dilation = 2, .groups = 4, .bias = false}, gen).describe() ==
          "Conv2d(in=4, out=4, kernel=3x1, stride=2x1, padding=0, dilation=2, groups=4, bias=false)");
}

TEST_CASE("Conv2d: PyTorch's initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups*kh*kw") {
    Generator gen(3);
    struct Case {
        int64_t in, out, k, groups;
    };
    for (const Case c : {Case{1, 64, 5, 1}, Case{6, 16, 5, 1}, Case{8, 32, 3, 4}}) {
        CAPTURE(c.in);
        CAPTURE(c.groups);
        nn::Conv2d<float> conv(c.in, c.out, c.k, {.groups = c.groups}, gen);
        const double bound = 1.0 / std::sqrt(static_cast<double>(c.in / c.groups * c.k * c.k));
        double wmax = 0, bmax = 0, wsum = 0;
        for (float w : conv.weight().span()) {
            wmax = std::max(wmax, std::abs(static_cast<double>(w)));
            wsum += w;
        }
        for (float b : conv.bias().span()) bmax = std::max(bmax, std::abs(static_cast<double>(b)));
        CHECK(wmax <= bound);
        CHECK(wmax > 0.9 * bound);  // the range is used, not a narrower one
        CHECK(bmax <= bound);
        CHECK(std::abs(wsum / static_cast<double>(conv.weight().numel())) < 0.1 * bound);
    }
}

TEST_CASE("Conv2d: the same seed gives the same layer; the generator may come first or last") {
    Generator a(7), b(7), c(8);
    nn::Conv2d<float> ca(2, 3, 3, {.padding = 1}, a);
    nn::Conv2d<float> cb(2, 3, 3, b, {.padding = 1});
    nn::Conv2d<float> cc(2, 3, 3, {.padding = 1}, c);
    CHECK(same_bits(ca.weight(), cb.weight()));
    CHECK(same_bits(ca.bias(), cb.bias()));
    CHECK_FALSE(same_bits(ca.weight(), cc.weight()));

    tapegrad::manual_seed(42);
    nn::Conv2d<float> d1(2, 3, 3);
    tapegrad::manual_seed(42);
    nn::Conv2d<float> d2(2, 3, 3);
    CHECK(same_bits(d1.weight(), d2.weight()));
}

TEST_CASE("Conv2d: forward equals conv2d with the layer's parameters (hand-set weights)") {
    // One 2x2 filter [[1, 2], [3, 4]] with bias 0.5 on 1..9 (3x3): 37.5, 47.5, 67.5, 77.5 (see ops/conv_test.cpp).
    Generator gen(4);
    nn::Conv2d<float> conv(1, 1, 2, {}, gen);
    {
        tapegrad::NoGradGuard ng;
        conv.weight().copy_(TensorF::from({1, 1, 2, 2}, {1, 2, 3, 4}));
        conv.bias().copy_(TensorF::from({1}, {0.5f}));
    }
    const TensorF y = conv(TensorF::from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}));
    CHECK(y.to_vector() == std::vector<float>{37.5f, 47.5f, 67.5f, 77.5f});
}

TEST_CASE("gradcheck: through a Conv2d<double> layer (stride 2, padding 1, dilation 2, groups 2, no bias)") {
    Generator gen(5);
    auto conv = std::make_shared<nn::Conv2d<double>>(4, 4, 3,
                                                     nn::Conv2dOptions{.stride = 2, .padding = 1, .dilation = 2,
                                                                       .groups = 2, .bias = false},
                                                     gen);
    // The layer's weight is an input of the checked function: each call copies the perturbed value in.
    const TensorD x = TensorD::uniform({2, 4, 7, 7}, -1.0, 1.0, gen);
    check_gradient(
        "Conv2d",
        [](const Inputs& in) {
            return tapegrad::conv2d(in[0], in[1], {.stride = 2, .padding = 1, .dilation = 2, .groups = 2});
        },
        {x, conv->weight().detach()});
    // and the layer itself, w.r.t. its input
    TensorD xi = x.clone().detach();
    xi.requires_grad_();
    check_gradient(
        "Conv2d module", [conv](const Inputs& in) { return conv->forward(in[0]); }, {xi});
}

TEST_CASE("LeNet-5: forward shapes, and one backward reaches every parameter") {
    Generator gen(6);
    nn::Sequential<float> net(nn::Conv2d<float>(1, 6, 5, {.padding = 2}, gen), nn::ReLU<float>(),
                              nn::MaxPool2d<float>(2), nn::Conv2d<float>(6, 16, 5, {}, gen), nn::ReLU<float>(),
                              nn::MaxPool2d<float>(2), nn::Flatten<float>(), nn::Linear<float>(400, 120, gen),
                              nn::ReLU<float>(), nn::Linear<float>(120, 84, gen), nn::ReLU<float>(),
                              nn::Linear<float>(84, 10, gen));
    CHECK(net.num_parameters() == 61706);  // LeNet-5's classic count
    const TensorF x = TensorF::uniform({3, 1, 28, 28}, -1.0f, 1.0f, gen);
    const TensorF y = net(x);
    CHECK(y.shape() == Shape{3, 10});
    tapegrad::nn::cross_entropy(y, std::vector<int64_t>{1, 2, 3}).backward();
    for (const auto& named : net.named_parameters()) {
        const std::string& name = named.first;  // (a structured binding cannot be captured by CAPTURE in C++20)
        const TensorF& p = named.second;
        CAPTURE(name);
        REQUIRE(p.grad().defined());
        double s = 0;
        for (float v : p.grad().span()) s += std::abs(v);
        CHECK(s > 0);
    }
}

TEST_CASE("Conv2d: constructor checks") {
    Generator gen(7);
    CHECK(message_of<tapegrad::ValueError>([&] { nn::Conv2d<float>(0, 4, 3, {}, gen); }) ==
          "Conv2d: in_channels (0) and out_channels (4) must be positive");
    CHECK(message_of<tapegrad::ValueError>([&] { nn::Conv2d<float>(1, 4, {3, 0}, {}, gen); }) ==
          "Conv2d: kernel size must be positive, got 3x0");
    CHECK(message_of<tapegrad::ValueError>([&] { nn::Conv2d<float>(3, 4, 3, {.groups = 2}, gen); }) ==
          "Conv2d: groups 2 must be positive and divide in_channels (3) and out_channels (4)");
    CHECK(message_of<tapegrad::ValueError>([&] { nn::Conv2d<float>(1, 4, 3, {.stride = 0}, gen); }) ==
          "Conv2d: stride must be positive, got 0");
    CHECK(message_of<tapegrad::ValueError>([&] { nn::Conv2d<float>(1, 4, 3, {.padding = -1}, gen); }) ==
          "Conv2d: padding must be non-negative, got -1");
    // input errors come from the op
    nn::Conv2d<float> conv(3, 4, 5, {}, gen);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)conv(TensorF::zeros({1, 3, 4, 4})); })
              .find("conv2d: kernel 5x5 (dilation 1) is larger than the padded input 4x4") != std::string::npos);
    CHECK(message_of<tapegrad::ShapeError>([&] { (void)conv(TensorF::zeros({1, 2, 8, 8})); })
              .find("expects 3 input channels") != std::string::npos);
}
