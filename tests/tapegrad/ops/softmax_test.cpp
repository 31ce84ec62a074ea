// Tests for tapegrad/ops/softmax.hpp: gradcheck along every axis of several shapes, reference values,
// normalisation, stability for logits of magnitude 1e4 (float and double), and axis errors.
//
// Reference values come from Python's math module:
//   sm = lambda v: [math.exp(a - max(v)) / sum(math.exp(b - max(v)) for b in v) for a in v]

#include <tapegrad/autograd/gradcheck.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/softmax.hpp>

#include "../../support/op_tables.hpp"
#include "../../support/tensor_checks.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::Tensor;
using tapegrad::TensorD;

namespace {

using tapegrad::testing::all_finite;

struct AxisCase {
    Shape shape;
    int axis;
};
const std::vector<AxisCase> axis_cases = {
    {{5}, -1}, {{1}, 0}, {{3, 4}, -1}, {{3, 4}, 0}, {{2, 3, 4}, 0}, {{2, 3, 4}, 1}, {{2, 3, 4}, 2}, {{2, 1, 3}, 1},
};

}  // namespace

TEST_CASE("softmax and log_softmax pass gradcheck along a random axis (the device-generic table, on the CPU)") {
    tapegrad::testing::check_table<tapegrad::testing::SoftmaxTable, tapegrad::Cpu>(5000);
}

TEST_CASE("softmax and log_softmax pass gradcheck along every axis") {
    Generator g(11);
    for (const AxisCase& c : axis_cases) {
        const int axis = c.axis;
        const TensorD x = TensorD::uniform(c.shape, -3.0, 3.0, g);
        const auto r1 = tapegrad::gradcheck(
            [axis](const std::vector<TensorD>& in) { return tapegrad::softmax(in[0], axis); }, {x});
        CHECK_MESSAGE(r1.ok, "softmax ", c.shape, " axis ", axis, ": ", r1.message);
        const auto r2 = tapegrad::gradcheck(
            [axis](const std::vector<TensorD>& in) { return tapegrad::log_softmax(in[0], axis); }, {x});
        CHECK_MESSAGE(r2.ok, "log_softmax ", c.shape, " axis ", axis, ": ", r2.message);
    }
}

TEST_CASE("softmax gradient with a reused output and at large logits") {
    Generator g(12);
    // y used twice: L = sum(y * y) + sum(y * x)
    const auto r = tapegrad::gradcheck(
        [](const std::vector<TensorD>& in) {
            const TensorD y = tapegrad::softmax(in[0]);
            return y * y + y * in[0];
        },
        {TensorD::uniform({3, 4}, -2.0, 2.0, g)});
    CHECK_MESSAGE(r.ok, r.message);
    // logits around 1e3: the shift keeps central differences meaningful
    const auto r2 = tapegrad::gradcheck(
        [](const std::vector<TensorD>& in) { return tapegrad::log_softmax(in[0] + 1000.0); },
        {TensorD::uniform({2, 5}, -2.0, 2.0, g)});
    CHECK_MESSAGE(r2.ok, r2.message);
}

TEST_CASE("softmax reference values") {
    const TensorD x = TensorD::from({3}, {1.0, 2.0, 3.0});
    // sm([1, 2, 3]) = [0.09003057317038046, 0.24472847105479764, 0.6652409557748218]
    const std::vector<double> p = {0.09003057317038046, 0.24472847105479764, 0.6652409557748218};
    // [math.log(v) for v in sm([1, 2, 3])] = [-2.40760596444438, -1.4076059644443804, -0.40760596444438046]
    const std::vector<double> lp = {-2.40760596444438, -1.4076059644443804, -0.40760596444438046};
    const TensorD y = tapegrad::softmax(x);
    const TensorD ly = tapegrad::log_softmax(x);
    for (int64_t i = 0; i < 3; ++i) {
        CHECK(y.data()[i] == doctest::Approx(p[static_cast<size_t>(i)]).epsilon(1e-14));
        CHECK(ly.data()[i] == doctest::Approx(lp[static_cast<size_t>(i)]).epsilon(1e-14));
    }
    // shifting every logit by a constant changes nothing
    const TensorD ys = tapegrad::softmax(x + 1e4);
    for (int64_t i = 0; i < 3; ++i) CHECK(ys.data()[i] == doctest::Approx(p[static_cast<size_t>(i)]).epsilon(1e-12));
}

