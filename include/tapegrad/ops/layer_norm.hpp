#pragma once
/// \file
/// Layer normalisation as a function, `layer_norm` (torch.nn.functional.layer_norm); the layer is
/// nn::LayerNorm (nn/layer_norm.hpp).
///
/// What it normalises: each example on its own, over its last dimensions (the features of one token, say),
/// xhat = (x - mean) / sqrt(var + eps), then y = weight * xhat + bias elementwise. Unlike batch norm it uses
/// no statistics across the batch, so it behaves the same in training and evaluation, for a batch of one,
/// and at every position of a sequence of any length: the normalisation of transformers and of many RNNs.
///
/// One recorded op over the fused primitives of backend::Ops<D> (layer_norm, layer_norm_backward): the
/// per-row mean and 1/std are kept for the backward, nothing else.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>

#include <cstdint>

namespace tapegrad {

/// Layer normalisation over the trailing dimensions `normalized_shape` (torch.nn.functional.layer_norm).
///  x: [*, normalized_shape...], weight, bias: normalized_shape or undefined (1 and 0) -> x's shape.
/// Each of the rows (the leading dimensions) is normalised by its own mean and biased variance over the
/// n = numel(normalized_shape) values: y = (x - mean) / sqrt(var + eps) * weight + bias.
/// Backward, with xhat = (x - mean) rstd, rstd = 1 / sqrt(var + eps), g = dy weight (means over the row):
///   dx = rstd (g - mean(g) - xhat mean(g xhat)),  dweight = sum over rows of dy xhat,  dbias = sum of dy.
/// Throws ShapeError when x does not end in normalized_shape or weight / bias have another shape,
/// ValueError for an empty normalized_shape or a negative eps.
template <Scalar T, Device D>
Tensor<T, D> layer_norm(const Tensor<T, D>& x, const Shape& normalized_shape, const Tensor<T, D>& weight = {},
                        const Tensor<T, D>& bias = {}, double eps = 1e-5) {
    using B = backend::Ops<D>;
    const Shape& sx = x.shape();
    const int k = normalized_shape.rank();
    TAPEGRAD_CHECK(k >= 1, ValueError, "layer_norm: normalized_shape must have at least one dimension");
    bool ends = sx.rank() >= k;
    for (int i = 0; ends && i < k; ++i) ends = sx[sx.rank() - k + i] == normalized_shape[i];
    TAPEGRAD_CHECK(ends, ShapeError, "layer_norm: input of shape ", sx, " does not end in normalized_shape ",
                   normalized_shape);
    if (weight.defined())
        TAPEGRAD_CHECK(weight.shape() == normalized_shape, ShapeError, "layer_norm: weight shape ", weight.shape(),
                       " should be normalized_shape ", normalized_shape);
    if (bias.defined())
        TAPEGRAD_CHECK(bias.shape() == normalized_shape, ShapeError, "layer_norm: bias shape ", bias.shape(),
                       " should be normalized_shape ", normalized_shape);
    TAPEGRAD_CHECK(eps >= 0.0, ValueError, "layer_norm: eps must be non-negative, got ", eps);
    const int64_t n = normalized_shape.numel();
    int64_t rows = 1;
    for (int i = 0; i < sx.rank() - k; ++i) rows *= sx[i];
    Tensor<T, D> y = Tensor<T, D>::empty(sx);
    if (n == 0 || rows == 0) {
        // nothing to normalise; the gradient of an empty tensor is empty
        return y;
    }
    Tensor<T, D> mean = Tensor<T, D>::empty({rows}), rstd = Tensor<T, D>::empty({rows});
    B::layer_norm(rows, n, x.data_ptr(), weight.defined() ? weight.data_ptr() : nullptr,
                  bias.defined() ? bias.data_ptr() : nullptr, static_cast<T>(eps), y.data_ptr(), mean.data_ptr(),
                  rstd.data_ptr());
    if (detail::needs_grad(x, weight, bias)) {
        detail::record(y, "layer_norm", {&x, &weight, &bias}, [x, weight, bias, mean, rstd, rows, n](const Tensor<T, D>& dy) {
            B::layer_norm_backward(rows, n, x.data_ptr(), mean.data_ptr(), rstd.data_ptr(),
                                   weight.defined() ? weight.data_ptr() : nullptr, dy.data_ptr(),
                                   detail::grad_buffer_or_null(x), detail::grad_buffer_or_null(weight),
                                   detail::grad_buffer_or_null(bias));
        });
    }
    return y;
}

}  // namespace tapegrad
