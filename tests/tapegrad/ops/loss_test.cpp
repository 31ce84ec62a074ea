// Tests for tapegrad/ops/loss.hpp (and the modules of nn/loss.hpp): every loss and every reduction passes
// gradcheck (the device-generic table of tests/support/op_tables.hpp), reference values,
// stability of the fused losses at logits of magnitude 1e4 (float and double), the modules, and each error.
//
// Reference values come from Python's math module, with the expression beside each:
//   lse = lambda v: max(v) + math.log(sum(math.exp(a - max(v)) for a in v))

#include <tapegrad/autograd/gradcheck.hpp>
#include <tapegrad/nn/loss.hpp>

#include "../../support/check_throws.hpp"
#include "../../support/op_tables.hpp"
#include "../../support/tensor_checks.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::Tensor;
using tapegrad::TensorD;
using tapegrad::TensorF;
namespace nn = tapegrad::nn;
using nn::Reduction;
using LabelList = std::vector<int64_t>;

namespace {

const Reduction reductions[] = {Reduction::mean, Reduction::sum, Reduction::none};

using tapegrad::testing::check_throws;

using tapegrad::testing::all_finite;

LabelList random_labels(int64_t n, int64_t classes, Generator& g) {
    LabelList out;
    for (int64_t i = 0; i < n; ++i) out.push_back(static_cast<int64_t>(g.below(static_cast<uint64_t>(classes))));
    return out;
}

}  // namespace

// ---- gradcheck: every loss, every reduction, several shapes -----------------------------------------------

TEST_CASE("every loss with every reduction passes gradcheck (the device-generic table, on the CPU)") {
    tapegrad::testing::check_table<tapegrad::testing::LossTable, tapegrad::Cpu>(2100);
}

// ---- reference values -------------------------------------------------------------------------------------

TEST_CASE("mse_loss reference") {
    const TensorD pred = TensorD::from({3}, {1.0, 2.0, 3.0});
    const TensorD target = TensorD::from({3}, {1.0, 0.0, 5.0});
    // squared errors [0, 4, 4]
    CHECK(nn::mse_loss(pred, target).item() == doctest::Approx(8.0 / 3.0));
    CHECK(nn::mse_loss(pred, target, Reduction::sum).item() == 8.0);
    CHECK(nn::mse_loss(pred, target, Reduction::none).to_vector() == std::vector<double>{0.0, 4.0, 4.0});
    TensorD p = pred.clone().detach();
    p.requires_grad_();
    nn::mse_loss(p, target).backward();
    // 2 (pred - target) / 3
    CHECK(p.grad().to_vector() == std::vector<double>{0.0, 4.0 / 3.0, -4.0 / 3.0});
}

TEST_CASE("bce_loss reference, and the -100 clamp at p = 0 and 1") {
    const TensorD p = TensorD::from({2}, {0.8, 0.3});
    const TensorD t = TensorD::from({2}, {1.0, 0.0});
    // -math.log(0.8) = 0.2231435513142097, -math.log(0.7) = 0.35667494393873245, mean 0.2899092476264711
    CHECK(nn::bce_loss(p, t).item() == doctest::Approx(0.2899092476264711).epsilon(1e-14));
    const TensorD none = nn::bce_loss(p, t, Reduction::none);
    CHECK(none.data()[0] == doctest::Approx(0.2231435513142097).epsilon(1e-14));
    CHECK(none.data()[1] == doctest::Approx(0.35667494393873245).epsilon(1e-14));
    // certain and wrong: log(0) clamped to -100, so the loss is 100, not inf; certain and right: 0
    TensorD p01 = TensorD::from({4}, {0.0, 1.0, 0.0, 1.0});
    p01.requires_grad_();
    const TensorD edge = nn::bce_loss(p01, TensorD::from({4}, {1.0, 0.0, 0.0, 1.0}), Reduction::none);
    CHECK(edge.to_vector() == std::vector<double>{100.0, 100.0, 0.0, 0.0});
    // the gradient (p - t) / max(p (1 - p), 1e-12) stays finite too: -1e12, 1e12, 0, 0
    tapegrad::sum(edge).backward();
    CHECK(p01.grad().to_vector() == std::vector<double>{-1e12, 1e12, 0.0, 0.0});
}

