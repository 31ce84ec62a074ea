#pragma once
/// \file
/// Shape ops: reshape and flatten (views, no copy), transpose, concat, slice, clone. Tensor's members
/// `x.reshape(s)`, `x.flatten()`, `x.clone()` and `x.t()` call these.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>

#include <span>
#include <vector>

namespace tapegrad {

namespace detail {

/// The shape `reshape` gives a tensor of shape `from`: `to` with its -1 (at most one) inferred, checked to hold
/// as many elements. Shared by the float reshape here and the integer one of ops/integer.hpp.
inline Shape reshape_target(const Shape& from, const Shape& to) {
    Shape s = to;
    const int64_t n = from.numel();
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < s.rank(); ++i) {
        if (s[i] == -1) {
            TAPEGRAD_CHECK(infer < 0, ShapeError, "reshape: more than one -1 in ", to);
            infer = i;
        } else {
            TAPEGRAD_CHECK(s[i] >= 0, ShapeError, "reshape: negative dimension in ", to);
            known *= s[i];
        }
    }
    if (infer >= 0) {
        TAPEGRAD_CHECK(known > 0 && n % known == 0, ShapeError, "reshape: cannot reshape tensor of shape ", from, " (",
                       n, " elements) into ", to);
        s[infer] = n / known;
    }
    TAPEGRAD_CHECK(s.numel() == n, ShapeError, "reshape: cannot reshape tensor of shape ", from, " (", n,
                   " elements) into ", to, " (", s.numel(), " elements)");
    return s;
}

/// The shape `flatten(x, start, end)` gives a tensor of shape `s` (rank >= 1): dimensions [start, end] merged.
inline Shape flatten_target(const Shape& s, int start, int end) {
    const int a = s.normalize_axis(start, "flatten"), b = s.normalize_axis(end, "flatten");
    TAPEGRAD_CHECK(a <= b, IndexError, "flatten: start axis ", start, " comes after end axis ", end, " for shape ", s);
    Shape out;
    int64_t merged = 1;
    for (int i = 0; i < s.rank(); ++i) {
        if (i < a || i > b) out.push_back(s[i]);
        else {
            merged *= s[i];
            if (i == b) out.push_back(merged);
        }
    }
    return out;
}

}  // namespace detail

/// The same data seen with another shape of the same element count (one dimension may be -1, inferred).
/// A view: no copy. Backward: the gradient is reshaped back.
template <Scalar T, Device D>
Tensor<T, D> reshape(const Tensor<T, D>& x, const Shape& shape) {
    const Shape s = detail::reshape_target(x.shape(), shape);
    auto impl = detail::make_impl<T, D>();
    impl->storage = x.impl()->storage;
    impl->offset = x.impl()->offset;
    impl->shape = s;
    Tensor<T, D> y(std::move(impl));
    if (detail::needs_grad(x)) {
        detail::record(
            y, "reshape", {&x},
            [x](const Tensor<T, D>& dy) {
                backend::Ops<D>::axpy(x.numel(), T(1), dy.data_ptr(), detail::grad_buffer(x));
            },
            [x](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (g.wants(x)) g.add(x, reshape(dy, x.shape()));
            });
    }
    return y;
}

/// Flattens dimensions [start, end] into one (a view): `flatten(x, 1)` turns [N, C, H, W] into [N, C*H*W].
template <Scalar T, Device D>
Tensor<T, D> flatten(const Tensor<T, D>& x, int start = 0, int end = -1) {
    const Shape& s = x.shape();
    if (s.rank() == 0) return reshape(x, Shape{1});
    return reshape(x, detail::flatten_target(s, start, end));
}

