// Tests for tapegrad/nn/activation.hpp and the functions of ops/activation.hpp (their gradcheck on every
// device is the ActivationTable of tests/support/op_tables.hpp, run in ops/activation_test.cpp): every
// activation module passes gradcheck over several shapes and describes itself, reference values, behaviour at
// |x| = 1e4 in float and double, PReLU's slope gradient, Maxout, and the error messages.
//
// Reference values come from Python's math module; the expression is in the comment beside each.

#include <tapegrad/autograd/gradcheck.hpp>
#include <tapegrad/nn/activation.hpp>

#include "../../support/check_throws.hpp"
#include "../../support/tensor_checks.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::Tensor;
using tapegrad::TensorD;
using tapegrad::TensorF;
namespace nn = tapegrad::nn;

namespace {

/// Uniform values of magnitude in [0.05, 3] with random sign: away from 0, where the kinks of step, relu,
/// leaky_relu, prelu and elu would make central differences meaningless.
TensorD away_from_zero(const Shape& s, Generator& g) {
    TensorD x = TensorD::uniform(s, -3.0, 3.0, g);
    for (double& v : x.span()) v = v < 0 ? v - 0.05 : v + 0.05;
    return x;
}

/// Runs gradcheck and reports its sentence on failure.
void check_gradient(const std::function<TensorD(const std::vector<TensorD>&)>& f, const std::vector<TensorD>& in,
                    const std::string& what) {
    const tapegrad::GradcheckResult r = tapegrad::gradcheck(f, in);
    CHECK_MESSAGE(r.ok, what, ": ", r.message);
}

using tapegrad::testing::check_throws;

using tapegrad::testing::all_finite;

const std::vector<Shape> test_shapes = {Shape{}, Shape{1}, Shape{5}, Shape{2, 3}, Shape{2, 3, 4}};

}  // namespace

TEST_CASE("every activation module passes gradcheck and describes itself") {
    struct Case {
        std::shared_ptr<nn::Module<double>> m;
        const char* text;
    };
    Generator g(2);
    const std::vector<Case> modules = {
        {std::make_shared<nn::Step<double>>(), "Step()"},
        {std::make_shared<nn::Identity<double>>(), "Identity()"},
        {std::make_shared<nn::Sigmoid<double>>(), "Sigmoid()"},
        {std::make_shared<nn::Tanh<double>>(), "Tanh()"},
        {std::make_shared<nn::ReLU<double>>(), "ReLU()"},
        {std::make_shared<nn::LeakyReLU<double>>(), "LeakyReLU(negative_slope=0.01)"},
        {std::make_shared<nn::LeakyReLU<double>>(0.2), "LeakyReLU(negative_slope=0.2)"},
        {std::make_shared<nn::PReLU<double>>(), "PReLU(num_parameters=1)"},
        {std::make_shared<nn::PReLU<double>>(3), "PReLU(num_parameters=3)"},
        {std::make_shared<nn::ELU<double>>(), "ELU(alpha=1)"},
        {std::make_shared<nn::Softplus<double>>(), "Softplus(beta=1, threshold=20)"},
        {std::make_shared<nn::GELU<double>>(), "GELU(approximate='none')"},
        {std::make_shared<nn::GELU<double>>(tapegrad::GeluApproximation::tanh), "GELU(approximate='tanh')"},
        {std::make_shared<nn::SiLU<double>>(), "SiLU()"},
        {std::make_shared<nn::Maxout<double>>(3, 2, 4, g), "Maxout(in=3, out=2, k=4)"},
    };
    for (const Case& c : modules) {
        CHECK(c.m->describe() == c.text);
        // Dimension 1 is 3 in every shape: PReLU(3) needs 3 channels, Maxout(in=3) 3 features.
        for (const Shape& s : {Shape{4, 3}, Shape{2, 3, 3}}) {
            auto m = c.m;
            check_gradient([m](const std::vector<TensorD>& in) { return m->forward(in[0]); }, {away_from_zero(s, g)},
                           std::string(c.text) + " on shape " + s.str_x());
        }
    }
}

