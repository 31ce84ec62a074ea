#include <tapegrad/autograd/gradcheck.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../test_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

using namespace tapegrad;
using tapegrad::testing::Inputs;

namespace {

/// y = x^2 with a deliberately wrong derivative (x instead of 2x): gradcheck must catch it.
struct WrongSquare {
    static constexpr const char* name = "wrong_square";
    template <class T> T operator()(T x) const { return x * x; }
    template <class T> T backward(T x, T, T dy) const { return dy * x; }
};
/// The same op with the right derivative, through the same `unary` machinery.
struct RightSquare {
    static constexpr const char* name = "right_square";
    template <class T> T operator()(T x) const { return x * x; }
    template <class T> T backward(T x, T, T dy) const { return dy * T(2) * x; }
};

using tapegrad::testing::contains;

}  // namespace

TEST_CASE("gradcheck: passes on correct ops") {
    Generator g(1);
    const TensorD x = TensorD::uniform({3, 4}, -1.0, 1.0, g);
    const GradcheckResult r = gradcheck([](const Inputs& xs) { return tanh(xs[0]); }, {x});
    CHECK(r.ok);
    CHECK(static_cast<bool>(r));
    CHECK(r.max_abs_error < 1e-8);
    CHECK(r.input == 0);
    CHECK(contains(r.message, "gradcheck passed"));

    const GradcheckResult right = gradcheck([](const Inputs& xs) { return unary(xs[0], RightSquare{}); }, {x});
    CHECK_MESSAGE(right.ok, right.message);

    // a composite: one layer of a network, every input checked
    const TensorD w = TensorD::uniform({4, 2}, -1.0, 1.0, g);
    const TensorD b = TensorD::uniform({2}, -1.0, 1.0, g);
    const GradcheckResult layer =
        gradcheck([](const Inputs& xs) { return mean(sigmoid(matmul(xs[0], xs[1]) + xs[2])); }, {x, w, b});
    CHECK_MESSAGE(layer.ok, layer.message);
}

TEST_CASE("gradcheck: fails on a wrong backward and names the input") {
    Generator g(2);
    const TensorD x = TensorD::uniform({2, 3}, 0.5, 1.0, g);
    const GradcheckResult r = gradcheck([](const Inputs& xs) { return unary(xs[0], WrongSquare{}); }, {x});
    CHECK_FALSE(r.ok);
    CHECK_FALSE(static_cast<bool>(r));
    CHECK(r.input == 0);
    CHECK(r.element >= 0);
    CHECK(r.element < 6);
    // the analytic derivative is half the true one
    CHECK(r.analytic == doctest::Approx(r.numeric / 2).epsilon(1e-6));
    CHECK(contains(r.message, "gradcheck FAILED"));
    CHECK(contains(r.message, "input 0 (shape [2, 3])"));
    CHECK(contains(r.message, "analytic"));
    CHECK(contains(r.message, "numeric"));

    // with two inputs where only the second goes through the wrong op, the second is named
    const TensorD a = TensorD::uniform({3}, 0.5, 1.0, g);
    const GradcheckResult r2 =
        gradcheck([](const Inputs& xs) { return xs[0] * 2.0 + unary(xs[1], WrongSquare{}); }, {a, x});
    CHECK_FALSE(r2.ok);
    CHECK(r2.input == 1);
    CHECK(contains(r2.message, "input 1 (shape [2, 3])"));
}

TEST_CASE("gradcheck: checks only the inputs that require grad, when some do") {
    Generator g(3);
    TensorD a = TensorD::uniform({3}, 0.5, 1.0, g);
    TensorD b = TensorD::uniform({3}, 0.5, 1.0, g);
    b.requires_grad_();
    // the wrong op is applied to `a`, which is not checked: passes, and the worst element is in input 1
    const GradcheckResult r =
        gradcheck([](const Inputs& xs) { return unary(xs[0], WrongSquare{}) * xs[1]; }, {a, b});
    CHECK_MESSAGE(r.ok, r.message);
    CHECK(r.input == 1);
    // the inputs themselves are left untouched: same values, no gradient
    CHECK_FALSE(a.requires_grad());
    CHECK_FALSE(b.grad().defined());
}

TEST_CASE("gradcheck: leaves the inputs' values unchanged") {
    Generator g(4);
    const TensorD x = TensorD::uniform({5}, -1.0, 1.0, g);
    const std::vector<double> before = x.to_vector();
    (void)gradcheck([](const Inputs& xs) { return exp(xs[0]); }, {x});
    CHECK(x.to_vector() == before);
    CHECK_FALSE(x.requires_grad());
}

TEST_CASE("gradcheck: an output that depends on no checked input is an error") {
    const TensorD x = TensorD::ones({2});
    CHECK_THROWS_WITH_AS(gradcheck([](const Inputs&) { return TensorD::ones({2}); }, {x}),
                         doctest::Contains("does not depend on any input"), ValueError);

    // an output whose shape changes between evaluations is reported
    int calls = 0;
    auto unstable = [&calls](const Inputs& xs) { return ++calls == 1 ? xs[0] * 1.0 : xs[0].reshape({1, 2}) * 1.0; };
    CHECK_THROWS_WITH_AS(gradcheck(unstable, {x}), doctest::Contains("output shape changed from [2] to [1, 2]"),
                         ShapeError);
}

TEST_CASE("gradcheck: a loose tolerance hides a wrong gradient, a tight one reports it") {
    const TensorD x = TensorD::from({2}, {0.01, 0.02});
    auto f = [](const Inputs& xs) { return unary(xs[0], WrongSquare{}); };
    // true derivative 2x vs reported x differ by at most 0.02
    CHECK(gradcheck(f, {x}, {.atol = 0.1, .rtol = 0}).ok);
    CHECK_FALSE(gradcheck(f, {x}, {.atol = 1e-3, .rtol = 0}).ok);
}

TEST_CASE("gradcheck: a result prints its sentence with operator<<") {
    const TensorD x = TensorD::from({2}, {0.3, -0.4});
    const GradcheckResult r = gradcheck([](const Inputs& xs) { return tanh(xs[0]); }, {x});
    std::ostringstream os;
    os << r;
    CHECK(os.str() == r.message);
    CHECK(contains(os.str(), "gradcheck passed"));
}

TEST_CASE("gradcheck: float inputs are checked in double through a generic function") {
    Generator g(5);
    TensorF x = TensorF::uniform({2, 3}, 0.5f, 1.0f, g);
    const TensorF w = TensorF::uniform({3, 2}, -1.0f, 1.0f, g);
    const auto layer = [](const auto& xs) { return sum(tanh(matmul(xs[0], xs[1]))); };
    const GradcheckResult ok = gradcheck(layer, {x, w});
    CHECK_MESSAGE(ok.ok, ok.message);
    // checked in double: the error is far below what float finite differences could resolve
    CHECK(ok.max_abs_error < 1e-8);
    CHECK(ok.input >= 0);

    // a wrong backward is caught the same way, and only the inputs that require grad are checked
    const GradcheckResult bad = gradcheck([](const auto& xs) { return unary(xs[0], WrongSquare{}); }, {x});
    CHECK_FALSE(bad.ok);
    CHECK(contains(bad.message, "input 0 (shape [2, 3])"));
    x.requires_grad_();
    const GradcheckResult only_x =
        gradcheck([](const auto& xs) { return matmul(xs[0], unary(xs[1], WrongSquare{})); }, {x, w});
    CHECK_MESSAGE(only_x.ok, only_x.message);
    CHECK(only_x.input == 0);
    CHECK_FALSE(x.grad().defined());  // the float inputs are left untouched
}
