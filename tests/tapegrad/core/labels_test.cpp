// Tests for tapegrad/core/labels.hpp (Labels<D>: class indices on a device with a known bound) and the class
// losses that take them: the same values and gradients as with host labels, a gradcheck, and range errors
// that still name the row and the value without reading the labels back.

#include <tapegrad/autograd/gradcheck.hpp>
#include <tapegrad/core/labels.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/ops/shape.hpp>

#include "../../support/check_throws.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using tapegrad::Generator;
using tapegrad::Labels;
using tapegrad::TensorD;
namespace nn = tapegrad::nn;
using nn::Reduction;

using tapegrad::testing::check_throws;

}  // namespace

TEST_CASE("Labels::from copies the values and records the largest label and its row") {
    const std::vector<int64_t> host{3, 0, 9, 2, 9};
    const Labels<> l = Labels<>::from(host);
    CHECK(l.size() == 5);
    CHECK(l.to_vector() == host);
    CHECK(l.max_label() == 9);
    CHECK(l.max_row() == 2);  // the first row holding it
    const Labels<> copy = l;  // a handle: shares the data
    CHECK(copy.data() == l.data());

    const Labels<> empty = Labels<>::from(std::vector<int64_t>{});
    CHECK(empty.size() == 0);
    CHECK(empty.max_label() == -1);
    CHECK(Labels<>{}.size() == 0);
}

TEST_CASE("Labels::from takes host labels of any integer type") {
    const Labels<> l = Labels<>::from(std::vector<int>{3, 0, 9, 2});
    CHECK(l.to_vector() == std::vector<int64_t>{3, 0, 9, 2});
    CHECK(l.max_label() == 9);
    CHECK(l.max_row() == 2);
    CHECK(Labels<>::from(std::array<uint16_t, 2>{7, 1}).to_vector() == std::vector<int64_t>{7, 1});
    check_throws<tapegrad::IndexError>([] { (void)Labels<>::from(std::vector<int>{1, -4}); },
                                       "Labels::from: label -4 at row 1 is negative");
}

TEST_CASE("Labels::from rejects a negative label, naming its row") {
    check_throws<tapegrad::IndexError>([] { (void)Labels<>::from(std::vector<int64_t>{1, 2, -4}); },
                                       "Labels::from: label -4 at row 2 is negative");
    check_throws<tapegrad::ValueError>([] { (void)Labels<>::uninitialized(-1, 3); }, "count must be >= 0, got -1");
}

TEST_CASE("cross_entropy and nll_loss with Labels equal the host-label versions, value and gradient") {
    Generator g(11);
    const std::vector<int64_t> host{4, 0, 2, 2, 1, 3};
    const Labels<> labels = Labels<>::from(host);
    for (const Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
        const TensorD x = TensorD::uniform({6, 5}, -3.0, 3.0, g).requires_grad_();
        const TensorD y = x.detach().clone().requires_grad_();
        const TensorD a = nn::cross_entropy(x, labels, r);
        const TensorD b = nn::cross_entropy(y, host, r);
        CHECK(a.to_vector() == b.to_vector());
        tapegrad::sum(a).backward();
        tapegrad::sum(b).backward();
        CHECK(x.grad().to_vector() == y.grad().to_vector());

        const TensorD lp = tapegrad::log_softmax(TensorD::uniform({6, 5}, -3.0, 3.0, g), 1).detach().requires_grad_();
        const TensorD lq = lp.detach().clone().requires_grad_();
        const TensorD c = nn::nll_loss(lp, labels, r);
        const TensorD d = nn::NLLLoss{r}(lq, host);
        CHECK(c.to_vector() == d.to_vector());
        tapegrad::sum(c).backward();
        tapegrad::sum(d).backward();
        CHECK(lp.grad().to_vector() == lq.grad().to_vector());
    }
}

TEST_CASE("cross_entropy and nll_loss with Labels pass gradcheck") {
    Generator g(12);
    const Labels<> labels = Labels<>::from(std::vector<int64_t>{1, 0, 3, 3});
    for (const Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
        const auto ce = tapegrad::gradcheck(
            [&](const std::vector<TensorD>& in) { return nn::CrossEntropyLoss{r}(in[0], labels); },
            {TensorD::uniform({4, 4}, -2.0, 2.0, g)});
        CHECK_MESSAGE(ce.ok, ce.message);
        const auto nll = tapegrad::gradcheck(
            [&](const std::vector<TensorD>& in) { return nn::nll_loss(in[0], labels, r); },
            {TensorD::uniform({4, 4}, -2.0, 2.0, g)});
        CHECK_MESSAGE(nll.ok, nll.message);
    }
}

TEST_CASE("class losses check Labels against the class count and the batch size") {
    const TensorD x = TensorD::zeros({8, 10});
    const Labels<> bad = Labels<>::from(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 11});
    check_throws<tapegrad::IndexError>([&] { (void)nn::cross_entropy(x, bad); },
                                       "cross_entropy: label 11 out of range [0, 10) at row 7");
    check_throws<tapegrad::IndexError>([&] { (void)nn::nll_loss(x, bad); },
                                       "nll_loss: label 11 out of range [0, 10) at row 7");
    // Labels whose row is unknown (written on the device) are checked by their bound.
    const Labels<> gathered = Labels<>::uninitialized(8, 12);
    check_throws<tapegrad::IndexError>([&] { (void)nn::cross_entropy(x, gathered); },
                                       "cross_entropy: labels may reach 12 (the largest label of the data they were "
                                       "gathered from), out of range [0, 10)");
    const Labels<> few = Labels<>::from(std::vector<int64_t>{0, 1});
    check_throws<tapegrad::ShapeError>([&] { (void)nn::cross_entropy(x, few); },
                                       "cross_entropy: batch sizes differ: input of shape [8, 10] has 8 rows but 2 "
                                       "labels were given");
    check_throws<tapegrad::ValueError>(
        [&] { (void)nn::cross_entropy(TensorD::zeros({0, 3}), Labels<>::from(std::vector<int64_t>{})); },
        "cross_entropy: mean over an empty batch");
}