TEST_CASE("binary_cross_entropy_with_logits reference, and agreement with bce_loss(sigmoid(x))") {
    const TensorD x = TensorD::from({2}, {2.0, -1.0});
    const TensorD t = TensorD::from({2}, {1.0, 0.0});
    // math.log1p(math.exp(-2)) = 0.1269280110429725, math.log1p(math.exp(-1)) = 0.31326168751822286,
    // mean 0.2200948492805977
    CHECK(nn::binary_cross_entropy_with_logits(x, t).item() == doctest::Approx(0.2200948492805977).epsilon(1e-14));
    Generator g(23);
    const TensorD xs = TensorD::uniform({10}, -5.0, 5.0, g);
    const TensorD ts = TensorD::uniform({10}, 0.0, 1.0, g);
    CHECK(nn::binary_cross_entropy_with_logits(xs, ts).item() ==
          doctest::Approx(nn::bce_loss(tapegrad::sigmoid(xs), ts).item()).epsilon(1e-12));
}

TEST_CASE("cross_entropy reference: logsumexp(x) - x[label]") {
    const TensorD x = TensorD::from({2, 3}, {1.0, 2.0, 3.0, 1.0, -1.0, 0.5});
    const LabelList labels = {2, 0};
    // lse([1, 2, 3]) - 3 = 0.4076059644443806, lse([1, -1, 0.5]) - 1 = 0.5549569196419908
    CHECK(nn::cross_entropy(x, labels).item() == doctest::Approx(0.4812814420431857).epsilon(1e-14));
    CHECK(nn::cross_entropy(x, labels, Reduction::sum).item() == doctest::Approx(0.9625628840863714).epsilon(1e-14));
    const TensorD rows = nn::cross_entropy(x, labels, Reduction::none);
    CHECK(rows.shape() == Shape{2});
    CHECK(rows.data()[0] == doctest::Approx(0.4076059644443806).epsilon(1e-14));
    CHECK(rows.data()[1] == doctest::Approx(0.5549569196419908).epsilon(1e-14));
    CHECK(rows.grad_fn_name() == nullptr);  // x does not require grad: nothing recorded
}

TEST_CASE("cross_entropy gradient is (softmax - onehot) / N, in one recorded op") {
    TensorD x = TensorD::from({1, 3}, {1.0, 2.0, 3.0});
    x.requires_grad_();
    const LabelList labels = {0};
    const TensorD loss = nn::cross_entropy(x, labels);
    CHECK(loss.grad_fn_name() == std::string("cross_entropy"));
    const int64_t before = tapegrad::live_nodes();
    loss.backward();
    CHECK(tapegrad::live_nodes() <= before);
    // softmax([1, 2, 3]) - [1, 0, 0]
    const std::vector<double> want = {0.09003057317038046 - 1.0, 0.24472847105479764, 0.6652409557748218};
    for (size_t i = 0; i < 3; ++i) CHECK(x.grad().data()[i] == doctest::Approx(want[i]).epsilon(1e-14));
}

TEST_CASE("cross_entropy equals nll_loss(log_softmax) in value and gradient") {
    Generator g(24);
    const TensorD x0 = TensorD::uniform({6, 5}, -4.0, 4.0, g);
    const LabelList labels = random_labels(6, 5, g);
    for (const Reduction r : reductions) {
        TensorD a = x0.clone().detach(), b = x0.clone().detach();
        a.requires_grad_();
        b.requires_grad_();
        const TensorD la = nn::cross_entropy(a, labels, r);
        const TensorD lb = nn::nll_loss(tapegrad::log_softmax(b, 1), labels, r);
        REQUIRE(la.shape() == lb.shape());
        for (int64_t i = 0; i < la.numel(); ++i) CHECK(la.data()[i] == doctest::Approx(lb.data()[i]).epsilon(1e-13));
        tapegrad::sum(la).backward();
        tapegrad::sum(lb).backward();
        for (int64_t i = 0; i < a.numel(); ++i)
            CHECK(a.grad().data()[i] == doctest::Approx(b.grad().data()[i]).epsilon(1e-13));
    }
}

