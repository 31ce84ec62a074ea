#include <tapegrad/autograd/grad.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/check_throws.hpp"
#include "../../support/gradgrad_tables.hpp"
#include "../test_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace tapegrad;
using tapegrad::testing::check_throws;
using tapegrad::testing::Inputs;

namespace {

/// Runs gradgradcheck on `draws` draws of every row of `Table` (CPU, double); rows listed in
/// gradgrad_tables.hpp must instead throw an error naming one of their ops. Returns the rows checked.
template <class Table>
int check_gradgrad_table(uint64_t seed, int draws = 2) {
    const auto cases = Table::template cases<double, Cpu>();
    int n = 0;
    for (size_t k = 0; k < cases.size(); ++k) {
        const auto& c = cases[k];
        if (!c.gradcheck) continue;
        Generator g(seed + 7919 * k);
        const auto* unsupported = testing::find_no_double_backward(c.name);
        for (int d = 0; d < draws; ++d) {
            const Inputs xs = c.make_inputs(g);
            if (unsupported != nullptr) {
                bool threw = false;
                try {
                    (void)gradgradcheck(c.f, xs);
                } catch (const ValueError& e) {
                    threw = true;
                    const std::string msg = e.what();
                    bool named = false;
                    for (const auto& op : unsupported->ops)
                        named = named || msg.find("double backward is not supported for '" + op + "'") != std::string::npos;
                    CHECK_MESSAGE(named, c.name << ": message was: " << msg);
                }
                CHECK_MESSAGE(threw, c.name << ": expected 'double backward is not supported'");
                break;
            }
            const GradcheckResult r = gradgradcheck(c.f, xs, {.eps = 1e-6, .atol = 1e-5, .rtol = 1e-4});
            CHECK_MESSAGE(r.ok, c.name << " (draw " << d << "): " << r.message);
        }
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("gradgradcheck: every elementwise op") { CHECK(check_gradgrad_table<testing::ElementwiseTable>(101) > 20); }
TEST_CASE("gradgradcheck: every activation, prelu and maxout") {
    CHECK(check_gradgrad_table<testing::ActivationTable>(102) > 15);
}
TEST_CASE("gradgradcheck: reductions") { CHECK(check_gradgrad_table<testing::ReduceTable>(103) == 6); }
TEST_CASE("gradgradcheck: shape ops") { CHECK(check_gradgrad_table<testing::ShapeTable>(104) >= 10); }
TEST_CASE("gradgradcheck: softmax and log_softmax") { CHECK(check_gradgrad_table<testing::SoftmaxTable>(105) == 3); }
TEST_CASE("gradgradcheck: matmul and linear") { CHECK(check_gradgrad_table<testing::LinalgTable>(106) >= 8); }
TEST_CASE("gradgradcheck: every loss with every reduction") { CHECK(check_gradgrad_table<testing::LossTable>(107) == 18); }
TEST_CASE("gradgradcheck: conv2d and pooling throw naming the op") {
    CHECK(check_gradgrad_table<testing::ConvPoolTable>(108) > 10);
}
TEST_CASE("gradgradcheck: the index ops and the recurrent layers throw naming the op") {
    CHECK(check_gradgrad_table<testing::IndexTable>(110, 1) >= 8);
    CHECK(check_gradgrad_table<testing::RnnTable>(111, 1) >= 19);
}
TEST_CASE("gradgradcheck: batch_norm throws naming it, dropout passes") {
    CHECK(check_gradgrad_table<testing::LayerFunctionTable>(109) == 5);
}
TEST_CASE("gradgradcheck: layers") { CHECK(check_gradgrad_table<testing::LayerTable>(110) >= 8); }
TEST_CASE("gradgradcheck: stack, select, permute, batched matmul; attention ops throw naming the op") {
    CHECK(check_gradgrad_table<testing::AttentionTable>(111) >= 10);
}

namespace {

/// y = x^2 whose fast backward is right and whose differentiable backward is `graph` (to be checked).
template <class G>
TensorD square_with(const TensorD& x, G graph) {
    TensorD y = TensorD::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = x.data()[i] * x.data()[i];
    if (detail::needs_grad(x))
        detail::record(
            y, "square", {&x},
            [x](const TensorD& dy) {
                for (int64_t i = 0; i < x.numel(); ++i) detail::grad_buffer(x)[i] += 2 * x.data()[i] * dy.data()[i];
            },
            [x, graph](const TensorD& dy, detail::GradSink<double, Cpu>& g) { g.add(x, graph(x, dy)); });
    return y;
}

}  // namespace

TEST_CASE("gradgradcheck catches a wrong double backward") {
    const TensorD x = TensorD::from({3}, {0.5, -1.0, 2.0});
    const auto right = [](const TensorD& t, const TensorD& dy) { return dy * t * 2.0; };
    // the right value, but x detached: its derivative with respect to x is lost
    const auto detached = [](const TensorD& t, const TensorD& dy) { return dy * (t.detach() * 2.0); };
    // a wrong value (2 dy instead of 2 x dy)
    const auto wrong = [](const TensorD&, const TensorD& dy) { return dy * 2.0; };
    const auto with = [](auto graph) {
        return [graph](const std::vector<TensorD>& xs) { return square_with(xs[0], graph); };
    };
    CHECK(gradcheck(with(detached), {x}).ok);
    CHECK(gradgradcheck(with(right), {x}).ok);
    const GradcheckResult r1 = gradgradcheck(with(detached), {x});
    CHECK_FALSE(r1.ok);
    CHECK_MESSAGE(r1.message.find("gradgradcheck FAILED: worst element is input 0") != std::string::npos, r1.message);
    const GradcheckResult r2 = gradgradcheck(with(wrong), {x});
    CHECK_FALSE(r2.ok);
    CHECK_MESSAGE(r2.message.find("create_graph gradient of input 0") != std::string::npos, r2.message);
}

TEST_CASE("grad: first and second derivatives as tensors, .grad() untouched") {
    const TensorD x = TensorD::from({3}, {1.0, 2.0, -0.5}).requires_grad_();
    const TensorD y = sum(x * x * x);
    const TensorD dx = grad(y, x, {.create_graph = true});
    CHECK(dx.requires_grad());
    const TensorD dxx = grad(sum(dx), x);
    for (int i = 0; i < 3; ++i) {
        const double v = x.data()[i];
        CHECK(dx.data()[i] == doctest::Approx(3 * v * v));
        CHECK(dxx.data()[i] == doctest::Approx(6 * v));
    }
    CHECK_FALSE(x.grad().defined());
    CHECK_FALSE(dxx.requires_grad());  // no create_graph: nothing recorded
}

TEST_CASE("grad: third order through tanh (the derivative of a derivative of a derivative)") {
    const TensorD x = TensorD::from({2}, {0.3, -1.2}).requires_grad_();
    const TensorD d1 = grad(sum(tanh(x)), x, {.create_graph = true});
    const TensorD d2 = grad(sum(d1), x, {.create_graph = true});
    const TensorD d3 = grad(sum(d2), x);
    for (int i = 0; i < 2; ++i) {
        const double t = std::tanh(x.data()[i]), s = 1 - t * t;
        CHECK(d1.data()[i] == doctest::Approx(s));
        CHECK(d2.data()[i] == doctest::Approx(-2 * t * s));
        CHECK(d3.data()[i] == doctest::Approx(-2 * s * s + 4 * t * t * s));
    }
}

TEST_CASE("grad: several outputs and inputs, grad_outputs, allow_unused") {
    const TensorD a = TensorD::from({2}, {1.0, 2.0}).requires_grad_();
    const TensorD b = TensorD::from({2}, {3.0, -1.0}).requires_grad_();
    const TensorD c = TensorD::from({2}, {5.0, 5.0}).requires_grad_();
    const TensorD y1 = a * b, y2 = sum(a);
    const auto gs = grad({y1, y2}, {a, b}, {.grad_outputs = {TensorD::from({2}, {1.0, 10.0}), TensorD::scalar(2.0)},
                                            .retain_graph = true});
    CHECK(gs[0].to_vector() == std::vector<double>{3.0 + 2.0, -10.0 + 2.0});
    CHECK(gs[1].to_vector() == std::vector<double>{1.0, 20.0});
    check_throws<ValueError>([&] { (void)grad({y2}, {c}, {.retain_graph = true}); }, "input 0");
    const auto unused = grad({y2}, {a, c}, {.allow_unused = true});
    CHECK_FALSE(unused[1].defined());
    check_throws<ShapeError>([&] { (void)grad(y1, a); }, "give grad_outputs");
    check_throws<ValueError>([&] { (void)grad(sum(a), TensorD::ones({2})); }, "does not require grad");
}

TEST_CASE("grad: retain_graph defaults to create_graph; a freed record is reported") {
    const TensorD x = TensorD::from({2}, {1.0, 2.0}).requires_grad_();
    const TensorD y = sum(exp(x));
    (void)grad(y, x);
    check_throws<ValueError>([&] { (void)grad(y, x); }, "second time");
    const TensorD z = sum(exp(x));
    (void)grad(z, x, {.create_graph = true});
    CHECK(grad(z, x).to_vector()[1] == doctest::Approx(std::exp(2.0)));
}

TEST_CASE("grad: gradient with respect to an intermediate, and a reused intermediate") {
    const TensorD x = TensorD::from({2}, {0.5, 1.5}).requires_grad_();
    const TensorD h = x * x;
    const TensorD y = sum(h * h + h);
    const auto gs = grad({y}, {h, x}, {.create_graph = true});
    CHECK(gs[0].to_vector()[0] == doctest::Approx(2 * 0.25 + 1));
    CHECK(gs[1].to_vector()[1] == doctest::Approx((2 * 2.25 + 1) * 3.0));
}

TEST_CASE("backward({.create_graph = true}) leaves differentiable gradients in .grad()") {
    const TensorD w = TensorD::from({2}, {0.5, -1.0}).requires_grad_();
    const TensorD loss = sum(exp(w) * w);
    loss.backward({.create_graph = true});
    const TensorD g = w.grad();
    REQUIRE(g.requires_grad());
    CHECK(g.to_vector()[0] == doctest::Approx(std::exp(0.5) * 1.5));
    // a gradient penalty: d/dw sum(g^2) = 2 g g'
    const TensorD pen = grad(sum(g * g), w);
    for (int i = 0; i < 2; ++i) {
        const double v = w.data()[i], e = std::exp(v);
        CHECK(pen.data()[i] == doctest::Approx(2 * e * (1 + v) * e * (2 + v)));
    }
    // accumulates like backward: a second create_graph backward adds
    sum(w * 3.0).backward({.create_graph = true});
    CHECK(w.grad().to_vector()[1] == doctest::Approx(0.0 + 3.0));
}

TEST_CASE("create_graph through an op without a double backward: right first derivative, then a clear error") {
    const TensorD x = TensorD::ones({1, 1, 3, 3}).requires_grad_();
    const TensorD k = TensorD::from({1, 1, 2, 2}, {1.0, 2.0, 3.0, 4.0}).requires_grad_();
    const TensorD y = conv2d(x, k);
    const TensorD gx = grad(sum(y * y), x, {.create_graph = true});
    // the value is the first-order one
    const TensorD ref = grad(sum(y * y), x, {.retain_graph = true});
    CHECK(gx.to_vector() == ref.to_vector());
    check_throws<ValueError>([&] { (void)grad(sum(gx), k); }, "double backward is not supported for 'conv2d'");
    // the inputs' gradients were set aside and restored around the first-order closure
    CHECK_FALSE(x.grad().defined());
    // a second-order path that avoids conv2d works: d/dw of dy/dw for y = w * conv2d(x, k)
    const TensorD w = TensorD::scalar(2.0).requires_grad_();
    const TensorD z = sum(conv2d(x, k) * w * w);
    const TensorD dz = grad(z, w, {.create_graph = true});
    CHECK(grad(dz, w).item() == doctest::Approx(2.0 * sum(conv2d(x.detach(), k.detach())).item()));
}

TEST_CASE("an op recorded with the one-closure record API names itself when differentiated twice") {
    const TensorD x = TensorD::from({2}, {1.0, 2.0}).requires_grad_();
    TensorD y = TensorD::empty({2});
    for (int i = 0; i < 2; ++i) y.data()[i] = x.data()[i] * x.data()[i];
    detail::record(y, "custom_square", {&x}, [x](const TensorD& dy) {
        for (int i = 0; i < 2; ++i) detail::grad_buffer(x)[i] += 2 * x.data()[i] * dy.data()[i];
    });
    const TensorD g = grad(sum(y), x, {.create_graph = true});
    CHECK(g.to_vector() == std::vector<double>{2.0, 4.0});
    check_throws<ValueError>([&] { (void)grad(sum(g), x); }, "double backward is not supported for 'custom_square'");
    check_throws<ValueError>([&] { sum(g).backward(); }, "'custom_square'");
}

TEST_CASE("u_xx of a tanh MLP (the physics-informed case) matches finite differences") {
    Generator gen(3);
    nn::Sequential<double> net{nn::Linear<double>(1, 8, gen), nn::Tanh<double>(), nn::Linear<double>(8, 8, gen),
                               nn::Tanh<double>(), nn::Linear<double>(8, 1, gen)};
    const TensorD x = TensorD::from({3, 1}, {0.1, 0.5, 0.9}).requires_grad_();
    const TensorD u = net(x);
    const TensorD ux = grad(u, x, {.grad_outputs = {TensorD::ones({3, 1})}, .create_graph = true});
    const TensorD uxx = grad(ux, x, {.grad_outputs = {TensorD::ones({3, 1})}, .create_graph = true});
    const double h = 1e-4;
    for (int i = 0; i < 3; ++i) {
        NoGradGuard ng;
        const double xi = x.data()[i];
        const auto at = [&](double v) { return net(TensorD::from({1, 1}, {v})).item(); };
        CHECK(uxx.data()[i] == doctest::Approx((at(xi + h) - 2 * at(xi) + at(xi - h)) / (h * h)).epsilon(1e-4));
    }
    // and the loss on u_xx differentiates with respect to the parameters (third order through tanh); u_xx
    // does not depend on the last layer's bias
    const TensorD loss = mean(uxx * uxx);
    loss.backward();
    const auto params = net.parameters();
    for (size_t i = 0; i + 1 < params.size(); ++i) CHECK(params[i].grad().defined());
    CHECK_FALSE(params.back().grad().defined());
}
