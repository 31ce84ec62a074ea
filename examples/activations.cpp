// Lesson 3: activation functions and their derivatives, the slopes backpropagation multiplies together.
//
//   build/examples/activations                                  # writes activations.csv and activations.svg
//   build/examples/activations --csv act.csv --svg act.svg --points 401
//
// Backpropagation multiplies one activation derivative per layer into every gradient (the chain rule), so
// the shape of f' decides whether a deep network can learn at all:
//  - step: f' = 0 everywhere it exists -- no gradient flows, which is why the perceptron needs its own rule;
//  - sigmoid: f' <= 0.25, and ~0 beyond |x| ~ 5 (saturation): gradients shrink layer after layer;
//  - tanh: f' <= 1 at 0, zero-centred, but saturates the same way;
//  - relu: f' = 1 for x > 0 (no shrinking), 0 for x < 0 (a unit stuck there stops learning: "dying ReLU");
//  - leaky_relu, elu: a small or smooth slope for x < 0, so such a unit can recover;
//  - softplus, gelu, silu: smooth versions of relu (gelu and silu dip slightly below zero).
//
// The derivatives here are not written out by hand: each comes from tapegrad's autograd. Since f acts
// elementwise, d/dx_i sum_j f(x_j) = f'(x_i), so ONE backward pass of sum(f(x)) over a grid of x values
// gives f' at every grid point. Each is then checked against the central difference (f(x+h) - f(x-h)) / 2h.

#include <tapegrad/nn/activation.hpp>
#include <tapegrad/tapegrad.hpp>
#include <tapegrad/util/svg_plot.hpp>

#include "common/cli.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace tg = tapegrad;