TEST_CASE("activation reference values") {
    const TensorD x = TensorD::from({6}, {-2.0, -1.0, -1e-30, 0.0, 1e-30, 1.0});
    auto close = [](const TensorD& y, const std::vector<double>& want) {
        REQUIRE(y.numel() == static_cast<int64_t>(want.size()));
        for (size_t i = 0; i < want.size(); ++i)
            CHECK(y.data()[i] == doctest::Approx(want[i]).epsilon(1e-12));
    };
    close(tapegrad::step(x), {0, 0, 0, 0, 1, 1});  // x > 0 ? 1 : 0, so step(0) = 0
    close(tapegrad::identity(x), {-2, -1, -1e-30, 0, 1e-30, 1});
    close(tapegrad::leaky_relu(x), {-0.02, -0.01, -1e-32, 0, 1e-30, 1});  // 0.01 x for x <= 0
    // elu: expm1(-2) = -0.8646647167633873, expm1(-1) = -0.6321205588285577
    close(tapegrad::elu(x), {-0.8646647167633873, -0.6321205588285577, -1e-30, 0, 1e-30, 1});
    // softplus: log1p(exp(x)): log1p(exp(-2)) = 0.1269280110429725, log1p(exp(-1)) = 0.31326168751822286,
    // log(2) = 0.6931471805599453, log1p(e) = 1.3132616875182228
    close(tapegrad::softplus(x), {0.1269280110429725, 0.31326168751822286, 0.6931471805599453, 0.6931471805599453,
                                  0.6931471805599453, 1.3132616875182228});
    // softplus(1, beta=2) = log1p(exp(2)) / 2 = 1.0634640055214863
    CHECK(tapegrad::softplus(TensorD::scalar(1.0), 2.0).item() == doctest::Approx(1.0634640055214863));
    // above the threshold softplus is the identity: softplus(25) = 25 exactly, gradient 1
    CHECK(tapegrad::softplus(TensorD::scalar(25.0)).item() == 25.0);
    // gelu: x * 0.5 * (1 + erf(x / sqrt(2))): gelu(-2) = -0.04550026389635842, gelu(-1) = -0.15865525393145707,
    // gelu(1) = 0.8413447460685429
    close(tapegrad::gelu(x), {-0.04550026389635842, -0.15865525393145707, -5e-31, 0, 5e-31, 0.8413447460685429});
    // tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): at -2 -0.04540230591222494, at 1 0.8411919906082768
    const TensorD gt = tapegrad::gelu(x, tapegrad::GeluApproximation::tanh);
    CHECK(gt.data()[0] == doctest::Approx(-0.04540230591222494).epsilon(1e-12));
    CHECK(gt.data()[5] == doctest::Approx(0.8411919906082768).epsilon(1e-12));
    // silu: x / (1 + exp(-x)): silu(-2) = -0.2384058440442351, silu(-1) = -0.2689414213699951,
    // silu(1) = 0.7310585786300049
    close(tapegrad::silu(x), {-0.2384058440442351, -0.2689414213699951, -5e-31, 0, 5e-31, 0.7310585786300049});
}

TEST_CASE("step has zero gradient everywhere (documented: its derivative is 0 or undefined)") {
    Generator g(3);
    TensorD x = TensorD::uniform({4, 5}, -2.0, 2.0, g);
    x.requires_grad_();
    tapegrad::sum(tapegrad::step(x) * 3.0).backward();
    REQUIRE(x.grad().defined());
    for (const double v : x.grad().span()) CHECK(v == 0.0);
}

TEST_CASE_TEMPLATE("sigmoid and tanh are finite and correct at +-1e4", T, float, double) {
    Tensor<T> x = Tensor<T>::from({2}, {T(1e4), T(-1e4)});
    x.requires_grad_();
    const Tensor<T> s = tapegrad::sigmoid(x);
    CHECK(s.data()[0] == T(1));
    CHECK(s.data()[1] == T(0));
    tapegrad::sum(s).backward();
    CHECK(all_finite(x.grad()));
    CHECK(x.grad().data()[0] == T(0));  // y (1 - y) with y = 1, and with y = 0
    CHECK(x.grad().data()[1] == T(0));

    x.reset_grad();
    const Tensor<T> t = tapegrad::tanh(x);
    CHECK(t.data()[0] == T(1));
    CHECK(t.data()[1] == T(-1));
    tapegrad::sum(t).backward();
    CHECK(all_finite(x.grad()));
    CHECK(x.grad().data()[0] == T(0));  // 1 - y^2 with y = +-1
    CHECK(x.grad().data()[1] == T(0));
}

