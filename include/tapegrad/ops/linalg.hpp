#pragma once
/// \file
/// Matrix products: matmul (2-D, and batched with broadcast batch dimensions), bmm, and linear.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tapegrad {

namespace detail {

/// Where each of a batched product's matrices lies: `off[g]` for group g, in elements. When the groups are
/// evenly spaced (`regular`, the usual case) one strided-batched primitive call does every product.
struct BatchOffsets {
    std::vector<int64_t> off;
    bool regular = true;
    int64_t stride = 0;
};

/// The offsets of an operand with batch shape `own` (its dimensions before the last two) inside the
/// broadcast batch shape `out`, for matrices of `mat` elements: an operand broadcast along a batch axis
/// repeats its matrices there.
inline BatchOffsets batch_offsets(const Shape& own, const Shape& out, int64_t mat) {
    const int r = out.rank(), pad = out.rank() - own.rank();
    std::array<int64_t, Shape::max_rank> st{};
    int64_t acc = mat;
    for (int i = own.rank() - 1; i >= 0; --i) {
        st[static_cast<size_t>(i + pad)] = own[i] == 1 ? 0 : acc;
        acc *= own[i];
    }
    BatchOffsets b;
    const int64_t n = out.numel();
    b.off.resize(static_cast<size_t>(n));
    std::array<int64_t, Shape::max_rank> idx{};
    int64_t o = 0;
    for (int64_t g = 0; g < n; ++g) {
        b.off[static_cast<size_t>(g)] = o;
        for (int d = r - 1; d >= 0; --d) {
            const auto ds = static_cast<size_t>(d);
            o += st[ds];
            if (++idx[ds] < out[d]) break;
            o -= st[ds] * out[d];
            idx[ds] = 0;
        }
    }
    b.stride = n > 1 ? b.off[1] : 0;
    for (int64_t g = 0; g < n && b.regular; ++g) b.regular = b.off[static_cast<size_t>(g)] == g * b.stride;
    return b;
}

/// C[g] = op(A[g]) op(B[g]) + beta C[g] for every group g (alpha 1), C spanning c_numel elements: one
/// gemm_batched call when all three are evenly spaced and C's groups are distinct; otherwise C is scaled by
/// beta once and every group's product is added in order, so groups of C that coincide (the gradient of a
/// broadcast operand) sum.
template <Scalar T, Device D>
void gemm_groups(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, const BatchOffsets& oa, const T* B,
                 const BatchOffsets& ob, T beta, T* C, const BatchOffsets& oc, int64_t c_numel) {
    using Bk = backend::Ops<D>;
    const auto n = static_cast<int64_t>(oc.off.size());
    if (n == 0) {  // no products: C (a broadcast operand's gradient) gets beta C only
        if (beta == T(0)) Bk::fill(c_numel, T(0), C);
        else if (beta != T(1)) Bk::scale(c_numel, beta, C);
        return;
    }
    if (oa.regular && ob.regular && oc.regular && (oc.stride != 0 || n <= 1)) {
        Bk::gemm_batched(ta, tb, n, M, N, K, T(1), A, oa.stride, B, ob.stride, beta, C, oc.stride);
        return;
    }
    if (beta == T(0))
        Bk::fill(c_numel, T(0), C);
    else if (beta != T(1))
        Bk::scale(c_numel, beta, C);
    for (int64_t g = 0; g < n; ++g) {
        const auto gs = static_cast<size_t>(g);
        Bk::gemm(ta, tb, M, N, K, T(1), A + oa.off[gs], B + ob.off[gs], T(1), C + oc.off[gs]);
    }
}

}  // namespace detail

/// Matrix product, with PyTorch's broadcasting of the batch dimensions.
///  - a: [M, K],         b: [K, N]         -> [M, N]
///  - a: [..., M, K],    b: [K, N]         -> [..., M, N]  (one product of all rows of a by b)
///  - a: [..., M, K],    b: [..., K, N]    -> [broadcast(...), M, N]: the batch dimensions (all but the
///    last two) broadcast as elementwise ops do, e.g. [B, H, L, d] x [B, H, d, S] -> [B, H, L, S] or
///    [B, 1, M, K] x [H, K, N] -> [B, H, M, N]. Equal batches are one strided-batched product (bmm).
/// Backward: dA = dY B^T, dB = A^T dY, each summed over the batch entries where its operand was broadcast.
/// matmul of operands on two devices: a compile-time error naming both (DA and DB in the compiler's note).
template <Scalar T, Device DA, Device DB>
    requires(!std::same_as<DA, DB>)
Tensor<T, DA> matmul(const Tensor<T, DA>&, const Tensor<T, DB>&) {
    static_assert(detail::same_device<DA, DB>, "tapegrad: matmul's operands live on different devices (DA and DB in "
                                               "the note above); copy one with to<Device>(x) first");
    return {};
}

