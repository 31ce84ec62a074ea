// Tests for tapegrad/nn/init.hpp: each scheme's empirical mean, standard deviation and bounds over a large
// tensor against its formula, fan-in/fan-out for dense and convolution weights, the rank check, and
// determinism under a seed.
//
// Tolerances: with n = 240,000 draws the standard error of the sample mean is s / sqrt(n) ~ 0.002 s and
// that of the sample standard deviation ~ s / sqrt(2n) ~ 0.0014 s, so 1% (std) and 0.01 s (mean) are
// 7 standard errors: a wrong formula fails, a correct one never does (and the seed is fixed anyway).

#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/linear.hpp>

#include "../../support/tensor_checks.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::TensorD;
using tapegrad::TensorF;
namespace init = tapegrad::nn::init;

// A dense weight [out, in] = [400, 600]: fan_in 600, fan_out 400.
constexpr double kFanIn = 600, kFanOut = 400;

struct Stats {
    double mean = 0, stddev = 0, min = 0, max = 0;
    double within_one_sd = 0;  ///< fraction of draws within one standard deviation of the mean
};

template <class T>
Stats stats_of(const tapegrad::Tensor<T>& t) {
    Stats s;
    const auto n = static_cast<double>(t.numel());
    double sum = 0, sq = 0;
    s.min = s.max = static_cast<double>(t.data()[0]);
    for (T v : t.span()) {
        sum += v;
        s.min = std::min(s.min, static_cast<double>(v));
        s.max = std::max(s.max, static_cast<double>(v));
    }
    s.mean = sum / n;
    for (T v : t.span()) sq += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(sq / n);
    double inside = 0;
    for (T v : t.span()) inside += std::abs(v - s.mean) <= s.stddev ? 1 : 0;
    s.within_one_sd = inside / n;
    return s;
}

/// Checks a uniform U(-b, b): every draw inside, the extremes near the bounds, std b / sqrt(3). The bounds
/// allow for b's rounding to float (-0.1 becomes -0.10000000149), since the lower bound itself can be drawn.
void check_uniform(const Stats& s, double b) {
    CHECK(s.min >= -b * (1 + 1e-7));
    CHECK(s.max <= b * (1 + 1e-7));
    CHECK(s.min < -0.999 * b);
    CHECK(s.max > 0.999 * b);
    CHECK(std::abs(s.mean) < 0.01 * b);
    CHECK(s.stddev == doctest::Approx(b / std::sqrt(3.0)).epsilon(0.01));
    CHECK(s.within_one_sd == doctest::Approx(1.0 / std::sqrt(3.0)).epsilon(0.01));  // 57.7% for a uniform
}

/// Checks a normal N(0, sd^2): mean, std, and the 68.3% within one standard deviation.
void check_normal(const Stats& s, double sd) {
    CHECK(std::abs(s.mean) < 0.01 * sd);
    CHECK(s.stddev == doctest::Approx(sd).epsilon(0.01));
    CHECK(s.within_one_sd == doctest::Approx(0.6827).epsilon(0.01));
    CHECK(s.max > 4 * sd);  // 240k draws: P(no draw beyond 4 sd) ~ e^-7.6
}

TensorF big_tensor() { return TensorF::empty({400, 600}); }

using tapegrad::testing::same_bits;

}  // namespace

TEST_CASE("init: fans of a dense weight [out, in] and a convolution weight [out, in, kh, kw]") {
    CHECK(init::fans(Shape{400, 600}) == std::pair<double, double>{600, 400});
    CHECK(init::fans(Shape{10, 784}) == std::pair<double, double>{784, 10});
    // [16, 3, 5, 5]: each output unit sees 3*5*5 = 75 inputs; each input feeds 16*5*5 = 400 outputs.
    CHECK(init::fans(Shape{16, 3, 5, 5}) == std::pair<double, double>{75, 400});
    CHECK(init::fans(Shape{8, 4, 3}) == std::pair<double, double>{12, 24});
}

