// Tests for tapegrad/optim/lr_scheduler.hpp: each scheduler's learning-rate sequence against closed-form
// values, and ReduceLROnPlateau against a transcription of PyTorch's step() logic.
//
// The literals come from Python:
//     [0.1 * 0.5 ** (e // 3) for e in range(11)]                                       # StepLR(3, 0.5)
//     [0.1 * 0.9 ** e for e in range(11)]                                               # ExponentialLR(0.9)
//     [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(13)]   # Cosine(10, 0.01)
// and, for ReduceLROnPlateau, from torch's algorithm (is_better, cooldown, _reduce_lr) in plain Python.

#include <tapegrad/optim/lr_scheduler.hpp>
#include <tapegrad/optim/sgd.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

using tapegrad::TensorD;
using tapegrad::ValueError;
namespace optim = tapegrad::optim;

TensorD some_param() {
    TensorD p = TensorD::zeros({2});
    p.requires_grad_();
    return p;
}

/// Checks the optimizer's rate after construction (want[0]) and after each of want.size() - 1 steps.
void check_sequence(optim::LRScheduler& sched, const optim::OptimizerBase& opt, const std::vector<double>& want) {
    CHECK(opt.lr() == doctest::Approx(want[0]).epsilon(1e-14));
    CHECK(sched.last_lr() == doctest::Approx(want[0]).epsilon(1e-14));
    for (size_t e = 1; e < want.size(); ++e) {
        sched.step();
        INFO("epoch ", e);
        CHECK(sched.last_epoch() == static_cast<int64_t>(e));
        CHECK(opt.lr() == doctest::Approx(want[e]).epsilon(1e-14));
        CHECK(sched.last_lr() == opt.lr());
    }
}

}  // namespace

TEST_CASE("StepLR: multiplies by gamma every step_size epochs") {
    optim::SGD<double> opt({some_param()}, {.lr = 0.1});
    optim::StepLR sched(opt, 3, 0.5);
    check_sequence(sched, opt, {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125});
    CHECK(sched.base_lr() == 0.1);
    CHECK(sched.lr_at(30) == doctest::Approx(0.1 * std::pow(0.5, 10)));
}

TEST_CASE("ExponentialLR: multiplies by gamma every epoch") {
    optim::SGD<double> opt({some_param()}, {.lr = 0.1});
    optim::ExponentialLR sched(opt, 0.9);
    check_sequence(sched, opt,
                   {0.1, 0.09000000000000001, 0.08100000000000002, 0.0729, 0.06561, 0.05904900000000001,
                    0.05314410000000001, 0.04782969000000001, 0.04304672100000001, 0.03874204890000001,
                    0.03486784401000001});
}

TEST_CASE("CosineAnnealingLR: half a cosine down to eta_min, then back up") {
    optim::SGD<double> opt({some_param()}, {.lr = 0.1});
    optim::CosineAnnealingLR sched(opt, 10, 0.01);
    check_sequence(sched, opt,
                   {0.1, 0.09779754323328192, 0.09140576474687263, 0.08145033635316129, 0.06890576474687264,
                    0.05500000000000001, 0.04109423525312737, 0.028549663646838717, 0.01859423525312737,
                    0.012202456766718092, 0.01, 0.012202456766718082, 0.01859423525312736});
}

TEST_CASE("CosineAnnealingLR: eta_min 0 reaches exactly zero at T_max") {
    optim::SGD<double> opt({some_param()}, {.lr = 0.5});
    optim::CosineAnnealingLR sched(opt, 4);
    for (int e = 0; e < 4; ++e) sched.step();
    CHECK(opt.lr() == 0.0);
}

TEST_CASE("schedulers drive whatever optimizer they are given, through OptimizerBase") {
    TensorD p = some_param();
    optim::SGD<double> opt({p}, {.lr = 1.0});
    optim::StepLR sched(opt, 1, 0.5);
    sched.step();
    CHECK(opt.lr() == 0.5);
    // an update after the schedule change uses the new rate: p -= 0.5 * 1
    tapegrad::sum(p).backward();
    opt.step();
    CHECK(p(0) == -0.5);
}

