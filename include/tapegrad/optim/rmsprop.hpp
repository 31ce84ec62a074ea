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
public:
    /// The options struct, for generic code: `typename Opt::Options`.
    using Options = RMSpropOptions;

    /// Throws ValueError naming the option and its value for an invalid hyper-parameter.
    explicit RMSprop(std::vector<Tensor<T, D>> params, const RMSpropOptions& options = {})
        : Optimizer<T, D>(std::move(params), "RMSprop", options.lr, names(validated(options)), true),
          opt_(options),
          momentum_slot_(1),
          grad_avg_slot_(options.momentum > 0 ? 2 : 1) {
        batch_.resize(this->params().size());
    }

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
    ///
    /// All parameters in one `step_many` call with the RMSprop rule (backend/common/optim_math.hpp): one
    /// kernel launch on the GPU. In a CUDA graph capture the first step is refused (DeviceError).
    void step() override {
        NoGradGuard no_grad;
        this->check_capturable_first_step();
        const bool centered = opt_.centered, momentum = opt_.momentum > 0;
        size_t k = 0;  // parameters with a gradient, packed at the front of batch_
        for (size_t i = 0; i < this->params().size(); ++i) {
            const auto* impl = this->params()[i].impl();
            if (!impl->grad) continue;  // no gradient: not part of this step (as in PyTorch)
            bool fresh = false;
            auto& st = this->param_state(i, fresh);
            ++st.step;
            batch_[k++] = {.n = impl->shape.numel(),
                           .p = impl->data(),
                           .grad = impl->grad->data(),
                           .s0 = st.buffers[0].data_ptr(),
                           .s1 = momentum ? st.buffers[momentum_slot_].data_ptr() : nullptr,
                           .s2 = centered ? st.buffers[grad_avg_slot_].data_ptr() : nullptr};
        }
        backend::Ops<D>::step_many(
            static_cast<int64_t>(k), batch_.data(),
            backend::RmspropRule<T>::make(static_cast<T>(this->lr()), opt_.alpha,
                                          static_cast<T>(opt_.eps), static_cast<T>(opt_.weight_decay),
                                          static_cast<T>(opt_.momentum), centered));
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
    /// This step's parameters, in storage sized once, so that a step allocates nothing.
    std::vector<backend::StepParam<T>> batch_;
};

}  // namespace tapegrad::optim
