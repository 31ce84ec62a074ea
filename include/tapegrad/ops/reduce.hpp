#pragma once
/// \file
/// Reductions: sum and mean (of everything, or along one axis with keepdim), and max along an axis with
/// its argmax.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/shape.hpp>

#include <vector>

namespace tapegrad {

namespace detail {

template <Scalar T, Device D>
Tensor<T, D> scaled_reduce(const Tensor<T, D>& x, Shape::AxisSplit s, Shape out_shape, T scale, const char* op);

/// The adjoint of scaled_reduce, as a recorded op (sum's gradient under create_graph): each element of
/// `g` (the reduced shape) copied n times along the middle axis of [outer, n, inner] and scaled, giving
/// `out_shape`. Its own gradient is scaled_reduce again.
template <Scalar T, Device D>
Tensor<T, D> scaled_expand(const Tensor<T, D>& g, Shape::AxisSplit s, const Shape& out_shape, T scale) {
    using B = backend::Ops<D>;
    Tensor<T, D> y = Tensor<T, D>::zeros(out_shape);
    B::expand_axis_add(s.outer, s.n, s.inner, scale, g.data_ptr(), y.data_ptr());
    if (needs_grad(g)) {
        record(
            y, "expand", {&g},
            [g, s, scale](const Tensor<T, D>& dy) {
                Tensor<T, D> t = Tensor<T, D>::empty(g.shape());
                B::sum_axis(s.outer, s.n, s.inner, dy.data_ptr(), t.data_ptr());
                B::axpy(t.numel(), scale, t.data_ptr(), grad_buffer(g));
            },
            [g, s, scale](const Tensor<T, D>& dy, GradSink<T, D>& sink) {
                if (sink.wants(g)) sink.add(g, scaled_reduce(dy, s, g.shape(), scale, "sum"));
            });
    }
    return y;
}

/// scaled_reduce's backward, fused and differentiable (one object: x captured once).
template <class T, class D>
struct ReduceBackward {
    Tensor<T, D> x;
    Shape::AxisSplit s;
    T scale;
    void operator()(const Tensor<T, D>& dy) const {
        backend::Ops<D>::expand_axis_add(s.outer, s.n, s.inner, scale, dy.data_ptr(), grad_buffer(x));
    }
    void operator()(const Tensor<T, D>& dy, GradSink<T, D>& g) const {
        if (g.wants(x)) g.add(x, scaled_expand(dy, s, x.shape(), scale));
    }
};

/// sum (scale = 1) or mean (scale = 1/n) over the middle axis of the [outer, n, inner] view.
/// Backward: every input element receives scale * the gradient of the sum it fed.
template <Scalar T, Device D>
Tensor<T, D> scaled_reduce(const Tensor<T, D>& x, Shape::AxisSplit s, Shape out_shape, T scale, const char* op) {
    using B = backend::Ops<D>;
    Tensor<T, D> y = Tensor<T, D>::empty(out_shape);
    B::sum_axis(s.outer, s.n, s.inner, x.data_ptr(), y.data_ptr());
    if (scale != T(1)) B::scale(y.numel(), scale, y.data_ptr());
    if (needs_grad(x)) record(y, op, {&x}, ReduceBackward<T, D>{x, s, scale});
    return y;
}

inline Shape reduced_shape(const Shape& s, int axis, bool keepdim) { return keepdim ? s.with(axis, 1) : s.without(axis); }

}  // namespace detail

/// Sum of all elements, as a rank-0 tensor.
template <Scalar T, Device D>
Tensor<T, D> sum(const Tensor<T, D>& x) {
    return detail::scaled_reduce(x, {1, x.numel(), 1}, Shape{}, T(1), "sum");
}
/// Sum along `axis` (negative counts from the end); `keepdim` keeps it as a dimension of size 1.
template <Scalar T, Device D>
Tensor<T, D> sum(const Tensor<T, D>& x, int axis, bool keepdim = false) {
    const int a = x.shape().normalize_axis(axis, "sum");
    return detail::scaled_reduce(x, x.shape().split_at(a), detail::reduced_shape(x.shape(), a, keepdim), T(1), "sum");
}
/// Mean of all elements, as a rank-0 tensor. Throws ValueError on an empty tensor.
template <Scalar T, Device D>
Tensor<T, D> mean(const Tensor<T, D>& x) {
    TAPEGRAD_CHECK(x.numel() > 0, ValueError, "mean: tensor of shape ", x.shape(), " is empty");
    return detail::scaled_reduce(x, {1, x.numel(), 1}, Shape{}, T(1) / static_cast<T>(x.numel()), "mean");
}
/// Mean along `axis`.
template <Scalar T, Device D>
Tensor<T, D> mean(const Tensor<T, D>& x, int axis, bool keepdim = false) {
    const int a = x.shape().normalize_axis(axis, "mean");
    const auto s = x.shape().split_at(a);
    TAPEGRAD_CHECK(s.n > 0, ValueError, "mean: axis ", axis, " of shape ", x.shape(), " is empty");
    return detail::scaled_reduce(x, s, detail::reduced_shape(x.shape(), a, keepdim), T(1) / static_cast<T>(s.n),
                                 "mean");
}

/// The result of `max` along an axis: the values, and the index along the axis where each was found
/// (row-major over the values' shape).
template <Scalar T, Device D>
struct MaxResult {
    Tensor<T, D> values;
    std::vector<int64_t> indices;
};

/// Maximum along `axis` with its position (the first one on ties). The gradient flows to that position.
template <Scalar T, Device D>
MaxResult<T, D> max(const Tensor<T, D>& x, int axis, bool keepdim = false) {
    using B = backend::Ops<D>;
    const int a = x.shape().normalize_axis(axis, "max");
    const auto s = x.shape().split_at(a);
    TAPEGRAD_CHECK(s.n > 0, ValueError, "max: axis ", axis, " of shape ", x.shape(), " is empty");
    MaxResult<T, D> r{Tensor<T, D>::empty(detail::reduced_shape(x.shape(), a, keepdim)),
                      std::vector<int64_t>(static_cast<size_t>(s.outer * s.inner))};
    B::max_axis(s.outer, s.n, s.inner, x.data_ptr(), r.values.data_ptr(), r.indices.data());
    if (detail::needs_grad(x)) {
        // Under create_graph: dx = onehot(argmax) * dy copied along the axis (onehot a constant).
        detail::record(
            r.values, "max", {&x},
            [x, s, idx = r.indices](const Tensor<T, D>& dy) {
                B::scatter_axis_add(s.outer, s.n, s.inner, idx.data(), dy.data_ptr(), detail::grad_buffer(x));
            },
            [x, s, idx = r.indices](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (!g.wants(x)) return;
                Tensor<T, D> onehot = Tensor<T, D>::zeros(x.shape());
                const Tensor<T, D> ones = Tensor<T, D>::ones(dy.shape());
                B::scatter_axis_add(s.outer, s.n, s.inner, idx.data(), ones.data_ptr(), onehot.data_ptr());
                g.add(x, onehot * detail::scaled_expand(dy, s, x.shape(), T(1)));
            });
    }
    return r;
}

}  // namespace tapegrad

// max's differentiable backward multiplies (ops/elementwise.hpp, which includes this header at its top).
#include <tapegrad/ops/elementwise.hpp>