TEST_CASE("ReduceLROnPlateau: patience, threshold, cooldown and min_lr in Min mode") {
    // factor 0.5, patience 2, cooldown 1, min_lr 0.1, rel threshold 1e-4:
    //   1.0 best; 0.9 best; 0.95, 0.9 (not < 0.9 * 0.9999), 0.91: 3 bad > 2 -> lr 0.5, cooldown 1;
    //   0.89999 is not below 0.89991: bad, but the cooldown epoch resets the count; 0.8 best;
    //   0.85 x3 -> 0.25; cooldown; 0.85 x3 -> 0.125; cooldown; 0.85 x3 -> max(0.0625, 0.1) = 0.1; then
    //   0.1 stays (0.1 - max(0.05, 0.1) = 0 is not above eps).
    optim::SGD<double> opt({some_param()}, {.lr = 1.0});
    optim::ReduceLROnPlateau sched(opt, {.factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = 0.1});
    std::vector<double> metrics{1.0, 0.9, 0.95, 0.9, 0.91, 0.89999, 0.8};
    metrics.resize(22, 0.85);
    const std::vector<double> want{1.0,  1.0,  1.0,  1.0,   0.5,   0.5,   0.5,   0.5, 0.5, 0.25, 0.25,
                                   0.25, 0.25, 0.125, 0.125, 0.125, 0.125, 0.1, 0.1, 0.1, 0.1,  0.1};
    CHECK(sched.last_lr() == 1.0);
    CHECK(sched.best() == std::numeric_limits<double>::infinity());
    for (size_t e = 0; e < metrics.size(); ++e) {
        sched.step(metrics[e]);
        INFO("epoch ", e, ", metric ", metrics[e]);
        CHECK(opt.lr() == want[e]);
        CHECK(sched.last_lr() == want[e]);
        if (e == 4) CHECK(sched.in_cooldown());
        if (e == 5) CHECK_FALSE(sched.in_cooldown());
    }
    CHECK(sched.best() == 0.8);
    CHECK(sched.last_epoch() == 22);
}

TEST_CASE("ReduceLROnPlateau: Max mode with an absolute threshold") {
    // patience 1, abs threshold 0.05: 0.5 best; 0.6 > 0.55 best; 0.62, 0.64 not > 0.65 -> lr 0.1;
    // 0.7 best; 0.7, 0.71 not > 0.75 -> 0.01; 0.76 best
    optim::SGD<double> opt({some_param()}, {.lr = 1.0});
    optim::ReduceLROnPlateau sched(opt, {.mode = optim::PlateauMode::Max,
                                         .patience = 1,
                                         .threshold = 0.05,
                                         .threshold_mode = optim::ThresholdMode::Abs});
    const std::vector<double> metrics{0.5, 0.6, 0.62, 0.64, 0.7, 0.7, 0.71, 0.76};
    const std::vector<double> want{1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002};
    for (size_t e = 0; e < metrics.size(); ++e) {
        sched.step(metrics[e]);
        INFO("epoch ", e);
        CHECK(opt.lr() == doctest::Approx(want[e]).epsilon(1e-15));
    }
    CHECK(sched.best() == 0.76);
}

TEST_CASE("ReduceLROnPlateau: a NaN metric counts as a bad epoch") {
    optim::SGD<double> opt({some_param()}, {.lr = 1.0});
    optim::ReduceLROnPlateau sched(opt, {.patience = 0});
    sched.step(1.0);
    sched.step(std::nan(""));
    CHECK(opt.lr() == doctest::Approx(0.1));
    CHECK(sched.best() == 1.0);
}

TEST_CASE("schedulers: invalid arguments throw ValueError") {
    optim::SGD<double> opt({some_param()}, {.lr = 0.1});
    CHECK_THROWS_WITH_AS(optim::StepLR(opt, 0), "StepLR: invalid step_size 0 (must be >= 1)", ValueError);
    CHECK_THROWS_WITH_AS(optim::StepLR(opt, 5, -0.1), "StepLR: invalid gamma -0.1 (must be > 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::ExponentialLR(opt, 0), "ExponentialLR: invalid gamma 0 (must be > 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(opt, 0), "CosineAnnealingLR: invalid T_max 0 (must be >= 1)",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(opt, 10, -1), "CosineAnnealingLR: invalid eta_min -1 (must be >= 0)",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(opt, {.factor = 1.0}),
                         "ReduceLROnPlateau: invalid factor 1 (must be in [0, 1))", ValueError);
    CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(opt, {.patience = -1}),
                         "ReduceLROnPlateau: invalid patience -1 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(opt, {.threshold = -1e-4}),
                         "ReduceLROnPlateau: invalid threshold -0.0001 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(opt, {.cooldown = -2}),
                         "ReduceLROnPlateau: invalid cooldown -2 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(opt, {.min_lr = -1}),
                         "ReduceLROnPlateau: invalid min_lr -1 (must be >= 0)", ValueError);
    CHECK(opt.lr() == 0.1);  // a rejected scheduler leaves the optimizer alone
}
