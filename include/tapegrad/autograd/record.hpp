#pragma once
/// \file
/// How an op records itself: `record(out, "name", {&a, &b}, backward_closure)`.
///
/// The closure is the op's backward, written next to its forward. It receives the gradient of the op's
/// output (and, if it asks for it, the output itself, so that tanh or exp can reuse their result) and adds
/// each input's share into that input's gradient through `grad_buffer` or `accumulate`.
///
/// Optional inputs (a bias, batch norm's weight) are passed as they are: an undefined tensor is absent, so
/// `needs_grad(x, w, b)` and `record(y, "linear", {&x, &w, &b}, ...)` skip it, and in the backward
/// `grad_buffer_or_null(b)` is null for it, as for an input that does not require grad.
///
/// Higher-order gradients: an op may pass a second closure, its differentiable backward, which computes
/// the inputs' gradients with public ops (so, under create_graph, they are recorded and can be
/// differentiated again) and hands them to a `GradSink`. Only `tapegrad::grad` and
/// `backward({.create_graph = true})` run it; plain backward keeps running the first, fused closure. An op
/// recorded without one still works under create_graph: its gradient's value comes from the first closure,
/// and only differentiating *through* that gradient throws "double backward is not supported for '<op>'".

#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/core/tensor.hpp>

#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tapegrad::detail {

/// Where an op's differentiable backward (see `record` with two closures) puts the gradients it computes,
/// as tensors: `g.add(x, dx)`. Used by tapegrad::grad and backward({.create_graph = true}); the engine then
/// sums the contributions with recorded adds. `wants(x)` tells whether x's gradient is needed at all (x
/// requires grad and leads to an input the caller asked about), so a backward can skip computing it.
template <class T, class D>
class GradSink {
public:
    GradSink(const char* op, const std::unordered_set<const ImplBase*>* needed) : op_(op), needed_(needed) {}
    [[nodiscard]] bool wants(const Tensor<T, D>& x) const {
        return x.defined() && x.requires_grad() && (needed_ == nullptr || needed_->count(x.impl()) != 0);
    }
    /// Adds `g` (x's shape) to x's gradient, if x's is wanted.
    void add(const Tensor<T, D>& x, Tensor<T, D> g) {
        if (!wants(x)) return;
        TAPEGRAD_CHECK(g.defined() && g.shape() == x.shape(), InternalError, "double backward of '", op_,
                       "' produced a gradient of shape ", (g.defined() ? g.shape() : Shape{}),
                       " for an input of shape ", x.shape());
        grads.emplace_back(x.impl(), std::move(g));
    }
    /// Adds a gradient for an input known only by its impl (the first-order fallback).
    void add_impl(ImplBase* x, Tensor<T, D> g) {
        if (needed_ != nullptr && needed_->count(x) == 0) return;
        grads.emplace_back(x, std::move(g));
    }
    [[nodiscard]] const char* op() const noexcept { return op_; }

    std::vector<std::pair<ImplBase*, Tensor<T, D>>> grads;  ///< what the backward produced, in order

private:
    const char* op_;
    const std::unordered_set<const ImplBase*>* needed_;
};

/// A node whose backward can also run on tensors, for create_graph (see autograd/grad.hpp).
template <class T, class D>
struct TypedNode : Node {
    using Node::Node;
    /// Computes the inputs' gradients from the output's gradient `dy` as tensors, into `sink`. With grad
    /// mode on (create_graph) the computation is recorded, so it can be differentiated again.
    virtual void backward_graph(const Tensor<T, D>& dy, GradSink<T, D>& sink) = 0;
    /// True for a node that stands for a gradient whose own derivative is unknown: its backward throws, and
    /// the engine must reach it (and throw) even though it has no edges to follow.
    [[nodiscard]] virtual bool opaque() const noexcept { return false; }
};

/// The tag of an op recorded without a differentiable backward.
struct NoGraphBackward {};

[[noreturn]] inline void throw_no_double_backward(const char* op) {
    raise<ValueError>("double backward is not supported for '", op, "': its gradient was computed under ",
                      "create_graph by its first-order backward, which is not recorded, and something now ",
                      "differentiates through that gradient");
}

