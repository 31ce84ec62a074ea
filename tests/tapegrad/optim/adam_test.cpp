// Tests for tapegrad/optim/adam.hpp: three steps of Adam and AdamW variants against hand-computed references.
//
// Every reference starts from p = [1, -2, 0.5] and feeds the gradients
//     g1 = [0.5, -1, 2],  g2 = [-0.3, 0.8, 1.5],  g3 = [0, 0.2, -0.4]
// (g3[0] = 0 makes v[0] shrink on step 3, so AMSGrad's running maximum differs from v there). The expected
// values come from this Python snippet, the textbook form of torch.optim.Adam / AdamW in plain floats:
//
//     def adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, amsgrad=False, decoupled=False):
//         p = [1.0, -2.0, 0.5]; m = [0.0]*3; v = [0.0]*3; vmax = [0.0]*3; out = []
//         for t, g in enumerate(G, 1):
//             if decoupled: p = [pi * (1 - lr * wd) for pi in p]
//             elif wd: g = [gi + wd * pi for gi, pi in zip(g, p)]
//             m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
//             v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
//             vmax = [max(a, b) for a, b in zip(vmax, v)]
//             vv = vmax if amsgrad else v
//             mhat = [mi / (1 - b1**t) for mi in m]
//             vhat = [vi / (1 - b2**t) for vi in vv]
//             p = [pi - lr * mh / (math.sqrt(vh) + eps) for pi, mh, vh in zip(p, mhat, vhat)]
//             out.append(p)
//         return out

#include <tapegrad/optim/adam.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include "reference_steps.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace {

using tapegrad::TensorD;
using tapegrad::ValueError;
namespace optim = tapegrad::optim;

using namespace optim_test;

}  // namespace

TEST_CASE("Adam: bias-corrected first steps have size lr") {
    // adam(0.1): at t = 1, m_hat = g and v_hat = g^2, so p -= 0.1 * g / (|g| + 1e-8):
    // 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002
    const double want[3][3] = {{0.900000002, -1.900000001, 0.4000000005},
                               {0.8808501989417752, -1.8941874963340561, 0.3017424929100241},
                               {0.8660473457564754, -1.89961316866124, 0.23684534167274318}};
    TensorD p = start_param();
    optim::Adam<double> opt({p}, {.lr = 0.1});
    check_three_steps(opt, p, want);
}

TEST_CASE("Adam: L2 weight decay is added to the gradient") {
    // adam(0.1, wd=0.1): g = g + 0.1 * p before the moments
    const double want[3][3] = {{0.9000000016666666, -1.9000000008333333, 0.4000000004878049},
                               {0.8613529972101512, -1.8740084498469742, 0.3017274630771566},
                               {0.823164322363498, -1.8545161923143367, 0.23566895038956664}};
    TensorD p = start_param();
    optim::Adam<double> opt({p}, {.lr = 0.1, .weight_decay = 0.1});
    check_three_steps(opt, p, want);
}

TEST_CASE("Adam: AMSGrad divides by the running maximum of v") {
    // adam(0.1, amsgrad=True): same as plain Adam except element 0 at step 3, where v shrank
    // (0.999 * v2 < v2 since g3[0] = 0) and vmax = v2 is used instead.
    const double want[3][3] = {{0.900000002, -1.900000001, 0.4000000005},
                               {0.8808501989417752, -1.8941874963340561, 0.3017424929100241},
                               {0.8660547490341305, -1.89961316866124, 0.23684534167274318}};
    TensorD p = start_param();
    optim::Adam<double> opt({p}, {.lr = 0.1, .amsgrad = true});
    check_three_steps(opt, p, want);
    const auto st = opt.state();
    REQUIRE(st.size() == 4);
    CHECK(st[2].first == "0.max_exp_avg_sq");
    // v2[0] = 0.999 * 0.001 * 0.25 + 0.001 * 0.09 = 0.00033975; v3[0] = 0.999 * v2[0]
    CHECK(st[2].second(0) == doctest::Approx(0.00033975).epsilon(1e-12));
    CHECK(st[1].second(0) == doctest::Approx(0.999 * 0.00033975).epsilon(1e-12));
}

