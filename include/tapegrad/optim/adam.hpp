#pragma once
/// \file
/// Adam and AdamW: momentum plus a per-element step size.
///
/// The idea: Adam keeps two running averages per element, of the gradient (`m`, the momentum, "which way")
/// and of its square (`v`, "how big the gradients usually are here"), and steps by `m / sqrt(v)`. Dividing
/// by the typical gradient size gives every element a step of about `lr`, whatever the scale of its
/// gradient, so one learning rate suits weights whose gradients differ by orders of magnitude.
///
/// *Bias correction*: `m` and `v` start at zero, so during the first steps they are biased toward zero (after
/// one step `m = (1 - beta1) * g`, a tenth of the gradient for beta1 = 0.9). Dividing by `1 - beta^t` undoes
/// exactly that bias, for a constant gradient, so the very first steps already have the intended size
/// instead of being tiny (`m`) or huge (`sqrt(v)` is biased even more, with beta2 = 0.999).
///
/// *AMSGrad* divides by the largest `v` seen so far instead of the current one, so the step size never grows
/// back after a burst of large gradients.
///
/// *Weight decay*: Adam adds `wd * p` to the gradient (an L2 penalty), which then gets divided by `sqrt(v)`
/// like the rest, so weights with large gradients are barely decayed. AdamW *decouples* it: it shrinks the
/// weights directly, `p *= 1 - lr * wd`, outside the adaptive step, which regularises every weight alike
/// and usually generalises better (Loshchilov & Hutter, "Decoupled Weight Decay Regularization").

#include <tapegrad/optim/optimizer.hpp>

#include <cmath>
#include <utility>
#include <vector>

namespace tapegrad::optim {

/// Hyper-parameters of `Adam`, as in `torch.optim.Adam` (betas split into beta1 and beta2).
struct AdamOptions {
    double lr = 1e-3;            ///< learning rate, >= 0
    double beta1 = 0.9;          ///< decay of the gradient average m, in [0, 1)
    double beta2 = 0.999;        ///< decay of the squared-gradient average v, in [0, 1)
    double eps = 1e-8;           ///< added to sqrt(v) so the division is safe, > 0
    double weight_decay = 0;     ///< L2 penalty added to the gradient, >= 0
    bool amsgrad = false;        ///< divide by the running maximum of v
};

/// Hyper-parameters of `AdamW`, as in `torch.optim.AdamW`: Adam's, with decoupled weight decay 1e-2.
struct AdamWOptions {
    double lr = 1e-3;            ///< learning rate, >= 0
    double beta1 = 0.9;          ///< decay of the gradient average m, in [0, 1)
    double beta2 = 0.999;        ///< decay of the squared-gradient average v, in [0, 1)
    double eps = 1e-8;           ///< added to sqrt(v) so the division is safe, > 0
    double weight_decay = 1e-2;  ///< decoupled decay: p *= 1 - lr * weight_decay each step, >= 0
    bool amsgrad = false;        ///< divide by the running maximum of v
};

namespace detail {

/// What Adam and AdamW share: the state, the step and the option checks. Its constructor (with the name
/// for messages and the decoupled flag) is for those two only, so that it never shows among the public
/// constructors a compiler lists when an options field is misspelt.
template <Scalar T, Device D>
class AdamCore : public Optimizer<T, D> {
public:
    /// For each parameter p with a gradient g, at its t-th update (t = 1, 2, ...):
    ///
    ///     p  = p * (1 - lr * wd)                        (AdamW only)
    ///     g  = g + wd * p                               (Adam only, if wd != 0)
    ///     m  = beta1 * m + (1 - beta1) * g
    ///     v  = beta2 * v + (1 - beta2) * g^2
    ///     vmax = max(vmax, v);  v' = amsgrad ? vmax : v
    ///     p  = p - lr / (1 - beta1^t) * m / (sqrt(v') / sqrt(1 - beta2^t) + eps)
    ///
    /// which is `p -= lr * m_hat / (sqrt(v_hat) + eps)` with the bias-corrected `m_hat = m / (1 - beta1^t)`
    /// and `v_hat = v' / (1 - beta2^t)`, arranged as PyTorch does.
    ///
    /// All parameters in one `step_many` call with the Adam rule (one kernel launch on the GPU, not one per parameter),
    /// each with the bias corrections of its own step count t. Refused (DeviceError) inside a CUDA graph
    /// capture, since t advances on the host.
    void step() override {
        NoGradGuard no_grad;
        TAPEGRAD_CHECK(!backend::Ops<D>::capturing(), DeviceError, this->name(), ": a step cannot be captured into a ",
                       "CUDA graph: its bias corrections 1 - beta^t are computed on the host at every step, so a ",
                       "replay would repeat the captured step's t forever. Run it eagerly, or capture SGD");
        const T lr = static_cast<T>(this->lr());
        size_t k = 0;  // parameters with a gradient, packed at the front of batch_
        for (size_t i = 0; i < this->params().size(); ++i) {
            const auto* impl = this->params()[i].impl();
            if (!impl->grad) continue;  // no gradient: not part of this step (as in PyTorch)
            bool fresh = false;
            auto& st = this->param_state(i, fresh);
            const auto t = static_cast<double>(++st.step);
            const T bc1 = static_cast<T>(1 - std::pow(opt_.beta1, t));
            const T bc2 = static_cast<T>(1 - std::pow(opt_.beta2, t));
            batch_[k++] = {.n = impl->shape.numel(),
                           .p = impl->data(),
                           .grad = impl->grad->data(),
                           .s0 = st.buffers[0].data_ptr(),
                           .s1 = st.buffers[1].data_ptr(),
                           .s2 = opt_.amsgrad ? st.buffers[2].data_ptr() : nullptr,
                           .a = lr / bc1,
                           .b = std::sqrt(bc2)};
        }
        backend::Ops<D>::step_many(static_cast<int64_t>(k), batch_.data(),
                                   backend::AdamRule<T>::make(lr, static_cast<T>(opt_.beta1),
                                                              static_cast<T>(opt_.beta2), static_cast<T>(opt_.eps),
                                                              static_cast<T>(opt_.weight_decay), decoupled_,
                                                              opt_.amsgrad));
    }

protected:
    /// name: "Adam" or "AdamW", for messages; decoupled: AdamW's weight decay, applied to the weights.
    AdamCore(std::vector<Tensor<T, D>> params, const char* name, const AdamOptions& options, bool decoupled)
        : Optimizer<T, D>(std::move(params), name, options.lr, names(validated(options, name)), true),
          opt_(options),
          decoupled_(decoupled) {
        batch_.resize(this->params().size());
    }

