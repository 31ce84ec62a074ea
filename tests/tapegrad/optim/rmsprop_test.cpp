// Tests for tapegrad/optim/rmsprop.hpp: three steps of RMSprop variants against hand-computed references.
//
// Every reference starts from p = [1, -2, 0.5] and feeds the gradients
//     g1 = [0.5, -1, 2],  g2 = [-0.3, 0.8, 1.5],  g3 = [0, 0.2, -0.4].
// The expected values come from this Python snippet, torch.optim.RMSprop's rule in plain floats:
//
//     def rmsprop(lr, alpha=0.99, eps=1e-8, wd=0.0, mu=0.0, centered=False):
//         p = [1.0, -2.0, 0.5]; v = [0.0]*3; a = [0.0]*3; b = [0.0]*3; out = []
//         for g in G:
//             g = [gi + wd * pi for gi, pi in zip(g, p)]
//             v = [alpha * vi + (1 - alpha) * gi * gi for vi, gi in zip(v, g)]
//             if centered:
//                 a = [alpha * ai + (1 - alpha) * gi for ai, gi in zip(a, g)]
//                 d = [math.sqrt(vi - ai * ai) + eps for vi, ai in zip(v, a)]
//             else:
//                 d = [math.sqrt(vi) + eps for vi in v]
//             if mu > 0:
//                 b = [mu * bi + gi / di for bi, gi, di in zip(b, g, d)]
//                 p = [pi - lr * bi for pi, bi in zip(p, b)]
//             else:
//                 p = [pi - lr * gi / di for pi, gi, di in zip(p, g, d)]
//             out.append(p)
//         return out

#include <tapegrad/optim/rmsprop.hpp>
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

TEST_CASE("RMSprop: divides by the root of a moving average of g^2") {
    // rmsprop(0.01): step 1, v = 0.01 * g^2, so p -= 0.01 * g / (0.1 * |g| + 1e-8) = p - 0.1 * sign(g)
    // (a large first step: no bias correction); element 0 stays put at step 3 since g3[0] = 0
    const double want[3][3] = {{0.900000019999996, -1.900000009999999, 0.40000000499999977},
                               {0.9516397890605408, -1.9626608410910604, 0.33980708087257405},
                               {0.9516397890605408, -1.9782133908209927, 0.3557334792253207}};
    TensorD p = start_param();
    optim::RMSprop<double> opt({p}, {.lr = 0.01});
    check_three_steps(opt, p, want);
}

TEST_CASE("RMSprop: momentum accumulates the normalised steps") {
    // rmsprop(0.01, mu=0.9)
    const double want[3][3] = {{0.900000019999996, -1.900000009999999, 0.40000000499999977},
                               {0.8616398070605373, -1.8726608500910595, 0.24980708537257384},
                               {0.8271156154150245, -1.8636081559029463, 0.1305598560606372}};
    TensorD p = start_param();
    optim::RMSprop<double> opt({p}, {.lr = 0.01, .momentum = 0.9});
    check_three_steps(opt, p, want);
}

TEST_CASE("RMSprop: centered divides by sqrt(v - a^2)") {
    // rmsprop(0.01, centered=True): step 1, v - a^2 = 0.01 g^2 - 0.0001 g^2 = 0.0099 g^2
    const double want[3][3] = {{0.899496238676095, -1.8994962285750878, 0.39949622352458364},
                               {0.9511651227393555, -1.9621639996404798, 0.3387076484522449},
                               {0.9511651227393555, -1.9777165560294125, 0.35475242055194517}};
    TensorD p = start_param();
    optim::RMSprop<double> opt({p}, {.lr = 0.01, .centered = true});
    check_three_steps(opt, p, want);
}

TEST_CASE("RMSprop: centered with momentum, weight decay and another alpha") {
    // rmsprop(0.01, alpha=0.9, centered=True, mu=0.9, wd=0.1)
    const double want[3][3] = {{0.9666666685185185, -1.9666666675925926, 0.46666666720867206},
                               {0.9474735617005421, -1.9515772473101525, 0.41484599563313257},
                               {0.9249194296232593, -1.938122806630215, 0.3732980893828156}};
    TensorD p = start_param();
    optim::RMSprop<double> opt({p}, {.lr = 0.01, .alpha = 0.9, .weight_decay = 0.1, .momentum = 0.9, .centered = true});
    check_three_steps(opt, p, want);
    CHECK(opt.state_keys() == std::vector<std::string>{"square_avg", "momentum_buffer", "grad_avg", "step"});
    const auto st = opt.state();
    REQUIRE(st.size() == 4);
    CHECK(st[3].second.item() == 3);
}

TEST_CASE("RMSprop: the state names follow the options") {
    TensorD p = start_param();
    CHECK(optim::RMSprop<double>({p}).state_keys() == std::vector<std::string>{"square_avg", "step"});
    CHECK(optim::RMSprop<double>({p}, {.centered = true}).state_keys() ==
          std::vector<std::string>{"square_avg", "grad_avg", "step"});
    CHECK(optim::RMSprop<double>({p}, {.momentum = 0.5}).state_keys() ==
          std::vector<std::string>{"square_avg", "momentum_buffer", "step"});
}

TEST_CASE("RMSprop: invalid hyper-parameters throw ValueError naming the option and value") {
    TensorD p = start_param();
    CHECK_THROWS_WITH_AS(optim::RMSprop<double>({p}, {.lr = -0.01}),
                         "RMSprop: invalid learning rate -0.01 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::RMSprop<double>({p}, {.alpha = 1.5}), "RMSprop: invalid alpha 1.5 (must be in [0, 1])",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::RMSprop<double>({p}, {.eps = 0}), "RMSprop: invalid eps 0 (must be > 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::RMSprop<double>({p}, {.weight_decay = -1}),
                         "RMSprop: invalid weight_decay -1 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::RMSprop<double>({p}, {.momentum = -0.9}),
                         "RMSprop: invalid momentum -0.9 (must be >= 0)", ValueError);
}
