// Tests for tapegrad/backend/common/accumulate.hpp: the accurate-sum helpers themselves, then one representative of
// every float reduction family at 1e7 elements (sum, mean, sums along an axis, the losses' reductions,
// softmax denominators, gradients summed over broadcast dimensions, bias gradients of linear and conv2d,
// adaptive average pooling, batch-norm statistics), each against a sum taken in double over the same float
// values. Before these helpers, 1e7 copies of 0.1f summed to 1,087,937 (8.8% high).

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::TensorF;
namespace backend = tapegrad::backend;
namespace nn = tapegrad::nn;

namespace {

constexpr int64_t big = 10'000'000;
constexpr double eps = std::numeric_limits<float>::epsilon();

/// |got - want| / |want|, in units of float's epsilon.
double rel_eps(double got, double want) { return std::abs(got - want) / std::abs(want) / eps; }

/// The sum of 1e7 copies of 0.1f, in double: 1e7 * 0.100000001490116...
const double tenth_sum = 1e7 * static_cast<double>(0.1f);

}  // namespace

TEST_CASE("BlockSum and sum_contiguous: 1e7 copies of 0.1f, and every length around the block sizes") {
    std::vector<float> x(static_cast<size_t>(big), 0.1f);
    backend::BlockSum<float> s;
    for (const float v : x) s.add(v);
    CHECK(rel_eps(s.value(), tenth_sum) <= 4.0);
    CHECK(rel_eps(backend::sum_contiguous(x.data(), big), tenth_sum) <= 4.0);

    // lengths 0 .. 600 cover empty, tails and several whole 256-term blocks; exact for small integers
    std::vector<float> ints(600);
    for (size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<float>(i % 7) - 3.0f;
    double want = 0.0;
    for (int64_t n = 0; n <= 600; ++n) {
        CHECK(backend::sum_contiguous(ints.data(), n) == static_cast<float>(want));
        if (n < 600) want += ints[static_cast<size_t>(n)];
    }
    // infinities and NaN propagate
    ints[300] = std::numeric_limits<float>::infinity();
    CHECK(std::isinf(backend::sum_contiguous(ints.data(), 600)));
    ints[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK(std::isnan(backend::sum_contiguous(ints.data(), 600)));
}

TEST_CASE("sum_rows: column sums, assigned or accumulated, across the column chunks") {
    const int64_t n = 37, inner = 2500;  // more than one 1024-column chunk, a partial row block
    std::vector<float> x(static_cast<size_t>(n * inner));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int64_t>(i % 11) - 5);
    std::vector<float> out(static_cast<size_t>(inner), 2.0f);
    backend::sum_rows(n, inner, x.data(), out.data(), false);
    std::vector<float> acc(static_cast<size_t>(inner), 2.0f);
    backend::sum_rows(n, inner, x.data(), acc.data(), true);
    for (int64_t i = 0; i < inner; ++i) {
        double want = 0.0;
        for (int64_t k = 0; k < n; ++k) want += x[static_cast<size_t>(k * inner + i)];
        CHECK(out[static_cast<size_t>(i)] == static_cast<float>(want));
        CHECK(acc[static_cast<size_t>(i)] == static_cast<float>(want + 2.0));
    }
    std::vector<float> none(3, 5.0f);
    backend::sum_rows(int64_t{0}, int64_t{3}, x.data(), none.data(), false);
    CHECK(none == std::vector<float>{0.0f, 0.0f, 0.0f});
}

TEST_CASE("sum and mean of 1e7 floats are accurate (8.8% off before)") {
    const TensorF x = TensorF::full({big}, 0.1f);
    CHECK(rel_eps(tapegrad::sum(x).item(), tenth_sum) <= 4.0);
    CHECK(rel_eps(tapegrad::mean(x).item(), tenth_sum / 1e7) <= 4.0);

    // random values of both signs, against a double sum of the same floats
    Generator g(7);
    const TensorF r = TensorF::uniform({big}, -1.0f, 3.0f, g);
    double want = 0.0;
    for (const float v : r.span()) want += v;
    CHECK(rel_eps(tapegrad::sum(r).item(), want) <= 4.0);
}

TEST_CASE("sums along an axis of 1e7 floats are accurate, whichever axis") {
    const TensorF x = TensorF::full({big / 4, 4}, 0.1f);  // axis 0: 2.5e6 rows into 4 columns
    const TensorF cols = tapegrad::sum(x, 0);
    for (const float v : cols.span()) CHECK(rel_eps(v, tenth_sum / 4) <= 4.0);
    const TensorF y = TensorF::full({4, big / 4}, 0.1f);  // axis 1: rows of 2.5e6 contiguous values
    const TensorF rows = tapegrad::mean(y, 1);
    for (const float v : rows.span()) CHECK(rel_eps(v, static_cast<double>(0.1f)) <= 4.0);
    const TensorF z = TensorF::full({2, big / 8, 4}, 0.1f);  // the middle axis of [outer, n, inner]
    const TensorF mid = tapegrad::sum(z, 1);
    CHECK(mid.shape() == Shape{2, 4});
    for (const float v : mid.span()) CHECK(rel_eps(v, tenth_sum / 8) <= 4.0);
}

TEST_CASE("loss reductions over 1e7 rows are accurate") {
    // nll_loss and cross_entropy reduce their rows with the same helper; mse_loss goes through mean
    const TensorF logp = TensorF::full({big, 1}, -0.1f);
    const std::vector<int64_t> labels(static_cast<size_t>(big), 0);
    CHECK(rel_eps(nn::nll_loss(logp, labels).item(), static_cast<double>(0.1f)) <= 4.0);
    CHECK(rel_eps(nn::nll_loss(logp, labels, nn::Reduction::sum).item(), tenth_sum) <= 4.0);
    const TensorF input = TensorF::full({big}, 0.5f), target = TensorF::full({big}, 0.2f);
    const double d = static_cast<double>(0.5f - 0.2f);
    CHECK(rel_eps(nn::mse_loss(input, target).item(), static_cast<double>(static_cast<float>(d * d))) <= 4.0);
}

TEST_CASE("softmax over a row of 1e7 logits has an accurate denominator") {
    // e^(x - max) is 1 for the first logit and about 0.1 for the others: the denominator is ~1e6
    TensorF x = TensorF::full({1, big}, std::log(0.1f));
    x.data()[0] = 0.0f;
    double s = 1.0;
    const double tenth = std::exp(static_cast<double>(std::log(0.1f)));
    s += static_cast<double>(big - 1) * tenth;
    const TensorF p = tapegrad::softmax(x, 1);
    CHECK(rel_eps(p.data()[0], 1.0 / s) <= 4.0);
    const TensorF lp = tapegrad::log_softmax(x, 1);
    CHECK(std::abs(lp.data()[0] + std::log(s)) <= 4 * eps * std::log(s));
    // the cross-entropy of that row takes the same denominator
    const std::vector<int64_t> label{0};
    CHECK(rel_eps(nn::cross_entropy(x, label).item(), std::log(s)) <= 4.0);
}

TEST_CASE("gradients summed over 1e7 broadcast elements are accurate") {
    // x [1e7, 1] + b [1]: b's gradient sums dy over every row
    const TensorF x = TensorF::zeros({big, 1});
    TensorF b = TensorF::zeros({1}).requires_grad_();
    (x + b).backward(TensorF::full({big, 1}, 0.1f));
    CHECK(rel_eps(b.grad().item(), tenth_sum) <= 4.0);
    // the same for a scalar on the left (its gradient goes through the broadcast path too)
    TensorF a = TensorF::zeros({1}).requires_grad_();
    (a * TensorF::ones({big})).backward(TensorF::full({big}, 0.1f));
    CHECK(rel_eps(a.grad().item(), tenth_sum) <= 4.0);
    // sum's own backward and a rows x columns bias: x [1e7/4, 4] + b [4]
    TensorF b4 = TensorF::zeros({4}).requires_grad_();
    (TensorF::zeros({big / 4, 4}) + b4).backward(TensorF::full({big / 4, 4}, 0.1f));
    const TensorF db4 = b4.grad();
    for (const float v : db4.span()) CHECK(rel_eps(v, tenth_sum / 4) <= 4.0);
}

TEST_CASE("gradients summed along the innermost dimension, and into a gradient that is assigned") {
    // b [2, 1] under x [2, 5e6]: each of b's two gradients sums a row (the general walk, stride 0 runs)
    TensorF b = TensorF::zeros({2, 1}).requires_grad_();
    (TensorF::zeros({2, big / 2}) + b).backward(TensorF::full({2, big / 2}, 0.1f));
    const TensorF db = b.grad();
    for (const float v : db.span()) CHECK(rel_eps(v, tenth_sum / 2) <= 4.0);
    // both operands need a gradient, a's overwritten in place (the bias path with da): x [R, 4] * w [4]
    TensorF x = TensorF::full({big / 4, 4}, 2.0f).requires_grad_();
    TensorF w = TensorF::full({4}, 3.0f).requires_grad_();
    (x * w).backward(TensorF::full({big / 4, 4}, 0.1f));
    const TensorF dw = w.grad(), dx = x.grad();
    for (const float v : dw.span()) CHECK(rel_eps(v, 2.0 * tenth_sum / 4) <= 4.0);
    CHECK(dx.data()[0] == 0.3f * 1.0f);
    CHECK(dx.data()[big - 1] == 0.1f * 3.0f);
}

TEST_CASE("broadcast_row_length finds b broadcast over leading dimensions only") {
    backend::Strided p;
    p.rank = 2;
    p.dims = {5, 3};
    p.sb = {0, 1};
    CHECK(backend::broadcast_row_length(p, p.sb) == 3);  // [5, 3] from [3]
    p.sb = {1, 0};
    CHECK(backend::broadcast_row_length(p, p.sb) == 0);  // [5, 3] from [5, 1]
    p.rank = 4;
    p.dims = {2, 3, 4, 5};
    p.sb = {0, 20, 5, 1};
    CHECK(backend::broadcast_row_length(p, p.sb) == 60);  // [2, 3, 4, 5] from [3, 4, 5]
    p.sb = {0, 1, 0, 0};
    CHECK(backend::broadcast_row_length(p, p.sb) == 0);  // from [3, 1, 1]
    p.sb = {0, 0, 5, 1};
    CHECK(backend::broadcast_row_length(p, p.sb) == 20);  // from [1, 4, 5]
    p.sb = {60, 20, 5, 1};
    CHECK(backend::broadcast_row_length(p, p.sb) == 120);  // not broadcast: one row
}

TEST_CASE("strided_add sums a broadcast accurately (the adjoint of an expanding copy)") {
    backend::Strided p;
    p.rank = 2;
    p.dims = {big / 2, 2};
    p.sa = {0, 1};  // every row adds into the same two elements
    const std::vector<float> in(static_cast<size_t>(big), 0.1f);
    std::vector<float> out{1.0f, 2.0f};
    backend::Ops<tapegrad::Cpu>::strided_add(p, in.data(), out.data());
    CHECK(rel_eps(out[0], 1.0 + tenth_sum / 2) <= 4.0);
    CHECK(rel_eps(out[1], 2.0 + tenth_sum / 2) <= 4.0);
}

TEST_CASE("bias gradients of linear and conv2d over 1e7 values are accurate") {
    TensorF w = TensorF::ones({2, 1}), b = TensorF::zeros({2}).requires_grad_();
    tapegrad::linear(TensorF::zeros({big / 2, 1}), w, b).backward(TensorF::full({big / 2, 2}, 0.1f));
    const TensorF db = b.grad();
    for (const float v : db.span()) CHECK(rel_eps(v, tenth_sum / 2) <= 4.0);

    // conv2d: 1x1 kernel, 4 images of 1 channel 1250 x 500, one output channel: db sums 2.5e6 values per image
    TensorF cb = TensorF::zeros({1}).requires_grad_();
    const TensorF cw = TensorF::ones({1, 1, 1, 1});
    tapegrad::conv2d(TensorF::zeros({4, 1, 1250, 500}), cw, cb).backward(TensorF::full({4, 1, 1250, 500}, 0.1f));
    CHECK(rel_eps(cb.grad().item(), tenth_sum / 4) <= 4.0);
}

TEST_CASE("global average pooling and batch-norm statistics over 1e7 values are accurate") {
    const TensorF x = TensorF::full({1, 1, 2500, 4000}, 0.1f);
    CHECK(rel_eps(tapegrad::adaptive_avg_pool2d(x, {1, 1}).item(), static_cast<double>(0.1f)) <= 4.0);

    const TensorF running_mean = TensorF::zeros({1}), running_var = TensorF::ones({1});
    (void)tapegrad::batch_norm(TensorF::full({big, 1}, 0.1f), running_mean, running_var, TensorF{}, TensorF{}, true, 1.0);
    CHECK(rel_eps(running_mean.item(), static_cast<double>(0.1f)) <= 4.0);
}
