#pragma once
/// \file
/// Batch normalisation as a function, `batch_norm` (torch.nn.functional.batch_norm); the layers BatchNorm1d
/// and BatchNorm2d are in nn/batchnorm.hpp.
///
/// What it normalises: each channel c, over the whole mini-batch (and every position of the channel's map),
/// is shifted and scaled to mean 0 and variance 1, xhat = (x - mean_c) / sqrt(var_c + eps), and then given
/// a learned scale and shift, y = gamma_c xhat + beta_c, so the layer can still represent any mean and spread
/// it needs. Keeping every layer's inputs in a steady range whatever the earlier layers do lets a network
/// train with larger learning rates and depends less on the initialisation; the noise of the batch
/// statistics also regularises a little.
///
/// At evaluation time there may be a single example, so batch statistics are replaced by running averages
/// collected during training: running = (1 - momentum) running + momentum batch_stat, the variance being the
/// unbiased one (divided by M - 1, M = values per channel), exactly as PyTorch.
///
/// Written once over the per-channel primitives of backend::Ops<D> (statistics with the running averages'
/// update, normalisation, backward), so it runs wherever the tensors live, the CPU or a GPU: nothing is read
/// back to the host, except num_batches_tracked with momentum=None (see detail::count_batch).

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace tapegrad {

/// Batch normalisation over dimension 1, one recorded op (torch.nn.functional.batch_norm).
///  x: [N, C, *] (rank >= 2; the mean and variance of channel c run over N and every trailing position),
///  running_mean, running_var: [C] or both undefined, weight (gamma), bias (beta): [C] or undefined (1 and 0)
///  -> x's shape.
/// training (or no running statistics): normalise with the batch's mean and biased variance; when running
///   statistics are given, update them in place (outside autograd): running_mean = (1 - momentum) running_mean
///   + momentum mean, running_var likewise with the unbiased variance (times M / (M - 1), M = N * positions).
/// otherwise: normalise with running_mean and running_var.
/// Backward, with xhat = (x - mean) invstd, invstd = 1 / sqrt(var + eps):
///   dbeta = sum dy,  dgamma = sum dy xhat,
///   batch statistics:  dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat))  (mean over the channel's M values)
///   running statistics: dx = gamma invstd dy
/// Throws ShapeError for shapes that do not fit, ValueError when training with one value per channel.
template <Scalar T, Device D>
Tensor<T, D> batch_norm(const Tensor<T, D>& x, const Tensor<T, D>& running_mean, const Tensor<T, D>& running_var,
                        const Tensor<T, D>& weight, const Tensor<T, D>& bias, bool training, double momentum = 0.1,
                        double eps = 1e-5) {
    using CB = backend::Ops<D>;
    const Shape& sx = x.shape();
    TAPEGRAD_CHECK(sx.rank() >= 2, ShapeError, "batch_norm: input must be [N, C, ...] (rank >= 2), got shape ", sx);
    const int64_t N = sx[0], C = sx[1], L = sx.numel() / std::max<int64_t>(N * C, 1);
    const Shape sc{C};
    const bool has_running = running_mean.defined() || running_var.defined();
    if (has_running)
        TAPEGRAD_CHECK(running_mean.defined() && running_var.defined() && running_mean.shape() == sc &&
                           running_var.shape() == sc,
                       ShapeError, "batch_norm: running_mean and running_var must both be [", C,
                       "] for input of shape ", sx);
    if (weight.defined())
        TAPEGRAD_CHECK(weight.shape() == sc, ShapeError, "batch_norm: weight shape ", weight.shape(), " should be [",
                       C, "] for input of shape ", sx);
    if (bias.defined())
        TAPEGRAD_CHECK(bias.shape() == sc, ShapeError, "batch_norm: bias shape ", bias.shape(), " should be [", C,
                       "] for input of shape ", sx);
    TAPEGRAD_CHECK(eps >= 0.0, ValueError, "batch_norm: eps must be non-negative, got ", eps);
    const bool batch_stats = training || !has_running;
    const int64_t M = N * L;
    if (batch_stats)
        TAPEGRAD_CHECK(M > 1, ValueError, "batch_norm: expected more than 1 value per channel when training, got input "
                                          "of shape ", sx);

    // Per-channel mean and 1/std, from the batch (updating the running averages) or from the running
    // averages; computed where x lives, by the device's Ops.
    Tensor<T, D> mean = Tensor<T, D>::empty(sc), invstd = Tensor<T, D>::empty(sc);
    if (batch_stats)
        CB::channel_batch_stats(N, C, L, x.data_ptr(), static_cast<T>(eps), static_cast<T>(momentum), mean.data_ptr(),
                                invstd.data_ptr(), has_running ? running_mean.data_ptr() : nullptr,
                                has_running ? running_var.data_ptr() : nullptr);
    else
        CB::channel_running_stats(C, running_mean.data_ptr(), running_var.data_ptr(), static_cast<T>(eps),
                                  mean.data_ptr(), invstd.data_ptr());
    const T* pm = mean.data_ptr();
    const T* pis = invstd.data_ptr();
    Tensor<T, D> y = Tensor<T, D>::empty(sx);
    CB::channel_normalize(N, C, L, x.data_ptr(), pm, pis, weight.defined() ? weight.data_ptr() : nullptr,
                          bias.defined() ? bias.data_ptr() : nullptr, y.data_ptr());

    if (detail::needs_grad(x, weight, bias)) {
        detail::record(y, "batch_norm", {&x, &weight, &bias},
                       [x, weight, bias, mean, invstd, batch_stats, N, C, L](const Tensor<T, D>& dy) {
                           CB::channel_normalize_backward(N, C, L, x.data_ptr(), mean.data_ptr(), invstd.data_ptr(),
                                                          weight.defined() ? weight.data_ptr() : nullptr,
                                                          dy.data_ptr(), batch_stats, detail::grad_buffer_or_null(x),
                                                          detail::grad_buffer_or_null(weight),
                                                          detail::grad_buffer_or_null(bias));
                       });
    }
    return y;
}

namespace detail {

/// Counts one more training batch in `num_batches_tracked` (a scalar on the layer's device, incremented
/// there by adding `one`, so a CUDA graph replays the increment) and returns the running averages'
/// momentum: `momentum`, or with momentum=None (nullopt) the cumulative factor 1 / (batches so far, this
/// one included), which reads the count back to the host (on a GPU that waits for the device).
template <Scalar T, Device D>
double count_batch(const Tensor<T, D>& num_batches_tracked, const Tensor<T, D>& one, std::optional<double> momentum) {
    using B = backend::Ops<D>;
    T* count = num_batches_tracked.data_ptr();
    B::axpy(1, T(1), one.data_ptr(), count);
    if (momentum) return *momentum;
    T batches = T(0);
    B::download(1, count, &batches);
    return 1.0 / static_cast<double>(batches);
}

}  // namespace detail

}  // namespace tapegrad
