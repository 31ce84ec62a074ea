#pragma once
// The harness every optimizer's reference test uses: one parameter p = [1, -2, 0.5], three fixed gradients,
// and a check of p after each step against hand-computed values (see each test file's header for the
// snippet that produced them).

#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

namespace optim_test {

using tapegrad::TensorD;

inline constexpr double kGrads[3][3] = {{0.5, -1.0, 2.0}, {-0.3, 0.8, 1.5}, {0.0, 0.2, -0.4}};

inline TensorD start_param() {
    TensorD p = TensorD::from({3}, {1.0, -2.0, 0.5});
    p.requires_grad_();
    return p;
}

/// Makes p's gradient exactly g: zero the buffer, then backward of sum(p * g).
inline void set_grad(TensorD p, const double* g) {
    p.zero_grad();
    tapegrad::sum(p * TensorD::from(p.shape(), {g[0], g[1], g[2]})).backward();
}

/// Three steps with kGrads, checking p after each against want[step].
inline void check_three_steps(tapegrad::optim::Optimizer<double>& opt, TensorD p, const double (&want)[3][3]) {
    for (int s = 0; s < 3; ++s) {
        set_grad(p, kGrads[s]);
        opt.step();
        for (int k = 0; k < 3; ++k) {
            INFO("step ", s + 1, ", element ", k);
            CHECK(p(k) == doctest::Approx(want[s][k]).epsilon(1e-12));
        }
    }
}

}  // namespace optim_test
