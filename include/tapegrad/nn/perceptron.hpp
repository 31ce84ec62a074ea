#pragma once
/// \file
/// The perceptron (Rosenblatt, 1958): the first trainable neuron, and the first lesson of the course.
///
/// A perceptron with n inputs holds weights w (n numbers) and a bias b. It computes the net input
/// z = b + w.x and answers y = step(z) = 1 if z > 0, else 0. Geometrically, w.x + b = 0 is a line (a
/// hyperplane in n dimensions) and the unit says which side of it x lies on.
///
/// It learns from its mistakes. For each sample x with target t in {0, 1}:
///
///     y = step(b + w.x);   w += lr * (t - y) * x;   b += lr * (t - y)
///
/// A correct answer changes nothing; a missed 1 pulls the line towards x, a false 1 pushes it away. There is
/// no gradient here (step has none worth having), so no autograd either: the rule is three lines of
/// arithmetic on doubles.
///
/// **Convergence theorem** (Block 1962, Novikoff 1962). Write x' = (x, 1) and w' = (w, b), so z = w'.x'. If the
/// data are linearly separable -- some unit vector u and margin g > 0 have (2t - 1) u.x' >= g for every sample
/// -- and every |x'| <= R, then starting from w' = 0 the rule makes at most (R / g)^2 updates, for any lr > 0,
/// and then classifies every sample correctly. (Each update raises u.w' by at least lr*g but raises |w'|^2
/// by at most lr^2 R^2, and u.w' <= |w'| caps how often both can happen.) AND, OR and NAND are separable, so
/// `train` reports `converged` after a few epochs. From w' = 0 the learning rate only scales w' (in exact
/// arithmetic; rounding can settle a tie at z = 0 differently), and step ignores scale, so lr matters only
/// when training starts from other weights.
///
/// **XOR is not separable.** Suppose b + w1 x1 + w2 x2 did separate it: then b <= 0 (row 00 -> 0),
/// b + w1 > 0 (10 -> 1), b + w2 > 0 (01 -> 1) and b + w1 + w2 <= 0 (11 -> 0). The middle two add up to
/// 2b + w1 + w2 > 0, the outer two to 2b + w1 + w2 <= 0: a contradiction. The rule then never stops making
/// mistakes (its weights cycle forever), and `train` reports not converged after `max_epochs`. This is the
/// limitation Minsky and Papert made famous in 1969.
///
/// The way out is a second layer: XOR(x) = AND(NAND(x), OR(x)), three perceptrons with hand-set weights
/// (`xor_gate_network`). The rule above cannot train the hidden units -- it has no target for them -- which
/// is what backpropagation through differentiable units solves (examples/xor.cpp).

#include <tapegrad/core/error.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

namespace tapegrad::nn {

/// Settings of `Perceptron::train`.
struct PerceptronTrainOptions {
    double lr = 1.0;      ///< learning rate, > 0
    int max_epochs = 100;  ///< give up after this many passes over the data, >= 1
};

/// What `Perceptron::train` did.
struct PerceptronTrainResult {
    bool converged = false;     ///< the last epoch made no mistake: every sample is classified correctly
    int epochs = 0;             ///< passes over the data, counting the final mistake-free one when converged
    int errors_last_epoch = 0;  ///< mistakes (= updates) during the last epoch
};

/// The Rosenblatt unit y = step(b + w.x) with double weights, trained by the perceptron learning rule.
class Perceptron {
public:
    /// `n_inputs` inputs, weights and bias zero (where the convergence theorem starts).
    explicit Perceptron(std::ptrdiff_t n_inputs) {
        TAPEGRAD_CHECK(n_inputs > 0, ValueError, "Perceptron: the number of inputs must be positive, got ", n_inputs);
        weights_.assign(static_cast<size_t>(n_inputs), 0.0);
    }
    /// Explicit initial weights (one per input) and bias.
    Perceptron(std::vector<double> weights, double bias) : weights_(std::move(weights)), bias_(bias) {
        TAPEGRAD_CHECK(!weights_.empty(), ValueError, "Perceptron: needs at least one weight, got none");
        for (size_t i = 0; i < weights_.size(); ++i)
            TAPEGRAD_CHECK(std::isfinite(weights_[i]), ValueError, "Perceptron: weight ", i, " is ", weights_[i],
                           "; weights must be finite");
        TAPEGRAD_CHECK(std::isfinite(bias_), ValueError, "Perceptron: bias is ", bias_, "; it must be finite");
    }

