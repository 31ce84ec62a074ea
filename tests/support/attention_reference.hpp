#pragma once
/// \file
/// Runs the PyTorch reference cases of tests/interop/attention_reference.hpp (made by
/// tests/interop/make_attention_reference.py) against tapegrad modules: the module's state_dict is loaded
/// from PyTorch's by name (every name must exist on both sides, with the same shape), the module runs on
/// the same inputs, sum(output * grad_output) is backpropagated, and the output, the attention weights and
/// every input's and parameter's gradient must equal PyTorch's.

#include "../interop/attention_reference.hpp"
#include "device_ops.hpp"

#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace tapegrad::testing {

namespace ref = attention_reference;

/// The reference case called `name` (fails the test if there is none).
inline const ref::Case& reference_case(const std::string& name) {
    for (const ref::Case& c : ref::cases())
        if (c.name == name) return c;
    FAIL("no reference case '" << name << "' in tests/interop/attention_reference.hpp");
    return ref::cases().front();
}
inline const ref::Named* find_named(const std::vector<ref::Named>& v, const std::string& name) {
    for (const ref::Named& n : v)
        if (n.name == name) return &n;
    return nullptr;
}
inline TensorD to_tensor(const ref::Named& n) { return TensorD::from(Shape(n.shape), n.values); }

/// Every value of `got` within tol (1 + |want|) of `want`, with the same shape (inf matching inf).
inline void check_named(const std::string& what, const ref::Named& want, const TensorD& got, double tol = 1e-9) {
    REQUIRE_MESSAGE(got.defined(), what << ": missing");
    REQUIRE_MESSAGE(got.shape() == Shape(want.shape), what << ": shape " << got.shape() << ", PyTorch's "
                                                           << Shape(want.shape));
    const std::vector<double> g = got.to_vector();
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        const double w = want.values[i];
        const double err = (std::isinf(w) && g[i] == w) ? 0.0 : std::abs(g[i] - w) / (1.0 + std::abs(w));
        if (!(err <= worst)) {
            worst = err;
            at = i;
        }
    }
    CHECK_MESSAGE(worst <= tol, what << ": element " << at << " is " << g[at] << ", PyTorch's " << want.values[at]
                                     << " (relative error " << worst << ")");
}

/// Copies PyTorch's state_dict into `m` by name: the two must hold the same names with the same shapes.
template <class M>
void load_reference_state(M& m, const ref::Case& c) {
    const auto mine = m.state_dict();
    CHECK_MESSAGE(mine.size() == c.state.size(), c.name << ": tapegrad's state_dict holds " << mine.size()
                                                        << " tensors, PyTorch's " << c.state.size());
    for (const auto& entry : mine) {  // no structured binding: clang 14 cannot capture one in doctest's macros
        const std::string& name = entry.first;
        const auto& t = entry.second;
        const ref::Named* n = find_named(c.state, name);
        REQUIRE_MESSAGE(n != nullptr, c.name << ": tapegrad's '" << name << "' is not in PyTorch's state_dict");
        REQUIRE_MESSAGE(t.shape() == Shape(n->shape), c.name << ": '" << name << "' has shape " << t.shape()
                                                             << ", PyTorch's " << Shape(n->shape));
        TensorD copy = to_tensor(*n);
        std::copy(copy.span().begin(), copy.span().end(), t.span().begin());
    }
}

/// The reference input called `name` as a tensor; requires_grad when PyTorch reports its gradient.
inline TensorD reference_input(const ref::Case& c, const std::string& name) {
    const ref::Named* n = find_named(c.inputs, name);
    REQUIRE_MESSAGE(n != nullptr, c.name << ": no input '" << name << "'");
    TensorD t = to_tensor(*n);
    if (find_named(c.grads, name)) t.requires_grad_();
    return t;
}

/// Backpropagates sum(output * grad_output) and checks the output, the weights (when PyTorch's case has
/// them) and the gradients of `inputs` (by name) and of every parameter of `m`.
template <class M>
void check_reference_run(M& m, const ref::Case& c, const TensorD& output, const TensorD& weights,
                         const std::vector<std::pair<std::string, TensorD>>& inputs, double tol = 1e-9) {
    check_named(c.name + ": output", c.output, output, tol);
    if (!c.weights.name.empty()) check_named(c.name + ": attention weights", c.weights, weights, tol);
    sum(output * to_tensor(c.grad_output)).backward();
    for (const auto& [name, t] : inputs) {
        const ref::Named* g = find_named(c.grads, name);
        if (g) check_named(c.name + ": gradient of input " + name, *g, t.grad(), tol);
    }
    for (const auto& entry : m.named_parameters()) {
        const std::string& name = entry.first;
        const auto& p = entry.second;
        const ref::Named* g = find_named(c.grads, name);
        REQUIRE_MESSAGE(g != nullptr, c.name << ": PyTorch has no gradient for '" << name << "'");
        check_named(c.name + ": gradient of " + name, *g, p.grad(), tol);
    }
}

}  // namespace tapegrad::testing