TEST_CASE("cross_entropy with one-hot probability targets equals cross_entropy with labels") {
    Generator g(25);
    const TensorD x = TensorD::uniform({4, 3}, -2.0, 2.0, g);
    const LabelList labels = {2, 0, 1, 1};
    TensorD onehot = TensorD::zeros({4, 3});
    for (int64_t r = 0; r < 4; ++r) onehot(r, labels[static_cast<size_t>(r)]) = 1.0;
    CHECK(nn::cross_entropy(x, onehot).item() == doctest::Approx(nn::cross_entropy(x, labels).item()).epsilon(1e-14));
    // label smoothing: targets (1 - 0.1) onehot + 0.1 / 3; loss = 0.9 CE(label) + 0.1 mean_c(-log_softmax)
    const TensorD smooth = onehot * 0.9 + 0.1 / 3.0;
    const TensorD lsm = tapegrad::log_softmax(x, 1);
    double want = 0.0;
    for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < 3; ++c) want -= smooth(r, c) * lsm(r, c);
    CHECK(nn::cross_entropy(x, smooth).item() == doctest::Approx(want / 4.0).epsilon(1e-14));
}

TEST_CASE("nll_loss reference: -log_probs[r, label_r]") {
    const TensorD lp = TensorD::from({2, 2}, {-0.5, -1.0, -2.0, -0.1});
    const LabelList labels = {1, 0};
    CHECK(nn::nll_loss(lp, labels).item() == 1.5);  // (1.0 + 2.0) / 2
    CHECK(nn::nll_loss(lp, labels, Reduction::sum).item() == 3.0);
    CHECK(nn::nll_loss(lp, labels, Reduction::none).to_vector() == std::vector<double>{1.0, 2.0});
}

// ---- stability at logits of magnitude 1e4 -----------------------------------------------------------------

TEST_CASE_TEMPLATE("cross_entropy of equal logits is log C, even at +-1e4", T, float, double) {
    const LabelList labels = {0, 3, 9};
    for (const T v : {T(0), T(1e4), T(-1e4)}) {
        CAPTURE(v);
        Tensor<T> x = Tensor<T>::full({3, 10}, v);
        x.requires_grad_();
        const Tensor<T> loss = nn::cross_entropy(x, labels);
        CHECK(loss.item() == doctest::Approx(2.302585092994046).epsilon(1e-6));  // math.log(10)
        loss.backward();
        REQUIRE(all_finite(x.grad()));
        // (0.1 - onehot) / 3
        CHECK(x.grad()(0, 0) == doctest::Approx(-0.9 / 3).epsilon(1e-5));
        CHECK(x.grad()(0, 1) == doctest::Approx(0.1 / 3).epsilon(1e-5));
    }
}

TEST_CASE_TEMPLATE("cross_entropy with a margin of 1e4 is finite: ~0 when right, ~1e4 when wrong", T, float,
                   double) {
    Tensor<T> x = Tensor<T>::from({2, 2}, {T(1e4), T(0), T(1e4), T(0)});
    x.requires_grad_();
    const LabelList labels = {0, 1};
    const Tensor<T> rows = nn::cross_entropy(x, labels, Reduction::none);
    REQUIRE(all_finite(rows));
    CHECK(rows.data()[0] == doctest::Approx(0.0));
    CHECK(rows.data()[1] == doctest::Approx(1e4));
    tapegrad::sum(rows).backward();
    REQUIRE(all_finite(x.grad()));
    // softmax = [1, 0] in both rows; minus onehot: [0, 0] and [1, -1]
    CHECK(x.grad().to_vector() == std::vector<T>{T(0), T(0), T(1), T(-1)});
    // the same margin through log_softmax + nll_loss, and in the probability-target form
    CHECK(nn::nll_loss(tapegrad::log_softmax(x, 1), labels, Reduction::sum).item() == doctest::Approx(1e4));
    const Tensor<T> onehot = Tensor<T>::from({2, 2}, {T(1), T(0), T(0), T(1)});
    CHECK(nn::cross_entropy(x, onehot, Reduction::sum).item() == doctest::Approx(1e4));
}

