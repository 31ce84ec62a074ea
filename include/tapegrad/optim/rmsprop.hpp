#pragma once
/// \file
/// RMSprop: divide each gradient element by a running root-mean-square of its recent values.
///
/// The idea: keep `v`, an exponential moving average of `g^2` (its "mean square", with memory of about
/// 1 / (1 - alpha) steps), and step by `g / sqrt(v)`. Elements whose gradients are large take proportionally
/// smaller steps and elements with small gradients larger ones, so all of them move at a similar pace. Unlike
/// Adagrad, which sums squares forever and so keeps shrinking its steps, the moving average forgets old
/// gradients and the step size can recover. *Centered* RMSprop also tracks the average gradient `a` and
/// divides by `sqrt(v - a^2)`, an estimate of the gradient's standard deviation rather than its RMS.
/// Optional momentum accumulates the normalised steps like SGD's momentum does. There is no bias
/// correction (compare Adam): `v` starts at zero, so the first steps are large.

#include <tapegrad/optim/optimizer.hpp>

#include <cmath>
#include <concepts>
#include <utility>
#include <vector>

namespace tapegrad::optim {

/// Hyper-parameters of `RMSprop`, as in `torch.optim.RMSprop`.
struct RMSpropOptions {
    double lr = 1e-2;          ///< learning rate, >= 0
    double alpha = 0.99;       ///< decay of the squared-gradient average, in [0, 1]
    double eps = 1e-8;         ///< added to the root mean square so the division is safe, > 0
    double weight_decay = 0;   ///< L2 penalty added to the gradient, >= 0
    double momentum = 0;       ///< momentum factor, >= 0
    bool centered = false;     ///< divide by the estimated standard deviation instead of the RMS
};

/// RMSprop: `RMSprop opt(model.parameters(), {.lr = 1e-2, .momentum = 0.9});`.
/// State per parameter: `square_avg`, `momentum_buffer` (momentum > 0), `grad_avg` (centered), `step`.
template <Scalar T, Device D = Cpu>
class RMSprop : public Optimizer<T, D> {
    static_assert(std::same_as<D, Cpu>, "tapegrad::optim::RMSprop: the update runs on the host only; on CUDA use SGD, "
                                        "Adam or AdamW, which have fused device kernels.");

public:
    /// The options struct, for generic code: `typename Opt::Options`.
    using Options = RMSpropOptions;

    /// Throws ValueError naming the option and its value for an invalid hyper-parameter.
    explicit RMSprop(std::vector<Tensor<T, D>> params, const RMSpropOptions& options = {})
        : Optimizer<T, D>(std::move(params), "RMSprop", options.lr, names(validated(options)), true),
          opt_(options),
          momentum_slot_(1),
          grad_avg_slot_(options.momentum > 0 ? 2 : 1) {}

    /// The hyper-parameters, with the current learning rate.
    [[nodiscard]] RMSpropOptions options() const {
        RMSpropOptions o = opt_;
        o.lr = this->lr();
        return o;
    }

    /// For each parameter p with a gradient g:
    ///
    ///     g  = g + wd * p                                   (if wd != 0)
    ///     v  = alpha * v + (1 - alpha) * g^2
    ///     a  = alpha * a + (1 - alpha) * g;  d = sqrt(v - a^2) + eps     (centered)
    ///                                        d = sqrt(v) + eps           (otherwise)
    ///     b  = mu * b + g / d;  p = p - lr * b              (if mu > 0)
    ///     p  = p - lr * g / d                               (otherwise)
    void step() override {
        NoGradGuard no_grad;
        const T lr = static_cast<T>(this->lr()), alpha = static_cast<T>(opt_.alpha),
                w = static_cast<T>(1 - opt_.alpha), eps = static_cast<T>(opt_.eps),
                wd = static_cast<T>(opt_.weight_decay), mu = static_cast<T>(opt_.momentum);
        const bool decay = opt_.weight_decay != 0, centered = opt_.centered, momentum = opt_.momentum > 0;
        for (size_t i = 0; i < this->params().size(); ++i) {
            const auto* impl = this->params()[i].impl();
            if (!impl->grad) continue;  // no gradient: not part of this step (as in PyTorch)
            T* p = impl->data();
            const T* dp = impl->grad->data();
            const int64_t n = impl->shape.numel();
            bool fresh = false;
            auto& st = this->param_state(i, fresh);
            ++st.step;
            T* v = st.buffers[0].data_ptr();
            T* b = momentum ? st.buffers[momentum_slot_].data_ptr() : nullptr;
            T* a = centered ? st.buffers[grad_avg_slot_].data_ptr() : nullptr;
            for (int64_t k = 0; k < n; ++k) {
                const T g = decay ? dp[k] + wd * p[k] : dp[k];
                v[k] = alpha * v[k] + w * g * g;
                T d;
                if (centered) {
                    a[k] = detail::lerp(a[k], g, w);
                    d = std::sqrt(v[k] - a[k] * a[k]) + eps;
                } else {
                    d = std::sqrt(v[k]) + eps;
                }
                if (momentum) {
                    b[k] = mu * b[k] + g / d;
                    p[k] -= lr * b[k];
                } else {
                    p[k] -= lr * (g / d);
                }
            }
        }
    }

private:
    static const RMSpropOptions& validated(const RMSpropOptions& o) {
        using detail::check_option;
        check_option(detail::finite_non_negative(o.lr), "RMSprop", "learning rate", o.lr, "must be >= 0");
        check_option(o.alpha >= 0 && o.alpha <= 1, "RMSprop", "alpha", o.alpha, "must be in [0, 1]");
        check_option(std::isfinite(o.eps) && o.eps > 0, "RMSprop", "eps", o.eps, "must be > 0");
        check_option(detail::finite_non_negative(o.weight_decay), "RMSprop", "weight_decay", o.weight_decay,
                     "must be >= 0");
        check_option(detail::finite_non_negative(o.momentum), "RMSprop", "momentum", o.momentum, "must be >= 0");
        return o;
    }
    static std::vector<const char*> names(const RMSpropOptions& o) {
        std::vector<const char*> n{"square_avg"};
        if (o.momentum > 0) n.push_back("momentum_buffer");
        if (o.centered) n.push_back("grad_avg");
        return n;
    }

    RMSpropOptions opt_;
    size_t momentum_slot_;
    size_t grad_avg_slot_;
};

}  // namespace tapegrad::optim
