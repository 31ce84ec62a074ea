// Tests for tapegrad/nn/dropout.hpp (the dropout op and the Dropout layer): identity in eval mode and for
// p = 0, mean preservation and the drop rate in training, the mask values, that backward uses the forward's
// mask, reproducibility from a seed, that the mask is the backend's counter-based dropout_mask from one seed
// per call, gradcheck with a fixed mask, and the checks on p. No test pins mask values drawn by a particular
// generator: they are properties (fraction kept, scaling, gradient routing, reproducibility by seed).

#include "../test_support.hpp"

#include <tapegrad/nn/dropout.hpp>

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

}  // namespace

TEST_CASE("Dropout: eval mode is the identity") {
    Generator g(1);
    nn::Dropout<float> drop(0.5, 7);
    drop.eval();
    const TensorF x = TensorF::uniform({4, 5}, -1.0f, 1.0f, g);
    const TensorF y = drop(x);
    CHECK(y.to_vector() == x.to_vector());
    drop.train();
    CHECK(drop(x).to_vector() != x.to_vector());
    // p = 0 in training is the identity as well
    nn::Dropout<float> none(0.0, 7);
    CHECK(none(x).to_vector() == x.to_vector());
}

TEST_CASE("Dropout: training keeps the mean (inverted scaling) and drops about p of the elements") {
    // Each element becomes 0 with probability p or 1/(1-p) otherwise, so E[y] = (1-p) * x/(1-p) = x.
    for (double p : {0.1, 0.5, 0.8}) {
        CAPTURE(p);
        nn::Dropout<double> drop(p, 123);
        const TensorD y = drop(TensorD::ones({200000}));
        const double keep = 1.0 / (1.0 - p);
        int64_t zeros = 0, others = 0;
        double sum = 0;
        for (double v : y.span()) {
            zeros += v == 0.0;
            others += v != 0.0 && std::abs(v - keep) > 1e-12;
            sum += v;
        }
        CHECK(others == 0);  // every element is 0 or 1/(1-p)
        const double n = static_cast<double>(y.numel());
        // binomial: the standard deviation of the zero fraction is sqrt(p(1-p)/n) <= 0.0012; allow ~5 of them
        CHECK(std::abs(static_cast<double>(zeros) / n - p) < 0.006);
        CHECK(sum / n == doctest::Approx(1.0).epsilon(0.02));
    }
}

TEST_CASE("Dropout: backward multiplies by the forward's mask") {
    nn::Dropout<double> drop(0.25, 5);
    TensorD x = TensorD::full({1000}, 2.0);
    x.requires_grad_();
    const TensorD y = drop(x);
    CHECK(y.grad_fn_name() == std::string("dropout"));
    tapegrad::sum(y).backward();
    // dy/dx = m, and y = 2 m: the gradient is y / 2 everywhere.
    int64_t mismatches = 0;
    for (int64_t i = 0; i < x.numel(); ++i) mismatches += x.grad().data()[i] != y.data()[i] / 2.0;
    CHECK(mismatches == 0);
}

TEST_CASE("Dropout: a seed fixes the masks; the layer draws a new mask every call") {
    const TensorF x = TensorF::ones({64});
    nn::Dropout<float> a(0.5, 99), b(0.5, 99);
    const TensorF a1 = a(x), a2 = a(x);
    CHECK(a1.to_vector() == b(x).to_vector());
    CHECK(a2.to_vector() == b(x).to_vector());
    CHECK(a1.to_vector() != a2.to_vector());
    // seeded from a generator: reproducible given the generator's seed
    Generator g1(3), g2(3);
    nn::Dropout<float> c(0.5, g1), d(0.5, g2);
    CHECK(c(x).to_vector() == d(x).to_vector());
    CHECK(c.describe() == "Dropout(p=0.5)");
    CHECK(nn::Dropout<float>().p() == 0.5);
}

TEST_CASE("Dropout: the mask is the backend's dropout_mask from one seed drawn per call") {
    // The layer takes one 64-bit seed from its generator per training call and draws the mask where x lives
    // from that seed (counter-based, element i from (seed, i) alone): what lets the GPU draw the CPU's mask.
    const TensorD x = TensorD::ones({300});
    nn::Dropout<double> drop(0.4, 8);
    Generator twin(8);
    for (int call = 0; call < 3; ++call) {
        CAPTURE(call);
        std::vector<double> mask(300);
        tapegrad::backend::Ops<tapegrad::Cpu>::dropout_mask(300, 0.4, twin.next_u64(), 0, mask.data());
        CHECK(drop(x).to_vector() == mask);
    }
    // eval mode and p = 0 draw nothing: the generator is not advanced
    drop.eval();
    (void)drop(x);
    drop.train();
    std::vector<double> mask(300);
    tapegrad::backend::Ops<tapegrad::Cpu>::dropout_mask(300, 0.4, twin.next_u64(), 0, mask.data());
    CHECK(drop(x).to_vector() == mask);
}

TEST_CASE("gradcheck: dropout with a fixed mask (a fixed seed per call)") {
    Generator g(2);
    // Each call of the checked function draws the same mask from a fresh Generator(17).
    check_gradient(
        "dropout",
        [](const Inputs& in) {
            Generator mask_gen(17);
            return tapegrad::dropout(in[0], 0.3, true, mask_gen);
        },
        {TensorD::uniform({3, 4, 5}, -1.0, 1.0, g)});
    // composed with other ops, through the layer (its generator re-seeded before each call)
    auto drop = std::make_shared<nn::Dropout<double>>(0.5, 0);
    check_gradient(
        "Dropout module",
        [drop](const Inputs& in) {
            drop->generator().seed(11);
            return tapegrad::tanh(drop->forward(in[0] * in[0]));
        },
        {TensorD::uniform({6, 3}, -1.0, 1.0, g)});
}

TEST_CASE("Dropout: p must lie in [0, 1)") {
    CHECK(message_of<tapegrad::ValueError>([] { nn::Dropout<float>(1.0, 0); }) ==
          "Dropout: probability p must be in [0, 1), got 1");
    CHECK(message_of<tapegrad::ValueError>([] { nn::Dropout<float>(-0.1, 0); }) ==
          "Dropout: probability p must be in [0, 1), got -0.1");
    Generator g(1);
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::dropout(TensorF::ones({2}), 1.5, true, g); }) ==
          "dropout: probability p must be in [0, 1), got 1.5");
    CHECK(message_of<tapegrad::ValueError>([&] { (void)tapegrad::dropout(TensorF::ones({2}), NAN, false, g); }).find(
              "dropout: probability p must be in [0, 1)") != std::string::npos);
}