    /// The hyper-parameters, with the current learning rate.
    [[nodiscard]] AdamOptions core_options() const {
        AdamOptions o = opt_;
        o.lr = this->lr();
        return o;
    }

private:
    static const AdamOptions& validated(const AdamOptions& o, const char* who) {
        using detail::check_option;
        check_option(detail::finite_non_negative(o.lr), who, "learning rate", o.lr, "must be >= 0");
        check_option(o.beta1 >= 0 && o.beta1 < 1, who, "beta1", o.beta1, "must be in [0, 1)");
        check_option(o.beta2 >= 0 && o.beta2 < 1, who, "beta2", o.beta2, "must be in [0, 1)");
        check_option(std::isfinite(o.eps) && o.eps > 0, who, "eps", o.eps, "must be > 0");
        check_option(detail::finite_non_negative(o.weight_decay), who, "weight_decay", o.weight_decay,
                     "must be >= 0");
        return o;
    }
    static std::vector<const char*> names(const AdamOptions& o) {
        if (o.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
        return {"exp_avg", "exp_avg_sq"};
    }

    AdamOptions opt_;
    bool decoupled_;
    /// This step's parameters, rebuilt on each step (pointers change when a gradient or a buffer is created
    /// or replaced) in storage sized once, one entry per parameter, so that a step allocates nothing.
    std::vector<backend::StepParam<T>> batch_;
};

}  // namespace detail

/// Adam: `Adam opt(model.parameters(), {.lr = 1e-3});`.
/// State per parameter: `exp_avg` (m), `exp_avg_sq` (v), `max_exp_avg_sq` (with amsgrad) and `step`.
/// The update is detail::AdamCore::step's.
template <Scalar T, Device D = Cpu>
class Adam : public detail::AdamCore<T, D> {
public:
    /// The options struct, for generic code: `typename Opt::Options`.
    using Options = AdamOptions;

    /// Throws ValueError naming the option and its value for an invalid hyper-parameter.
    explicit Adam(std::vector<Tensor<T, D>> params, const AdamOptions& options = {})
        : detail::AdamCore<T, D>(std::move(params), "Adam", options, false) {}

    /// The hyper-parameters, with the current learning rate.
    [[nodiscard]] AdamOptions options() const { return this->core_options(); }
};

/// AdamW, Adam with decoupled weight decay: `AdamW opt(model.parameters(), {.lr = 1e-3, .weight_decay = 0.01});`.
/// Same state as `Adam`.
template <Scalar T, Device D = Cpu>
class AdamW : public detail::AdamCore<T, D> {
public:
    /// The options struct, for generic code: `typename Opt::Options`.
    using Options = AdamWOptions;

    /// Throws ValueError naming the option and its value for an invalid hyper-parameter.
    explicit AdamW(std::vector<Tensor<T, D>> params, const AdamWOptions& options = {})
        : detail::AdamCore<T, D>(std::move(params), "AdamW",
                                 AdamOptions{.lr = options.lr,
                                             .beta1 = options.beta1,
                                             .beta2 = options.beta2,
                                             .eps = options.eps,
                                             .weight_decay = options.weight_decay,
                                             .amsgrad = options.amsgrad},
                                 true) {}

    /// The hyper-parameters, with the current learning rate.
    [[nodiscard]] AdamWOptions options() const {
        const AdamOptions o = this->core_options();
        return {.lr = o.lr,
                .beta1 = o.beta1,
                .beta2 = o.beta2,
                .eps = o.eps,
                .weight_decay = o.weight_decay,
                .amsgrad = o.amsgrad};
    }
};

}  // namespace tapegrad::optim
