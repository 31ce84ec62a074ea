#pragma once
/// \file
/// Helpers shared by the op tests: random shapes and inputs from a seeded Generator, and a doctest check
/// that runs `tapegrad::gradcheck` and reports the op, the input shapes and gradcheck's own sentence.
///
/// Inputs are drawn away from the points where an op is not differentiable (see the `Values` functions), so a
/// failure means a wrong backward, not a kink hit by the finite difference.

#include <tapegrad/tapegrad.hpp>

#include "../support/check_throws.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tapegrad::testing {

using Inputs = std::vector<TensorD>;
using Fn = std::function<TensorD(const Inputs&)>;
/// Draws one element value.
using Values = double (*)(Generator&);

/// How many random cases each op is gradchecked on.
inline constexpr int kCasesPerOp = 12;

// ---- value domains ---------------------------------------------------------------------------------------

/// Uniform in [-1, 1).
inline double any_value(Generator& g) { return -1.0 + 2.0 * g.uniform01<double>(); }
/// Uniform in [0.5, 2): for log, sqrt and non-integer powers.
inline double positive_value(Generator& g) { return 0.5 + 1.5 * g.uniform01<double>(); }
/// |v| in [0.2, 1) with a random sign: for abs, relu and divisors.
inline double away_from_zero(Generator& g) {
    const double m = 0.2 + 0.8 * g.uniform01<double>();
    return g.below(2) ? m : -m;
}
/// |v| in [0, 0.4) or [0.6, 1), with a random sign: at least 0.1 from the bounds of clamp(x, -0.5, 0.5).
inline double clamp_safe(Generator& g) {
    const double m = g.below(2) ? 0.4 * g.uniform01<double>() : 0.6 + 0.4 * g.uniform01<double>();
    return g.below(2) ? m : -m;
}

// ---- shapes and tensors ------------------------------------------------------------------------------------

/// A random shape with rank in [min_rank, max_rank] and every dimension in [1, max_dim].
inline Shape random_shape(Generator& g, int min_rank = 1, int max_rank = 4, int64_t max_dim = 4) {
    Shape s;
    const int rank = min_rank + static_cast<int>(g.below(static_cast<uint64_t>(max_rank - min_rank + 1)));
    for (int i = 0; i < rank; ++i) s.push_back(1 + static_cast<int64_t>(g.below(static_cast<uint64_t>(max_dim))));
    return s;
}

/// Two shapes that broadcast together: both derive from one random output shape; each dimension of the
/// first is replaced by 1 with probability 1/3; the second keeps a random number of trailing dimensions
/// (sometimes none: a scalar), each replaced by 1 with probability 1/3; the pair is swapped half the time.
inline std::pair<Shape, Shape> broadcast_pair(Generator& g) {
    const Shape out = random_shape(g);
    Shape a, b;
    for (int i = 0; i < out.rank(); ++i) a.push_back(g.below(3) == 0 ? 1 : out[i]);
    const int rb = g.below(8) == 0 ? 0 : 1 + static_cast<int>(g.below(static_cast<uint64_t>(out.rank())));
    for (int i = out.rank() - rb; i < out.rank(); ++i) b.push_back(g.below(3) == 0 ? 1 : out[i]);
    if (g.below(2)) std::swap(a, b);
    return {a, b};
}

/// A tensor of the given shape filled from `values`.
inline TensorD random_tensor(const Shape& s, Generator& g, Values values = any_value) {
    TensorD t = TensorD::empty(s);
    for (double& v : t.span()) v = values(g);
    return t;
}

/// A tensor whose values are pairwise at least 0.09 apart (a shuffled 0.1-spaced grid plus small noise):
/// for max, whose gradient must not jump between near-equal candidates under the finite difference.
inline TensorD distinct_tensor(const Shape& s, Generator& g) {
    TensorD t = TensorD::empty(s);
    const auto n = static_cast<size_t>(t.numel());
    std::vector<int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), int64_t{0});
    for (size_t i = n; i > 1; --i) std::swap(perm[i - 1], perm[static_cast<size_t>(g.below(i))]);
    for (size_t i = 0; i < n; ++i)
        t.data()[i] = 0.1 * static_cast<double>(perm[i]) - 0.05 * static_cast<double>(n) + 0.01 * g.uniform01<double>();
    return t;
}

/// Values on a 0.1-spaced grid plus `offset` and noise below 0.02: a tensor built with offset 0 and one
/// with offset 0.05 never hold values closer than 0.03, whatever the broadcasting pairs (for maximum).
inline TensorD grid_tensor(const Shape& s, Generator& g, double offset) {
    TensorD t = TensorD::empty(s);
    for (double& v : t.span()) v = 0.1 * static_cast<double>(g.below(20)) - 1.0 + offset + 0.02 * g.uniform01<double>();
    return t;
}

inline std::string shapes_of(const Inputs& xs) {
    std::ostringstream os;
    for (size_t i = 0; i < xs.size(); ++i) os << (i ? ", " : "") << xs[i].shape();
    return os.str();
}

/// Runs gradcheck on `f` at `xs` and fails with the op name, input shapes and gradcheck's message.
inline void check_gradient(const std::string& name, const Fn& f, const Inputs& xs, const GradcheckOptions& opt = {}) {
    const GradcheckResult r = gradcheck(f, xs, opt);
    CHECK_MESSAGE(r.ok, name, " at inputs of shape ", shapes_of(xs), ": ", r.message);
}

/// One row of an op table: the op's name, how to draw its inputs, and the function to check.
struct OpCase {
    std::string name;
    std::function<Inputs(Generator&)> make_inputs;
    Fn f;
};

/// Gradchecks every op of `table` on kCasesPerOp random draws, each op with its own seeded stream.
inline int gradcheck_table(const std::vector<OpCase>& table, uint64_t seed) {
    int checked = 0;
    for (size_t k = 0; k < table.size(); ++k) {
        const OpCase& op = table[k];
        Generator g(seed + 7919 * k);
        for (int c = 0; c < kCasesPerOp; ++c) {
            const Inputs xs = op.make_inputs(g);
            check_gradient(op.name, op.f, xs);
            ++checked;
        }
    }
    return checked;
}

// ---- input makers for the table rows -----------------------------------------------------------------------

/// One tensor of a random shape (rank 1..4) with values from `v`.
inline std::function<Inputs(Generator&)> one_input(Values v = any_value) {
    return [v](Generator& g) { return Inputs{random_tensor(random_shape(g), g, v)}; };
}
/// Two tensors whose shapes broadcast together (see broadcast_pair).
inline std::function<Inputs(Generator&)> broadcast_inputs(Values va = any_value, Values vb = any_value) {
    return [va, vb](Generator& g) {
        auto [sa, sb] = broadcast_pair(g);
        TensorD a = random_tensor(sa, g, va);
        TensorD b = random_tensor(sb, g, vb);
        return Inputs{a, b};
    };
}

}  // namespace tapegrad::testing