/// The gradient of an op that has no differentiable backward, produced under create_graph: its value is
/// right, but differentiating through it throws naming the op (never a silently wrong answer).
template <class T, class D>
struct NoDoubleBackwardNode final : TypedNode<T, D> {
    NoDoubleBackwardNode(const char* op, Tensor<T, D> dy) : TypedNode<T, D>(op), dy_(std::move(dy)) {}
    void backward() override { throw_no_double_backward(this->name); }
    void backward_graph(const Tensor<T, D>&, GradSink<T, D>&) override { throw_no_double_backward(this->name); }
    [[nodiscard]] bool opaque() const noexcept override { return true; }
    void release() noexcept override { dy_ = Tensor<T, D>(); }
    Tensor<T, D> dy_;  ///< keeps the incoming gradient (the edge) alive
};

/// create_graph for an op without a differentiable backward: runs its first-order closure on a copy of dy
/// (inputs' gradients set aside and restored, so no .grad() changes), returns each input's gradient, and,
/// when recording, marks each with a NoDoubleBackwardNode.
template <class T, class D>
void first_order_backward(TypedNode<T, D>& node, const Tensor<T, D>& dy, GradSink<T, D>& sink) {
    using Impl = TensorImpl<T, D>;
    auto* out = static_cast<Impl*>(node.output);
    const int n = node.num_edges();
    std::vector<std::shared_ptr<Impl>> saved(static_cast<size_t>(n));
    std::shared_ptr<Impl> saved_out = std::move(out->grad);
    for (int i = 0; i < n; ++i) saved[static_cast<size_t>(i)] = std::move(static_cast<Impl*>(node.edge(i))->grad);
    std::vector<std::shared_ptr<Impl>> got(static_cast<size_t>(n));
    auto restore = [&]() noexcept {
        out->grad = std::move(saved_out);
        for (int i = n - 1; i >= 0; --i) static_cast<Impl*>(node.edge(i))->grad = std::move(saved[static_cast<size_t>(i)]);
    };
    try {
        {
            const Tensor<T, D> copy = Tensor<T, D>::empty(dy.shape());
            backend::Ops<D>::copy(dy.numel(), dy.data_ptr(), copy.data_ptr());
            out->grad = copy.impl_ptr();
        }
        node.backward();
        out->grad.reset();
        for (int i = 0; i < n; ++i) got[static_cast<size_t>(i)] = std::move(static_cast<Impl*>(node.edge(i))->grad);
    } catch (...) {
        restore();
        throw;
    }
    restore();
    for (int i = 0; i < n; ++i) {
        if (!got[static_cast<size_t>(i)]) continue;
        Tensor<T, D> g(std::move(got[static_cast<size_t>(i)]));
        g.impl()->requires_grad = false;
        if (is_grad_enabled()) {
            auto marker = std::allocate_shared<NoDoubleBackwardNode<T, D>>(
                backend::PoolAllocator<NoDoubleBackwardNode<T, D>>{}, node.name, dy);
            if (dy.requires_grad()) marker->add_edge(dy.impl());
            marker->output = g.impl();
            g.impl()->grad_fn = std::move(marker);
            g.impl()->requires_grad = true;
        }
        sink.add_impl(node.edge(i), std::move(g));
    }
}

template <class T, class D, class F, class G = NoGraphBackward>
struct FnNode final : TypedNode<T, D> {
    FnNode(const char* op, F&& f) : TypedNode<T, D>(op), fn(std::move(f)) {}
    FnNode(const char* op, F&& f, G&& g) : TypedNode<T, D>(op), fn(std::move(f)), gfn(std::move(g)) {}
    void backward() override {
        auto* out = static_cast<TensorImpl<T, D>*>(this->output);
        const Tensor<T, D> dy(out->grad);
        if constexpr (std::is_invocable_v<F&, const Tensor<T, D>&, const TensorImpl<T, D>&>)
            (*fn)(dy, *out);
        else
            (*fn)(dy);
    }
    void backward_graph(const Tensor<T, D>& dy, GradSink<T, D>& sink) override {
        TAPEGRAD_CHECK(fn.has_value(), ValueError, "grad: the record of '", this->name, "' was freed by an earlier ",
                       "backward");
        if constexpr (!std::is_same_v<G, NoGraphBackward>)
            (*gfn)(dy, sink);
        else if constexpr (std::is_invocable_v<F&, const Tensor<T, D>&, GradSink<T, D>&>)
            (*fn)(dy, sink);  // one closure object with both backwards (sharing its captures)
        else
            first_order_backward(*this, dy, sink);
    }
    void release() noexcept override {
        fn.reset();
        if constexpr (!std::is_same_v<G, NoGraphBackward>) gfn.reset();
    }
    std::optional<F> fn;
    [[no_unique_address]] std::conditional_t<std::is_same_v<G, NoGraphBackward>, NoGraphBackward, std::optional<G>> gfn;
};