TEST_CASE("init: a weight of rank < 2 has no fans: ShapeError naming the shape") {
    TensorF v = TensorF::empty({5});
    TensorF s = TensorF::scalar(1.0f);
    Generator g(1);
    CHECK_THROWS_WITH_AS(static_cast<void>(init::fans(v.shape())),
                         "init: fan-in and fan-out need a weight of rank >= 2, got shape [5]", tapegrad::ShapeError);
    CHECK_THROWS_AS(init::xavier_uniform_(v, g), tapegrad::ShapeError);
    CHECK_THROWS_AS(init::xavier_normal_(v, g), tapegrad::ShapeError);
    CHECK_THROWS_AS(init::kaiming_uniform_(v, g), tapegrad::ShapeError);
    CHECK_THROWS_AS(init::kaiming_normal_(v, g), tapegrad::ShapeError);
    CHECK_THROWS_AS(init::lecun_uniform_(v, g), tapegrad::ShapeError);
    CHECK_THROWS_AS(init::lecun_normal_(v, g), tapegrad::ShapeError);
    CHECK_THROWS_AS(init::xavier_uniform_(s, g), tapegrad::ShapeError);
    // The schemes that need no fans work on any rank.
    CHECK_NOTHROW(init::zeros_(v));
    CHECK_NOTHROW(init::uniform_(s, -1, 1, g));
}

TEST_CASE("init: xavier_uniform_ is U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))") {
    Generator g(2);
    TensorF w = big_tensor();
    init::xavier_uniform_(w, g);
    check_uniform(stats_of(w), std::sqrt(6.0 / (kFanIn + kFanOut)));
    init::xavier_uniform_(w, g, 5.0 / 3.0);  // tanh's gain
    check_uniform(stats_of(w), 5.0 / 3.0 * std::sqrt(6.0 / (kFanIn + kFanOut)));
}

TEST_CASE("init: xavier_normal_ is N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))") {
    Generator g(3);
    TensorF w = big_tensor();
    init::xavier_normal_(w, g);
    check_normal(stats_of(w), std::sqrt(2.0 / (kFanIn + kFanOut)));
    init::xavier_normal_(w, g, 2.0);
    check_normal(stats_of(w), 2.0 * std::sqrt(2.0 / (kFanIn + kFanOut)));
}

TEST_CASE("init: kaiming_uniform_ is U(-b, b), b = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in)") {
    Generator g(4);
    TensorF w = big_tensor();
    init::kaiming_uniform_(w, g);
    check_uniform(stats_of(w), std::sqrt(6.0 / kFanIn));  // ReLU: std sqrt(2 / fan_in)
    CHECK(stats_of(w).stddev == doctest::Approx(std::sqrt(2.0 / kFanIn)).epsilon(0.01));
    init::kaiming_uniform_(w, g, std::sqrt(5.0));  // PyTorch's default for Linear: b = 1 / sqrt(fan_in)
    check_uniform(stats_of(w), 1.0 / std::sqrt(kFanIn));
}

TEST_CASE("init: kaiming_normal_ is N(0, s^2), s = sqrt(2 / (1 + a^2)) / sqrt(fan_in)") {
    Generator g(5);
    TensorF w = big_tensor();
    init::kaiming_normal_(w, g);
    check_normal(stats_of(w), std::sqrt(2.0 / kFanIn));
    init::kaiming_normal_(w, g, 0.2);
    check_normal(stats_of(w), std::sqrt(2.0 / 1.04) / std::sqrt(kFanIn));
}

TEST_CASE("init: lecun_uniform_ is U(-b, b), b = sqrt(3 / fan_in); lecun_normal_ is N(0, 1 / fan_in)") {
    Generator g(6);
    TensorF w = big_tensor();
    init::lecun_uniform_(w, g);
    check_uniform(stats_of(w), std::sqrt(3.0 / kFanIn));
    CHECK(stats_of(w).stddev == doctest::Approx(1.0 / std::sqrt(kFanIn)).epsilon(0.01));
    init::lecun_normal_(w, g);
    check_normal(stats_of(w), 1.0 / std::sqrt(kFanIn));
}

TEST_CASE("init: a convolution weight uses fans with the receptive field") {
    Generator g(7);
    TensorF w = TensorF::empty({64, 32, 5, 5});  // fan_in 800, fan_out 1600; 51,200 draws
    init::xavier_uniform_(w, g);
    const Stats s = stats_of(w);
    const double b = std::sqrt(6.0 / (800 + 1600));
    CHECK(s.max <= b * (1 + 1e-7));
    CHECK(s.min >= -b * (1 + 1e-7));
    CHECK(s.max > 0.99 * b);
    CHECK(s.stddev == doctest::Approx(b / std::sqrt(3.0)).epsilon(0.02));
    init::kaiming_normal_(w, g);
    CHECK(stats_of(w).stddev == doctest::Approx(std::sqrt(2.0 / 800)).epsilon(0.02));
}

