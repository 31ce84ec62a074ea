#pragma once
/// \file
/// Adagrad: per-element step sizes from the sum of all past squared gradients.
///
/// The idea: keep `s`, the running *sum* of `g^2` for each element, and step by `g / sqrt(s)`. An element
/// that has received large or frequent gradients gets small steps; a rarely active one (a rare word's
/// embedding, a rare feature's weight) keeps large steps, which is why Adagrad suits sparse features. Because
/// the sum only grows, the effective learning rate decays like 1 / sqrt(t) on its own -- good for convex
/// problems, but it can stall long deep-learning runs (RMSprop and Adam replace the sum by a moving average).

#include <tapegrad/optim/optimizer.hpp>

#include <cmath>
#include <concepts>
#include <utility>
#include <vector>

namespace tapegrad::optim {

/// Hyper-parameters of `Adagrad`, as in `torch.optim.Adagrad`.
struct AdagradOptions {
    double lr = 1e-2;                       ///< learning rate, >= 0
    double lr_decay = 0;                    ///< the t-th step uses lr / (1 + (t - 1) * lr_decay), >= 0
    double weight_decay = 0;                ///< L2 penalty added to the gradient, >= 0
    double initial_accumulator_value = 0;   ///< starting value of the sum of squares, >= 0
    double eps = 1e-10;                     ///< added to sqrt(sum) so the division is safe, > 0
};

/// Adagrad: `Adagrad opt(model.parameters(), {.lr = 0.1});`.
/// State per parameter: `sum` (of squared gradients) and `step`.
template <Scalar T, Device D = Cpu>
class Adagrad : public Optimizer<T, D> {
public:
    /// The options struct, for generic code: `typename Opt::Options`.
    using Options = AdagradOptions;

    /// Throws ValueError naming the option and its value for an invalid hyper-parameter.
    explicit Adagrad(std::vector<Tensor<T, D>> params, const AdagradOptions& options = {})
        : Optimizer<T, D>(std::move(params), "Adagrad", options.lr, {"sum"}, true), opt_(validated(options)) {
        batch_.resize(this->params().size());
    }

    /// The hyper-parameters, with the current learning rate.
    [[nodiscard]] AdagradOptions options() const {
        AdagradOptions o = opt_;
        o.lr = this->lr();
        return o;
    }

    /// For each parameter p with a gradient g, at its t-th update (t = 1, 2, ...), with s starting at
    /// initial_accumulator_value:
    ///
    ///     g  = g + wd * p                                   (if wd != 0)
    ///     s  = s + g^2
    ///     p  = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
    ///
    /// All parameters in one `step_many` call with the Adagrad rule (backend/common/optim_math.hpp): one
    /// kernel launch on the GPU. Refused (DeviceError) inside a CUDA graph capture: the first step fills the
    /// sum and the decayed learning rate is computed on the host at each step.
    void step() override {
        NoGradGuard no_grad;
        TAPEGRAD_CHECK(!backend::Ops<D>::capturing(), DeviceError, "Adagrad: a step cannot be captured into a CUDA ",
                       "graph: its learning rate lr / (1 + (t - 1) lr_decay) is computed on the host at every step. ",
                       "Run it eagerly, or capture SGD");
        const T init = static_cast<T>(opt_.initial_accumulator_value);
        size_t k = 0;  // parameters with a gradient, packed at the front of batch_
        for (size_t i = 0; i < this->params().size(); ++i) {
            const auto* impl = this->params()[i].impl();
            if (!impl->grad) continue;  // no gradient: not part of this step (as in PyTorch)
            const int64_t n = impl->shape.numel();
            bool fresh = false;
            auto& st = this->param_state(i, fresh);
            const auto t = static_cast<double>(++st.step);
            T* s = st.buffers[0].data_ptr();
            if (fresh) backend::Ops<D>::fill(n, init, s);
            batch_[k++] = {.n = n,
                           .p = impl->data(),
                           .grad = impl->grad->data(),
                           .s0 = s,
                           .a = static_cast<T>(this->lr() / (1 + (t - 1) * opt_.lr_decay))};
        }
        backend::Ops<D>::step_many(
            static_cast<int64_t>(k), batch_.data(),
            backend::AdagradRule<T>::make(static_cast<T>(opt_.eps), static_cast<T>(opt_.weight_decay)));
    }

private:
    static AdagradOptions validated(const AdagradOptions& o) {
        using detail::check_option;
        check_option(detail::finite_non_negative(o.lr), "Adagrad", "learning rate", o.lr, "must be >= 0");
        check_option(detail::finite_non_negative(o.lr_decay), "Adagrad", "lr_decay", o.lr_decay, "must be >= 0");
        check_option(detail::finite_non_negative(o.weight_decay), "Adagrad", "weight_decay", o.weight_decay,
                     "must be >= 0");
        check_option(detail::finite_non_negative(o.initial_accumulator_value), "Adagrad",
                     "initial_accumulator_value", o.initial_accumulator_value, "must be >= 0");
        check_option(std::isfinite(o.eps) && o.eps > 0, "Adagrad", "eps", o.eps, "must be > 0");
        return o;
    }

    AdagradOptions opt_;
    /// This step's parameters, in storage sized once, so that a step allocates nothing.
    std::vector<backend::StepParam<T>> batch_;
};

}  // namespace tapegrad::optim