TEST_CASE("sigmoid keeps its tiny values far into the negative side") {
    // math.exp(-100) / (1 + math.exp(-100)) = 3.720075976020836e-44: 1 / (1 + e^100) would lose nothing
    // here in double, but its e^(-x) overflows for x < -709.
    CHECK(tapegrad::sigmoid(TensorD::scalar(-100.0)).item() == doctest::Approx(3.720075976020836e-44).epsilon(1e-12));
    // float: math.exp(-80) / (1 + math.exp(-80)) = 1.8048513878454153e-35
    CHECK(tapegrad::sigmoid(TensorF::scalar(-80.0f)).item() == doctest::Approx(1.8048513878454153e-35).epsilon(1e-5));
    // the gradient s (1 - s) at -30: 9.357622968838424e-14
    TensorD x = TensorD::scalar(-30.0);
    x.requires_grad_();
    tapegrad::sigmoid(x).backward();
    CHECK(x.grad().item() == doctest::Approx(9.357622968838424e-14).epsilon(1e-12));
}

TEST_CASE_TEMPLATE("every activation is finite in value and gradient at +-1e4", T, float, double) {
    const std::vector<std::function<Tensor<T>(const Tensor<T>&)>> fs = {
        [](const Tensor<T>& x) { return tapegrad::step(x); },
        [](const Tensor<T>& x) { return tapegrad::leaky_relu(x); },
        [](const Tensor<T>& x) { return tapegrad::elu(x); },
        [](const Tensor<T>& x) { return tapegrad::softplus(x); },
        [](const Tensor<T>& x) { return tapegrad::softplus(x, 1.0, 1e6); },  // no linear shortcut
        [](const Tensor<T>& x) { return tapegrad::gelu(x); },
        [](const Tensor<T>& x) { return tapegrad::gelu(x, tapegrad::GeluApproximation::tanh); },
        [](const Tensor<T>& x) { return tapegrad::silu(x); },
        [](const Tensor<T>& x) { return tapegrad::prelu(x, Tensor<T>::full({1}, T(0.25))); },
    };
    for (size_t i = 0; i < fs.size(); ++i) {
        CAPTURE(i);
        Tensor<T> x = Tensor<T>::from({4}, {T(1e4), T(-1e4), T(1e3), T(-1e3)});
        x.requires_grad_();
        const Tensor<T> y = fs[i](x);
        CHECK(all_finite(y));
        tapegrad::sum(y).backward();
        CHECK(all_finite(x.grad()));
    }
    // The limits: softplus, gelu and silu approach x for large x and 0 for large negative x.
    const Tensor<T> big = Tensor<T>::from({2}, {T(1e4), T(-1e4)});
    for (const Tensor<T>& y : {tapegrad::softplus(big), tapegrad::gelu(big), tapegrad::silu(big)}) {
        CHECK(y.data()[0] == T(1e4));
        CHECK(y.data()[1] == doctest::Approx(0.0));
    }
    CHECK(tapegrad::elu(big).data()[1] == T(-1));  // -alpha
}

TEST_CASE("prelu: one shared slope, gradient for x and the slope") {
    Generator g(4);
    for (const Shape& s : test_shapes) {
        const TensorD x = away_from_zero(s, g);
        const TensorD a = TensorD::from({1}, {0.3});
        check_gradient([](const std::vector<TensorD>& in) { return tapegrad::prelu(in[0], in[1]); }, {x, a},
                       "prelu shared on shape " + s.str_x());
    }
}

