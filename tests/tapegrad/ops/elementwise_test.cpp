#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/op_tables.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

namespace {

std::vector<double> values(const TensorD& t) { return t.to_vector(); }

}  // namespace

TEST_CASE("elementwise: every op passes gradcheck on random shapes (the device-generic table, on the CPU)") {
    const int checked = check_table<ElementwiseTable, Cpu>(1000);
    CHECK(checked == static_cast<int>(ElementwiseTable::cases<double, Cpu>().size()) * kCasesPerOp);
}

TEST_CASE("elementwise: the random broadcasting pairs really broadcast") {
    // guards the generator above: among the pairs drawn, some must differ in shape, in rank and be scalars
    Generator g(5);
    int differ = 0, rank_differs = 0, scalars = 0;
    for (int i = 0; i < 100; ++i) {
        auto [a, b] = broadcast_pair(g);
        CHECK_NOTHROW((void)broadcast_shapes(a, b, "test"));
        differ += !(a == b);
        rank_differs += a.rank() != b.rank();
        scalars += a.rank() == 0 || b.rank() == 0;
    }
    CHECK(differ > 50);
    CHECK(rank_differs > 20);
    CHECK(scalars > 2);
}

TEST_CASE("broadcasting: result shapes and values") {
    // [3,1] x [1,4] -> [3,4]: an outer sum
    const TensorD col = TensorD::from({3, 1}, {0, 10, 20});
    const TensorD row = TensorD::from({1, 4}, {1, 2, 3, 4});
    const TensorD outer = col + row;
    CHECK(outer.shape() == Shape{3, 4});
    CHECK(values(outer) == std::vector<double>{1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24});
    CHECK(values(row + col) == values(outer));

    // [2,3,4] x [4] -> [2,3,4]: the vector repeats along every row
    const TensorD cube = TensorD::arange(24).reshape({2, 3, 4});
    const TensorD v = TensorD::from({4}, {100, 200, 300, 400});
    const TensorD cv = cube * v;
    CHECK(cv.shape() == Shape{2, 3, 4});
    CHECK(cv(1, 2, 3) == 23 * 400.0);
    CHECK(cv(0, 1, 0) == 4 * 100.0);
    CHECK(cv(1, 0, 2) == 14 * 300.0);

    // [5,1,3] x [1,4,1] -> [5,4,3]
    const TensorD a = TensorD::arange(15).reshape({5, 1, 3});
    const TensorD b = TensorD::arange(4).reshape({1, 4, 1}) * 100.0;
    const TensorD ab = a + b;
    CHECK(ab.shape() == Shape{5, 4, 3});
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 4; ++j)
            for (int64_t k = 0; k < 3; ++k) CHECK(ab(i, j, k) == static_cast<double>(3 * i + k + 100 * j));

    // scalar x anything
    const TensorD s = TensorD::scalar(2.0);
    CHECK((s * cube).shape() == Shape{2, 3, 4});
    CHECK((s * cube)(1, 1, 1) == 34.0);
    CHECK((cube - s)(0, 0, 0) == -2.0);
    CHECK((s / TensorD::from({2}, {4, 8})).to_vector() == std::vector<double>{0.5, 0.25});
    CHECK((s + s).shape() == Shape{});
    CHECK((s + s).item() == 4.0);
    CHECK((TensorD::from({1}, {3}) + TensorD::zeros({2, 1, 2})).shape() == Shape{2, 1, 2});
    CHECK((TensorD::zeros({0, 3}) + TensorD::ones({3})).shape() == Shape{0, 3});  // empty stays empty

    // the gradient of a broadcast operand is summed over the broadcast dimensions
    TensorD c = TensorD::from({3, 1}, {1, 2, 3});
    TensorD r = TensorD::from({1, 4}, {1, 1, 1, 1});
    c.requires_grad_();
    r.requires_grad_();
    sum(c * r).backward();
    CHECK(values(c.grad()) == std::vector<double>{4, 4, 4});  // sum over the 4 columns of r
    CHECK(values(r.grad()) == std::vector<double>{6, 6, 6, 6});  // sum over the 3 rows of c
}