TEST_CASE("Adam: other betas and eps") {
    // adam(0.1, b1=0.5, b2=0.9, eps=1e-3)
    const double want[3][3] = {{0.9001996007984032, -1.9000999000999002, 0.40004997501249373},
                               {0.9083660819876935, -1.9222902581962988, 0.30512069587210305},
                               {0.9127692920403484, -1.94982345193575, 0.2708155864751316}};
    TensorD p = start_param();
    optim::Adam<double> opt({p}, {.lr = 0.1, .beta1 = 0.5, .beta2 = 0.9, .eps = 1e-3});
    check_three_steps(opt, p, want);
}

TEST_CASE("AdamW: decoupled weight decay shrinks the weights, p *= 1 - lr * wd") {
    // adam(0.1, wd=0.1, decoupled=True): step 1 element 0: 1 * (1 - 0.01) - 0.1 * 0.5 / (0.5 + 1e-8)
    const double want[3][3] = {{0.890000002, -1.880000001, 0.3950000005},
                               {0.8619501989217752, -1.8553874963240562, 0.29279249290502407},
                               {0.8385278437472575, -1.8422592936879996, 0.22496741673869292}};
    TensorD p = start_param();
    optim::AdamW<double> opt({p}, {.lr = 0.1, .weight_decay = 0.1});
    check_three_steps(opt, p, want);
}

TEST_CASE("AdamW: with AMSGrad") {
    // adam(0.1, wd=0.1, decoupled=True, amsgrad=True)
    const double want[3][3] = {{0.890000002, -1.880000001, 0.3950000005},
                               {0.8619501989217752, -1.8553874963240562, 0.29279249290502407},
                               {0.8385352470249127, -1.8422592936879996, 0.22496741673869292}};
    TensorD p = start_param();
    optim::AdamW<double> opt({p}, {.lr = 0.1, .weight_decay = 0.1, .amsgrad = true});
    check_three_steps(opt, p, want);
}

TEST_CASE("AdamW: defaults follow PyTorch (weight_decay 1e-2)") {
    TensorD p = start_param();
    optim::AdamW<double> w({p});
    CHECK(w.options().weight_decay == 0.01);
    CHECK(w.lr() == 1e-3);
    CHECK(std::string(w.name()) == "AdamW");
    optim::Adam<double> a({p});
    CHECK(a.options().weight_decay == 0);
    CHECK(a.options().beta1 == 0.9);
    CHECK(a.options().beta2 == 0.999);
    CHECK(a.options().eps == 1e-8);
}

TEST_CASE("Adam: state holds exp_avg, exp_avg_sq and the step count") {
    TensorD p = start_param();
    optim::Adam<double> opt({p}, {.lr = 0.1});
    CHECK(opt.state_keys() == std::vector<std::string>{"exp_avg", "exp_avg_sq", "step"});
    set_grad(p, kGrads[0]);
    opt.step();
    set_grad(p, kGrads[1]);
    opt.step();
    const auto st = opt.state();
    REQUIRE(st.size() == 3);
    CHECK(st[0].first == "0.exp_avg");
    CHECK(st[1].first == "0.exp_avg_sq");
    CHECK(st[2].first == "0.step");
    CHECK(st[2].second.dim() == 0);
    CHECK(st[2].second.item() == 2);
    // m2[2] = 0.9 * 0.1 * 2 + 0.1 * 1.5 = 0.33
    CHECK(st[0].second(2) == doctest::Approx(0.33).epsilon(1e-12));
}

TEST_CASE("Adam and AdamW: invalid hyper-parameters throw ValueError naming the option and value") {
    TensorD p = start_param();
    CHECK_THROWS_WITH_AS(optim::Adam<double>({p}, {.lr = -1}), "Adam: invalid learning rate -1 (must be >= 0)",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::Adam<double>({p}, {.beta1 = 1.0}), "Adam: invalid beta1 1 (must be in [0, 1))",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::Adam<double>({p}, {.beta2 = -0.1}), "Adam: invalid beta2 -0.1 (must be in [0, 1))",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::Adam<double>({p}, {.eps = 0}), "Adam: invalid eps 0 (must be > 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::Adam<double>({p}, {.weight_decay = -0.01}),
                         "Adam: invalid weight_decay -0.01 (must be >= 0)", ValueError);
    CHECK_THROWS_WITH_AS(optim::AdamW<double>({p}, {.beta1 = 1.5}), "AdamW: invalid beta1 1.5 (must be in [0, 1))",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::AdamW<double>({p}, {.eps = -1e-8}), "AdamW: invalid eps -1e-08 (must be > 0)",
                         ValueError);
    CHECK_THROWS_AS(optim::Adam<double>({p}, {.beta2 = std::nan("")}), ValueError);
}