/// True when `x` is present (defined) and requires grad: an input whose gradient an op's backward computes.
template <class T, class D>
[[nodiscard]] bool wants_grad(const Tensor<T, D>& x) {
    return x.defined() && x.requires_grad();
}

/// True when an op on these inputs must record: grad mode is on and some input requires grad. Undefined
/// (absent optional) inputs count as not requiring grad.
template <class... Ts>
[[nodiscard]] bool needs_grad(const Ts&... inputs) {
    return is_grad_enabled() && (wants_grad(inputs) || ...);
}

template <class T, class D, class F, class G>
void attach(Tensor<T, D>& out, std::shared_ptr<FnNode<T, D, F, G>> node) {
    node->output = out.impl();
    out.impl()->grad_fn = std::move(node);
    out.impl()->requires_grad = true;
}

/// Makes `out` the result of a recorded op whose backward is `fn`. Only inputs that require grad become
/// edges (an undefined input, an absent optional one, is skipped); the closure itself holds whatever it
/// needs alive. Recorded this way, an op has no differentiable backward: under create_graph its gradient
/// is still computed (by `fn`), but differentiating through that gradient throws naming the op.
template <class T, class D, class F>
void record(Tensor<T, D>& out, const char* op, std::initializer_list<const Tensor<T, D>*> inputs, F&& fn) {
    auto node = std::allocate_shared<FnNode<T, D, std::decay_t<F>>>(
        backend::PoolAllocator<FnNode<T, D, std::decay_t<F>>>{}, op, std::forward<F>(fn));
    for (const Tensor<T, D>* in : inputs)
        if (wants_grad(*in)) node->add_edge(in->impl());
    attach(out, std::move(node));
}
template <class T, class D, class F>
void record(Tensor<T, D>& out, const char* op, std::span<const Tensor<T, D>> inputs, F&& fn) {
    auto node = std::allocate_shared<FnNode<T, D, std::decay_t<F>>>(
        backend::PoolAllocator<FnNode<T, D, std::decay_t<F>>>{}, op, std::forward<F>(fn));
    for (const Tensor<T, D>& in : inputs)
        if (wants_grad(in)) node->add_edge(in.impl());
    attach(out, std::move(node));
}

/// An op's closure may also be one object with both backwards, `operator()(dy[, out])` and
/// `operator()(dy, GradSink&)`, which share its captures (what the hottest ops, unary and binary, do: a
/// second closure would copy each captured tensor again).
///
/// Like record, with a second closure: the op's differentiable backward,
/// `graph_fn(const Tensor& dy, GradSink& g)`, which computes each input's gradient with public (recorded)
/// ops and hands it over with `g.add(x, dx)`. Only create_graph (and tapegrad::grad) run it; plain
/// backward runs `fn`, the fast one.
template <class T, class D, class F, class G>
void record(Tensor<T, D>& out, const char* op, std::initializer_list<const Tensor<T, D>*> inputs, F&& fn,
            G&& graph_fn) {
    using Node = FnNode<T, D, std::decay_t<F>, std::decay_t<G>>;
    auto node = std::allocate_shared<Node>(backend::PoolAllocator<Node>{}, op, std::forward<F>(fn),
                                           std::forward<G>(graph_fn));
    for (const Tensor<T, D>* in : inputs)
        if (wants_grad(*in)) node->add_edge(in->impl());
    attach(out, std::move(node));
}
template <class T, class D, class F, class G>
void record(Tensor<T, D>& out, const char* op, std::span<const Tensor<T, D>> inputs, F&& fn, G&& graph_fn) {
    using Node = FnNode<T, D, std::decay_t<F>, std::decay_t<G>>;
    auto node = std::allocate_shared<Node>(backend::PoolAllocator<Node>{}, op, std::forward<F>(fn),
                                           std::forward<G>(graph_fn));
    for (const Tensor<T, D>& in : inputs)
        if (wants_grad(in)) node->add_edge(in.impl());
    attach(out, std::move(node));
}

