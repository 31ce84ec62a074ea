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

#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/core/tensor.hpp>

#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

namespace tapegrad::detail {

template <class T, class D, class F>
struct FnNode final : Node {
    FnNode(const char* op, F&& f) : Node(op), fn(std::move(f)) {}
    void backward() override {
        auto* out = static_cast<TensorImpl<T, D>*>(output);
        const Tensor<T, D> dy(out->grad);
        if constexpr (std::is_invocable_v<F&, const Tensor<T, D>&, const TensorImpl<T, D>&>)
            (*fn)(dy, *out);
        else
            (*fn)(dy);
    }
    void release() noexcept override { fn.reset(); }
    std::optional<F> fn;
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

template <class T, class D, class F>
void attach(Tensor<T, D>& out, std::shared_ptr<FnNode<T, D, F>> node) {
    node->output = out.impl();
    out.impl()->grad_fn = std::move(node);
    out.impl()->requires_grad = true;
}

/// Makes `out` the result of a recorded op whose backward is `fn`. Only inputs that require grad become
/// edges (an undefined input, an absent optional one, is skipped); the closure itself holds whatever it
/// needs alive.
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