namespace detail {
/// The strided_copy plan that writes a contiguous tensor of shape `from` as its transpose (axes a and b
/// swapped), row-major.
inline backend::Strided swap_axes_plan(const Shape& from, int a, int b) {
    const auto in_strides = contiguous_strides(from);
    backend::Strided p;
    p.rank = from.rank();
    for (int i = 0; i < from.rank(); ++i) {
        const int src = i == a ? b : (i == b ? a : i);
        p.dims[static_cast<size_t>(i)] = from[src];
        p.sa[static_cast<size_t>(i)] = in_strides[static_cast<size_t>(src)];
    }
    return p;
}
}  // namespace detail

/// Swaps two axes (a copy into the new row-major layout). Backward swaps the gradient back (written straight
/// into a fresh gradient buffer, else added).
template <Scalar T, Device D>
Tensor<T, D> transpose(const Tensor<T, D>& x, int axis0, int axis1) {
    using B = backend::Ops<D>;
    const Shape& s = x.shape();
    const int a = s.normalize_axis(axis0, "transpose"), b = s.normalize_axis(axis1, "transpose");
    Shape out = s;
    out[a] = s[b];
    out[b] = s[a];
    const backend::Strided p = detail::swap_axes_plan(s, a, b);
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    B::strided_copy(p, x.data_ptr(), y.data_ptr());
    if (detail::needs_grad(x)) {
        detail::record(
            y, "transpose", {&x},
            [x, p, out, a, b](const Tensor<T, D>& dy) {
                bool fresh = false;
                T* dx = detail::grad_buffer_for_overwrite(x, fresh);
                if (fresh)
                    B::strided_copy(detail::swap_axes_plan(out, a, b), dy.data_ptr(), dx);
                else
                    B::strided_add(p, dy.data_ptr(), dx);
            },
            [x, a, b](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (g.wants(x)) g.add(x, transpose(dy, a, b));
            });
    }
    return y;
}

/// Joins tensors along `axis`; all other dimensions must match. Backward hands each input its block.
template <Scalar T, Device D>
Tensor<T, D> concat(std::span<const Tensor<T, D>> xs, int axis) {
    using B = backend::Ops<D>;
    TAPEGRAD_CHECK(!xs.empty(), ValueError, "concat: no tensors given");
    const Shape& s0 = xs[0].shape();
    const int a = s0.normalize_axis(axis, "concat");
    int64_t total = 0;
    for (size_t k = 0; k < xs.size(); ++k) {
        const Shape& sk = xs[k].shape();
        TAPEGRAD_CHECK(sk.rank() == s0.rank() && sk.with(a, 0) == s0.with(a, 0), ShapeError, "concat: tensor ", k,
                       " has shape ", sk, ", which does not match tensor 0's shape ", s0, " outside axis ", axis);
        total += sk[a];
    }
    const Shape out = s0.with(a, total);
    const auto so = out.split_at(a);
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    int64_t at = 0;
    for (const auto& x : xs) {
        const int64_t n = x.shape()[a];
        B::copy_axis_block(so.outer, n, so.inner, 0, n, x.data_ptr(), total, at, y.data_ptr(), false);
        at += n;
    }
    bool any = false;
    for (const auto& x : xs) any = any || x.requires_grad();
    if (is_grad_enabled() && any) {
        // the inputs are kept in pooled storage, so a steady-state step that concatenates allocates nothing;
        // one object holds them for both backwards (the fused one and, under create_graph, slices of dy)
        struct ConcatBackward {
            backend::HostVector<Tensor<T, D>> ins;
            int a;
            Shape::AxisSplit so;
            int64_t total;
            void operator()(const Tensor<T, D>& dy) const {
                int64_t start = 0;
                for (const auto& x : ins) {
                    const int64_t n = x.shape()[a];
                    if (x.requires_grad())
                        B::copy_axis_block(so.outer, total, so.inner, start, n, dy.data_ptr(), n, 0,
                                           detail::grad_buffer(x), true);
                    start += n;
                }
            }
            void operator()(const Tensor<T, D>& dy, detail::GradSink<T, D>& g) const {
                int64_t start = 0;
                for (const auto& x : ins) {
                    const int64_t n = x.shape()[a];
                    if (g.wants(x)) g.add(x, slice(dy, a, start, start + n));
                    start += n;
                }
            }
        };
        detail::record(y, "concat", xs,
                       ConcatBackward{backend::HostVector<Tensor<T, D>>(xs.begin(), xs.end()), a, so, total});
    }
    return y;
}
template <Scalar T, Device D>
Tensor<T, D> concat(std::initializer_list<Tensor<T, D>> xs, int axis) {
    return concat(std::span<const Tensor<T, D>>(xs.begin(), xs.size()), axis);
}
template <Scalar T, Device D>
Tensor<T, D> concat(const std::vector<Tensor<T, D>>& xs, int axis) {
    return concat(std::span<const Tensor<T, D>>(xs), axis);
}

