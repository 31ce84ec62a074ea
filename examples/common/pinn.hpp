#pragma once
/// \file
/// The pieces of examples/pinn.cpp that its test checks (tests/examples/common/pinn_test.cpp): the second
/// derivative of a network's output with respect to its input, computed by double backward, the equation's
/// residual, and the error against the exact solution.

#include <tapegrad/tapegrad.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

namespace examples::pinn {

namespace tg = tapegrad;

/// The forcing term of u''(x) = f(x): f(x) = -pi^2 sin(pi x), whose solution with u(0) = u(1) = 0 is
/// u(x) = sin(pi x).
inline double forcing(double x) { return -std::numbers::pi * std::numbers::pi * std::sin(std::numbers::pi * x); }
inline double exact(double x) { return std::sin(std::numbers::pi * x); }

/// u and its first and second derivatives at the points x [n, 1], for a function `u` that maps each row
/// on its own (so d(sum u)/dx row i is u'(x_i)). `x` must require grad. The derivatives are recorded
/// (create_graph), so a loss built from them trains the parameters.
struct Derivatives {
    tg::TensorD u, ux, uxx;
};
template <class U>
Derivatives derivatives(const U& u_of, const tg::TensorD& x) {
    Derivatives d;
    d.u = u_of(x);
    const tg::TensorD ones = tg::TensorD::ones(d.u.shape());
    d.ux = tg::grad(d.u, x, {.grad_outputs = {ones}, .create_graph = true});
    d.uxx = tg::grad(d.ux, x, {.grad_outputs = {ones}, .create_graph = true});
    return d;
}

/// The residual u''(x) - f(x) at the points x [n, 1].
template <class U>
tg::TensorD residual(const U& u_of, const tg::TensorD& x, const tg::TensorD& f_at_x) {
    return derivatives(u_of, x).uxx - f_at_x;
}

/// n collocation points spread evenly over (0, 1): the cell midpoints (i + 0.5) / n, as [n, 1].
inline tg::TensorD collocation_points(int64_t n) {
    tg::TensorD x = tg::TensorD::empty({n, 1});
    for (int64_t i = 0; i < n; ++i) x(i, 0) = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    return x;
}

/// f at each point of x [n, 1], as [n, 1].
inline tg::TensorD forcing_at(const tg::TensorD& x) {
    tg::TensorD f = tg::TensorD::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) f.data()[i] = forcing(x.data()[i]);
    return f;
}

/// max |u(x) - sin(pi x)| over `points` evenly spaced x in [0, 1], without recording.
template <class U>
double max_abs_error(const U& u_of, int64_t points = 1001) {
    tg::NoGradGuard no_grad;
    tg::TensorD x = tg::TensorD::empty({points, 1});
    for (int64_t i = 0; i < points; ++i) x(i, 0) = static_cast<double>(i) / static_cast<double>(points - 1);
    const tg::TensorD u = u_of(x);
    double worst = 0;
    for (int64_t i = 0; i < points; ++i) worst = std::max(worst, std::abs(u(i, 0) - exact(x(i, 0))));
    return worst;
}

}  // namespace examples::pinn