namespace {

struct Activation {
    const char* name;
    std::function<tg::TensorD(const tg::TensorD&)> f;
    /// f has a corner at x = 0 (step, relu, leaky_relu: no derivative there) or f' has one (elu: f'' jumps),
    /// so the central difference at 0 measures the corner, not an error of autograd. Skipped there.
    bool corner_at_zero;
};

/// f and f' at every point of `xs`, f' by one backward pass of sum(f(x)).
struct Curves {
    std::vector<double> y, dy;
};
Curves evaluate(const Activation& a, const std::vector<double>& xs) {
    tg::TensorD x = tg::TensorD::from({static_cast<int64_t>(xs.size())}, xs);
    x.requires_grad_();
    const tg::TensorD y = a.f(x);
    tg::sum(y).backward();
    return {y.to_vector(), x.grad().to_vector()};
}

/// The central difference (f(x + h) - f(x - h)) / 2h at every point of `xs`, without recording.
std::vector<double> finite_difference(const Activation& a, const std::vector<double>& xs, double h) {
    tg::NoGradGuard no_grad;
    std::vector<double> plus(xs), minus(xs);
    for (double& v : plus) v += h;
    for (double& v : minus) v -= h;
    const auto n = static_cast<int64_t>(xs.size());
    const std::vector<double> fp = a.f(tg::TensorD::from({n}, plus)).to_vector();
    const std::vector<double> fm = a.f(tg::TensorD::from({n}, minus)).to_vector();
    std::vector<double> out(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) out[i] = (fp[i] - fm[i]) / (2 * h);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string csv_path = "activations.csv", svg_path = "activations.svg";
    int points = 201;
    double tolerance = 1e-6;
    CLI::App app{"Plot the activation functions and their autograd derivatives over [-5, 5]"};
    app.add_option("--csv", csv_path, "CSV output: x, then f and d_f for every activation")->capture_default_str();
    app.add_option("--svg", svg_path, "SVG plot of the functions (solid) and derivatives (dashed)")
        ->capture_default_str();
    examples::number(app, "--points", points, "Grid points over [-5, 5]", 3, 1000001);
    examples::number(app, "--tolerance", tolerance, "Largest accepted |autograd - finite difference|", 1e-14, 1.0);
    if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;

    try {
        const std::vector<Activation> acts = {
            {"step", [](const tg::TensorD& x) { return tg::step(x); }, true},
            {"identity", [](const tg::TensorD& x) { return tg::identity(x); }, false},
            {"sigmoid", [](const tg::TensorD& x) { return tg::sigmoid(x); }, false},
            {"tanh", [](const tg::TensorD& x) { return tg::tanh(x); }, false},
            {"relu", [](const tg::TensorD& x) { return tg::relu(x); }, true},
            {"leaky_relu", [](const tg::TensorD& x) { return tg::leaky_relu(x, 0.1); }, true},  // slope 0.1: visible
            {"elu", [](const tg::TensorD& x) { return tg::elu(x); }, true},
            {"softplus", [](const tg::TensorD& x) { return tg::softplus(x); }, false},
            {"gelu", [](const tg::TensorD& x) { return tg::gelu(x); }, false},
            {"silu", [](const tg::TensorD& x) { return tg::silu(x); }, false},
        };

        // The grid: `points` values from -5 to 5 (x = 0 among them when `points` is odd).
        std::vector<double> xs(static_cast<size_t>(points));
        for (int i = 0; i < points; ++i) xs[static_cast<size_t>(i)] = -5.0 + 10.0 * i / (points - 1);
        const double h = 1e-5;

        std::vector<Curves> curves;
        double max_error = 0.0;
        const char* worst = "";
        std::printf("%-11s %9s %9s %9s   %9s %9s %9s   %s\n", "activation", "f(-1)", "f(0)", "f(1)", "f'(-1)",
                    "f'(0)", "f'(1)", "max |autograd - finite diff|");
        for (const Activation& a : acts) {
            curves.push_back(evaluate(a, xs));
            const Curves& c = curves.back();
            const std::vector<double> fd = finite_difference(a, xs, h);
            double err = 0.0;
            for (size_t i = 0; i < xs.size(); ++i) {
                if (a.corner_at_zero && std::abs(xs[i]) < 2 * h) continue;
                err = std::max(err, std::abs(c.dy[i] - fd[i]));
            }
            if (err >= max_error) max_error = err, worst = a.name;

            // f and f' at -1, 0 and 1, straight from the ops.
            tg::TensorD probe = tg::TensorD::from({3}, {-1.0, 0.0, 1.0});
            probe.requires_grad_();
            const tg::TensorD fy = a.f(probe);
            tg::sum(fy).backward();
            const auto g = probe.grad();
            std::printf("%-11s %9.4f %9.4f %9.4f   %9.4f %9.4f %9.4f   %.2e\n", a.name, fy(0), fy(1), fy(2), g(0), g(1),
                        g(2), err);
        }

        // CSV: one row per x, columns x, f, d_f for every activation.
        {
            std::ofstream csv(csv_path);
            if (!csv) throw tg::FormatError("cannot open '" + csv_path + "' for writing");
            csv << "x";
            for (const Activation& a : acts) csv << ',' << a.name << ",d_" << a.name;
            csv << '\n';
            csv.precision(10);
            for (size_t i = 0; i < xs.size(); ++i) {
                csv << xs[i];
                for (const Curves& c : curves) csv << ',' << c.y[i] << ',' << c.dy[i];
                csv << '\n';
            }
            csv.close();
            if (!csv) throw tg::FormatError("cannot write '" + csv_path + "'");
        }

        // SVG: each function solid, its derivative dashed in the same colour. The y range is cut at
        // [-1.5, 3] so the region where the functions differ fills the picture.
        tg::util::SvgPlot plot({.title = "Activation functions (solid) and their derivatives (dashed)",
                                .x_label = "x",
                                .y_label = "f(x), f'(x)",
                                .width = 960,
                                .height = 600,
                                .y_min = -1.5,
                                .y_max = 3.0});
        for (size_t k = 0; k < acts.size(); ++k) {
            const int colour = static_cast<int>(k);
            plot.add_series(acts[k].name, xs, curves[k].y, {.color = colour});
            plot.add_series(std::string(acts[k].name) + "'", xs, curves[k].dy, {.dashed = true, .color = colour});
        }
        plot.save(svg_path);

        std::printf("\nwrote %s (%d points x %zu activations) and %s\n", csv_path.c_str(), points, acts.size(),
                    svg_path.c_str());
        std::printf("largest derivative error: %s (autograd vs central difference with h = %g)\n", worst, h);
        std::printf("result: activations=%zu max_derivative_error=%.2e\n", acts.size(), max_error);
        return max_error <= tolerance ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "activations: %s\n", e.what());
        return 1;
    }
}