/// Elements [start, end) along `axis` (a copy). Negative start/end count from the end, as in Python.
/// Backward adds the gradient into that block of the input's gradient.
template <Scalar T, Device D>
Tensor<T, D> slice(const Tensor<T, D>& x, int axis, int64_t start, int64_t end) {
    using B = backend::Ops<D>;
    const Shape& s = x.shape();
    const int a = s.normalize_axis(axis, "slice");
    const int64_t n = s[a];
    const int64_t b0 = start < 0 ? start + n : start, e0 = end < 0 ? end + n : end;
    TAPEGRAD_CHECK(b0 >= 0 && e0 <= n && b0 <= e0, IndexError, "slice: range [", start, ", ", end,
                   ") is out of bounds for axis ", axis, " of size ", n, " (shape ", s, ")");
    const auto sp = s.split_at(a);
    Tensor<T, D> y = Tensor<T, D>::empty(s.with(a, e0 - b0));
    B::copy_axis_block(sp.outer, n, sp.inner, b0, e0 - b0, x.data_ptr(), e0 - b0, 0, y.data_ptr(), false);
    if (detail::needs_grad(x)) {
        detail::record(
            y, "slice", {&x},
            [x, sp, b0, e0](const Tensor<T, D>& dy) {
                bool fresh = false;
                T* dx = detail::grad_buffer_for_overwrite(x, fresh);
                if (fresh) {  // zeros around the block (only the margins when it is one run), then the block
                    if (sp.outer == 1) {
                        B::fill(b0 * sp.inner, T(0), dx);
                        B::fill((sp.n - e0) * sp.inner, T(0), dx + e0 * sp.inner);
                    } else {
                        B::fill(x.numel(), T(0), dx);
                    }
                }
                B::copy_axis_block(sp.outer, e0 - b0, sp.inner, 0, e0 - b0, dy.data_ptr(), sp.n, b0, dx, !fresh);
            },
            [x, a, b0, e0](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (!g.wants(x)) return;  // dx = dy padded with zeros along the axis
                const Shape& sx = x.shape();
                std::vector<Tensor<T, D>> parts;
                if (b0 > 0) parts.push_back(Tensor<T, D>::zeros(sx.with(a, b0)));
                parts.push_back(dy);
                if (e0 < sx[a]) parts.push_back(Tensor<T, D>::zeros(sx.with(a, sx[a] - e0)));
                g.add(x, parts.size() == 1 ? dy : concat(std::span<const Tensor<T, D>>(parts), a));
            });
    }
    return y;
}

/// A deep copy that stays in the graph (the gradient passes through unchanged).
template <Scalar T, Device D>
Tensor<T, D> clone(const Tensor<T, D>& x) {
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
    backend::Ops<D>::copy(x.numel(), x.data_ptr(), y.data_ptr());
    if (detail::needs_grad(x)) {
        detail::record(
            y, "clone", {&x},
            [x](const Tensor<T, D>& dy) { backend::Ops<D>::axpy(x.numel(), T(1), dy.data_ptr(), detail::grad_buffer(x)); },
            [x](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) { g.add(x, dy); });
    }
    return y;
}

}  // namespace tapegrad
