#include "../../../examples/common/pinn.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

namespace tg = tapegrad;
using namespace examples::pinn;

TEST_CASE("pinn: derivatives by double backward of a known function") {
    // u(x) = x^3 - 2 x: u' = 3 x^2 - 2, u'' = 6 x
    const auto u = [](const tg::TensorD& x) { return x * x * x - x * 2.0; };
    tg::TensorD x = collocation_points(4);
    x.requires_grad_();
    const Derivatives d = derivatives(u, x);
    for (int64_t i = 0; i < 4; ++i) {
        const double v = x(i, 0);
        CHECK(d.ux(i, 0) == doctest::Approx(3 * v * v - 2));
        CHECK(d.uxx(i, 0) == doctest::Approx(6 * v));
    }
}

TEST_CASE("pinn: the exact solution has a zero residual and zero error; another function does not") {
    // sin(pi x) = the series is not an op; use u = x (1 - x) * c, whose u'' = -2c, against f
    const tg::TensorD x = collocation_points(8);
    CHECK(x(0, 0) == doctest::Approx(1.0 / 16));
    CHECK(x(7, 0) == doctest::Approx(15.0 / 16));
    const tg::TensorD f = forcing_at(x);
    CHECK(f(3, 0) == doctest::Approx(-std::numbers::pi * std::numbers::pi * std::sin(std::numbers::pi * 7.0 / 16)));
    tg::TensorD xg = x.detach();
    xg.requires_grad_();
    const auto para = [](const tg::TensorD& t) { return t * (1.0 - t) * 4.0; };
    const tg::TensorD r = residual(para, xg, f);
    for (int64_t i = 0; i < 8; ++i) CHECK(r(i, 0) == doctest::Approx(-8.0 - f(i, 0)));
    // 4 x (1 - x) peaks at 1 like sin(pi x); their largest gap is known to be about 0.056
    const double e = max_abs_error(para);
    CHECK(e > 0.05);
    CHECK(e < 0.06);
}