TEST_CASE_TEMPLATE("binary_cross_entropy_with_logits is finite at +-1e4", T, float, double) {
    Tensor<T> x = Tensor<T>::from({4}, {T(1e4), T(1e4), T(-1e4), T(-1e4)});
    x.requires_grad_();
    const Tensor<T> t = Tensor<T>::from({4}, {T(1), T(0), T(1), T(0)});
    const Tensor<T> l = nn::binary_cross_entropy_with_logits(x, t, Reduction::none);
    REQUIRE(all_finite(l));
    CHECK(l.to_vector() == std::vector<T>{T(0), T(1e4), T(1e4), T(0)});
    tapegrad::sum(l).backward();
    REQUIRE(all_finite(x.grad()));
    CHECK(x.grad().to_vector() == std::vector<T>{T(0), T(1), T(-1), T(0)});  // sigmoid(x) - t
}

// ---- modules ----------------------------------------------------------------------------------------------

TEST_CASE("loss modules are function objects over the same functions") {
    Generator g(26);
    const TensorD a = TensorD::uniform({3, 4}, 0.1, 0.9, g);
    const TensorD b = TensorD::uniform({3, 4}, 0.0, 1.0, g);
    const LabelList labels = {1, 3, 0};
    CHECK(nn::MSELoss{}(a, b).item() == nn::mse_loss(a, b).item());
    CHECK(nn::MSELoss{.reduction = Reduction::sum}(a, b).item() == nn::mse_loss(a, b, Reduction::sum).item());
    CHECK(nn::BCELoss{}(a, b).item() == nn::bce_loss(a, b).item());
    CHECK(nn::BCEWithLogitsLoss{Reduction::sum}(a, b).item() ==
          nn::binary_cross_entropy_with_logits(a, b, Reduction::sum).item());
    CHECK(nn::CrossEntropyLoss{}(a, labels).item() == nn::cross_entropy(a, labels).item());
    CHECK(nn::CrossEntropyLoss{}(a, b).item() == nn::cross_entropy(a, b).item());
    CHECK(nn::NLLLoss{.reduction = Reduction::none}(a, labels).shape() == Shape{3});
    const nn::CrossEntropyLoss criterion;
    TensorF logits = TensorF::zeros({3, 4});
    logits.requires_grad_();
    const TensorF loss = criterion(logits, labels);
    loss.backward();
    CHECK(loss.item() == doctest::Approx(std::log(4.0)));
    CHECK(logits.grad()(0, 1) == doctest::Approx(-0.75 / 3));
}

// ---- errors -----------------------------------------------------------------------------------------------

TEST_CASE("class losses reject a label out of range, naming the row and the value") {
    const TensorD x = TensorD::zeros({8, 10});
    const LabelList bad = {0, 1, 2, 3, 4, 5, 6, 11};
    check_throws<tapegrad::IndexError>([&] { (void)nn::cross_entropy(x, bad); },
                                       "cross_entropy: label 11 out of range [0, 10) at row 7");
    const LabelList negative = {0, -1, 2, 3, 4, 5, 6, 7};
    check_throws<tapegrad::IndexError>([&] { (void)nn::cross_entropy(x, negative); },
                                       "cross_entropy: label -1 out of range [0, 10) at row 1");
    check_throws<tapegrad::IndexError>([&] { (void)nn::nll_loss(x, bad); },
                                       "nll_loss: label 11 out of range [0, 10) at row 7");
}

TEST_CASE("losses reject mismatched batch sizes and shapes, naming both") {
    const TensorD x = TensorD::zeros({4, 10});
    const LabelList three = {0, 1, 2};
    check_throws<tapegrad::ShapeError>([&] { (void)nn::cross_entropy(x, three); },
                                       "cross_entropy: batch sizes differ: input of shape [4, 10] has 4 rows but 3 "
                                       "labels were given");
    check_throws<tapegrad::ShapeError>([&] { (void)nn::nll_loss(x, three); }, "nll_loss: batch sizes differ");
    check_throws<tapegrad::ShapeError>([&] { (void)nn::cross_entropy(TensorD::zeros({10}), three); },
                                       "cross_entropy: input must be 2-D [N, C], got shape [10]");
    check_throws<tapegrad::ShapeError>([&] { (void)nn::cross_entropy(x, TensorD::zeros({4, 9})); },
                                       "cross_entropy: input shape [4, 10] and target shape [4, 9] differ");
    check_throws<tapegrad::ShapeError>([&] { (void)nn::cross_entropy(TensorD::zeros({3}), TensorD::zeros({3})); },
                                       "cross_entropy: input must be 2-D [N, C], got shape [3]");
    check_throws<tapegrad::ShapeError>([&] { (void)nn::mse_loss(TensorD::zeros({2, 3}), TensorD::zeros({3, 2})); },
                                       "mse_loss: input shape [2, 3] and target shape [3, 2] differ");
    check_throws<tapegrad::ShapeError>([&] { (void)nn::bce_loss(TensorD::zeros({2}), TensorD::zeros({3})); },
                                       "bce_loss: input shape [2] and target shape [3] differ");
    check_throws<tapegrad::ShapeError>(
        [&] { (void)nn::binary_cross_entropy_with_logits(TensorD::zeros({2}), TensorD::zeros({2, 1})); },
        "binary_cross_entropy_with_logits: input shape [2] and target shape [2, 1] differ");
}

