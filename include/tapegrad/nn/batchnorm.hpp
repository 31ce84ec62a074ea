#pragma once
/// \file
/// Batch normalisation layers: BatchNorm1d for [N, C] and [N, C, L], BatchNorm2d for [N, C, H, W], over
/// `tapegrad::batch_norm` (ops/batch_norm.hpp, which tells what it normalises and why).

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/batch_norm.hpp>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

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
        // Counted first so that the cumulative average's factor is 1 / (batches so far, this one included).
        if (this->is_training() && opt_.track_running_stats)
            momentum = tapegrad::detail::count_batch(num_batches_tracked_, one_, opt_.momentum);
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
