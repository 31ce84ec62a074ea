// Tests for tapegrad/nn/perceptron.hpp: the learning rule on the four two-input truth tables, the XOR
// gate network, and the argument checks. Pinned numbers come from running the rule by hand (see below).

#include <tapegrad/nn/perceptron.hpp>

#include <doctest/doctest.h>

#include "../test_support.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using tapegrad::ShapeError;
using tapegrad::ValueError;
using tapegrad::nn::Perceptron;
using tapegrad::nn::PerceptronTrainResult;

namespace {

const std::vector<std::vector<double>> inputs = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
const std::vector<double> and_targets = {0, 0, 0, 1};
const std::vector<double> nand_targets = {1, 1, 1, 0};
const std::vector<double> or_targets = {0, 1, 1, 1};
const std::vector<double> xor_targets = {0, 1, 1, 0};

/// The exception message of `f`, or "" if it does not throw `E`.
using tapegrad::testing::message_of;

}  // namespace

TEST_CASE("perceptron: AND, NAND and OR converge from zero weights and classify all four rows") {
    const std::vector<std::pair<const char*, const std::vector<double>*>> gates = {
        {"AND", &and_targets}, {"NAND", &nand_targets}, {"OR", &or_targets}};
    for (const auto& gate : gates) {
        const std::string name = gate.first;
        const std::vector<double>* targets = gate.second;
        for (const double lr : {1.0, 0.1, 0.5}) {
            CAPTURE(name);
            CAPTURE(lr);
            Perceptron p(2);
            const PerceptronTrainResult r = p.train(inputs, *targets, {.lr = lr, .max_epochs = 100});
            CHECK(r.converged);
            CHECK(r.errors_last_epoch == 0);
            CHECK(r.epochs >= 2);  // from zero weights the first epoch always makes a mistake
            CHECK(r.epochs <= 10);
            for (size_t i = 0; i < inputs.size(); ++i) CHECK(p.predict(inputs[i]) == (*targets)[i]);
            CHECK(p.accuracy(inputs, *targets) == 1.0);
        }
    }
}

TEST_CASE("perceptron: AND from zero weights, lr 1, takes 6 epochs and ends at w = (2, 1), b = -2") {
    // Rows in order 00, 01, 10, 11, an update on each mistake. Mistakes and (w, b) after each epoch, from a
    // Python transcription of the rule:
    //   1: 1 ((1, 1), 1)   2: 3 ((2, 1), 0)   3: 3 ((2, 1), -1)   4: 2 ((2, 2), -1)   5: 1 ((2, 1), -2)   6: 0
    Perceptron p(2);
    const auto r = p.train(inputs, and_targets);
    CHECK(r.converged);
    CHECK(r.epochs == 6);
    CHECK(r.errors_last_epoch == 0);
    CHECK(p.weights()[0] == 2.0);
    CHECK(p.weights()[1] == 1.0);
    CHECK(p.bias() == -2.0);
}

TEST_CASE("perceptron: XOR never converges, and the weights cycle") {
    // Pinned: from zero weights with lr 1 every epoch from the third on makes all 4 mistakes and ends at
    // w = (-1, 0), b = 1 -- the same weights, so the rule cycles forever (no line separates XOR).
    Perceptron p(2);
    const auto r = p.train(inputs, xor_targets, {.lr = 1.0, .max_epochs = 100});
    CHECK_FALSE(r.converged);
    CHECK(r.epochs == 100);
    CHECK(r.errors_last_epoch == 4);
    CHECK(p.weights()[0] == -1.0);
    CHECK(p.weights()[1] == 0.0);
    CHECK(p.bias() == 1.0);
    CHECK(p.accuracy(inputs, xor_targets) < 1.0);

    const auto again = p.train(inputs, xor_targets, {.lr = 1.0, .max_epochs = 1});
    CHECK_FALSE(again.converged);
    CHECK(again.errors_last_epoch == 4);
    CHECK(p.weights()[0] == -1.0);
    CHECK(p.weights()[1] == 0.0);
    CHECK(p.bias() == 1.0);

    // Whatever the start and the step size, no perceptron gets XOR right.
    for (const double lr : {0.01, 0.3, 2.0}) {
        Perceptron q({0.3, -0.7}, 0.2);
        const auto rq = q.train(inputs, xor_targets, {.lr = lr, .max_epochs = 1000});
        CHECK_FALSE(rq.converged);
        CHECK(rq.errors_last_epoch > 0);
        CHECK(q.accuracy(inputs, xor_targets) <= 0.75);
    }
}

