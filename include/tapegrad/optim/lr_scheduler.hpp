#pragma once
/// \file
/// Learning-rate schedules: StepLR, ExponentialLR, CosineAnnealingLR and ReduceLROnPlateau.
///
/// The idea: a large learning rate makes fast progress early but then bounces around the minimum, since
/// every step overshoots by about the same amount; a small one settles but is slow to get there. A schedule
/// starts large and lowers the rate as training goes on: in stages (StepLR), smoothly (ExponentialLR,
/// CosineAnnealingLR), or when the validation loss stops improving (ReduceLROnPlateau).
///
/// Usage, as in PyTorch: build the scheduler on an optimizer, call `opt.step()` for every batch and
/// `sched.step()` once per epoch, after the optimizer steps of that epoch:
///
///     optim::SGD opt(params, {.lr = 0.1});
///     optim::StepLR sched(opt, 30, 0.1);     // 0.1 for epochs 0-29, 0.01 for 30-59, ...
///     for (int epoch = 0; epoch < 90; ++epoch) { train_one_epoch(opt); sched.step(); }
///
/// The epoch-based schedulers use closed forms of the epoch count and the optimizer's learning rate when
/// the scheduler was built (`base_lr`): each `step()` overwrites the optimizer's rate, so set it through
/// the scheduler, not `set_lr`, while one is attached. A scheduler keeps a reference to its optimizer, which
/// must outlive it.

#include <tapegrad/core/error.hpp>
#include <tapegrad/optim/optimizer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

namespace tapegrad::optim {

/// Base of the epoch-based schedulers: counts epochs and sets the optimizer's learning rate to `lr_at`
/// of the epoch count.
class LRScheduler {
public:
    LRScheduler(const LRScheduler&) = delete;
    LRScheduler& operator=(const LRScheduler&) = delete;
    virtual ~LRScheduler() = default;

    /// Ends an epoch: `last_epoch() += 1`, and the optimizer's learning rate becomes `lr_at(last_epoch())`.
    void step() {
        ++last_epoch_;
        last_lr_ = lr_at(last_epoch_);
        optimizer_.set_lr(last_lr_);
    }
    /// The learning rate the scheduler last set (the optimizer's rate at construction before any step).
    [[nodiscard]] double last_lr() const noexcept { return last_lr_; }
    /// Number of `step()` calls so far (0 right after construction), PyTorch's `last_epoch`.
    [[nodiscard]] int64_t last_epoch() const noexcept { return last_epoch_; }
    /// The optimizer's learning rate when the scheduler was built.
    [[nodiscard]] double base_lr() const noexcept { return base_lr_; }
    /// The learning rate of epoch `epoch` (>= 0), in closed form.
    [[nodiscard]] virtual double lr_at(int64_t epoch) const = 0;

protected:
    explicit LRScheduler(OptimizerBase& optimizer)
        : optimizer_(optimizer), base_lr_(optimizer.lr()), last_lr_(optimizer.lr()) {}

    OptimizerBase& optimizer_;
    double base_lr_;
    int64_t last_epoch_ = 0;
    double last_lr_;
};

/// Multiplies the learning rate by `gamma` every `step_size` epochs:
/// `lr(epoch) = base_lr * gamma^floor(epoch / step_size)`.
class StepLR : public LRScheduler {
public:
    /// Throws ValueError unless step_size >= 1 and gamma is finite and > 0.
    StepLR(OptimizerBase& optimizer, int64_t step_size, double gamma = 0.1)
        : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
        TAPEGRAD_CHECK(step_size >= 1, ValueError, "StepLR: invalid step_size ", step_size, " (must be >= 1)");
        TAPEGRAD_CHECK(std::isfinite(gamma) && gamma > 0, ValueError, "StepLR: invalid gamma ", gamma,
                       " (must be > 0)");
    }
    [[nodiscard]] double lr_at(int64_t epoch) const override {
        return base_lr_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
    }

private:
    int64_t step_size_;
    double gamma_;
};

