// Tests for tapegrad/optim/clip_grad.hpp. The gradients are [3, -4] and [12], whose total norms are
//     2-norm: sqrt(9 + 16 + 144) = 13,   1-norm: 3 + 4 + 12 = 19,   inf-norm: 12,   3-norm: 1819^(1/3).

#include <tapegrad/optim/clip_grad.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

using tapegrad::TensorD;
using tapegrad::TensorF;
using tapegrad::ValueError;
namespace optim = tapegrad::optim;

/// Two parameters with gradients [3, -4] and [12].
std::vector<TensorD> params_with_grads() {
    TensorD a = TensorD::from({2}, {1.0, 1.0});
    TensorD b = TensorD::from({1}, {1.0});
    a.requires_grad_();
    b.requires_grad_();
    tapegrad::sum(a * TensorD::from({2}, {3.0, -4.0})).backward();
    tapegrad::sum(b * 12.0).backward();
    return {a, b};
}

}  // namespace

TEST_CASE("clip_grad_norm_: returns the total norm and scales every gradient by max_norm / (norm + 1e-6)") {
    const std::vector<TensorD> ps = params_with_grads();
    const double total = optim::clip_grad_norm_(ps, 6.5);
    CHECK(total == doctest::Approx(13.0).epsilon(1e-15));
    const double coef = 6.5 / (13.0 + 1e-6);
    CHECK(ps[0].grad()(0) == doctest::Approx(3 * coef).epsilon(1e-15));
    CHECK(ps[0].grad()(1) == doctest::Approx(-4 * coef).epsilon(1e-15));
    CHECK(ps[1].grad()(0) == doctest::Approx(12 * coef).epsilon(1e-15));
    // the clipped norm lands just under max_norm
    const double after = optim::clip_grad_norm_(ps, 100.0);
    CHECK(after < 6.5);
    CHECK(after == doctest::Approx(6.5).epsilon(1e-6));
}

TEST_CASE("clip_grad_norm_: leaves gradients alone below max_norm") {
    const std::vector<TensorD> ps = params_with_grads();
    CHECK(optim::clip_grad_norm_(ps, 13.5) == doctest::Approx(13.0));
    CHECK(ps[0].grad()(0) == 3.0);
    CHECK(ps[0].grad()(1) == -4.0);
    CHECK(ps[1].grad()(0) == 12.0);
}

TEST_CASE("clip_grad_norm_: other norms") {
    {
        const std::vector<TensorD> ps = params_with_grads();
        CHECK(optim::clip_grad_norm_(ps, 1e9, 1.0) == doctest::Approx(19.0).epsilon(1e-15));
        CHECK(optim::clip_grad_norm_(ps, 1e9, std::numeric_limits<double>::infinity()) == 12.0);
        CHECK(optim::clip_grad_norm_(ps, 1e9, 3.0) == doctest::Approx(std::cbrt(1819.0)).epsilon(1e-14));
    }
    {
        const std::vector<TensorD> ps = params_with_grads();
        // infinity norm 12 clipped to 6: coef = 6 / (12 + 1e-6)
        CHECK(optim::clip_grad_norm_(ps, 6.0, std::numeric_limits<double>::infinity()) == 12.0);
        CHECK(ps[1].grad()(0) == doctest::Approx(12 * 6 / (12 + 1e-6)).epsilon(1e-15));
    }
}

TEST_CASE("clip_grad_norm_: parameters without a gradient are skipped; float gradients work") {
    TensorF a = TensorF::from({2}, {1.0f, 2.0f});
    TensorF b = TensorF::from({2}, {1.0f, 2.0f});
    a.requires_grad_();
    b.requires_grad_();
    tapegrad::sum(a * TensorF::from({2}, {6.0f, 8.0f})).backward();
    const std::vector<TensorF> ps{a, b};
    CHECK(optim::clip_grad_norm_(ps, 5.0) == doctest::Approx(10.0));
    CHECK_FALSE(b.grad().defined());
    CHECK(a.grad()(0) == doctest::Approx(3.0).epsilon(1e-6));
    CHECK(a.grad()(1) == doctest::Approx(4.0).epsilon(1e-6));
    CHECK(optim::clip_grad_norm_(std::vector<TensorF>{b}, 1.0) == 0.0);
}

TEST_CASE("clip_grad_norm_: non-finite norms and invalid arguments") {
    const std::vector<TensorD> ps = params_with_grads();
    ps[1].grad()(0) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(optim::clip_grad_norm_(ps, 1.0, 2.0, true),
                         "clip_grad_norm_: the total norm 2 of the gradients is inf, so they cannot be clipped (pass "
                         "error_if_nonfinite = false to scale anyway)",
                         ValueError);
    CHECK(ps[0].grad()(0) == 3.0);  // nothing scaled
    CHECK(std::isinf(optim::clip_grad_norm_(ps, 1.0)));
    CHECK(ps[0].grad()(0) == 0.0);  // like PyTorch: coef = 1 / inf = 0
    CHECK_THROWS_WITH_AS(optim::clip_grad_norm_(ps, -1.0), "clip_grad_norm_: invalid max_norm -1 (must be >= 0)",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::clip_grad_norm_(ps, 1.0, 0.0),
                         "clip_grad_norm_: invalid norm_type 0 (must be > 0, or infinity)", ValueError);
    CHECK_THROWS_AS(optim::clip_grad_norm_(ps, std::nan("")), ValueError);
}

TEST_CASE("clip_grad_value_: clamps each gradient element") {
    const std::vector<TensorD> ps = params_with_grads();
    optim::clip_grad_value_(ps, 3.5);
    CHECK(ps[0].grad()(0) == 3.0);
    CHECK(ps[0].grad()(1) == -3.5);
    CHECK(ps[1].grad()(0) == 3.5);
    optim::clip_grad_value_(ps, 0.0);
    CHECK(ps[0].grad()(0) == 0.0);
    CHECK_THROWS_WITH_AS(optim::clip_grad_value_(ps, -1.0), "clip_grad_value_: invalid clip_value -1 (must be >= 0)",
                         ValueError);
}