TEST_CASE("init: zeros_, constant_, uniform_ and normal_") {
    Generator g(8);
    TensorF w = TensorF::full({30, 40}, 7.0f);
    init::zeros_(w);
    for (float v : w.span()) CHECK(v == 0.0f);
    init::constant_(w, -0.25);
    for (float v : w.span()) CHECK(v == -0.25f);
    TensorF u = big_tensor();
    init::uniform_(u, 2.0, 3.0, g);
    const Stats su = stats_of(u);
    CHECK(su.min >= 2.0);
    CHECK(su.max <= 3.0);
    CHECK(su.mean == doctest::Approx(2.5).epsilon(0.001));
    init::normal_(u, 1.0, 0.5, g);
    const Stats sn = stats_of(u);
    CHECK(sn.mean == doctest::Approx(1.0).epsilon(0.005));
    CHECK(sn.stddev == doctest::Approx(0.5).epsilon(0.01));
}

TEST_CASE("init: double tensors follow the same formulas") {
    Generator g(9);
    TensorD w = TensorD::empty({400, 600});
    init::kaiming_uniform_(w, g);
    check_uniform(stats_of(w), std::sqrt(6.0 / kFanIn));
    init::xavier_normal_(w, g);
    check_normal(stats_of(w), std::sqrt(2.0 / (kFanIn + kFanOut)));
}

TEST_CASE("init: the same seed gives bitwise the same weights for every scheme") {
    using Scheme = std::function<void(TensorF&, Generator&)>;
    const std::vector<std::pair<const char*, Scheme>> schemes = {
        {"xavier_uniform_", [](TensorF& w, Generator& g) { init::xavier_uniform_(w, g); }},
        {"xavier_normal_", [](TensorF& w, Generator& g) { init::xavier_normal_(w, g); }},
        {"kaiming_uniform_", [](TensorF& w, Generator& g) { init::kaiming_uniform_(w, g); }},
        {"kaiming_normal_", [](TensorF& w, Generator& g) { init::kaiming_normal_(w, g); }},
        {"lecun_uniform_", [](TensorF& w, Generator& g) { init::lecun_uniform_(w, g); }},
        {"lecun_normal_", [](TensorF& w, Generator& g) { init::lecun_normal_(w, g); }},
        {"uniform_", [](TensorF& w, Generator& g) { init::uniform_(w, -1, 1, g); }},
        {"normal_", [](TensorF& w, Generator& g) { init::normal_(w, 0, 1, g); }},
    };
    for (const auto& [scheme_name, scheme] : schemes) {
        const std::string name = scheme_name;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
        CAPTURE(name);
        TensorF a = TensorF::empty({20, 30}), b = TensorF::empty({20, 30}), c = TensorF::empty({20, 30});
        Generator ga(1234), gb(1234), gc(1235);
        scheme(a, ga);
        scheme(b, gb);
        scheme(c, gc);
        CHECK(same_bits(a, b));
        CHECK_FALSE(same_bits(a, c));
        // The generator advances: a second draw from the same generator differs.
        scheme(b, gb);
        CHECK_FALSE(same_bits(a, b));
    }
}

TEST_CASE("init: re-initialises a parameter in place, unrecorded, while grad mode is on") {
    Generator g(10);
    tapegrad::nn::Linear<float> fc(50, 40, g);
    const float* data = fc.weight().data();
    init::xavier_uniform_(fc.weight(), g);
    init::zeros_(fc.bias());
    CHECK(fc.weight().data() == data);  // same storage: the layer and any optimizer see the new values
    CHECK(fc.weight().is_leaf());
    CHECK(fc.weight().requires_grad());
    CHECK(stats_of(fc.weight()).max <= std::sqrt(6.0 / 90) * (1 + 1e-7));
    CHECK(stats_of(fc.weight()).max > 1.0 / std::sqrt(50.0));  // beyond the default init's bound
    for (float v : fc.bias().span()) CHECK(v == 0.0f);
}