TEST_CASE("prelu: one slope per channel (dimension 1), gradient for x and the slopes") {
    Generator g(5);
    for (const Shape& s : {Shape{2, 3}, Shape{4, 3, 2}, Shape{2, 3, 2, 2}, Shape{1, 5}}) {
        const TensorD x = away_from_zero(s, g);
        const TensorD a = TensorD::uniform({s[1]}, 0.0, 0.5, g);
        check_gradient([](const std::vector<TensorD>& in) { return tapegrad::prelu(in[0], in[1]); }, {x, a},
                       "prelu per-channel on shape " + s.str_x());
    }
}

TEST_CASE("prelu reference: slopes apply per channel, and their gradient sums x over negative entries") {
    TensorD x = TensorD::from({2, 2}, {-1.0, 2.0, 3.0, -4.0});
    TensorD a = TensorD::from({2}, {0.1, 0.5});
    a.requires_grad_();
    const TensorD y = tapegrad::prelu(x, a);
    CHECK(y.to_vector() == std::vector<double>{-0.1, 2.0, 3.0, -2.0});
    tapegrad::sum(y).backward();
    // d/da_c = sum of x over channel c where x <= 0: channel 0 has -1, channel 1 has -4
    CHECK(a.grad().to_vector() == std::vector<double>{-1.0, -4.0});
    CHECK(y.grad_fn_name() == std::string("prelu"));
}

TEST_CASE("PReLU module: parameter 'weight' [C] initialised to 0.25, learns through backward") {
    nn::PReLU<double> m(3);
    const auto params = m.named_parameters();
    REQUIRE(params.size() == 1);
    CHECK(params[0].first == "weight");
    CHECK(params[0].second.shape() == Shape{3});
    for (const double v : m.weight().span()) CHECK(v == 0.25);
    nn::PReLU<double> custom(1, 0.1);
    CHECK(custom.weight().item() == 0.1);

    const TensorD x = TensorD::from({1, 3}, {-2.0, -1.0, 1.0});
    tapegrad::sum(m(x)).backward();
    CHECK(m.weight().grad().to_vector() == std::vector<double>{-2.0, -1.0, 0.0});
}

TEST_CASE("maxout passes gradcheck for input, weight and bias") {
    Generator g(6);
    struct Case {
        Shape x;
        int64_t out, k;
    };
    for (const Case& c : {Case{{3, 4}, 2, 3}, Case{{1, 2}, 1, 2}, Case{{2, 2, 3}, 3, 2}, Case{{5, 3}, 2, 1}}) {
        const int64_t in = c.x[c.x.rank() - 1];
        const TensorD x = TensorD::uniform(c.x, -1.0, 1.0, g);
        const TensorD w = TensorD::uniform({c.out * c.k, in}, -1.0, 1.0, g);
        const TensorD b = TensorD::uniform({c.out * c.k}, -1.0, 1.0, g);
        const int64_t k = c.k;
        check_gradient([k](const std::vector<TensorD>& v) { return tapegrad::maxout(v[0], v[1], v[2], k); }, {x, w, b},
                       "maxout on shape " + c.x.str_x() + " k=" + std::to_string(k));
    }
}

TEST_CASE("maxout reference: the max over each unit's k pieces") {
    // x = [1, 2]; unit 0 has pieces [1, 0].x = 1 and [0, 1].x = 2, unit 1 has [1, 1].x = 3 and [-1, 0].x + 5 = 4
    const TensorD x = TensorD::from({1, 2}, {1.0, 2.0});
    const TensorD w = TensorD::from({4, 2}, {1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 0.0});
    const TensorD b = TensorD::from({4}, {0.0, 0.0, 0.0, 5.0});
    const TensorD y = tapegrad::maxout(x, w, b, 2);
    CHECK(y.shape() == Shape{1, 2});
    CHECK(y.to_vector() == std::vector<double>{2.0, 4.0});
}

