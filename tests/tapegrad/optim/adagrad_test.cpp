// Tests for tapegrad/optim/adagrad.hpp: three steps of Adagrad against hand-computed references.
//
// Every reference starts from p = [1, -2, 0.5] and feeds the gradients
//     g1 = [0.5, -1, 2],  g2 = [-0.3, 0.8, 1.5],  g3 = [0, 0.2, -0.4].
// The expected values come from this Python snippet, torch.optim.Adagrad's rule in plain floats:
//
//     def adagrad(lr, lr_decay=0.0, wd=0.0, init=0.0, eps=1e-10):
//         p = [1.0, -2.0, 0.5]; s = [init]*3; out = []
//         for t, g in enumerate(G, 1):
//             g = [gi + wd * pi for gi, pi in zip(g, p)]
//             clr = lr / (1 + (t - 1) * lr_decay)
//             s = [si + gi * gi for si, gi in zip(s, g)]
//             p = [pi - clr * gi / (math.sqrt(si) + eps) for pi, gi, si in zip(p, g, s)]
//             out.append(p)
//         return out

#include <tapegrad/optim/adagrad.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include "reference_steps.hpp"

#include <string>
#include <vector>

namespace {

using tapegrad::TensorD;
using tapegrad::ValueError;
namespace optim = tapegrad::optim;

using namespace optim_test;

}  // namespace

TEST_CASE("Adagrad: divides by the root of the sum of all squared gradients") {
    // adagrad(0.1): step 1, s = g^2, p -= 0.1 * g / (|g| + 1e-10); step 2 element 0:
    // 0.9 + 0.1 * 0.3 / sqrt(0.25 + 0.09)
    const double want[3][3] = {{0.90000000002, -1.90000000001, 0.400000000005},
                               {0.9514495755539292, -1.9624695047605643, 0.3400000000074},
                               {0.9514495755539292, -1.977899839755583, 0.3557990501174433}};
    TensorD p = start_param();
    optim::Adagrad<double> opt({p}, {.lr = 0.1});
    check_three_steps(opt, p, want);
}

TEST_CASE("Adagrad: lr_decay, weight decay and an initial accumulator value") {
    // adagrad(0.1, lr_decay=0.5, wd=0.1, init=0.1): the t-th step uses lr / (1 + 0.5 * (t - 1)), s starts at 0.1
    const double want[3][3] = {{0.9115348263201052, -1.9033012443247466, 0.4011689472423762},
                               {0.9311542318743977, -1.9326976280386794, 0.3614265228234876},
                               {0.9246494189679031, -1.9329410084719154, 0.36839965653263756}};
    TensorD p = start_param();
    optim::Adagrad<double> opt({p},
                               {.lr = 0.1, .lr_decay = 0.5, .weight_decay = 0.1, .initial_accumulator_value = 0.1});
    check_three_steps(opt, p, want);
}

TEST_CASE("Adagrad: state holds the sum of squares and the step count") {
    TensorD p = start_param();
    optim::Adagrad<double> opt({p}, {.lr = 0.1, .initial_accumulator_value = 0.5});
    CHECK(opt.state_keys() == std::vector<std::string>{"sum", "step"});
    CHECK(opt.state().empty());
    set_grad(p, kGrads[0]);
    opt.step();
    const auto st = opt.state();
    REQUIRE(st.size() == 2);
    CHECK(st[0].first == "0.sum");
    // s = 0.5 + g1^2
    CHECK(st[0].second(0) == doctest::Approx(0.75));
    CHECK(st[0].second(1) == doctest::Approx(1.5));
    CHECK(st[0].second(2) == doctest::Approx(4.5));
    CHECK(st[1].first == "0.step");
    CHECK(st[1].second.item() == 1);
}

TEST_CASE("Adagrad: invalid hyper-parameters throw ValueError naming the option and value") {
    TensorD p = start_param();
    CHECK_THROWS_WITH_AS(optim::Adagrad<double>({p}, {.lr = -1}), "Adagrad: invalid learning rate -1 (must be >= 0)",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::Adagrad<double>({p}, {.lr_decay = -0.5}),
                         "Adagrad: invalid lr_decay -0.5 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::Adagrad<double>({p}, {.weight_decay = -0.1}),
                         "Adagrad: invalid weight_decay -0.1 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::Adagrad<double>({p}, {.initial_accumulator_value = -2}),
                         "Adagrad: invalid initial_accumulator_value -2 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::Adagrad<double>({p}, {.eps = 0}), "Adagrad: invalid eps 0 (must be > 0)", ValueError);
}
