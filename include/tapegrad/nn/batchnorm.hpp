#pragma once
/// \file
/// Batch normalisation: BatchNorm1d for [N, C] and [N, C, L], BatchNorm2d for [N, C, H, W].
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
/// Written once over the per-channel primitives of backend::ConvOps<D> (statistics with the running averages'
/// update, normalisation, backward), so it runs wherever the tensors live, the CPU or a GPU: nothing is read
/// back to the host, except num_batches_tracked with momentum=None (see BatchNormBase::forward).

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/module.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

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
    using CB = backend::ConvOps<D>;
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
    // averages; computed where x lives, by the device's ConvOps.
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

    const bool rec = is_grad_enabled() && (x.requires_grad() || (weight.defined() && weight.requires_grad()) ||
                                           (bias.defined() && bias.requires_grad()));
    if (rec) {
        auto backward = [x, weight, bias, mean, invstd, batch_stats, N, C, L](const Tensor<T, D>& dy) {
            T* dx = x.requires_grad() ? detail::grad_buffer(x) : nullptr;
            T* dgamma = weight.defined() && weight.requires_grad() ? detail::grad_buffer(weight) : nullptr;
            T* dbeta = bias.defined() && bias.requires_grad() ? detail::grad_buffer(bias) : nullptr;
            CB::channel_normalize_backward(N, C, L, x.data_ptr(), mean.data_ptr(), invstd.data_ptr(),
                                           weight.defined() ? weight.data_ptr() : nullptr, dy.data_ptr(),
                                           batch_stats, dx, dgamma, dbeta);
        };
        // Undefined weight or bias are not inputs: list only those that exist.
        if (weight.defined() && bias.defined())
            detail::record(y, "batch_norm", {&x, &weight, &bias}, std::move(backward));
        else if (weight.defined())
            detail::record(y, "batch_norm", {&x, &weight}, std::move(backward));
        else if (bias.defined())
            detail::record(y, "batch_norm", {&x, &bias}, std::move(backward));
        else
            detail::record(y, "batch_norm", {&x}, std::move(backward));
    }
    return y;
}

}  // namespace tapegrad

namespace tapegrad::nn {

/// Options of the batch-norm layers, as torch.nn.BatchNorm2d's keyword arguments.
struct BatchNormOptions {
    double eps = 1e-5;  ///< added to the variance before the square root, >= 0
    /// Weight of the newest batch in the running averages, in [0, 1]; nullopt: a cumulative average
    /// (1 / num_batches_tracked), as PyTorch's momentum=None.
    std::optional<double> momentum = 0.1;
    bool affine = true;               ///< learn `weight` (gamma, starts at 1) and `bias` (beta, starts at 0)
    bool track_running_stats = true;  ///< keep running statistics for eval; without them eval uses batch statistics
};

/// The layer behind BatchNorm1d and BatchNorm2d: parameters `weight` [C] (ones) and `bias` [C] (zeros); buffers
/// `running_mean` [C] (zeros), `running_var` [C] (ones) and `num_batches_tracked` (a scalar, kept as a float
/// tensor), the names of torch.nn.BatchNorm*d's state_dict. `expected_rank` lists the input ranks accepted.
template <Scalar T = float, Device D = Cpu>
class BatchNormBase : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;