TEST_CASE("perceptron: training continues from explicit initial weights") {
    Perceptron p({1.0, 1.0}, -1.5);  // already AND
    const auto r = p.train(inputs, and_targets);
    CHECK(r.converged);
    CHECK(r.epochs == 1);  // one clean pass proves it
    CHECK(p.bias() == -1.5);
    CHECK(p.net_input(std::vector<double>{1, 1}) == doctest::Approx(0.5));

    Perceptron q({1.0, 1.0}, -1.5);  // AND, trained towards OR
    CHECK(q.train(inputs, or_targets).converged);
    for (size_t i = 0; i < inputs.size(); ++i) CHECK(q.predict(inputs[i]) == or_targets[i]);
}

TEST_CASE("perceptron: works on more than two inputs (3-input majority)") {
    std::vector<std::vector<double>> x;
    std::vector<double> t;
    for (int m = 0; m < 8; ++m) {
        x.push_back({double(m & 1), double((m >> 1) & 1), double((m >> 2) & 1)});
        t.push_back(x.back()[0] + x.back()[1] + x.back()[2] >= 2 ? 1.0 : 0.0);
    }
    Perceptron p(3);
    const auto r = p.train(x, t, {.lr = 1.0, .max_epochs = 50});
    CHECK(r.converged);
    CHECK(p.accuracy(x, t) == 1.0);
}

TEST_CASE("perceptron: step is 1 only for a positive net input") {
    CHECK(Perceptron::step(0.0) == 0);
    CHECK(Perceptron::step(-0.0) == 0);
    CHECK(Perceptron::step(1e-300) == 1);
    CHECK(Perceptron::step(-3.0) == 0);
}

TEST_CASE("logic gates: the textbook weights compute OR, AND and NAND") {
    const auto g_or = tapegrad::nn::or_gate();
    const auto g_and = tapegrad::nn::and_gate();
    const auto g_nand = tapegrad::nn::nand_gate();
    for (size_t i = 0; i < inputs.size(); ++i) {
        CAPTURE(i);
        CHECK(g_or.predict(inputs[i]) == or_targets[i]);
        CHECK(g_and.predict(inputs[i]) == and_targets[i]);
        CHECK(g_nand.predict(inputs[i]) == nand_targets[i]);
    }
    CHECK(g_or.bias() == -0.5);
    CHECK(g_and.bias() == -1.5);
    CHECK(g_nand.bias() == 1.5);
    CHECK(g_nand.weights()[0] == -1.0);
}

TEST_CASE("gate network: AND(NAND(x), OR(x)) computes XOR") {
    const auto net = tapegrad::nn::xor_gate_network();
    const std::array<std::array<int, 2>, 4> hidden = {{{1, 0}, {1, 1}, {1, 1}, {0, 1}}};
    for (size_t i = 0; i < inputs.size(); ++i) {
        CAPTURE(i);
        CHECK(net.predict(inputs[i]) == xor_targets[i]);
        CHECK(net.hidden(inputs[i]) == hidden[i]);
        CHECK(tapegrad::nn::xor_gate(inputs[i][0], inputs[i][1]) == static_cast<int>(xor_targets[i]));
    }
    CHECK(net.output().bias() == -1.5);
    CHECK(net.hidden1().bias() == 1.5);
    CHECK(net.hidden2().bias() == -0.5);

    // The hidden layer made XOR separable: a perceptron trained on (h1, h2) learns it.
    std::vector<std::vector<double>> h;
    for (const auto& x : inputs) {
        const auto [a, b] = net.hidden(x);
        h.push_back({double(a), double(b)});
    }
    Perceptron out(2);
    CHECK(out.train(h, xor_targets).converged);
    const tapegrad::nn::GateNetwork learned(tapegrad::nn::nand_gate(), tapegrad::nn::or_gate(), out);
    for (size_t i = 0; i < inputs.size(); ++i) CHECK(learned.predict(inputs[i]) == xor_targets[i]);
}