    /// The net input z = b + w.x. x: [n_inputs]. Throws ShapeError for the wrong number of features and
    /// ValueError for a non-finite one.
    [[nodiscard]] double net_input(std::span<const double> x) const {
        check_features("Perceptron::net_input", x, -1);
        return dot(x);
    }
    /// The unit's answer step(b + w.x): 1 if the net input is > 0, else 0. x: [n_inputs].
    [[nodiscard]] int predict(std::span<const double> x) const {
        check_features("Perceptron::predict", x, -1);
        return step(dot(x));
    }

    /// Runs the perceptron learning rule over `samples` (each [n_inputs]) and `targets` (each 0 or 1), in the
    /// order given, epoch after epoch, until an epoch makes no mistake or `max_epochs` have run. Continues
    /// from the current weights. Throws ShapeError when the counts or feature sizes do not match and
    /// ValueError for a non-binary target, a non-finite feature, no samples, or bad options; the weights are
    /// unchanged when it throws.
    PerceptronTrainResult train(std::span<const std::vector<double>> samples, std::span<const double> targets,
                                const PerceptronTrainOptions& opt = {}) {
        constexpr const char* fn = "Perceptron::train";
        TAPEGRAD_CHECK(std::isfinite(opt.lr) && opt.lr > 0.0, ValueError, fn, ": learning rate must be positive and ",
                       "finite, got ", opt.lr);
        TAPEGRAD_CHECK(opt.max_epochs >= 1, ValueError, fn, ": max_epochs must be at least 1, got ", opt.max_epochs);
        TAPEGRAD_CHECK(!samples.empty(), ValueError, fn, ": no samples given");
        TAPEGRAD_CHECK(samples.size() == targets.size(), ShapeError, fn, ": ", samples.size(), " samples but ",
                       targets.size(), " targets");
        for (size_t i = 0; i < samples.size(); ++i) {
            check_features(fn, samples[i], static_cast<std::ptrdiff_t>(i));
            TAPEGRAD_CHECK(targets[i] == 0.0 || targets[i] == 1.0, ValueError, fn, ": target ", targets[i],
                           " at row ", i, " is not binary; targets must be 0 or 1");
        }

        PerceptronTrainResult r;
        for (int epoch = 1; epoch <= opt.max_epochs; ++epoch) {
            int errors = 0;
            for (size_t i = 0; i < samples.size(); ++i) {
                const double error = targets[i] - step(dot(samples[i]));  // -1, 0 or +1
                if (error == 0.0) continue;
                ++errors;
                for (size_t j = 0; j < weights_.size(); ++j) weights_[j] += opt.lr * error * samples[i][j];
                bias_ += opt.lr * error;
            }
            r.epochs = epoch;
            r.errors_last_epoch = errors;
            if (errors == 0) {
                r.converged = true;
                break;
            }
        }
        return r;
    }

    /// The fraction of `samples` predicted as their target, in [0, 1].
    [[nodiscard]] double accuracy(std::span<const std::vector<double>> samples, std::span<const double> targets) const {
        TAPEGRAD_CHECK(samples.size() == targets.size(), ShapeError, "Perceptron::accuracy: ", samples.size(),
                       " samples but ", targets.size(), " targets");
        TAPEGRAD_CHECK(!samples.empty(), ValueError, "Perceptron::accuracy: no samples given");
        int correct = 0;
        for (size_t i = 0; i < samples.size(); ++i) correct += predict(samples[i]) == targets[i] ? 1 : 0;
        return static_cast<double>(correct) / static_cast<double>(samples.size());
    }

    [[nodiscard]] std::span<const double> weights() const noexcept { return weights_; }
    [[nodiscard]] double bias() const noexcept { return bias_; }
    [[nodiscard]] std::ptrdiff_t num_inputs() const noexcept { return static_cast<std::ptrdiff_t>(weights_.size()); }