/// The gradient buffer of `x` (which must require grad), created zero-filled on first use. Backward
/// closures add into it with `+=`.
template <class T, class D>
[[nodiscard]] T* grad_buffer(const Tensor<T, D>& x) {
    TensorImpl<T, D>* impl = x.impl();
    if (!impl->grad) impl->grad = Tensor<T, D>::zeros(impl->shape).impl_ptr();
    return impl->grad->data();
}

/// The gradient buffer of `x` when its backward must compute one, else null: for an input that does not
/// require grad, or an absent (undefined) optional input. Backward primitives skip a null gradient.
template <class T, class D>
[[nodiscard]] T* grad_buffer_or_null(const Tensor<T, D>& x) {
    return wants_grad(x) ? grad_buffer(x) : nullptr;
}

/// Like grad_buffer, but a new buffer is left uninitialised and `fresh` is set, so a matrix product can
/// write into it with beta = 0 instead of zero-filling first.
template <class T, class D>
[[nodiscard]] T* grad_buffer_for_overwrite(const Tensor<T, D>& x, bool& fresh) {
    TensorImpl<T, D>* impl = x.impl();
    fresh = !impl->grad;
    if (fresh) impl->grad = Tensor<T, D>::empty(impl->shape).impl_ptr();
    return impl->grad->data();
}

/// Where an elementwise backward puts the gradient of an input with the output's shape.
template <class T>
struct GradTarget {
    T* data = nullptr;  ///< null when the input does not require grad
    bool assign = false;  ///< overwrite `data` (it is the output's gradient buffer, handed over) instead of +=
};

/// The gradient target of `x` for an elementwise op whose output is `out`, with incoming gradient `dy`.
/// When x has no gradient yet and `dy` is about to be thrown away -- the output is an intermediate whose
/// gradient nobody else holds, and is not retained -- x adopts dy's buffer and the backward overwrites it
/// in place (each element reads dy[i] before writing dx[i]). That saves allocating and zero-filling a
/// buffer on every elementwise op of a backward pass. Otherwise: x's own buffer, accumulated into.
/// Call it after every other input's target has been taken, so an input that is both operands (x * x)
/// already has a gradient and is not handed dy's buffer.
template <class T, class D>
[[nodiscard]] GradTarget<T> grad_target(const Tensor<T, D>& x, const TensorImpl<T, D>& out, const Tensor<T, D>& dy) {
    if (!x.requires_grad()) return {};
    TensorImpl<T, D>* impl = x.impl();
    const auto& g = out.grad;
    // use_count 2: `out` and the `dy` handle the engine passed us
    if (!impl->grad && !out.retains_grad && g.get() == dy.impl() && g.use_count() == 2 && impl->shape == out.shape &&
        g->offset == 0 && g->storage.use_count() == 1 && g->storage->owned && g->grad_fn == nullptr) {
        impl->grad = g;
        return {impl->grad->data(), true};
    }
    return {grad_buffer(x), false};
}

/// Adds a whole gradient tensor into `x`'s gradient. Checks that it has `x`'s shape, naming the op whose
/// backward produced it if not; a gradient nobody else holds is adopted without a copy.
template <class T, class D>
void accumulate(const char* op, const Tensor<T, D>& x, Tensor<T, D> g) {
    if (!x.requires_grad()) return;
    TensorImpl<T, D>* impl = x.impl();
    TAPEGRAD_CHECK(g.shape() == impl->shape, InternalError, "backward of '", op, "' produced a gradient of shape ",
                   g.shape(), " for an input of shape ", impl->shape);
    if (!impl->grad) {
        const auto& gi = g.impl_ptr();
        if (gi.use_count() == 1 && gi->storage.use_count() == 1 && gi->offset == 0 && gi->grad_fn == nullptr &&
            gi->storage->owned) {
            impl->grad = gi;
            gi->requires_grad = false;
            return;
        }
        impl->grad = Tensor<T, D>::empty(impl->shape).impl_ptr();
        backend::Ops<D>::copy(impl->shape.numel(), g.data_ptr(), impl->grad->data());
        return;
    }
    backend::Ops<D>::axpy(impl->shape.numel(), T(1), g.data_ptr(), impl->grad->data());
}

}  // namespace tapegrad::detail