    /// x: [N, C, *] -> same shape. Training: batch statistics, and the running statistics and
    /// num_batches_tracked are updated; eval: the running statistics. The count is incremented where it
    /// lives; with momentum=None its value is read back to the host for the factor 1 / count, which on a GPU
    /// waits for the device (and cannot be captured in a cuda::Graph).
    TensorT forward(const TensorT& x) override {
        const Shape& s = x.shape();
        TAPEGRAD_CHECK(s.rank() == rank_a_ || s.rank() == rank_b_, ShapeError, name_, ": expected ", shapes_,
                       " input, got shape ", s);
        TAPEGRAD_CHECK(s[1] == num_features_, ShapeError, name_, ": expected ", num_features_,
                       " channels (dimension 1), got shape ", s);
        double momentum = opt_.momentum.value_or(0.0);
        if (this->is_training() && opt_.track_running_stats) {
            // Counted first so that the cumulative average's factor is 1 / (batches so far, this one included).
            // The count stays where the buffer lives (a CUDA graph replays the increment); only momentum=None
            // reads it back, which on a GPU waits for the device.
            using B = backend::Ops<D>;
            T* count = num_batches_tracked_.data_ptr();
            B::axpy(1, T(1), one_.data_ptr(), count);
            if (!opt_.momentum) {
                T batches = T(0);
                B::download(1, count, &batches);
                momentum = 1.0 / static_cast<double>(batches);
            }
        }
        const bool use_batch = this->is_training() || !opt_.track_running_stats;
        return batch_norm(x, opt_.track_running_stats ? running_mean_ : TensorT{},
                          opt_.track_running_stats ? running_var_ : TensorT{}, weight_, bias_, use_batch, momentum,
                          opt_.eps);
    }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << name_ << "(num_features=" << num_features_ << ", eps=" << opt_.eps << ", momentum=";
        if (opt_.momentum)
            os << *opt_.momentum;
        else
            os << "none";
        os << ", affine=" << (opt_.affine ? "true" : "false")
           << ", track_running_stats=" << (opt_.track_running_stats ? "true" : "false") << ')';
        return os.str();
    }
    /// gamma [C] (undefined without affine)
    [[nodiscard]] TensorT& weight() noexcept { return weight_; }
    /// beta [C] (undefined without affine)
    [[nodiscard]] TensorT& bias() noexcept { return bias_; }
    /// [C] (undefined without track_running_stats)
    [[nodiscard]] TensorT& running_mean() noexcept { return running_mean_; }
    /// [C] (undefined without track_running_stats)
    [[nodiscard]] TensorT& running_var() noexcept { return running_var_; }
    /// A rank-0 tensor counting training batches (undefined without track_running_stats).
    [[nodiscard]] TensorT& num_batches_tracked() noexcept { return num_batches_tracked_; }
    [[nodiscard]] int64_t num_features() const noexcept { return num_features_; }
    [[nodiscard]] const BatchNormOptions& options() const noexcept { return opt_; }

protected:
    BatchNormBase(const char* name, const char* shapes, int rank_a, int rank_b, int64_t num_features,
                  const BatchNormOptions& opt)
        : name_(name), shapes_(shapes), rank_a_(rank_a), rank_b_(rank_b), num_features_(num_features), opt_(opt) {
        TAPEGRAD_CHECK(num_features > 0, ValueError, name, ": num_features must be positive, got ", num_features);
        TAPEGRAD_CHECK(opt.eps >= 0.0, ValueError, name, ": eps must be non-negative, got ", opt.eps);
        if (opt.momentum)
            TAPEGRAD_CHECK(*opt.momentum >= 0.0 && *opt.momentum <= 1.0, ValueError, name,
                           ": momentum must be in [0, 1], got ", *opt.momentum);
        if (opt.affine) {
            weight_ = this->register_parameter("weight", TensorT::ones({num_features}));
            bias_ = this->register_parameter("bias", TensorT::zeros({num_features}));
        }
        if (opt.track_running_stats) {
            running_mean_ = this->register_buffer("running_mean", TensorT::zeros({num_features}));
            running_var_ = this->register_buffer("running_var", TensorT::ones({num_features}));
            num_batches_tracked_ = this->register_buffer("num_batches_tracked", TensorT::scalar(T(0)));
            one_ = TensorT::scalar(T(1));
        }
    }

private:
    const char* name_;
    const char* shapes_;
    int rank_a_, rank_b_;
    int64_t num_features_;
    BatchNormOptions opt_;
    TensorT weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
    TensorT one_;  ///< a constant 1 on the layer's device: num_batches_tracked += one_
};

/// Batch norm over features: x: [N, C] (statistics over the batch) or [N, C, L] (over the batch and the
/// length) -> same shape. See BatchNormBase for parameters, buffers and modes.
template <Scalar T = float, Device D = Cpu>
class BatchNorm1d : public BatchNormBase<T, D> {
public:
    explicit BatchNorm1d(int64_t num_features, const BatchNormOptions& opt = {})
        : BatchNormBase<T, D>("BatchNorm1d", "2-D [N, C] or 3-D [N, C, L]", 2, 3, num_features, opt) {}
};

/// Batch norm over image channels: x: [N, C, H, W] (statistics over N, H and W per channel) -> same shape.
/// See BatchNormBase for parameters, buffers and modes.
template <Scalar T = float, Device D = Cpu>
class BatchNorm2d : public BatchNormBase<T, D> {
public:
    explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& opt = {})
        : BatchNormBase<T, D>("BatchNorm2d", "4-D [N, C, H, W]", 4, 4, num_features, opt) {}
};

}  // namespace tapegrad::nn
