#pragma once
/// \file
/// Gradients as tensors, and gradients of gradients: `tapegrad::grad(outputs, inputs, options)`.
///
///     auto x = TensorD::from({3}, {1, 2, 3}).requires_grad_();
///     auto y = sum(x * x * x);
///     auto dx = grad(y, x, {.create_graph = true});   // 3 x^2, itself recorded
///     auto dxx = grad(sum(dx), x);                     // 6 x
///
/// `grad` returns d(sum_k <outputs_k, grad_outputs_k>)/d(inputs_j) for each input, without touching any
/// tensor's .grad(). It replays the record like backward, but carries gradients as tensors and calls each
/// op's differentiable backward (see autograd/record.hpp): with `create_graph` that backward is recorded,
/// so the gradients can be differentiated again, to any order (`backward({.create_graph = true})` does the
/// same and accumulates into the leaves' .grad()). Only the part of the record that leads to the inputs is
/// replayed. An op without a differentiable backward gives its first-order gradient from its fused
/// backward; differentiating through that gradient throws "double backward is not supported for '<op>'".
/// Plain backward() is unchanged: the fused, allocation-free backward of every op.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/core/tensor.hpp>

#include <algorithm>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tapegrad {

/// Options of tapegrad::grad.
template <class T, class D = Cpu>
struct GradOptions {
    /// The gradient of each output (its shape), the "vector" of the vector-Jacobian product. Empty: ones,
    /// allowed only for one-element outputs.
    std::vector<Tensor<T, D>> grad_outputs = {};
    /// Record the backward pass, so the returned gradients can be differentiated again.
    bool create_graph = false;
    /// Keep the record for another backward or grad call. Default: the value of create_graph.
    std::optional<bool> retain_graph = std::nullopt;
    /// An input that no output depends on gets an undefined tensor instead of an error.
    bool allow_unused = false;
};

namespace detail {

/// a + b for two gradients of one shape, recorded when grad mode is on: the engine's own sum (the tape
/// layer calls no op), whose backward hands dy to both.
template <class T, class D>
Tensor<T, D> add_grads(const Tensor<T, D>& a, const Tensor<T, D>& b) {
    using B = backend::Ops<D>;
    Tensor<T, D> y = Tensor<T, D>::empty(a.shape());
    B::copy(a.numel(), a.data_ptr(), y.data_ptr());
    B::axpy(a.numel(), T(1), b.data_ptr(), y.data_ptr());
    if (needs_grad(a, b)) {
        record(
            y, "add", {&a, &b},
            [a, b](const Tensor<T, D>& dy) {
                if (a.requires_grad()) B::axpy(a.numel(), T(1), dy.data_ptr(), grad_buffer(a));
                if (b.requires_grad()) B::axpy(b.numel(), T(1), dy.data_ptr(), grad_buffer(b));
            },
            [a, b](const Tensor<T, D>& dy, GradSink<T, D>& g) {
                g.add(a, dy);
                g.add(b, dy);
            });
    }
    return y;
}

/// A copy of `a` that stays in the graph (recorded when grad mode is on).
template <class T, class D>
Tensor<T, D> copy_grad(const Tensor<T, D>& a) {
    using B = backend::Ops<D>;
    Tensor<T, D> y = Tensor<T, D>::empty(a.shape());
    B::copy(a.numel(), a.data_ptr(), y.data_ptr());
    if (needs_grad(a)) {
        record(
            y, "clone", {&a}, [a](const Tensor<T, D>& dy) { B::axpy(a.numel(), T(1), dy.data_ptr(), grad_buffer(a)); },
            [a](const Tensor<T, D>& dy, GradSink<T, D>& g) { g.add(a, dy); });
    }
    return y;
}

/// Adds gradient `g` into `grads[impl]`: a recorded add when the pass is creating a graph.
template <class T, class D>
void add_into(std::unordered_map<const ImplBase*, Tensor<T, D>>& grads, const ImplBase* impl, Tensor<T, D> g) {
    auto it = grads.find(impl);
    if (it == grads.end())
        grads.emplace(impl, std::move(g));
    else
        it->second = add_grads(it->second, g);
}

}  // namespace detail