/// Multiplies the learning rate by `gamma` every epoch: `lr(epoch) = base_lr * gamma^epoch`.
class ExponentialLR : public LRScheduler {
public:
    /// Throws ValueError unless gamma is finite and > 0.
    ExponentialLR(OptimizerBase& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
        TAPEGRAD_CHECK(std::isfinite(gamma) && gamma > 0, ValueError, "ExponentialLR: invalid gamma ", gamma,
                       " (must be > 0)");
    }
    [[nodiscard]] double lr_at(int64_t epoch) const override {
        return base_lr_ * std::pow(gamma_, static_cast<double>(epoch));
    }

private:
    double gamma_;
};

/// Half a cosine from base_lr down to eta_min over T_max epochs:
/// `lr(epoch) = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`.
/// Past T_max the cosine continues (the rate rises again over the next T_max epochs), as in PyTorch;
/// stop stepping at T_max to stay at eta_min.
class CosineAnnealingLR : public LRScheduler {
public:
    /// `t_max` is PyTorch's T_max, the length of the half cosine in epochs. Throws ValueError unless
    /// t_max >= 1 and eta_min is finite and >= 0.
    CosineAnnealingLR(OptimizerBase& optimizer, int64_t t_max, double eta_min = 0)
        : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
        TAPEGRAD_CHECK(t_max >= 1, ValueError, "CosineAnnealingLR: invalid T_max ", t_max, " (must be >= 1)");
        TAPEGRAD_CHECK(detail::finite_non_negative(eta_min), ValueError, "CosineAnnealingLR: invalid eta_min ",
                       eta_min, " (must be >= 0)");
    }
    [[nodiscard]] double lr_at(int64_t epoch) const override {
        const double c = std::cos(std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(t_max_));
        return std::max(0.0, eta_min_ + (base_lr_ - eta_min_) * (1 + c) / 2);
    }

private:
    int64_t t_max_;
    double eta_min_;
};

/// Whether ReduceLROnPlateau watches a quantity to minimise (a loss) or to maximise (an accuracy).
enum class PlateauMode { Min, Max };
/// How ReduceLROnPlateau's threshold counts: relative to the best value so far, or absolute.
enum class ThresholdMode { Rel, Abs };

/// Options of `ReduceLROnPlateau`, as in `torch.optim.lr_scheduler.ReduceLROnPlateau`.
struct ReduceLROnPlateauOptions {
    PlateauMode mode = PlateauMode::Min;            ///< minimise or maximise the metric
    double factor = 0.1;                            ///< new_lr = lr * factor, in [0, 1)
    int64_t patience = 10;                          ///< epochs without improvement tolerated, >= 0
    double threshold = 1e-4;                        ///< smallest change that counts as improvement, >= 0
    ThresholdMode threshold_mode = ThresholdMode::Rel;  ///< Rel: best * (1 -/+ threshold); Abs: best -/+ threshold
    int64_t cooldown = 0;                           ///< epochs to wait after a reduction before counting again
    double min_lr = 0;                              ///< the rate never goes below this, >= 0
    double eps = 1e-8;                              ///< a reduction smaller than this is skipped, >= 0
};

/// Lowers the learning rate when a metric stops improving: after more than `patience` epochs in a row
/// without improving on the best value seen, `lr = max(lr * factor, min_lr)`, then `cooldown` epochs pass
/// before bad epochs are counted again. In Min mode with the Rel threshold, a value improves on `best` when
/// it is below `best * (1 - threshold)`.
///
///     optim::ReduceLROnPlateau sched(opt, {.factor = 0.5, .patience = 2});
///     for (...) { train_one_epoch(opt); sched.step(validation_loss()); }
class ReduceLROnPlateau {
public:
    /// The options struct, for generic code.
    using Options = ReduceLROnPlateauOptions;