TEST_CASE("bce_loss rejects values outside [0, 1]; a mean over an empty batch is refused") {
    check_throws<tapegrad::ValueError>(
        [] { (void)nn::bce_loss(TensorD::from({3}, {0.5, 1.5, 0.2}), TensorD::zeros({3})); },
        "bce_loss: input must hold probabilities in [0, 1], found 1.5 at flat index 1");
    check_throws<tapegrad::ValueError>([] { (void)nn::cross_entropy(TensorD::zeros({0, 3}), LabelList{}); },
                                       "cross_entropy: mean over an empty batch");
    // sum and none of an empty batch are fine
    CHECK(nn::cross_entropy(TensorD::zeros({0, 3}), LabelList{}, Reduction::sum).item() == 0.0);
    CHECK(nn::cross_entropy(TensorD::zeros({0, 3}), LabelList{}, Reduction::none).numel() == 0);
}

TEST_CASE("class losses take labels of any integer type, with the same values and checks") {
    const TensorD x = TensorD::from({2, 3}, {1.0, 2.0, 3.0, 1.0, -1.0, 0.5});
    const LabelList wide = {2, 0};
    const double want = nn::cross_entropy(x, wide).item();
    CHECK(nn::cross_entropy(x, std::vector<int>{2, 0}).item() == want);
    CHECK(nn::cross_entropy(x, std::vector<uint8_t>{2, 0}).item() == want);
    CHECK(nn::cross_entropy(x, std::array<short, 2>{2, 0}).item() == want);
    const std::vector<long long> ll = {2, 0};
    CHECK(nn::cross_entropy(x, ll, Reduction::sum).item() == nn::cross_entropy(x, wide, Reduction::sum).item());
    CHECK(nn::nll_loss(x, std::vector<unsigned>{1, 0}).item() == nn::nll_loss(x, LabelList{1, 0}).item());
    CHECK(nn::CrossEntropyLoss{}(x, std::vector<int>{2, 0}).item() == want);
    CHECK(nn::NLLLoss{}(x, std::vector<int>{1, 0}).item() == nn::nll_loss(x, LabelList{1, 0}).item());
    check_throws<tapegrad::IndexError>([&] { (void)nn::cross_entropy(x, std::vector<int>{2, -3}); },
                                       "cross_entropy: label -3 out of range [0, 3) at row 1");
    check_throws<tapegrad::IndexError>([&] { (void)nn::nll_loss(x, std::vector<int>{7, 0}); },
                                       "nll_loss: label 7 out of range [0, 3) at row 0");
    // an unsigned 64-bit label beyond int64 is reported, not wrapped to a negative index
    check_throws<tapegrad::IndexError>(
        [&] { (void)nn::cross_entropy(x, std::vector<uint64_t>{0, uint64_t{1} << 63}); },
        "cross_entropy: label 9223372036854775808 out of range at row 1");

    // and the gradient is the same as with int64 labels
    TensorD a = x.clone().detach(), b = x.clone().detach();
    a.requires_grad_();
    b.requires_grad_();
    nn::cross_entropy(a, std::vector<int>{2, 0}).backward();
    nn::cross_entropy(b, wide).backward();
    CHECK(a.grad().to_vector() == b.grad().to_vector());
}