TEST_CASE("broadcasting: incompatible shapes throw ShapeError naming both shapes") {
    const TensorD a = TensorD::zeros({2, 3});
    CHECK_THROWS_WITH_AS(a + TensorD::zeros({4}),
                         "add: shapes [2, 3] and [4] cannot be broadcast (dimension 1: 3 vs 4)", ShapeError);
    CHECK_THROWS_WITH_AS(a * TensorD::zeros({3, 3}), doctest::Contains("mul: shapes [2, 3] and [3, 3]"), ShapeError);
    CHECK_THROWS_WITH_AS(a - TensorD::zeros({2, 2}), doctest::Contains("sub: shapes [2, 3] and [2, 2]"), ShapeError);
    CHECK_THROWS_WITH_AS(a / TensorD::zeros({5, 1, 2}), doctest::Contains("div: shapes [2, 3] and [5, 1, 2]"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(maximum(TensorD::zeros({5, 1, 3}), TensorD::zeros({1, 4, 2})),
                         doctest::Contains("maximum: shapes [5, 1, 3] and [1, 4, 2]"), ShapeError);
}

TEST_CASE("elementwise: forward values against hand-computed literals") {
    const TensorD x = TensorD::from({4}, {-2.0, -0.5, 0.0, 3.0});
    CHECK(values(-x) == std::vector<double>{2.0, 0.5, -0.0, -3.0});
    CHECK(values(abs(x)) == std::vector<double>{2.0, 0.5, 0.0, 3.0});
    CHECK(values(relu(x)) == std::vector<double>{0.0, 0.0, 0.0, 3.0});
    CHECK(values(clamp(x, -1.0, 1.0)) == std::vector<double>{-1.0, -0.5, 0.0, 1.0});
    CHECK(values(pow(x, 2.0)) == std::vector<double>{4.0, 0.25, 0.0, 9.0});
    CHECK(values(pow(x, 3.0)) == std::vector<double>{-8.0, -0.125, 0.0, 27.0});
    CHECK(values(maximum(x, TensorD::scalar(-1.0))) == std::vector<double>{-1.0, -0.5, 0.0, 3.0});
    CHECK(values(x / 2.0) == std::vector<double>{-1.0, -0.25, 0.0, 1.5});
    CHECK(values(sqrt(TensorD::from({3}, {0.0, 4.0, 2.25}))) == std::vector<double>{0.0, 2.0, 1.5});
    CHECK(exp(TensorD::scalar(1.0)).item() == doctest::Approx(2.718281828459045));
    CHECK(log(TensorD::scalar(std::exp(2.0))).item() == doctest::Approx(2.0));
    CHECK(tanh(TensorD::scalar(0.5)).item() == doctest::Approx(0.46211715726000974));  // math.tanh(0.5)
    CHECK(sigmoid(TensorD::scalar(0.0)).item() == 0.5);
    CHECK(sigmoid(TensorD::scalar(2.0)).item() == doctest::Approx(0.8807970779778823));  // 1/(1+math.exp(-2))

    // sigmoid stays finite and exact at the extremes (float too)
    CHECK(sigmoid(TensorF::from({2}, {-1000.f, 1000.f})).to_vector() == std::vector<float>{0.f, 1.f});
    CHECK(sigmoid(TensorD::scalar(-700.0)).item() > 0.0);

    // the gradient conventions at kinks: abs'(0) = 0, relu'(0) = 0, clamp passes the bound itself
    TensorD k = TensorD::from({3}, {0.0, -1.0, 1.0});
    k.requires_grad_();
    sum(abs(k) + relu(k) + clamp(k, -1.0, 0.5)).backward();
    CHECK(values(k.grad()) == std::vector<double>{0.0 + 0.0 + 1.0, -1.0 + 0.0 + 1.0, 1.0 + 1.0 + 0.0});

    // x^0 is constant: its gradient is 0 everywhere, including at x = 0 (not 0 * inf = NaN)
    TensorD z = TensorD::from({3}, {0.0, 2.0, -1.0});
    z.requires_grad_();
    sum(pow(z, 0.0)).backward();
    CHECK(values(z.grad()) == std::vector<double>{0.0, 0.0, 0.0});

    // maximum sends the gradient to `a` on ties
    TensorD p = TensorD::from({2}, {1.0, 2.0});
    TensorD q = TensorD::from({2}, {1.0, 3.0});
    p.requires_grad_();
    q.requires_grad_();
    sum(maximum(p, q)).backward();
    CHECK(values(p.grad()) == std::vector<double>{1.0, 0.0});
    CHECK(values(q.grad()) == std::vector<double>{0.0, 1.0});
}

TEST_CASE_TEMPLATE("elementwise: float and double agree", T, float, double) {
    const Tensor<T> x = Tensor<T>::from({2, 2}, {T(0.5), T(1), T(1.5), T(2)});
    const Tensor<T> y = tanh(x * x) + exp(-x) / sqrt(x) - log(x);
    for (int64_t i = 0; i < 4; ++i) {
        const double v = static_cast<double>(x.data()[i]);
        CHECK(static_cast<double>(y.data()[i]) ==
              doctest::Approx(std::tanh(v * v) + std::exp(-v) / std::sqrt(v) - std::log(v)).epsilon(1e-6));
    }
    Tensor<T> w = Tensor<T>::from({2}, {T(1), T(2)});
    w.requires_grad_();
    sum(pow(w, 3.0)).backward();
    CHECK(w.grad().to_vector() == std::vector<T>{T(3), T(12)});
}

TEST_CASE("tanh in float (vectorised) stays within 3 ulp of std::tanh, with its edge cases") {
    std::vector<float> v;
    for (int i = -200000; i <= 200000; ++i) v.push_back(static_cast<float>(i) * 1e-4f);  // [-20, 20]
    for (float e = 1e-30f; e < 1e-2f; e *= 3.7f) {
        v.push_back(e);
        v.push_back(-e);
    }
    const float inf = std::numeric_limits<float>::infinity();
    v.insert(v.end(), {inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.f, -0.f});
    const std::vector<float> y = tanh(TensorF::from({static_cast<int64_t>(v.size())}, v)).to_vector();
    for (size_t i = 0; i < v.size(); ++i) {
        const float want = std::tanh(v[i]);
        if (std::isnan(want)) {
            CHECK(std::isnan(y[i]));
            continue;
        }
        const float ulp = std::nextafter(std::abs(want), inf) - std::abs(want);
        if (!(std::abs(y[i] - want) <= 3 * ulp && std::abs(y[i]) <= 1.f)) {
            FAIL_CHECK("tanh(" << v[i] << ") = " << y[i] << ", std::tanh gives " << want);
            break;
        }
    }
    CHECK(std::signbit(y[v.size() - 1]));  // tanh(-0) = -0
}

TEST_CASE("elementwise: argument errors") {
    CHECK_THROWS_WITH_AS(clamp(TensorD::zeros({2}), 1.0, -1.0), "clamp: lower bound 1 is above upper bound -1",
                         ValueError);
    CHECK_NOTHROW(clamp(TensorD::zeros({2}), 1.0, 1.0));
    CHECK_THROWS_AS(exp(TensorD()), ValueError);  // an undefined tensor
}

TEST_CASE("elementwise: outputs record the op and require grad only when an input does") {
    TensorD x = TensorD::ones({2});
    const TensorD c = TensorD::ones({2});
    CHECK_FALSE((x + c).requires_grad());
    x.requires_grad_();
    const TensorD y = x + c;
    CHECK(y.requires_grad());
    CHECK(std::string(y.grad_fn_name()) == "add");
    CHECK(std::string(exp(x).grad_fn_name()) == "exp");
    CHECK(std::string(clamp(x, 0.0, 1.0).grad_fn_name()) == "clamp");
    CHECK(std::string(maximum(c, x).grad_fn_name()) == "maximum");
}
