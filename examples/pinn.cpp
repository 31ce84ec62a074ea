// Lesson: a physics-informed neural network (PINN) -- solving a differential equation with a network and
// gradients of gradients, from the equation alone, with no solution data.
//
//   build/examples/pinn
//   build/examples/pinn --steps 4000 --svg pinn.svg
//
// The problem: find u on [0, 1] with
//     u''(x) = -pi^2 sin(pi x),   u(0) = u(1) = 0,
// whose exact solution is u(x) = sin(pi x) (we use it only to measure the error at the end).
//
// The idea (Raissi, Perdikaris and Karniadakis, 2019): let a small network N(x) stand for the solution and
// train it so that it *satisfies the equation*. At n collocation points x_i we compute u''(x_i) by
// differentiating the network's output with respect to its input -- twice -- and minimise the mean squared
// residual
//     loss = mean_i (u''(x_i) + pi^2 sin(pi x_i))^2.
// Training then differentiates that loss with respect to the weights: a third derivative through every tanh.
// This is what `create_graph` is for: tapegrad::grad(u, x, {.create_graph = true}) returns u'(x) as a
// tensor that is itself recorded, so grad(u', x, ...) gives u'', and loss.backward() reaches the weights.
//
// The boundary conditions are built into the network (a "hard constraint"): u(x) = x (1 - x) N(x) is 0 at
// both ends whatever the weights, so the loss needs no boundary term to balance. (`--bc penalty` instead
// trains u = N(x) and adds weight * (u(0)^2 + u(1)^2) to the loss: the usual soft form, slower to converge.)
//
// Why tanh: the loss holds u'', so the activation must have a useful second (and third) derivative. ReLU's
// second derivative is zero almost everywhere: a ReLU network is piecewise linear, its u'' is 0, and it
// cannot learn this equation at all. tanh is smooth.
//
// Training: Adam, with the learning rate lowered by a cosine schedule for the final refinement. Double
// precision, since the residual involves second derivatives (float rounding would floor the error near 1e-4).

#include <tapegrad/optim/lr_scheduler.hpp>
#include <tapegrad/tapegrad.hpp>
#include <tapegrad/util/svg_plot.hpp>

#include "common/cli.hpp"
#include "common/pinn.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace pinn = examples::pinn;

int main(int argc, char** argv) {
    int steps = 3000;
    int64_t points = 64;
    int64_t width = 32;
    double lr = 0.01;
    uint64_t seed = 1;
    double max_error = 1e-3;
    std::string bc = "hard";
    double bc_weight = 100.0;
    std::string svg_path;
    CLI::App app{"Solve u'' = -pi^2 sin(pi x), u(0) = u(1) = 0, with a physics-informed network (no data)"};
    examples::number(app, "--steps", steps, "Adam steps on the equation's residual", 1, 10000000);
    examples::number(app, "--points", points, "Collocation points in (0, 1)", int64_t{2}, int64_t{100000});
    examples::number(app, "--width", width, "Units in each of the two tanh hidden layers", int64_t{1}, int64_t{4096});
    examples::number(app, "--lr", lr, "Adam's initial learning rate (cosine-annealed to 1% of it)", 1e-7, 10.0);
    examples::number(app, "--seed", seed, "Seed of the initial weights", uint64_t{0}, UINT64_MAX);
    examples::number(app, "--max-error", max_error, "Exit with status 1 if max |u - sin(pi x)| ends above this",
                     0.0, 1e9);
    app.add_option("--bc", bc, "Boundary conditions: hard (u = x (1 - x) N(x)) or penalty (a loss term)")
        ->check(CLI::IsMember({"hard", "penalty"}));
    examples::number(app, "--bc-weight", bc_weight, "Weight of the boundary penalty (--bc penalty)", 0.0, 1e9);
    app.add_option("--svg", svg_path, "Write a plot of the prediction against the exact solution");
    if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;

    try {
        const auto start = std::chrono::steady_clock::now();
        tg::Generator gen(seed);
        tg::nn::Sequential<double> net;
        net.push_back(tg::nn::Linear<double>(1, width, gen));
        net.push_back(tg::nn::Tanh<double>());
        net.push_back(tg::nn::Linear<double>(width, width, gen));
        net.push_back(tg::nn::Tanh<double>());
        net.push_back(tg::nn::Linear<double>(width, 1, gen));
        const bool hard = bc == "hard";
        // The solution the network stands for.
        const auto u_of = [&net, hard](const tg::TensorD& x) { return hard ? x * (1.0 - x) * net(x) : net(x); };

        tg::TensorD x = pinn::collocation_points(points);  // [n, 1]
        x.requires_grad_();                                // we differentiate with respect to x
        const tg::TensorD f = pinn::forcing_at(x.detach());
        const tg::TensorD ends = tg::TensorD::from({2, 1}, {0.0, 1.0});

        tg::optim::Adam<double> opt(net.parameters(), {.lr = lr});
        tg::optim::CosineAnnealingLR sched(opt, steps, lr * 0.01);
        std::printf("%lld collocation points; %lld parameters; boundary conditions: %s\n",
                    static_cast<long long>(points), static_cast<long long>(net.num_parameters()), bc.c_str());
        double last = 0;
        for (int step = 1; step <= steps; ++step) {
            opt.zero_grad();
            const tg::TensorD r = pinn::residual(u_of, x, f);  // u''(x_i) - f(x_i), by double backward
            tg::TensorD loss = tg::mean(r * r);
            if (!hard) {
                const tg::TensorD ub = u_of(ends);
                loss = loss + tg::sum(ub * ub) * bc_weight;
            }
            loss.backward();  // d loss / d weights: through u'' (a third derivative of each tanh)
            opt.step();
            sched.step();
            last = loss.item();
            if (step == 1 || step % (steps < 10 ? 1 : steps / 10) == 0)
                std::printf("step %6d  loss %.3e  max_abs_error %.3e\n", step, last, pinn::max_abs_error(u_of));
        }
        const double err = pinn::max_abs_error(u_of);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("\nfinal residual loss %.3e; trained in %.2f s\n", last, secs);

        if (!svg_path.empty()) {
            std::vector<double> grid, exact, predicted;
            {
                tg::NoGradGuard no_grad;
                const tg::TensorD xs = tg::reshape(tg::TensorD::arange(0.0, 1.0001, 0.01), {-1, 1});
                const tg::TensorD us = u_of(xs);
                for (int64_t i = 0; i < xs.numel(); ++i) {
                    grid.push_back(xs(i, 0));
                    exact.push_back(pinn::exact(xs(i, 0)));
                    predicted.push_back(us(i, 0));
                }
            }
            tg::util::SvgPlot plot({.title = "PINN: u'' = -pi^2 sin(pi x), u(0) = u(1) = 0", .x_label = "x",
                                    .y_label = "u"});
            plot.add_series("exact sin(pi x)", grid, exact, {.dashed = true});
            plot.add_series("network, trained on the equation only", grid, predicted);
            plot.save(svg_path);
            std::printf("wrote %s\n", svg_path.c_str());
        }

        std::printf("result: max_abs_error=%.2e\n", err);
        if (!(err <= max_error)) {
            std::fprintf(stderr, "pinn: max |u - sin(pi x)| = %.2e is above the bound %.2e\n", err, max_error);
            return 1;
        }
        return 0;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "pinn: %s\n", e.what());
        return 1;
    }
}
