#pragma once
/// \file
/// Matrix products: matmul for 2-D and batched 3-D tensors.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>

namespace tapegrad {

/// Matrix product.
///  - a: [M, K],    b: [K, N]    -> [M, N]
///  - a: [B, M, K], b: [B, K, N] -> [B, M, N]  (one product per batch entry)
///  - a: [B, M, K], b: [K, N]    -> [B, M, N]  (b shared by every batch entry)
/// Backward: dA = dY * B^T, dB = A^T * dY (summed over the batch where b is shared).
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
    TAPEGRAD_CHECK((sa.rank() == 2 && sb.rank() == 2) || (sa.rank() == 3 && (sb.rank() == 2 || sb.rank() == 3)),
                   ShapeError, "matmul: expects 2-D x 2-D, 3-D x 3-D or 3-D x 2-D tensors, got shapes ", sa, " and ",
                   sb);
    const int64_t K = sa[sa.rank() - 1];
    const int64_t M = sa[sa.rank() - 2];
    const int64_t N = sb[sb.rank() - 1];
    TAPEGRAD_CHECK(sb[sb.rank() - 2] == K, ShapeError, "matmul: inner dimensions differ (", sa.str_x(), " and ",
                   sb.str_x(), ")");
    const bool batched_b = sb.rank() == 3;
    const int64_t batch = sa.rank() == 3 ? sa[0] : 1;
    if (batched_b)
        TAPEGRAD_CHECK(sb[0] == batch, ShapeError, "matmul: batch sizes differ (", sa.str_x(), " and ", sb.str_x(),
                       ")");
    Shape out = sa.rank() == 3 ? Shape{batch, M, N} : Shape{M, N};
    Tensor<T, D> y = Tensor<T, D>::empty(out);
    if (batched_b) {
        for (int64_t i = 0; i < batch; ++i)
            Bk::gemm(false, false, M, N, K, T(1), a.data_ptr() + i * M * K, b.data_ptr() + i * K * N, T(0),
                     y.data_ptr() + i * M * N);
    } else {
        // [B, M, K] x [K, N] is one [B*M, K] x [K, N] product in row-major storage.
        Bk::gemm(false, false, batch * M, N, K, T(1), a.data_ptr(), b.data_ptr(), T(0), y.data_ptr());
    }
    if (detail::needs_grad(a, b)) {
        // Under create_graph: the same products, as recorded matmuls.
        auto graph = [a, b, batch, M, N, K, batched_b](const Tensor<T, D>& dy, detail::GradSink<T, D>& g) {
            const int last = a.dim() - 1;
            if (g.wants(a)) g.add(a, matmul(dy, transpose(b, b.dim() - 2, b.dim() - 1)));
            if (g.wants(b)) {
                if (batched_b || a.dim() == 2)
                    g.add(b, matmul(transpose(a, last - 1, last), dy));
                else
                    g.add(b, matmul(transpose(reshape(a, Shape{batch * M, K}), 0, 1), reshape(dy, Shape{batch * M, N})));
            }
        };
        detail::record(y, "matmul", {&a, &b}, [a, b, batch, M, N, K, batched_b](const Tensor<T, D>& dy) {
            const T* g = dy.data_ptr();
            if (a.requires_grad()) {  // dA = dY * B^T
                bool fresh = false;
                T* da = detail::grad_buffer_for_overwrite(a, fresh);
                const T beta = fresh ? T(0) : T(1);
                if (batched_b) {
                    for (int64_t i = 0; i < batch; ++i)
                        Bk::gemm(false, true, M, K, N, T(1), g + i * M * N, b.data_ptr() + i * K * N, beta,
                                 da + i * M * K);
                } else {
                    Bk::gemm(false, true, batch * M, K, N, T(1), g, b.data_ptr(), beta, da);
                }
            }
            if (b.requires_grad()) {  // dB = A^T * dY
                bool fresh = false;
                T* db = detail::grad_buffer_for_overwrite(b, fresh);
                const T beta = fresh ? T(0) : T(1);
                if (batched_b) {
                    for (int64_t i = 0; i < batch; ++i)
                        Bk::gemm(true, false, K, N, M, T(1), a.data_ptr() + i * M * K, g + i * M * N, beta,
                                 db + i * K * N);
                } else {
                    Bk::gemm(true, false, K, N, batch * M, T(1), a.data_ptr(), g, beta, db);
                }
            }
        }, std::move(graph));
    }
    return y;
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
