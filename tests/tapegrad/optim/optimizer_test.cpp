// Tests for tapegrad/optim/optimizer.hpp, run over every optimizer: construction checks, zero_grad,
// skipping parameters without a gradient, state()/load_state() (a bitwise-exact resume, strict rejection
// of foreign state), zero heap allocations in a steady-state step, and convergence on a quadratic.
//
// The allocation test counts calls to the global operator new through the test binary's replacements
// (tests/support/alloc_counting.cpp).

#include <tapegrad/optim/optim.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/alloc_counting.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace {


using tapegrad::Tensor;
using tapegrad::TensorD;
using tapegrad::ShapeError;
using tapegrad::ValueError;
namespace optim = tapegrad::optim;

template <class T>
using Params = std::vector<Tensor<T>>;
template <class T>
using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer<T>>(Params<T>)>;

/// Every optimizer, in a configuration that exercises all of its state.
template <class T>
std::vector<std::pair<std::string, MakeOptimizer<T>>> all_optimizers() {
    return {
        {"SGD nesterov", [](Params<T> ps) -> std::unique_ptr<optim::Optimizer<T>> {
             return std::make_unique<optim::SGD<T>>(std::move(ps), optim::SGDOptions{.lr = 0.05, .momentum = 0.9,
                                                                                     .weight_decay = 1e-3,
                                                                                     .nesterov = true});
         }},
        {"SGD dampened", [](Params<T> ps) -> std::unique_ptr<optim::Optimizer<T>> {
             return std::make_unique<optim::SGD<T>>(std::move(ps),
                                                    optim::SGDOptions{.lr = 0.1, .momentum = 0.5, .dampening = 0.3});
         }},
        {"Adam amsgrad", [](Params<T> ps) -> std::unique_ptr<optim::Optimizer<T>> {
             return std::make_unique<optim::Adam<T>>(
                 std::move(ps), optim::AdamOptions{.lr = 0.05, .weight_decay = 1e-6, .amsgrad = true});
         }},
        {"AdamW", [](Params<T> ps) -> std::unique_ptr<optim::Optimizer<T>> {
             return std::make_unique<optim::AdamW<T>>(std::move(ps),
                                                      optim::AdamWOptions{.lr = 0.05, .weight_decay = 1e-6});
         }},
        {"RMSprop centered momentum", [](Params<T> ps) -> std::unique_ptr<optim::Optimizer<T>> {
             return std::make_unique<optim::RMSprop<T>>(
                 std::move(ps), optim::RMSpropOptions{.lr = 1e-3, .momentum = 0.5, .centered = true});
         }},
        {"RMSprop", [](Params<T> ps) -> std::unique_ptr<optim::Optimizer<T>> {
             return std::make_unique<optim::RMSprop<T>>(std::move(ps), optim::RMSpropOptions{.lr = 1e-2});
         }},
        {"Adagrad", [](Params<T> ps) -> std::unique_ptr<optim::Optimizer<T>> {
             return std::make_unique<optim::Adagrad<T>>(
                 std::move(ps), optim::AdagradOptions{.lr = 0.5, .lr_decay = 1e-3, .initial_accumulator_value = 0.1});
         }},
    };
}

/// A leaf that requires grad, with the given values.
template <class T = double>
Tensor<T> param(const tapegrad::Shape& shape, const std::vector<T>& values) {
    Tensor<T> p = Tensor<T>::from(shape, values);
    p.requires_grad_();
    return p;
}

/// Two parameters, [2, 3] and [4].
Params<double> two_params() {
    return {param({2, 3}, {0.1, -0.2, 0.3, -0.4, 0.5, -0.6}), param({4}, {1.0, 2.0, -1.0, 0.5})};
}

/// Deterministic, step-dependent gradients: grad of p_i[k] is sin(1 + 0.7 k + 1.3 i + 0.37 step).
void set_grads(const Params<double>& ps, int step) {
    for (size_t i = 0; i < ps.size(); ++i) {
        std::vector<double> g(static_cast<size_t>(ps[i].numel()));
        for (size_t k = 0; k < g.size(); ++k)
            g[k] = std::sin(1.0 + 0.7 * static_cast<double>(k) + 1.3 * static_cast<double>(i) + 0.37 * step);
        TensorD p = ps[i];
        p.zero_grad();
        tapegrad::sum(p * TensorD::from(p.shape(), g)).backward();
    }
}