template <Scalar T, Device D>
Tensor<T, D> matmul(const Tensor<T, D>& a, const Tensor<T, D>& b) {
    using Bk = backend::Ops<D>;
    const Shape& sa = a.shape();
    const Shape& sb = b.shape();
    TAPEGRAD_CHECK(sa.rank() >= 2 && sb.rank() >= 2, ShapeError,
                   "matmul: expects tensors of rank 2 or more ([..., M, K] and [..., K, N]), got shapes ", sa, " and ",
                   sb);
    const int64_t K = sa[sa.rank() - 1];
    const int64_t M = sa[sa.rank() - 2];
    const int64_t N = sb[sb.rank() - 1];
    TAPEGRAD_CHECK(sb[sb.rank() - 2] == K, ShapeError, "matmul: inner dimensions differ (", sa.str_x(), " and ",
                   sb.str_x(), ")");
    const Shape ba = sa.rank() > 2 ? Shape(std::span<const int64_t>(sa.begin(), static_cast<size_t>(sa.rank() - 2)))
                                   : Shape{};
    const Shape bb = sb.rank() > 2 ? Shape(std::span<const int64_t>(sb.begin(), static_cast<size_t>(sb.rank() - 2)))
                                   : Shape{};
    if (bb.rank() == 0) {
        // [..., M, K] x [K, N] is one [rows, K] x [K, N] product in row-major storage.
        const int64_t rows = ba.numel() * M;
        Shape out = sa;
        out[out.rank() - 1] = N;
        Tensor<T, D> y = Tensor<T, D>::empty(out);
        Bk::gemm(false, false, rows, N, K, T(1), a.data_ptr(), b.data_ptr(), T(0), y.data_ptr());
        if (detail::needs_grad(a, b)) {
            // Under create_graph: the same products, as recorded matmuls.
            auto graph = [a, b, rows, N, K](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
                if (g.wants(a)) g.add(a, matmul(dy, transpose(b, 0, 1)));
                if (g.wants(b))
                    g.add(b, matmul(transpose(reshape(a, Shape{rows, K}), 0, 1), reshape(dy, Shape{rows, N})));
            };
            detail::record(y, "matmul", {&a, &b}, [a, b, rows, N, K](const Tensor<T, D>& dy) {
                bool fresh = false;
                if (a.requires_grad()) {  // dA = dY B^T
                    T* da = detail::grad_buffer_for_overwrite(a, fresh);
                    Bk::gemm(false, true, rows, K, N, T(1), dy.data_ptr(), b.data_ptr(), fresh ? T(0) : T(1), da);
                }
                if (b.requires_grad()) {  // dB = A^T dY
                    T* db = detail::grad_buffer_for_overwrite(b, fresh);
                    Bk::gemm(true, false, K, N, rows, T(1), a.data_ptr(), dy.data_ptr(), fresh ? T(0) : T(1), db);
                }
            }, std::move(graph));
        }
        return y;
    }
    for (int i = 1; i <= std::min(ba.rank(), bb.rank()); ++i) {
        const int64_t da = ba[ba.rank() - i], db = bb[bb.rank() - i];
        TAPEGRAD_CHECK(da == db || da == 1 || db == 1, ShapeError, "matmul: batch sizes differ (", sa.str_x(), " and ",
                       sb.str_x(), ")");
    }
    const Shape bs = broadcast_shapes(ba, bb, "matmul");
    Shape out = bs;
    out.push_back(M);
    out.push_back(N);
    const auto oa = std::make_shared<const detail::BatchOffsets>(detail::batch_offsets(ba, bs, M * K));
    const auto ob = std::make_shared<const detail::BatchOffsets>(detail::batch_offsets(bb, bs, K * N));
    const auto oy = std::make_shared<const detail::BatchOffsets>(detail::batch_offsets(bs, bs, M * N));
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    detail::gemm_groups<T, D>(false, false, M, N, K, a.data_ptr(), *oa, b.data_ptr(), *ob, T(0), y.data_ptr(), *oy,
                              y.numel());
    if (detail::needs_grad(a, b)) {
        // Under create_graph: recorded matmuls, each summed down over the batch dimensions its operand was
        // broadcast along.
        auto graph = [a, b](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
            if (g.wants(a)) g.add(a, detail::sum_to(matmul(dy, transpose(b, -2, -1)), a.shape()));
            if (g.wants(b)) g.add(b, detail::sum_to(matmul(transpose(a, -2, -1), dy), b.shape()));
        };
        detail::record(y, "matmul", {&a, &b}, [a, b, M, N, K, oa, ob, oy](const Tensor<T, D>& dy) {
            bool fresh = false;
            if (a.requires_grad()) {  // dA = dY B^T
                T* da = detail::grad_buffer_for_overwrite(a, fresh);
                detail::gemm_groups<T, D>(false, true, M, K, N, dy.data_ptr(), *oy, b.data_ptr(), *ob,
                                          fresh ? T(0) : T(1), da, *oa, a.numel());
            }
            if (b.requires_grad()) {  // dB = A^T dY
                T* db = detail::grad_buffer_for_overwrite(b, fresh);
                detail::gemm_groups<T, D>(true, false, K, N, M, a.data_ptr(), *oa, dy.data_ptr(), *oy,
                                          fresh ? T(0) : T(1), db, *ob, b.numel());
            }
        }, std::move(graph));
    }
    return y;
}

