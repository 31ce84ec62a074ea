#pragma once
/// \file
/// Differentiable index ops, float or double values with int64 indices (`Tensor<int64_t, D>`) or masks
/// (`Mask<D>`): embedding, index_select, gather, where and masked_fill. The gradient flows to the float
/// inputs; indices and masks carry none.
///
/// Every backward is deterministic: where several positions add into one gradient element (a token that
/// occurs twice, a repeated index) they are added in ascending order of position, by one thread per
/// gradient element on a GPU (no atomics), so a run gives the same bits every time, on either device.
///
/// Indices are checked before use: an out-of-range one throws IndexError naming the op, the value, the range
/// and its position (`embedding: id 70 out of range [0, 64) at position 13`). On a GPU the check reads the
/// indices back (a wait); inside a CUDA graph capture it is skipped, and the kernels then leave the output
/// of an out-of-range index at zero rather than read outside the tensor.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/index_plan.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>

#include <cstdint>
#include <optional>

namespace tapegrad {

namespace detail {
/// Throws IndexError naming `op`, the first index of `idx` outside [0, hi), the range and its position.
template <Device D>
void check_indices(const char* op, const char* what, const Tensor<int64_t, D>& idx, int64_t hi) {
    using B = backend::Ops<D>;
    if (B::capturing()) return;
    const int64_t bad = B::find_out_of_range(idx.numel(), idx.data_ptr(), 0, hi);
    if (bad < 0) return;
    int64_t v = 0;
    B::download(1, idx.data_ptr() + bad, &v);
    raise<IndexError>(op, ": ", what, " ", v, " out of range [0, ", hi, ") at position ", bad);
}
}  // namespace detail

/// Rows of `weight` picked by `ids`: out[..., :] = weight[ids[...], :]. Backward adds each position's
/// gradient into its id's row (in ascending position, deterministic); the row `padding_idx` (if given;
/// negative counts from the end, as in PyTorch) gets no gradient, although the forward still reads it (it
/// stays zero when it starts zero, as nn::Embedding makes it): PyTorch's semantics.
/// weight: [num_embeddings, dim], ids: any shape S (int64) -> [S..., dim]
template <Scalar T, Device D>
Tensor<T, D> embedding(const Tensor<T, D>& weight, const Tensor<int64_t, D>& ids,
                       std::optional<int64_t> padding_idx = std::nullopt) {
    using B = backend::Ops<D>;
    TAPEGRAD_CHECK(weight.dim() == 2, ShapeError, "embedding: weight must be 2-D [num_embeddings, dim], got shape ",
                   weight.shape());
    const int64_t rows = weight.size(0), dim = weight.size(1);
    int64_t pad = -1;
    if (padding_idx) {
        pad = *padding_idx < 0 ? *padding_idx + rows : *padding_idx;
        TAPEGRAD_CHECK(pad >= 0 && pad < rows, IndexError, "embedding: padding_idx ", *padding_idx,
                       " out of range for ", rows, " embeddings");
    }
    detail::check_indices("embedding", "id", ids, rows);
    Shape out_shape = ids.shape();
    TAPEGRAD_CHECK(out_shape.rank() < Shape::max_rank, ShapeError, "embedding: ids of shape ", ids.shape(),
                   " have rank ", ids.dim(), "; the output would pass the maximum rank ", Shape::max_rank);
    out_shape.push_back(dim);
    Tensor<T, D> y = Tensor<T, D>::empty(out_shape);
    const int64_t n = ids.numel();
    B::embedding(n, dim, rows, ids.data_ptr(), weight.data_ptr(), y.data_ptr());
    if (detail::needs_grad(weight)) {
        detail::record(y, "embedding", {&weight}, [weight, ids, n, rows, dim, pad](const Tensor<T, D>& dy) {
            B::embedding_backward(n, dim, rows, ids.data_ptr(), pad, dy.data_ptr(), detail::grad_buffer(weight));
        });
    }
    return y;
}

/// The entries idx[0], idx[1], ... of `x` along `axis`: out[.., j, ..] = x[.., idx[j], ..]. Backward adds
/// the gradient back into those entries (repeats summed in ascending j).
/// x: [.., n, ..], idx: [k] (int64, each in [0, n)) -> [.., k, ..]
template <Scalar T, Device D>
Tensor<T, D> index_select(const Tensor<T, D>& x, int axis, const Tensor<int64_t, D>& idx) {
    using B = backend::Ops<D>;
    const int a = x.shape().normalize_axis(axis, "index_select");
    TAPEGRAD_CHECK(idx.dim() <= 1, ShapeError, "index_select: the index must be 1-D, got shape ", idx.shape());
    const auto s = x.shape().split_at(a);
    detail::check_indices("index_select", "index", idx, s.n);
    const int64_t k = idx.numel();
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape().with(a, k));
    B::index_select_axis(s.outer, s.n, s.inner, k, idx.data_ptr(), x.data_ptr(), y.data_ptr());
    if (detail::needs_grad(x)) {
        detail::record(y, "index_select", {&x}, [x, idx, s, k](const Tensor<T, D>& dy) {
            B::index_select_axis_backward(s.outer, s.n, s.inner, k, idx.data_ptr(), dy.data_ptr(),
                                          detail::grad_buffer(x));
        });
    }
    return y;
}