/// The gradients of `outputs` (weighted by options.grad_outputs) with respect to each of `inputs`, as
/// tensors of the inputs' shapes. No .grad() changes. Throws ValueError when an output or input does not
/// require grad, when an input is unused (unless allow_unused), or when the record was freed by an earlier
/// backward; ShapeError for a grad_output of the wrong shape.
template <Scalar T, Device D>
std::vector<Tensor<T, D>> grad(const std::vector<Tensor<T, D>>& outputs, const std::vector<Tensor<T, D>>& inputs,
                               const std::type_identity_t<GradOptions<T, D>>& opt = {}) {
    using detail::ImplBase;
    using detail::Node;
    TAPEGRAD_CHECK(!outputs.empty(), ValueError, "grad: no outputs given");
    TAPEGRAD_CHECK(opt.grad_outputs.empty() || opt.grad_outputs.size() == outputs.size(), ValueError, "grad: ",
                   opt.grad_outputs.size(), " grad_outputs given for ", outputs.size(), " outputs");
    for (size_t k = 0; k < outputs.size(); ++k) {
        const Tensor<T, D>& y = outputs[k];
        TAPEGRAD_CHECK(y.defined(), ValueError, "grad: output ", k, " is undefined");
        TAPEGRAD_CHECK(y.requires_grad(), ValueError, "grad: output ", k, " (shape ", y.shape(),
                       ") does not require grad and has no grad_fn");
        if (opt.grad_outputs.empty())
            TAPEGRAD_CHECK(y.numel() == 1, ShapeError, "grad: output ", k, " has shape ", y.shape(),
                           "; give grad_outputs for an output of more than one element");
        else
            TAPEGRAD_CHECK(opt.grad_outputs[k].defined() && opt.grad_outputs[k].shape() == y.shape(), ShapeError,
                           "grad: grad_outputs[", k, "] has shape ",
                           (opt.grad_outputs[k].defined() ? opt.grad_outputs[k].shape() : Shape{}),
                           " but output ", k, " has shape ", y.shape());
    }
    std::unordered_set<const ImplBase*> needed;
    for (size_t j = 0; j < inputs.size(); ++j) {
        TAPEGRAD_CHECK(inputs[j].defined(), ValueError, "grad: input ", j, " is undefined");
        TAPEGRAD_CHECK(inputs[j].requires_grad(), ValueError, "grad: input ", j, " (shape ", inputs[j].shape(),
                       ") does not require grad");
        needed.insert(inputs[j].impl());
    }
    const bool retain = opt.retain_graph.value_or(opt.create_graph);

    // The nodes reachable from the outputs, in reverse creation order (a reverse topological order).
    std::vector<Node*> order, stack;
    std::unordered_set<const Node*> seen;
    for (const auto& y : outputs) {
        Node* n = y.impl()->grad_fn.get();
        if (n != nullptr && seen.insert(n).second) stack.push_back(n);
    }
    while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        TAPEGRAD_CHECK(!n->released, ValueError, "grad: trying to backward through the graph a second time (the ",
                       "record of '", n->name, "' was freed by an earlier backward). Pass retain_graph = true the ",
                       "first time if you need to backpropagate twice");
        order.push_back(n);
        for (int i = 0; i < n->num_edges(); ++i) {
            Node* in = n->edge(i)->grad_fn.get();
            if (in != nullptr && seen.insert(in).second) stack.push_back(in);
        }
    }
    std::sort(order.begin(), order.end(), [](const Node* a, const Node* b) { return a->seq > b->seq; });

    // Which tensors lead to an input: only their gradients are computed. A node standing for an unknown
    // derivative (opaque) counts as leading anywhere, so that reaching it throws.
    std::vector<detail::TypedNode<T, D>*> typed(order.size());
    for (size_t i = order.size(); i-- > 0;) {
        Node* n = order[i];
        auto* tn = dynamic_cast<detail::TypedNode<T, D>*>(n);
        TAPEGRAD_CHECK(tn != nullptr, ValueError, "grad: op '", n->name, "' works on another element type or ",
                       "device than the outputs; grad cannot cross it");
        typed[i] = tn;
        bool leads = tn->opaque();
        for (int e = 0; e < n->num_edges() && !leads; ++e) leads = needed.count(n->edge(e)) != 0;
        if (leads) needed.insert(n->output);
    }

    NoGradGuard mode(opt.create_graph);
    std::unordered_map<const ImplBase*, Tensor<T, D>> grads;
    for (size_t k = 0; k < outputs.size(); ++k)
        detail::add_into(grads, outputs[k].impl(),
                         opt.grad_outputs.empty() ? Tensor<T, D>::ones(outputs[k].shape()) : opt.grad_outputs[k]);
    std::unordered_set<const ImplBase*> wanted;
    for (const auto& x : inputs) wanted.insert(x.impl());
    for (size_t i = 0; i < order.size(); ++i) {
        Node* n = order[i];
        if (needed.count(n->output) == 0) continue;
        auto it = grads.find(n->output);
        if (it == grads.end()) continue;
        Tensor<T, D> dy = it->second;
        if (wanted.count(n->output) == 0) grads.erase(it);
        detail::GradSink<T, D> sink(n->name, &needed);
        typed[i]->backward_graph(dy, sink);
        for (auto& [impl, g] : sink.grads) detail::add_into(grads, impl, std::move(g));
    }
    if (!retain) {
        // Ascending creation order, as in run_backward: freeing a closure only destroys older nodes.
        for (auto n = order.rbegin(); n != order.rend(); ++n) {
            (*n)->released = true;
            (*n)->clear_edges();
            (*n)->release();
        }
    }
    std::vector<Tensor<T, D>> result;
    result.reserve(inputs.size());
    for (size_t j = 0; j < inputs.size(); ++j) {
        auto it = grads.find(inputs[j].impl());
        TAPEGRAD_CHECK(it != grads.end() || opt.allow_unused, ValueError, "grad: input ", j, " (shape ",
                       inputs[j].shape(), ") is not used by the outputs; pass allow_unused = true to get an ",
                       "undefined gradient for it");
        result.push_back(it != grads.end() ? it->second : Tensor<T, D>());
    }
    return result;
}

