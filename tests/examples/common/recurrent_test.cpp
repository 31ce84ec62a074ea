// Tests for examples/common/recurrent.hpp: the lessons' RNN, LSTM and GRU cells against their equations
// computed by hand, and their gradients through time against central differences.

#include "../../../examples/common/recurrent.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

namespace {
double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

TEST_CASE("recurrent cells: one step equals PyTorch's equations (gate orders i,f,g,o and r,z,n)") {
    tapegrad::Generator gen(3);
    for (const auto kind : {examples::CellKind::rnn, examples::CellKind::lstm, examples::CellKind::gru}) {
        CAPTURE(examples::cell_name(kind));
        examples::RecurrentCell cell(kind, 1, 1, gen);  // H = 1: every gate is one number
        CHECK(cell.weight_ih.shape() == tapegrad::Shape{cell.gates(), 1});
        const float x = 0.7f, h = -0.4f, c = 0.3f;
        examples::RecurrentState s{tapegrad::TensorF::full({1, 1}, h), {}};
        if (kind == examples::CellKind::lstm) s.c = tapegrad::TensorF::full({1, 1}, c);
        const auto out = cell.step(cell.project(tapegrad::TensorF::full({1, 1}, x)), s);
        std::vector<double> gi, gh;
        for (int64_t g = 0; g < cell.gates(); ++g) {
            gi.push_back(cell.weight_ih(g, 0) * x + cell.bias_ih(g));
            gh.push_back(cell.weight_hh(g, 0) * h + cell.bias_hh(g));
        }
        if (kind == examples::CellKind::rnn) {
            CHECK(out.h(0, 0) == doctest::Approx(std::tanh(gi[0] + gh[0])));
        } else if (kind == examples::CellKind::lstm) {
            const double i = sig(gi[0] + gh[0]), f = sig(gi[1] + gh[1]), g = std::tanh(gi[2] + gh[2]), o = sig(gi[3] + gh[3]);
            const double c2 = f * c + i * g;
            CHECK(out.c(0, 0) == doctest::Approx(c2));
            CHECK(out.h(0, 0) == doctest::Approx(o * std::tanh(c2)));
        } else {
            const double r = sig(gi[0] + gh[0]), z = sig(gi[1] + gh[1]), n = std::tanh(gi[2] + r * gh[2]);
            CHECK(out.h(0, 0) == doctest::Approx((1 - z) * n + z * h));
        }
    }
    CHECK_THROWS_AS(examples::parse_cell("transformer"), std::invalid_argument);
}

TEST_CASE("recurrent cells: backpropagation through three steps matches central differences") {
    // The cells hold float parameters, so the check is loose: the input's gradient against a central
    // difference in float.
    tapegrad::Generator gen(5);
    for (const auto kind : {examples::CellKind::rnn, examples::CellKind::lstm, examples::CellKind::gru}) {
        CAPTURE(examples::cell_name(kind));
        examples::RecurrentCell cell(kind, 3, 4, gen);
        const tapegrad::TensorF x0 = tapegrad::TensorF::uniform({2, 3}, -1.f, 1.f, gen);
        const auto loss_of = [&](const tapegrad::TensorF& x) {
            examples::RecurrentState s = cell.zero_state(2);
            for (int t = 0; t < 3; ++t) s = cell.step(cell.project(x), s);
            return tapegrad::sum(s.h * s.h);
        };
        tapegrad::TensorF x = x0.clone().detach().requires_grad_();
        loss_of(x).backward();
        for (int64_t i = 0; i < x0.numel(); ++i) {
            tapegrad::NoGradGuard no_grad;
            const float eps = 1e-2f;
            tapegrad::TensorF up = x0.clone(), down = x0.clone();
            up.data()[i] += eps;
            down.data()[i] -= eps;
            const double numeric = (loss_of(up).item() - loss_of(down).item()) / (2.0 * eps);
            CHECK(x.grad().data()[i] == doctest::Approx(numeric).epsilon(2e-2).scale(1e-2));
        }
    }
}