    /// Throws ValueError naming the option for an invalid one.
    explicit ReduceLROnPlateau(OptimizerBase& optimizer, const ReduceLROnPlateauOptions& options = {})
        : optimizer_(optimizer), opt_(options), last_lr_(optimizer.lr()) {
        TAPEGRAD_CHECK(options.factor >= 0 && options.factor < 1, ValueError, "ReduceLROnPlateau: invalid factor ",
                       options.factor, " (must be in [0, 1))");
        TAPEGRAD_CHECK(options.patience >= 0, ValueError, "ReduceLROnPlateau: invalid patience ", options.patience,
                       " (must be >= 0)");
        TAPEGRAD_CHECK(detail::finite_non_negative(options.threshold), ValueError,
                       "ReduceLROnPlateau: invalid threshold ", options.threshold, " (must be >= 0)");
        TAPEGRAD_CHECK(options.cooldown >= 0, ValueError, "ReduceLROnPlateau: invalid cooldown ", options.cooldown,
                       " (must be >= 0)");
        TAPEGRAD_CHECK(detail::finite_non_negative(options.min_lr), ValueError, "ReduceLROnPlateau: invalid min_lr ",
                       options.min_lr, " (must be >= 0)");
        TAPEGRAD_CHECK(detail::finite_non_negative(options.eps), ValueError, "ReduceLROnPlateau: invalid eps ",
                       options.eps, " (must be >= 0)");
        best_ = worst();
    }
    ReduceLROnPlateau(const ReduceLROnPlateau&) = delete;
    ReduceLROnPlateau& operator=(const ReduceLROnPlateau&) = delete;

    /// Ends an epoch whose monitored value was `metric` (a NaN never counts as an improvement).
    void step(double metric) {
        ++last_epoch_;
        if (is_better(metric)) {
            best_ = metric;
            num_bad_epochs_ = 0;
        } else {
            ++num_bad_epochs_;
        }
        if (cooldown_counter_ > 0) {
            --cooldown_counter_;
            num_bad_epochs_ = 0;  // bad epochs during cooldown do not count
        }
        if (num_bad_epochs_ > opt_.patience) {
            const double old_lr = optimizer_.lr();
            const double new_lr = std::max(old_lr * opt_.factor, opt_.min_lr);
            if (old_lr - new_lr > opt_.eps) optimizer_.set_lr(new_lr);
            cooldown_counter_ = opt_.cooldown;
            num_bad_epochs_ = 0;
        }
        last_lr_ = optimizer_.lr();
    }

    /// The optimizer's learning rate after the last step (its rate at construction before any step).
    [[nodiscard]] double last_lr() const noexcept { return last_lr_; }
    /// Number of `step(metric)` calls so far.
    [[nodiscard]] int64_t last_epoch() const noexcept { return last_epoch_; }
    /// The best metric seen (+inf in Min mode, -inf in Max mode before the first step).
    [[nodiscard]] double best() const noexcept { return best_; }
    /// Epochs in a row without improvement, as counted so far.
    [[nodiscard]] int64_t num_bad_epochs() const noexcept { return num_bad_epochs_; }
    /// True while the scheduler waits after a reduction.
    [[nodiscard]] bool in_cooldown() const noexcept { return cooldown_counter_ > 0; }

private:
    [[nodiscard]] double worst() const noexcept {
        return opt_.mode == PlateauMode::Min ? std::numeric_limits<double>::infinity()
                                             : -std::numeric_limits<double>::infinity();
    }
    [[nodiscard]] bool is_better(double a) const noexcept {
        const bool rel = opt_.threshold_mode == ThresholdMode::Rel;
        if (opt_.mode == PlateauMode::Min)
            return rel ? a < best_ * (1 - opt_.threshold) : a < best_ - opt_.threshold;
        return rel ? a > best_ * (1 + opt_.threshold) : a > best_ + opt_.threshold;
    }

    OptimizerBase& optimizer_;
    ReduceLROnPlateauOptions opt_;
    double last_lr_;
    double best_ = 0;
    int64_t last_epoch_ = 0;
    int64_t num_bad_epochs_ = 0;
    int64_t cooldown_counter_ = 0;
};

}  // namespace tapegrad::optim