TEST_CASE("maxout generalises ReLU: with one piece fixed at zero it is relu(x w^T + b)") {
    Generator g(7);
    const TensorD x = TensorD::uniform({6, 3}, -1.0, 1.0, g);
    const TensorD w1 = TensorD::uniform({2, 3}, -1.0, 1.0, g);
    const TensorD b1 = TensorD::uniform({2}, -1.0, 1.0, g);
    // pieces per unit j: rows 2j (the linear unit) and 2j + 1 (all zero)
    TensorD w = TensorD::zeros({4, 3});
    TensorD b = TensorD::zeros({4});
    for (int64_t j = 0; j < 2; ++j) {
        for (int64_t i = 0; i < 3; ++i) w(2 * j, i) = w1(j, i);
        b(2 * j) = b1(j);
    }
    const TensorD y = tapegrad::maxout(x, w, b, 2);
    const TensorD want = tapegrad::relu(tapegrad::linear(x, w1, b1));
    for (int64_t i = 0; i < y.numel(); ++i) CHECK(y.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-14));
}

TEST_CASE("Maxout module: parameters named and shaped as documented, forward is maxout") {
    Generator g(8);
    nn::Maxout<double> m(4, 3, 2, g);
    const auto params = m.named_parameters();
    REQUIRE(params.size() == 2);
    CHECK(params[0].first == "weight");
    CHECK(params[0].second.shape() == Shape{6, 4});
    CHECK(params[1].first == "bias");
    CHECK(params[1].second.shape() == Shape{6});
    CHECK(m.num_parameters() == 30);
    const TensorD x = TensorD::uniform({5, 4}, -1.0, 1.0, g);
    const TensorD y = m(x);
    CHECK(y.shape() == Shape{5, 3});
    CHECK(y.to_vector() == tapegrad::maxout(x, m.weight(), m.bias(), 2).to_vector());
    tapegrad::sum(y).backward();
    CHECK(m.weight().grad().defined());
    CHECK(m.bias().grad().defined());
}

TEST_CASE("activation modules compose in Sequential (float)") {
    Generator g(9);
    nn::Sequential<float> net(nn::Maxout<float>(4, 6, 2, g), nn::PReLU<float>(6), nn::GELU<float>(), nn::SiLU<float>(),
                              nn::ELU<float>(), nn::LeakyReLU<float>(), nn::Softplus<float>(), nn::Tanh<float>(),
                              nn::Sigmoid<float>(), nn::ReLU<float>(), nn::Identity<float>(), nn::Step<float>());
    const TensorF y = net(TensorF::uniform({3, 4}, -1.0f, 1.0f, g));
    CHECK(y.shape() == Shape{3, 6});
    CHECK(net.named_parameters().size() == 3);  // 0.weight, 0.bias, 1.weight
    CHECK(net.named_parameters()[2].first == "1.weight");
}

TEST_CASE("activation errors name the function and the values") {
    const TensorD x = TensorD::zeros({2, 3});
    check_throws<tapegrad::ShapeError>([&] { (void)tapegrad::prelu(x, TensorD::full({2}, 0.25)); },
                                       "prelu: weight of shape [2] does not fit input of shape [2, 3]");
    check_throws<tapegrad::ShapeError>([&] { (void)nn::PReLU<double>(4)(x); }, "expected 1 element or 3");
    check_throws<tapegrad::ValueError>([] { nn::PReLU<double> m(0); }, "PReLU: num_parameters must be at least 1");
    check_throws<tapegrad::ValueError>([&] { (void)tapegrad::softplus(x, 0.0); }, "softplus: beta must be positive");
    check_throws<tapegrad::ValueError>([] { nn::Softplus<double> m(-1.0); }, "Softplus: beta must be positive, got -1");
    const TensorD w = TensorD::zeros({5, 3});
    check_throws<tapegrad::ShapeError>([&] { (void)tapegrad::maxout(x, w, TensorD(), 2); },
                                       "maxout: weight of shape [5, 3] has 5 rows, not a multiple of k = 2");
    check_throws<tapegrad::ValueError>([&] { (void)tapegrad::maxout(x, w, TensorD(), 0); },
                                       "maxout: k (pieces per unit) must be at least 1, got 0");
    check_throws<tapegrad::ShapeError>([&] { (void)tapegrad::maxout(TensorD::zeros({2, 4}), w, TensorD(), 5); },
                                       "linear: input shape [2, 4]");
    Generator g(10);
    check_throws<tapegrad::ValueError>([&] { nn::Maxout<double> m(3, 2, 0, g); }, "Maxout: in_features (3)");
}
