#pragma once
/// \file
/// Derivatives of a function of one tensor, as tensors (the torch.autograd.functional helpers): vjp, jvp,
/// hvp, vhp and the full hessian, all built on tapegrad::grad with create_graph (autograd/grad.hpp).
///
///     auto f = [](const TensorD& x) { return sum(x * x * x); };   // f: R^n -> R
///     TensorD hv = hvp(f, x, v);                                  // H(x) v = 6 x * v, no n x n matrix formed
///
/// `f` takes a tensor and returns a tensor (a one-element one for hvp, vhp and hessian). The point x is not
/// modified and need not require grad: each helper differentiates at a detached copy, and returns values
/// that record nothing.

#include <tapegrad/autograd/grad.hpp>
#include <tapegrad/core/tensor.hpp>

#include <concepts>
#include <cstdint>
#include <vector>

namespace tapegrad {

namespace detail {

/// x as a fresh leaf that requires grad (sharing x's data; nothing writes to it).
template <Scalar T, Device D>
Tensor<T, D> functional_point(const Tensor<T, D>& x) {
    Tensor<T, D> p = x.detach();
    p.requires_grad_(true);
    return p;
}

template <class F, class T, class D>
Tensor<T, D> call_functional(const F& f, const Tensor<T, D>& x, const char* op) {
    NoGradGuard on(true);
    Tensor<T, D> y = f(x);
    TAPEGRAD_CHECK(y.defined() && y.requires_grad(), ValueError, op, ": the function's output does not depend on ",
                   "its input");
    return y;
}

template <class F, class T, class D>
Tensor<T, D> scalar_output(const F& f, const Tensor<T, D>& x, const char* op) {
    Tensor<T, D> y = call_functional(f, x, op);
    TAPEGRAD_CHECK(y.numel() == 1, ShapeError, op, ": the function must return one element, got shape ", y.shape());
    return y;
}

/// A gradient as a plain tensor (no record); zeros for an input the function does not use.
template <Scalar T, Device D>
Tensor<T, D> value_or_zeros(const Tensor<T, D>& g, const Shape& shape) {
    return g.defined() ? g.detach() : Tensor<T, D>::zeros(shape);
}

template <class T, class D>
void check_direction(const char* op, const Tensor<T, D>& v, const Shape& expected, const char* what) {
    TAPEGRAD_CHECK(v.defined() && v.shape() == expected, ShapeError, op, ": v has shape ",
                   (v.defined() ? v.shape() : Shape{}), " but ", what, " has shape ", expected);
}

}  // namespace detail

/// Vector-Jacobian product v^T J(x) of f: R^n -> R^m at x, for v of f(x)'s shape -> x's shape.
template <class F, Scalar T, Device D>
    requires std::invocable<const F&, const Tensor<T, D>&>
Tensor<T, D> vjp(const F& f, const Tensor<T, D>& x, const Tensor<T, D>& v) {
    const Tensor<T, D> p = detail::functional_point(x);
    const Tensor<T, D> y = detail::call_functional(f, p, "vjp");
    detail::check_direction("vjp", v, y.shape(), "f(x)");
    return detail::value_or_zeros(grad(y, p, {.grad_outputs = {v}, .allow_unused = true}), x.shape());
}

/// Jacobian-vector product J(x) v of f: R^n -> R^m at x, for v of x's shape -> f(x)'s shape. Reverse mode
/// twice (the "double backward trick"): g(u) = J^T u is linear in a dummy u, and J v is the gradient of
/// <g(u), v> with respect to u.
template <class F, Scalar T, Device D>
    requires std::invocable<const F&, const Tensor<T, D>&>
Tensor<T, D> jvp(const F& f, const Tensor<T, D>& x, const Tensor<T, D>& v) {
    detail::check_direction("jvp", v, x.shape(), "x");
    const Tensor<T, D> p = detail::functional_point(x);
    const Tensor<T, D> y = detail::call_functional(f, p, "jvp");
    Tensor<T, D> u = Tensor<T, D>::zeros(y.shape());
    u.requires_grad_(true);
    const Tensor<T, D> g = grad(y, p, {.grad_outputs = {u}, .create_graph = true, .allow_unused = true});
    if (!g.defined() || !g.requires_grad()) return Tensor<T, D>::zeros(y.shape());
    return detail::value_or_zeros(grad(g, u, {.grad_outputs = {v}, .allow_unused = true}), y.shape());
}

/// Hessian-vector product H(x) v of a scalar function f at x, for v of x's shape -> x's shape, by double
/// backward: the gradient of <grad f(x), v>. Costs about two backward passes; the n x n Hessian is never
/// formed.
template <class F, Scalar T, Device D>
    requires std::invocable<const F&, const Tensor<T, D>&>
Tensor<T, D> hvp(const F& f, const Tensor<T, D>& x, const Tensor<T, D>& v) {
    detail::check_direction("hvp", v, x.shape(), "x");
    const Tensor<T, D> p = detail::functional_point(x);
    const Tensor<T, D> y = detail::scalar_output(f, p, "hvp");
    const Tensor<T, D> g = grad(y, p, {.create_graph = true});
    if (!g.requires_grad()) return Tensor<T, D>::zeros(x.shape());  // f is affine in x
    return detail::value_or_zeros(grad(g, p, {.grad_outputs = {v}, .allow_unused = true}), x.shape());
}

/// Vector-Hessian product v^T H(x) of a scalar function f at x -> x's shape. The Hessian of a twice
/// continuously differentiable f is symmetric, so this equals hvp; it is computed the same way.
template <class F, Scalar T, Device D>
    requires std::invocable<const F&, const Tensor<T, D>&>
Tensor<T, D> vhp(const F& f, const Tensor<T, D>& x, const Tensor<T, D>& v) {
    detail::check_direction("vhp", v, x.shape(), "x");
    return hvp(f, x, v);
}

/// The full Hessian of a scalar function f at x, as a tensor of shape x.shape() + x.shape() (a [n, n]
/// matrix for a vector x): one double backward per element of x, so for small inputs only.
template <class F, Scalar T, Device D>
    requires std::invocable<const F&, const Tensor<T, D>&>
Tensor<T, D> hessian(const F& f, const Tensor<T, D>& x) {
    const int64_t n = x.numel();
    const Tensor<T, D> p = detail::functional_point(x);
    const Tensor<T, D> y = detail::scalar_output(f, p, "hessian");
    const Tensor<T, D> g = grad(y, p, {.create_graph = true});
    Shape out = x.shape();
    for (int i = 0; i < x.dim(); ++i) out.push_back(x.size(i));
    Tensor<T, D> h = Tensor<T, D>::zeros(out);
    if (!g.requires_grad()) return h;
    std::vector<T> e(static_cast<size_t>(n), T(0));
    for (int64_t i = 0; i < n; ++i) {
        e[static_cast<size_t>(i)] = T(1);
        const Tensor<T, D> ei = Tensor<T, D>::from(x.shape(), e);
        e[static_cast<size_t>(i)] = T(0);
        const Tensor<T, D> row = grad(g, p, {.grad_outputs = {ei}, .retain_graph = true, .allow_unused = true});
        if (row.defined()) backend::Ops<D>::copy(n, row.data_ptr(), h.data_ptr() + i * n);
    }
    return h;
}

}  // namespace tapegrad