/// grad of several outputs and inputs written as braced lists: `grad({y}, {x, w}, {.create_graph = true})`.
template <Scalar T, Device D>
std::vector<Tensor<T, D>> grad(std::initializer_list<Tensor<T, D>> outputs, std::initializer_list<Tensor<T, D>> inputs,
                               const std::type_identity_t<GradOptions<T, D>>& opt = {}) {
    return grad(std::vector<Tensor<T, D>>(outputs), std::vector<Tensor<T, D>>(inputs), opt);
}

/// The gradient of one output with respect to one input: `grad(loss, x)`, `grad(u, x, {.grad_outputs =
/// {ones}, .create_graph = true})`.
template <Scalar T, Device D>
Tensor<T, D> grad(const Tensor<T, D>& output, const Tensor<T, D>& input,
                  const std::type_identity_t<GradOptions<T, D>>& opt = {}) {
    return grad(std::vector<Tensor<T, D>>{output}, std::vector<Tensor<T, D>>{input}, opt)[0];
}

/// backward({.create_graph = true}) (called by Tensor::backward): the gradients of `root` with respect to
/// every leaf that requires grad and every intermediate that retains its gradient, computed with `grad` and
/// added (recorded) into their .grad(), which can then be differentiated.
template <Scalar T, Device D>
void backward_with_graph(const Tensor<T, D>& root, const Tensor<T, D>& gradient, bool retain_graph) {
    using detail::ImplBase;
    using detail::Node;
    std::vector<Tensor<T, D>> targets;
    std::unordered_set<const ImplBase*> taken;
    // A node holds its inputs through its closure only, so a leaf found along an edge is named by a handle
    // that aliases the root's ownership: it keeps the root, hence the (retained) record and the leaf, alive.
    auto add_target = [&](ImplBase* e) {
        if (taken.insert(e).second)
            targets.emplace_back(
                std::shared_ptr<detail::TensorImpl<T, D>>(root.impl_ptr(), static_cast<detail::TensorImpl<T, D>*>(e)));
    };
    if (root.is_leaf() || root.impl()->retains_grad) add_target(root.impl());
    std::unordered_set<const Node*> seen;
    std::vector<Node*> stack;
    if (Node* n = root.impl()->grad_fn.get()) {
        seen.insert(n);
        stack.push_back(n);
    }
    while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        for (int i = 0; i < n->num_edges(); ++i) {
            ImplBase* e = n->edge(i);
            Node* in = e->grad_fn.get();
            if (in == nullptr || e->retains_grad) add_target(e);
            if (in != nullptr && seen.insert(in).second) stack.push_back(in);
        }
    }
    if (targets.empty()) return;
    const std::vector<Tensor<T, D>> gs =
        grad(std::vector<Tensor<T, D>>{root}, targets,
             {.grad_outputs = {gradient}, .create_graph = true, .retain_graph = retain_graph, .allow_unused = true});
    for (size_t j = 0; j < targets.size(); ++j) {
        if (!gs[j].defined()) continue;
        detail::TensorImpl<T, D>* impl = targets[j].impl();
        NoGradGuard on(true);
        // A copy in the graph: the gradient may be a tensor the caller holds (a grad_output passed through),
        // which later in-place accumulation into .grad() must not modify.
        Tensor<T, D> g = impl->grad ? detail::add_grads(Tensor<T, D>(impl->grad), gs[j]) : detail::copy_grad(gs[j]);
        impl->grad = g.impl_ptr();
    }
}

}  // namespace tapegrad