/// Copies of the parameters' values.
Params<double> snapshot(const Params<double>& ps) {
    Params<double> out;
    for (const TensorD& p : ps) out.push_back(param(p.shape(), p.to_vector()));
    return out;
}

bool bitwise_equal(const TensorD& a, const TensorD& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data_ptr(), b.data_ptr(), static_cast<size_t>(a.numel()) * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("Optimizer: zero_grad zeroes the gradients in place and keeps the buffers") {
    Params<double> ps = two_params();
    optim::SGD<double> opt(ps, {.lr = 0.1});
    CHECK(opt.params().size() == 2);
    CHECK(opt.params()[0].same_as(ps[0]));
    tapegrad::sum(ps[0]).backward();  // only the first parameter gets a gradient
    const double* before = ps[0].grad().data_ptr();
    opt.zero_grad();
    REQUIRE(ps[0].grad().defined());
    CHECK(ps[0].grad().data_ptr() == before);
    for (const double g : ps[0].grad().to_vector()) CHECK(g == 0.0);
    CHECK_FALSE(ps[1].grad().defined());
}

TEST_CASE("Optimizer: parameters without a gradient are skipped and get no state") {
    for (const auto& config : all_optimizers<double>()) {
        const std::string& name = config.first;  // not a structured binding: INFO captures it
        const auto& make = config.second;
        INFO(name);
        Params<double> ps = two_params();
        const std::vector<double> second = ps[1].to_vector();
        auto opt = make(ps);
        tapegrad::sum(ps[0] * ps[0]).backward();
        opt->step();
        opt->step();
        CHECK(ps[1].to_vector() == second);
        for (const auto& [key, value] : opt->state()) CHECK(key.rfind("0.", 0) == 0);
    }
}

TEST_CASE("Optimizer: the constructor rejects an empty list, undefined, non-leaf and repeated parameters") {
    CHECK_THROWS_WITH_AS(optim::SGD<double>(Params<double>{}), "SGD: got an empty parameter list", ValueError);
    CHECK_THROWS_WITH_AS(optim::Adam<double>(Params<double>{TensorD()}), "Adam: parameter 0 is an undefined tensor",
                         ValueError);
    TensorD p = param({2}, {1.0, 2.0});
    TensorD q = p * 2.0;
    CHECK_THROWS_WITH_AS(optim::RMSprop<double>(Params<double>{p, q}),
                         "RMSprop: parameter 1 of shape [2] is not a leaf (it was produced by 'mul'); optimize leaf "
                         "tensors only",
                         ValueError);
    CHECK_THROWS_WITH_AS(optim::Adagrad<double>(Params<double>{p, p}),
                         "Adagrad: parameter 1 is the same tensor as parameter 0 (it would be updated twice)",
                         ValueError);
}

TEST_CASE("Optimizer: set_lr changes the rate of the next step") {
    TensorD p = param({1}, {1.0});
    optim::SGD<double> opt({p}, {.lr = 1.0});
    opt.set_lr(0.25);
    CHECK(opt.lr() == 0.25);
    tapegrad::sum(p).backward();
    opt.step();
    CHECK(p(0) == 0.75);
    CHECK_THROWS_AS(opt.set_lr(std::nan("")), ValueError);
}

TEST_CASE("Optimizer: save, then resume in a new optimizer, reproduces uninterrupted training bitwise") {
    for (const auto& config : all_optimizers<double>()) {
        const std::string& name = config.first;  // not a structured binding: INFO captures it
        const auto& make = config.second;
        INFO(name);
        // Run A: 5 steps, checkpoint (parameters + state), 5 more steps.
        Params<double> a = two_params();
        auto opt_a = make(a);
        for (int s = 0; s < 5; ++s) {
            set_grads(a, s);
            opt_a->step();
        }
        const Params<double> saved_params = snapshot(a);
        const auto saved_state = opt_a->state();
        if (name.rfind("SGD", 0) != 0) CHECK(saved_state.back().second.item() == 5);
        for (int s = 5; s < 10; ++s) {
            set_grads(a, s);
            opt_a->step();
        }
        // Run B: a fresh optimizer over the checkpointed values, loaded with the saved state.
        Params<double> b = snapshot(saved_params);
        auto opt_b = make(b);
        opt_b->load_state(saved_state);
        for (int s = 5; s < 10; ++s) {
            set_grads(b, s);
            opt_b->step();
        }
        for (size_t i = 0; i < a.size(); ++i) CHECK(bitwise_equal(a[i], b[i]));
        const auto state_a = opt_a->state(), state_b = opt_b->state();
        REQUIRE(state_a.size() == state_b.size());
        for (size_t k = 0; k < state_a.size(); ++k) {
            CHECK(state_a[k].first == state_b[k].first);
            CHECK(bitwise_equal(state_a[k].second, state_b[k].second));
        }
        // The saved snapshot did not move with A.
        CHECK_FALSE(bitwise_equal(saved_state[0].second, state_a[0].second));
    }
}

TEST_CASE("Optimizer: state() is empty before the first step; load_state of an empty state resets") {
    for (const auto& config : all_optimizers<double>()) {
        const std::string& name = config.first;  // not a structured binding: INFO captures it
        const auto& make = config.second;
        INFO(name);
        Params<double> ps = two_params();
        auto opt = make(ps);
        CHECK(opt->state().empty());
        set_grads(ps, 0);
        opt->step();
        CHECK(opt->state().size() == 2 * opt->state_keys().size());
        opt->load_state({});
        CHECK(opt->state().empty());
    }
}

TEST_CASE("Optimizer: load_state rejects foreign names, listing what is missing, unexpected and repeated") {
    Params<double> ps = two_params();
    optim::Adam<double> opt(ps, {.lr = 0.1});
    set_grads(ps, 0);
    opt.step();
    const auto good = opt.state();  // 0.exp_avg, 0.exp_avg_sq, 0.step, 1.exp_avg, 1.exp_avg_sq, 1.step
    REQUIRE(good.size() == 6);

    auto missing = good;
    missing.erase(missing.begin() + 1);
    CHECK_THROWS_WITH_AS(opt.load_state(missing),
                         "Adam::load_state: the state does not fit this optimizer (2 parameters; keys per parameter: "
                         "exp_avg, exp_avg_sq, step); missing: 0.exp_avg_sq",
                         ValueError);

    auto foreign = good;
    foreign.emplace_back("2.exp_avg", good[0].second);
    foreign.emplace_back("0.momentum_buffer", good[0].second);
    foreign.emplace_back("x.exp_avg", good[0].second);
    foreign.emplace_back("00.exp_avg", good[0].second);
    foreign.emplace_back("step", good[2].second);
    foreign.emplace_back("1.exp_avg", good[3].second);
    CHECK_THROWS_WITH_AS(opt.load_state(foreign),
                         "Adam::load_state: the state does not fit this optimizer (2 parameters; keys per parameter: "
                         "exp_avg, exp_avg_sq, step); unexpected: 2.exp_avg, 0.momentum_buffer, x.exp_avg, "
                         "00.exp_avg, step; repeated: 1.exp_avg",
                         ValueError);

    optim::SGD<double> plain(ps, {.lr = 0.1});
    CHECK_THROWS_WITH_AS(plain.load_state({good[0]}),
                         "SGD::load_state: the state does not fit this optimizer (2 parameters; keys per parameter: "
                         "none); unexpected: 0.exp_avg",
                         ValueError);
}

TEST_CASE("Optimizer: load_state rejects wrong shapes and step values, and changes nothing on failure") {
    Params<double> ps = two_params();
    optim::Adam<double> opt(ps, {.lr = 0.1});
    set_grads(ps, 0);
    opt.step();
    const auto good = opt.state();

    auto shapes = good;
    shapes[0].second = TensorD::zeros({6});
    shapes[4].second = TensorD::zeros({4, 1});
    shapes[5].second = TensorD::from({1}, {1.0});
    CHECK_THROWS_WITH_AS(opt.load_state(shapes),
                         "Adam::load_state: shape mismatch: 0.exp_avg has shape [6], expected [2, 3], 1.exp_avg_sq has "
                         "shape [4, 1], expected [4], 1.step has shape [1], expected []",
                         ShapeError);

    auto steps = good;
    steps[2].second = TensorD::scalar(1.5);
    CHECK_THROWS_WITH_AS(opt.load_state(steps),
                         "Adam::load_state: '0.step' is 1.5 (must be a whole number >= 1)", ValueError);
    steps[2].second = TensorD::scalar(0);
    CHECK_THROWS_AS(opt.load_state(steps), ValueError);

    auto undefined = good;
    undefined[1].second = TensorD();
    CHECK_THROWS_WITH_AS(opt.load_state(undefined), "Adam::load_state: '0.exp_avg_sq' is an undefined tensor",
                         ValueError);

    const auto after = opt.state();
    REQUIRE(after.size() == good.size());
    for (size_t k = 0; k < good.size(); ++k) CHECK(bitwise_equal(after[k].second, good[k].second));
}

TEST_CASE("Optimizer: a parameter absent from the loaded state starts fresh") {
    Params<double> ps = two_params();
    optim::Adam<double> opt(ps, {.lr = 0.1});
    set_grads(ps, 0);
    opt.step();
    auto st = opt.state();
    st.resize(3);  // keep parameter 0 only
    optim::Adam<double> other(snapshot(ps), {.lr = 0.1});
    other.load_state(st);
    const auto loaded = other.state();
    REQUIRE(loaded.size() == 3);
    CHECK(loaded[0].first == "0.exp_avg");
}

TEST_CASE("Optimizer: a steady-state zero_grad + step allocates nothing on the heap") {
    using tapegrad::testing::AllocationCounter;
    if (!AllocationCounter::works()) {
        MESSAGE(AllocationCounter::why_not());
        return;
    }
    for (const auto& config : all_optimizers<double>()) {
        const std::string& name = config.first;  // not a structured binding: INFO captures it
        const auto& make = config.second;
        INFO(name);
        Params<double> ps = two_params();
        auto opt = make(ps);
        set_grads(ps, 0);
        opt->step();  // the first step allocates the state
        opt->step();
        AllocationCounter count;
        for (int s = 0; s < 3; ++s) {
            opt->zero_grad();
            opt->step();
        }
        CHECK(count.stop() == 0);
    }
    {
        Params<double> ps = two_params();
        set_grads(ps, 0);
        AllocationCounter count;
        (void)optim::clip_grad_norm_(ps, 0.1);
        optim::clip_grad_value_(ps, 0.05);
        CHECK(count.stop() == 0);
    }
}

TEST_CASE_TEMPLATE("Optimizer: every optimizer minimises sum((p - c)^2) to within 1e-3", T, float, double) {
    const std::vector<T> target{1.5f, -0.5f, 2.0f};
    const Tensor<T> c = Tensor<T>::from({3}, target);
    for (const auto& config : all_optimizers<T>()) {
        const std::string& name = config.first;  // not a structured binding: INFO captures it
        const auto& make = config.second;
        INFO(name);
        Tensor<T> p = param<T>({3}, {0, 0, 0});
        auto opt = make({p});
        // RMSprop's normalised steps keep a size of about lr near the minimum; decay the rate to settle.
        optim::ExponentialLR sched(*opt, name.rfind("RMSprop", 0) == 0 ? 0.99 : 1.0);
        for (int s = 0; s < 3000; ++s) {
            opt->zero_grad();
            const Tensor<T> d = p - c;
            tapegrad::sum(d * d).backward();
            opt->step();
            if (s % 10 == 9) sched.step();
        }
        for (int k = 0; k < 3; ++k) CHECK(std::abs(p(k) - target[static_cast<size_t>(k)]) < 1e-3);
    }
}
