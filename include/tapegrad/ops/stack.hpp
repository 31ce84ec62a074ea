#pragma once
/// \file
/// Shape ops for sequences: `stack` (join equal tensors along a new axis), `unbind` and `select` (take
/// them apart again), and `permute` (reorder every axis at once, as attention's [N, L, H, d] <-> [N, H, L, d]).
/// They reuse concat's and slice's block copy (`copy_axis_block`) and transpose's strided copy.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/shape.hpp>

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

namespace tapegrad {

/// Joins tensors of one shape along a new axis `axis` (in [-(rank+1), rank]): n tensors of shape s ->
/// [s[0..axis), n, s[axis..)]. Backward hands each input its slice.
template <Scalar T, Device D>
Tensor<T, D> stack(std::span<const Tensor<T, D>> xs, int axis = 0) {
    using B = backend::Ops<D>;
    TAPEGRAD_CHECK(!xs.empty(), ValueError, "stack: no tensors given");
    const Shape& s0 = xs[0].shape();
    for (size_t k = 1; k < xs.size(); ++k)
        TAPEGRAD_CHECK(xs[k].shape() == s0, ShapeError, "stack: tensor ", k, " has shape ", xs[k].shape(),
                       ", tensor 0 has shape ", s0, " (stack needs equal shapes)");
    const int r = s0.rank();
    TAPEGRAD_CHECK(axis >= -(r + 1) && axis <= r, IndexError, "stack: axis ", axis, " out of range for tensors of rank ",
                   r, " (shape ", s0, "; valid: [", -(r + 1), ", ", r, "])");
    const int a = axis < 0 ? axis + r + 1 : axis;
    const int64_t n = static_cast<int64_t>(xs.size());
    Shape out;
    for (int i = 0; i < r; ++i) {
        if (i == a) out.push_back(n);
        out.push_back(s0[i]);
    }
    if (a == r) out.push_back(n);
    const auto so = out.split_at(a);
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    for (int64_t k = 0; k < n; ++k)
        B::copy_axis_block(so.outer, 1, so.inner, 0, 1, xs[static_cast<size_t>(k)].data_ptr(), n, k, y.data_ptr(),
                           false);
    bool any = false;
    for (const auto& x : xs) any = any || x.requires_grad();
    if (is_grad_enabled() && any) {
        std::vector<Tensor<T, D>> ins(xs.begin(), xs.end());
        detail::record(
            y, "stack", xs,
            [ins, so, n](const Tensor<T, D>& dy) {
                for (int64_t k = 0; k < n; ++k) {
                    const auto& x = ins[static_cast<size_t>(k)];
                    if (x.requires_grad())
                        B::copy_axis_block(so.outer, n, so.inner, k, 1, dy.data_ptr(), 1, 0, detail::grad_buffer(x),
                                           true);
                }
            },
            // Under create_graph: input k's gradient is select(dy, axis, k).
            [ins, a, n](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                for (int64_t k = 0; k < n; ++k)
                    if (g.wants(ins[static_cast<size_t>(k)])) g.add(ins[static_cast<size_t>(k)], select(dy, a, k));
            });
    }
    return y;
}
template <Scalar T, Device D>
Tensor<T, D> stack(std::initializer_list<Tensor<T, D>> xs, int axis = 0) {
    return stack(std::span<const Tensor<T, D>>(xs.begin(), xs.size()), axis);
}
template <Scalar T, Device D>
Tensor<T, D> stack(const std::vector<Tensor<T, D>>& xs, int axis = 0) {
    return stack(std::span<const Tensor<T, D>>(xs), axis);
}

/// The slice at `index` along `axis`, with that axis removed: x: [.., n, ..] -> [.., ..] (a copy).
/// A negative index counts from the end. Backward adds the gradient into that slice of x's gradient.
template <Scalar T, Device D>
Tensor<T, D> select(const Tensor<T, D>& x, int axis, int64_t index) {
    using B = backend::Ops<D>;
    const Shape& s = x.shape();
    const int a = s.normalize_axis(axis, "select");
    const int64_t n = s[a];
    const int64_t i = index < 0 ? index + n : index;
    TAPEGRAD_CHECK(i >= 0 && i < n, IndexError, "select: index ", index, " is out of range for axis ", axis,
                   " of size ", n, " (shape ", s, ")");
    const auto sp = s.split_at(a);
    Tensor<T, D> y = Tensor<T, D>::empty(s.without(a));
    B::copy_axis_block(sp.outer, n, sp.inner, i, 1, x.data_ptr(), 1, 0, y.data_ptr(), false);
    if (detail::needs_grad(x)) {
        detail::record(
            y, "select", {&x},
            [x, sp, i](const Tensor<T, D>& dy) {
                B::copy_axis_block(sp.outer, 1, sp.inner, 0, 1, dy.data_ptr(), sp.n, i, detail::grad_buffer(x), true);
            },
            // Under create_graph: dy put back as slice i of zeros along the axis.
            [x, a, i](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (!g.wants(x)) return;
                const Shape& sx = x.shape();
                std::vector<Tensor<T, D>> parts;
                if (i > 0) parts.push_back(Tensor<T, D>::zeros(sx.with(a, i)));
                parts.push_back(reshape(dy, sx.with(a, 1)));
                if (i + 1 < sx[a]) parts.push_back(Tensor<T, D>::zeros(sx.with(a, sx[a] - i - 1)));
                g.add(x, parts.size() == 1 ? parts[0] : concat(std::span<const Tensor<T, D>>(parts), a));
            });
    }
    return y;
}

/// Every slice along `axis`, in order, each without that axis: x: [.., n, ..] -> n tensors [.., ..]
/// (PyTorch's unbind; the inverse of stack). Each is a select, so each backward touches its own slice.
template <Scalar T, Device D>
std::vector<Tensor<T, D>> unbind(const Tensor<T, D>& x, int axis = 0) {
    const int a = x.shape().normalize_axis(axis, "unbind");
    const int64_t n = x.shape()[a];
    std::vector<Tensor<T, D>> out;
    out.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out.push_back(select(x, a, i));
    return out;
}

/// Reorders the axes: output axis i is input axis dims[i] (dims a permutation of 0..rank-1; negative
/// entries count from the end). A copy into the new row-major layout. Backward permutes the gradient back.
///  x: [2, 3, 4], dims {2, 0, 1} -> [4, 2, 3]
template <Scalar T, Device D>
Tensor<T, D> permute(const Tensor<T, D>& x, std::span<const int> dims) {
    using B = backend::Ops<D>;
    const Shape& s = x.shape();
    const int r = s.rank();
    TAPEGRAD_CHECK(static_cast<int>(dims.size()) == r, ShapeError, "permute: ", dims.size(),
                   " axes given for a tensor of rank ", r, " (shape ", s, ")");
    std::vector<bool> seen(static_cast<size_t>(r), false);
    const auto in_strides = contiguous_strides(s);
    backend::Strided p;
    p.rank = r;
    Shape out;
    for (int i = 0; i < r; ++i) {
        const int d = s.normalize_axis(dims[static_cast<size_t>(i)], "permute");
        TAPEGRAD_CHECK(!seen[static_cast<size_t>(d)], ValueError, "permute: axis ", dims[static_cast<size_t>(i)],
                       " appears twice (shape ", s, ")");
        seen[static_cast<size_t>(d)] = true;
        out.push_back(s[d]);
        p.dims[static_cast<size_t>(i)] = s[d];
        p.sa[static_cast<size_t>(i)] = in_strides[static_cast<size_t>(d)];
    }
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    B::strided_copy(p, x.data_ptr(), y.data_ptr());
    if (detail::needs_grad(x)) {
        // the gradient is y's layout read through the same plan: add dy[i] into dx at the plan's offsets
        std::vector<int> inverse(static_cast<size_t>(r));
        for (int i = 0; i < r; ++i)
            inverse[static_cast<size_t>(s.normalize_axis(dims[static_cast<size_t>(i)], "permute"))] = i;
        detail::record(
            y, "permute", {&x}, [x, p](const Tensor<T, D>& dy) { B::strided_add(p, dy.data_ptr(), detail::grad_buffer(x)); },
            // Under create_graph: dy permuted back.
            [x, inverse](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (g.wants(x)) g.add(x, permute(dy, std::span<const int>(inverse)));
            });
    }
    return y;
}
template <Scalar T, Device D>
Tensor<T, D> permute(const Tensor<T, D>& x, std::initializer_list<int> dims) {
    return permute(x, std::span<const int>(dims.begin(), dims.size()));
}

}  // namespace tapegrad