TEST_CASE("perceptron: bad input throws, naming the function and the values") {
    CHECK(message_of<ValueError>([] { Perceptron p(0); }) ==
          "Perceptron: the number of inputs must be positive, got 0");
    CHECK(message_of<ValueError>([] { Perceptron p(std::vector<double>{}, 0.0); }) ==
          "Perceptron: needs at least one weight, got none");
    CHECK(message_of<ValueError>([] { Perceptron p({1.0, std::nan("")}, 0.0); }) ==
          "Perceptron: weight 1 is nan; weights must be finite");

    Perceptron p(2);
    CHECK(message_of<ShapeError>([&] { (void)p.predict(std::vector<double>{1, 0, 1}); }) ==
          "Perceptron::predict: expected 2 features, got 3");
    CHECK(message_of<ShapeError>([&] { (void)p.net_input(std::vector<double>{1}); }) ==
          "Perceptron::net_input: expected 2 features, got 1");
    CHECK(message_of<ValueError>([&] {
              (void)p.predict(std::vector<double>{0, std::numeric_limits<double>::infinity()});
          }) == "Perceptron::predict: feature 1 is inf; features must be finite");

    const std::vector<std::vector<double>> ragged = {{0, 0}, {0, 1, 1}, {1, 0}, {1, 1}};
    CHECK(message_of<ShapeError>([&] { p.train(ragged, and_targets); }) ==
          "Perceptron::train: sample 1 has 3 features, expected 2");
    CHECK(message_of<ShapeError>([&] { p.train(inputs, std::vector<double>{0, 1}); }) ==
          "Perceptron::train: 4 samples but 2 targets");
    CHECK(message_of<ValueError>([&] { p.train(inputs, std::vector<double>{0, 1, 0.5, 1}); }) ==
          "Perceptron::train: target 0.5 at row 2 is not binary; targets must be 0 or 1");
    CHECK(message_of<ValueError>([&] { p.train(inputs, std::vector<double>{0, 1, -1, 1}); }) ==
          "Perceptron::train: target -1 at row 2 is not binary; targets must be 0 or 1");
    CHECK(message_of<ValueError>([&] { p.train({}, {}); }) == "Perceptron::train: no samples given");
    CHECK(message_of<ValueError>([&] { p.train(inputs, and_targets, {.lr = 0.0, .max_epochs = 10}); }) ==
          "Perceptron::train: learning rate must be positive and finite, got 0");
    CHECK(message_of<ValueError>([&] { p.train(inputs, and_targets, {.lr = 1.0, .max_epochs = 0}); }) ==
          "Perceptron::train: max_epochs must be at least 1, got 0");
    CHECK(message_of<ShapeError>([&] { (void)p.accuracy(inputs, std::vector<double>{1}); }) ==
          "Perceptron::accuracy: 4 samples but 1 targets");

    // A failed call leaves the weights as they were.
    CHECK(p.weights()[0] == 0.0);
    CHECK(p.weights()[1] == 0.0);
    CHECK(p.bias() == 0.0);

    const auto net = tapegrad::nn::xor_gate_network();
    CHECK(message_of<ShapeError>([&] { (void)net.predict(std::vector<double>{1}); }) ==
          "GateNetwork::predict: expected 2 features, got 1");
    CHECK(message_of<ShapeError>([] {
              tapegrad::nn::GateNetwork bad(Perceptron(3), tapegrad::nn::or_gate(), tapegrad::nn::and_gate());
          }) == "GateNetwork: every unit needs 2 inputs, got 3, 2 and 2");
}
