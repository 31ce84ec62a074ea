#include <tapegrad/autograd/functional.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/check_throws.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace tapegrad;
using tapegrad::testing::check_throws;

namespace {

/// f(x) = x0^2 x1 + e^x1 x2 + x0 x2^3, and its Hessian written by hand:
///   df/dx0 = 2 x0 x1 + x2^3,  df/dx1 = x0^2 + e^x1 x2,  df/dx2 = e^x1 + 3 x0 x2^2
///   H = [[2 x1, 2 x0, 3 x2^2], [2 x0, e^x1 x2, e^x1], [3 x2^2, e^x1, 6 x0 x2]]
TensorD f(const TensorD& x) {
    const TensorD x0 = slice(x, 0, 0, 1), x1 = slice(x, 0, 1, 2), x2 = slice(x, 0, 2, 3);
    return sum(x0 * x0 * x1 + exp(x1) * x2 + x0 * pow(x2, 3.0));
}
std::vector<double> hand_hessian(double x0, double x1, double x2) {
    const double e = std::exp(x1);
    return {2 * x1, 2 * x0, 3 * x2 * x2, 2 * x0, e * x2, e, 3 * x2 * x2, e, 6 * x0 * x2};
}

}  // namespace

TEST_CASE("hessian, hvp and vhp match the hand-written Hessian") {
    const TensorD x = TensorD::from({3}, {0.7, -0.4, 1.3});
    const std::vector<double> H = hand_hessian(0.7, -0.4, 1.3);
    const TensorD h = hessian(f, x);
    REQUIRE(h.shape() == Shape{3, 3});
    for (int i = 0; i < 9; ++i) CHECK(h.data()[i] == doctest::Approx(H[static_cast<size_t>(i)]));
    const TensorD v = TensorD::from({3}, {1.0, -2.0, 0.5});
    const TensorD hv = hvp(f, x, v), vh = vhp(f, x, v);
    for (int i = 0; i < 3; ++i) {
        double want = 0;
        for (int j = 0; j < 3; ++j) want += H[static_cast<size_t>(3 * i + j)] * v.data()[j];
        CHECK(hv.data()[i] == doctest::Approx(want));
        CHECK(vh.data()[i] == doctest::Approx(want));
    }
    CHECK_FALSE(hv.requires_grad());
    CHECK_FALSE(x.requires_grad());  // the point is not touched
}

TEST_CASE("jvp and vjp of a vector function against its Jacobian") {
    // g(x) = [x0 x1, tanh(x1) + x0^2]: J = [[x1, x0], [2 x0, 1 - tanh(x1)^2]]
    const auto g = [](const TensorD& x) {
        const TensorD x0 = slice(x, 0, 0, 1), x1 = slice(x, 0, 1, 2);
        return concat({x0 * x1, tanh(x1) + x0 * x0}, 0);
    };
    const TensorD x = TensorD::from({2}, {0.3, 0.8});
    const double t = std::tanh(0.8);
    const double J[2][2] = {{0.8, 0.3}, {0.6, 1 - t * t}};
    const TensorD v = TensorD::from({2}, {2.0, -1.0});
    const TensorD jv = jvp(g, x, v), vj = vjp(g, x, v);
    for (int i = 0; i < 2; ++i) {
        CHECK(jv.data()[i] == doctest::Approx(J[i][0] * 2.0 + J[i][1] * -1.0));
        CHECK(vj.data()[i] == doctest::Approx(2.0 * J[0][i] - 1.0 * J[1][i]));
    }
}

TEST_CASE("hvp of a function affine in x is zero; wrong shapes are named") {
    const TensorD x = TensorD::from({2}, {1.0, 2.0});
    const auto lin = [](const TensorD& t) { return sum(t * 3.0); };
    CHECK(hvp(lin, x, TensorD::ones({2})).to_vector() == std::vector<double>{0.0, 0.0});
    check_throws<ShapeError>([&] { (void)hvp(lin, x, TensorD::ones({3})); }, "hvp: v has shape [3]");
    check_throws<ShapeError>([&] { (void)hessian([](const TensorD& t) { return t * t; }, x); }, "one element");
}