/// PyTorch's gather: out[m] = x[m with its `axis` coordinate replaced by idx[m]], for every multi-index m
/// of idx. idx has x's rank, each other dimension at most x's. Backward adds dy[m] into that element of x's
/// gradient (in row-major order of m).
/// x: [d0, .., dr], idx: [i0, .., ir] (int64, entries in [0, x.size(axis))) -> [i0, .., ir]
template <Scalar T, Device D>
Tensor<T, D> gather(const Tensor<T, D>& x, int axis, const Tensor<int64_t, D>& idx) {
    using B = backend::Ops<D>;
    const int a = x.shape().normalize_axis(axis, "gather");
    TAPEGRAD_CHECK(idx.dim() == x.dim(), ShapeError, "gather: index of shape ", idx.shape(),
                   " must have the input's rank (input shape ", x.shape(), ")");
    backend::GatherPlan g;
    g.rank = x.dim();
    g.dim = a;
    for (int d = 0; d < x.dim(); ++d) {
        TAPEGRAD_CHECK(d == a || idx.size(d) <= x.size(d), ShapeError, "gather: index of shape ", idx.shape(),
                       " is larger than the input of shape ", x.shape(), " in dimension ", d);
        g.dx[static_cast<size_t>(d)] = x.size(d);
        g.di[static_cast<size_t>(d)] = idx.size(d);
    }
    detail::check_indices("gather", "index", idx, x.size(a));
    Tensor<T, D> y = Tensor<T, D>::empty(idx.shape());
    B::gather_axis(g, idx.data_ptr(), x.data_ptr(), y.data_ptr());
    if (detail::needs_grad(x)) {
        detail::record(y, "gather", {&x}, [x, idx, g](const Tensor<T, D>& dy) {
            B::gather_axis_backward(g, idx.data_ptr(), dy.data_ptr(), detail::grad_buffer(x));
        });
    }
    return y;
}

namespace detail {
/// The plan of a mask broadcast to `shape` (its strides in p.sa); throws naming `op` if it does not fit.
inline backend::Strided mask_plan(const char* op, const Shape& mask, const Shape& shape) {
    const Shape s = broadcast_shapes(mask, shape, op);
    TAPEGRAD_CHECK(s == shape, ShapeError, op, ": mask of shape ", mask, " does not broadcast to the shape ", shape);
    return broadcast_plan(shape, mask, shape);
}
}  // namespace detail

/// out = mask ? a : b elementwise. The mask broadcasts to a's shape; a and b have one shape. Backward:
/// the gradient goes to a where the mask is set, to b elsewhere.
/// mask: broadcastable to S, a: S, b: S -> S
template <Scalar T, Device D>
Tensor<T, D> where(const Mask<D>& mask, const Tensor<T, D>& a, const Tensor<T, D>& b) {
    using B = backend::Ops<D>;
    TAPEGRAD_CHECK(a.shape() == b.shape(), ShapeError, "where: the two branches differ in shape (", a.shape(), " and ",
                   b.shape(), ")");
    const backend::Strided p = detail::mask_plan("where", mask.shape(), a.shape());
    Tensor<T, D> y = Tensor<T, D>::empty(a.shape());
    B::where(p, mask.data_ptr(), a.data_ptr(), b.data_ptr(), y.data_ptr());
    if (detail::needs_grad(a, b)) {
        detail::record(y, "where", {&a, &b}, [mask, a, b, p](const Tensor<T, D>& dy) {
            B::where_backward(p, mask.data_ptr(), dy.data_ptr(), detail::grad_buffer_or_null(a),
                              detail::grad_buffer_or_null(b));
        });
    }
    return y;
}

/// x with `value` where the mask is set (the mask broadcasts to x's shape, e.g. [N, 1, T] over
/// [N, T, T]). Backward: the gradient passes where the mask is not set.
/// x: S, mask: broadcastable to S -> S
template <Scalar T, Device D>
Tensor<T, D> masked_fill(const Tensor<T, D>& x, const Mask<D>& mask, std::type_identity_t<T> value) {
    using B = backend::Ops<D>;
    const backend::Strided p = detail::mask_plan("masked_fill", mask.shape(), x.shape());
    Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
    B::masked_fill(p, mask.data_ptr(), x.data_ptr(), value, y.data_ptr());
    if (detail::needs_grad(x)) {
        detail::record(y, "masked_fill", {&x}, [mask, x, p](const Tensor<T, D>& dy) {
            B::where_backward(p, mask.data_ptr(), dy.data_ptr(), static_cast<T*>(nullptr), detail::grad_buffer(x));
        });
    }
    return y;
}

}  // namespace tapegrad