TEST_CASE("softmax along axis 0 normalises columns") {
    // columns [1, 3] and [2, 2]: sm([1, 3]) = [0.11920292202211755, 0.8807970779778824], sm([2, 2]) = [0.5, 0.5]
    const TensorD y = tapegrad::softmax(TensorD::from({2, 2}, {1.0, 2.0, 3.0, 2.0}), 0);
    CHECK(y(0, 0) == doctest::Approx(0.11920292202211755).epsilon(1e-14));
    CHECK(y(1, 0) == doctest::Approx(0.8807970779778824).epsilon(1e-14));
    CHECK(y(0, 1) == doctest::Approx(0.5));
    CHECK(y(1, 1) == doctest::Approx(0.5));
}

TEST_CASE_TEMPLATE("softmax slices sum to 1", T, float, double) {
    Generator g(13);
    const Tensor<T> x = Tensor<T>::uniform({4, 7, 3}, T(-20), T(20), g);
    for (const int axis : {0, 1, 2}) {
        const Tensor<T> s = tapegrad::sum(tapegrad::softmax(x, axis), axis);
        for (const T v : s.span()) CHECK(v == doctest::Approx(1.0).epsilon(1e-5));
        // and exp(log_softmax) is the same distribution
        const Tensor<T> s2 = tapegrad::sum(tapegrad::exp(tapegrad::log_softmax(x, axis)), axis);
        for (const T v : s2.span()) CHECK(v == doctest::Approx(1.0).epsilon(1e-5));
    }
}

TEST_CASE_TEMPLATE("softmax and log_softmax are finite for logits of magnitude 1e4", T, float, double) {
    Tensor<T> x = Tensor<T>::from({2, 4}, {T(1e4), T(-1e4), T(0), T(1e4),  //
                                           T(-1e4), T(-1e4), T(-1e4), T(-1e4)});
    x.requires_grad_();
    const Tensor<T> y = tapegrad::softmax(x);
    const Tensor<T> ly = tapegrad::log_softmax(x);
    REQUIRE(all_finite(y));
    REQUIRE(all_finite(ly));
    // row 0: two maxima share the mass; row 1: equal logits give 1/4 each
    const std::vector<double> want = {0.5, 0.0, 0.0, 0.5, 0.25, 0.25, 0.25, 0.25};
    const double ln2 = std::numbers::ln2, ln4 = 2.0 * std::numbers::ln2;
    // log_softmax = x - max - log sum e^(x - max), e.g. -1e4 - 1e4 - log 2 = -20000.693...
    const std::vector<double> lwant = {-ln2, -2e4 - ln2, -1e4 - ln2, -ln2, -ln4, -ln4, -ln4, -ln4};
    for (size_t i = 0; i < want.size(); ++i) {
        CHECK(y.data()[i] == doctest::Approx(want[i]).epsilon(1e-6));
        CHECK(ly.data()[i] == doctest::Approx(lwant[i]).epsilon(1e-6));
    }
    Generator g(14);
    const Tensor<T> w = Tensor<T>::uniform({2, 4}, T(-1), T(1), g);
    tapegrad::sum(y * w + ly * w).backward();
    CHECK(all_finite(x.grad()));
}

TEST_CASE("softmax rejects an axis out of range") {
    const TensorD x = TensorD::zeros({2, 3});
    CHECK_THROWS_WITH_AS((void)tapegrad::softmax(x, 2), doctest::Contains("softmax: axis 2 out of range"),
                         tapegrad::IndexError);
    CHECK_THROWS_WITH_AS((void)tapegrad::log_softmax(x, -3), doctest::Contains("log_softmax: axis -3 out of range"),
                         tapegrad::IndexError);
}

TEST_CASE("softmax records one node named after the op, and nothing under NoGradGuard") {
    TensorD x = TensorD::zeros({2, 3});
    x.requires_grad_();
    CHECK(tapegrad::softmax(x).grad_fn_name() == std::string("softmax"));
    CHECK(tapegrad::log_softmax(x).grad_fn_name() == std::string("log_softmax"));
    tapegrad::NoGradGuard ng;
    CHECK(tapegrad::softmax(x).is_leaf());
}