/// Batched matrix product, as torch.bmm: a: [B, M, K], b: [B, K, N] -> [B, M, N], one product per batch
/// entry (no broadcasting; matmul broadcasts). One strided-batched primitive call forward and one per
/// operand backward (dA = dY B^T, dB = A^T dY).
template <Scalar T, Device D>
Tensor<T, D> bmm(const Tensor<T, D>& a, const Tensor<T, D>& b) {
    const Shape& sa = a.shape();
    const Shape& sb = b.shape();
    TAPEGRAD_CHECK(sa.rank() == 3 && sb.rank() == 3, ShapeError, "bmm: expects 3-D tensors [B, M, K] and [B, K, N], got shapes ",
                   sa, " and ", sb);
    TAPEGRAD_CHECK(sa[0] == sb[0], ShapeError, "bmm: batch sizes differ (", sa.str_x(), " and ", sb.str_x(), ")");
    TAPEGRAD_CHECK(sa[2] == sb[1], ShapeError, "bmm: inner dimensions differ (", sa.str_x(), " and ", sb.str_x(), ")");
    return matmul(a, b);
}

/// The dense-layer product y = x W^T + b in one op: one matrix product with the bias added in place,
/// instead of matmul + transpose + add (three outputs, two extra passes over memory).
///  x: [N, in] (or [..., in]), w: [out, in] (PyTorch's layout), b: [out] or undefined -> [N, out]
/// Backward: dx = dy W, dW = dy^T x, db = sum of dy over rows.
template <Scalar T, Device D>
Tensor<T, D> linear(const Tensor<T, D>& x, const Tensor<T, D>& w, const Tensor<T, D>& b = {}) {
    using Bk = backend::Ops<D>;
    const Shape& sx = x.shape();
    const Shape& sw = w.shape();
    TAPEGRAD_CHECK(sw.rank() == 2, ShapeError, "linear: weight must be 2-D [out, in], got shape ", sw);
    TAPEGRAD_CHECK(sx.rank() >= 1 && sx[sx.rank() - 1] == sw[1], ShapeError, "linear: input shape ", sx,
                   " does not end in the weight's in-features ", sw[1], " (weight shape ", sw, ")");
    const int64_t in = sw[1], out = sw[0];
    // Rows = product of x's leading dimensions (not numel / in, which is undefined when in == 0).
    const int64_t rows = sx.without(sx.rank() - 1).numel();
    const bool has_bias = b.defined();
    if (has_bias)
        TAPEGRAD_CHECK(b.shape() == Shape{out}, ShapeError, "linear: bias shape ", b.shape(), " should be [", out,
                       "] for weight shape ", sw);
    Shape ys = sx;
    ys[ys.rank() - 1] = out;
    Tensor<T, D> y = Tensor<T, D>::empty(ys);
    Bk::gemm(false, true, rows, out, in, T(1), x.data_ptr(), w.data_ptr(), T(0), y.data_ptr());
    if (has_bias) Bk::add_row_vector(rows, out, b.data_ptr(), y.data_ptr());
    if (detail::needs_grad(x, w, b)) {
        // Under create_graph: dx = dy W, dW = dy^T x, db = column sums of dy, as recorded ops on [rows, .] views.
        auto graph = [x, w, b, rows, in, out](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
            const Tensor<T, D> dy2 = reshape(dy, Shape{rows, out});
            if (g.wants(x)) g.add(x, reshape(matmul(dy2, w), x.shape()));
            if (g.wants(w)) g.add(w, matmul(transpose(dy2, 0, 1), reshape(x, Shape{rows, in})));
            if (g.wants(b)) g.add(b, tapegrad::sum(dy2, 0));
        };
        detail::record(y, "linear", {&x, &w, &b}, [x, w, b, rows, in, out](const Tensor<T, D>& dy) {
            const T* g = dy.data_ptr();
            bool fresh = false;
            if (x.requires_grad()) {
                T* dx = detail::grad_buffer_for_overwrite(x, fresh);
                Bk::gemm(false, false, rows, in, out, T(1), g, w.data_ptr(), fresh ? T(0) : T(1), dx);
            }
            if (w.requires_grad()) {
                T* dw = detail::grad_buffer_for_overwrite(w, fresh);
                Bk::gemm(true, false, out, in, rows, T(1), g, x.data_ptr(), fresh ? T(0) : T(1), dw);
            }
            if (detail::wants_grad(b)) Bk::add_column_sums(rows, out, g, detail::grad_buffer(b));
        }, std::move(graph));
    }
    return y;
}

}  // namespace tapegrad
