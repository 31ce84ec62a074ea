// Tests for tapegrad/optim/sgd.hpp: three steps of each SGD variant against hand-computed references.
//
// Every reference starts from p = [1, -2, 0.5] and feeds the gradients
//     g1 = [0.5, -1, 2],  g2 = [-0.3, 0.8, 1.5],  g3 = [0, 0.2, -0.4]
// (set through the real path: zero the grad buffer, then backward of sum(p * g)). The expected values come
// from this Python snippet, torch.optim.SGD's rule in plain floats:
//
//     def sgd(lr, mu=0.0, damp=0.0, wd=0.0, nesterov=False):
//         p = [1.0, -2.0, 0.5]; b = None; out = []
//         for g in G:
//             g = [gi + wd * pi for gi, pi in zip(g, p)]
//             if mu != 0:
//                 b = g[:] if b is None else [mu * bi + (1 - damp) * gi for bi, gi in zip(b, g)]
//                 g = [gi + mu * bi for gi, bi in zip(g, b)] if nesterov else b
//             p = [pi - lr * gi for pi, gi in zip(p, g)]
//             out.append(p)
//         return out

#include <tapegrad/optim/sgd.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include "reference_steps.hpp"

#include <limits>
#include <string>
#include <vector>

namespace {

using tapegrad::TensorD;
using tapegrad::ValueError;
namespace optim = tapegrad::optim;

using namespace optim_test;

}  // namespace

TEST_CASE("SGD: plain gradient descent, p -= lr * g") {
    // sgd(0.1): step 1 = [1 - 0.05, -2 + 0.1, 0.5 - 0.2]
    const double want[3][3] = {{0.95, -1.9, 0.3}, {0.98, -1.98, 0.15}, {0.98, -2.0, 0.19}};
    TensorD p = start_param();
    optim::SGD<double> opt({p}, {.lr = 0.1});
    check_three_steps(opt, p, want);
    CHECK(opt.state().empty());  // no momentum: no state
}

TEST_CASE("SGD: momentum keeps a velocity b = mu * b + g") {
    // sgd(0.1, mu=0.9): b1 = g1, b2 = 0.9 * g1 + g2, ...; element 2 step 2: 0.3 - 0.1 * (1.8 + 1.5) = -0.03
    const double want[3][3] = {{0.95, -1.9, 0.3},
                               {0.9349999999999999, -1.89, -0.030000000000000027},
                               {0.9215, -1.9009999999999998, -0.28700000000000003}};
    TensorD p = start_param();
    optim::SGD<double> opt({p}, {.lr = 0.1, .momentum = 0.9});
    check_three_steps(opt, p, want);
}

TEST_CASE("SGD: momentum with dampening and weight decay") {
    // sgd(0.1, mu=0.9, damp=0.5, wd=0.1): g = g + 0.1 * p; b = 0.9 * b + 0.5 * g after the first step
    const double want[3][3] = {{0.94, -1.88, 0.29500000000000004},
                               {0.8963, -1.8026, 0.03402500000000003},
                               {0.8524885, -1.733927, -0.181022625}};
    TensorD p = start_param();
    optim::SGD<double> opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.1});
    check_three_steps(opt, p, want);
}

TEST_CASE("SGD: Nesterov momentum steps with g + mu * b") {
    // sgd(0.1, mu=0.9, wd=0.1, nesterov=True): step 1 element 0: g = 0.5 + 0.1, b = 0.6,
    // p = 1 - 0.1 * (0.6 + 0.9 * 0.6) = 0.886
    const double want[3][3] = {{0.886, -1.772, 0.11050000000000004},
                               {0.877566, -1.793132, -0.34264949999999994},
                               {0.8342756459999999, -1.760029292, -0.5319792095}};
    TensorD p = start_param();
    optim::SGD<double> opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true});
    check_three_steps(opt, p, want);
}

TEST_CASE("SGD: the momentum buffer appears on the first step and holds the velocity") {
    TensorD p = start_param();
    optim::SGD<double> opt({p}, {.lr = 0.1, .momentum = 0.9});
    CHECK(opt.state().empty());
    CHECK(opt.state_keys() == std::vector<std::string>{"momentum_buffer"});
    set_grad(p, kGrads[0]);
    opt.step();
    set_grad(p, kGrads[1]);
    opt.step();
    const auto st = opt.state();
    REQUIRE(st.size() == 1);
    CHECK(st[0].first == "0.momentum_buffer");
    // b2 = 0.9 * g1 + g2 = [0.15, -0.1, 3.3]
    CHECK(st[0].second(0) == doctest::Approx(0.15));
    CHECK(st[0].second(1) == doctest::Approx(-0.1));
    CHECK(st[0].second(2) == doctest::Approx(3.3));
}

TEST_CASE("SGD: invalid hyper-parameters throw ValueError naming the option and value") {
    TensorD p = start_param();
    CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, {.lr = -0.1}), "SGD: invalid learning rate -0.1 (must be >= 0)",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, {.lr = 0.1, .momentum = -0.5}),
                         "SGD: invalid momentum -0.5 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 1.5}),
                         "SGD: invalid dampening 1.5 (must be in [0, 1])", ValueError);
    CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, {.lr = 0.1, .weight_decay = -1}),
                         "SGD: invalid weight_decay -1 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, {.lr = 0.1, .nesterov = true}),
                         "SGD: nesterov momentum requires momentum > 0 and dampening = 0 (got momentum 0, dampening 0)",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::SGD<double>({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                         "SGD: nesterov momentum requires momentum > 0 and dampening = 0 (got momentum 0.9, "
                         "dampening 0.1)",
                         ValueError);
    CHECK_THROWS_AS(optim::SGD<double>({p}, {.lr = std::numeric_limits<double>::quiet_NaN()}), ValueError);
    optim::SGD<double> opt({p}, {.lr = 0.1});
    CHECK_THROWS_WITH_AS(opt.set_lr(-1), "SGD: invalid learning rate -1 (must be >= 0)", ValueError);
    CHECK(opt.lr() == 0.1);
}

TEST_CASE("SGD: options() reports the hyper-parameters with the current learning rate") {
    TensorD p = start_param();
    optim::SGD<double> opt({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    opt.set_lr(0.05);
    const optim::SGDOptions o = opt.options();
    CHECK(o.lr == 0.05);
    CHECK(o.momentum == 0.9);
    CHECK(o.nesterov);
}