    /// The threshold function: 1 for z > 0, 0 otherwise (so z = 0 answers 0, as in the gate formulas).
    [[nodiscard]] static int step(double z) noexcept { return z > 0.0 ? 1 : 0; }

private:
    double dot(std::span<const double> x) const noexcept {
        double z = bias_;
        for (size_t j = 0; j < weights_.size(); ++j) z += weights_[j] * x[j];
        return z;
    }
    /// `row` < 0: a single input, not a row of a data set.
    void check_features(const char* fn, std::span<const double> x, std::ptrdiff_t row) const {
        if (x.size() != weights_.size()) [[unlikely]] {
            if (row < 0)
                ::tapegrad::detail::raise<ShapeError>(fn, ": expected ", weights_.size(), " features, got ", x.size());
            ::tapegrad::detail::raise<ShapeError>(fn, ": sample ", row, " has ", x.size(), " features, expected ",
                                      weights_.size());
        }
        for (size_t j = 0; j < x.size(); ++j) {
            if (!std::isfinite(x[j])) [[unlikely]] {
                if (row < 0) ::tapegrad::detail::raise<ValueError>(fn, ": feature ", j, " is ", x[j], "; features must be finite");
                ::tapegrad::detail::raise<ValueError>(fn, ": feature ", j, " of sample ", row, " is ", x[j],
                                          "; features must be finite");
            }
        }
    }

    std::vector<double> weights_;
    double bias_ = 0.0;
};

// ---- logic gates with the textbook weights ------------------------------------------------------------

/// OR(x1, x2) = step(-0.5 + x1 + x2): fires when at least one input is on.
[[nodiscard]] inline Perceptron or_gate() { return Perceptron({1.0, 1.0}, -0.5); }
/// AND(x1, x2) = step(-1.5 + x1 + x2): fires only when both inputs are on.
[[nodiscard]] inline Perceptron and_gate() { return Perceptron({1.0, 1.0}, -1.5); }
/// NAND(x1, x2) = step(1.5 - x1 - x2): NOT AND, off only when both inputs are on.
[[nodiscard]] inline Perceptron nand_gate() { return Perceptron({-1.0, -1.0}, 1.5); }

/// Two layers of perceptrons computing XOR, which no single perceptron can:
///
///     hidden: h1 = NAND(x1, x2), h2 = OR(x1, x2)      output: y = AND(h1, h2)
///
/// NAND and OR each cut the plane with one line; the points between the two lines are exactly those with
/// one input on, and AND keeps them. The hidden layer maps the four inputs to (h1, h2) in {(1,0), (1,1),
/// (1,1), (0,1)}, where XOR has become AND -- separable.
class GateNetwork {
public:
    /// The textbook gates: NAND and OR in the hidden layer, AND at the output.
    GateNetwork() : GateNetwork(nand_gate(), or_gate(), and_gate()) {}
    /// Any two 2-input hidden units and a 2-input output unit.
    GateNetwork(Perceptron hidden1, Perceptron hidden2, Perceptron output)
        : h1_(std::move(hidden1)), h2_(std::move(hidden2)), out_(std::move(output)) {
        TAPEGRAD_CHECK(h1_.num_inputs() == 2 && h2_.num_inputs() == 2 && out_.num_inputs() == 2, ShapeError,
                       "GateNetwork: every unit needs 2 inputs, got ", h1_.num_inputs(), ", ", h2_.num_inputs(),
                       " and ", out_.num_inputs());
    }

    /// The hidden layer's outputs (h1, h2) for x: [2].
    [[nodiscard]] std::array<int, 2> hidden(std::span<const double> x) const {
        TAPEGRAD_CHECK(x.size() == 2, ShapeError, "GateNetwork::hidden: expected 2 features, got ", x.size());
        return {h1_.predict(x), h2_.predict(x)};
    }
    /// The network's answer for x: [2].
    [[nodiscard]] int predict(std::span<const double> x) const {
        TAPEGRAD_CHECK(x.size() == 2, ShapeError, "GateNetwork::predict: expected 2 features, got ", x.size());
        const auto [a, b] = hidden(x);
        const std::array<double, 2> h{static_cast<double>(a), static_cast<double>(b)};
        return out_.predict(h);
    }

    [[nodiscard]] const Perceptron& hidden1() const noexcept { return h1_; }
    [[nodiscard]] const Perceptron& hidden2() const noexcept { return h2_; }
    [[nodiscard]] const Perceptron& output() const noexcept { return out_; }

private:
    Perceptron h1_, h2_, out_;
};

/// XOR as AND(NAND(x), OR(x)) with the textbook weights.
[[nodiscard]] inline GateNetwork xor_gate_network() { return GateNetwork(); }

/// XOR(x1, x2) computed by `xor_gate_network()`; x1 and x2 are read as 0/1 inputs.
[[nodiscard]] inline int xor_gate(double x1, double x2) {
    const std::array<double, 2> x{x1, x2};
    return xor_gate_network().predict(x);
}

}  // namespace tapegrad::nn
