#pragma once
/// \file
/// Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 weight decay.
///
/// The idea: step against the gradient, `p -= lr * g`. On a long narrow valley the gradient points mostly
/// across the valley, so plain descent zig-zags and crawls along it. *Momentum* keeps a velocity `b`, a
/// decaying sum of past gradients (`b = mu * b + g`): components that flip sign from step to step cancel
/// out, components that agree add up, so the walk along the valley speeds up by about 1 / (1 - mu) (10x for
/// mu = 0.9). *Nesterov* momentum steps with `g + mu * b` instead of `b`, which is the gradient "looked
/// ahead" to where the velocity is carrying the parameter, and damps overshooting. *Weight decay* adds
/// `wd * p` to the gradient: the gradient of the L2 penalty `wd / 2 * |p|^2`, pulling weights toward zero.

#include <tapegrad/optim/optimizer.hpp>

#include <utility>
#include <vector>

namespace tapegrad::optim {

/// Hyper-parameters of `SGD`, as in `torch.optim.SGD`.
struct SGDOptions {
    double lr = 1e-3;            ///< learning rate, >= 0
    double momentum = 0;         ///< momentum factor mu, >= 0 (0: plain gradient descent)
    double dampening = 0;        ///< scales the new gradient in the momentum sum by (1 - dampening), in [0, 1]
    double weight_decay = 0;     ///< L2 penalty factor wd, >= 0
    bool nesterov = false;       ///< Nesterov momentum (needs momentum > 0 and dampening = 0)
};

/// Stochastic gradient descent: `SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});`.
/// State per parameter: `momentum_buffer` when momentum > 0 (no step count).
template <Scalar T, Device D = Cpu>
class SGD : public Optimizer<T, D> {
public:
    /// The options struct, for generic code: `typename Opt::Options`.
    using Options = SGDOptions;

    /// Throws ValueError naming the option and its value for an invalid hyper-parameter.
    explicit SGD(std::vector<Tensor<T, D>> params, const SGDOptions& options = {})
        : Optimizer<T, D>(std::move(params), "SGD", options.lr, names(validated(options)), false), opt_(options) {
        batch_.resize(this->params().size());
    }

    /// The hyper-parameters, with the current learning rate.
    [[nodiscard]] SGDOptions options() const {
        SGDOptions o = opt_;
        o.lr = this->lr();
        return o;
    }

    /// For each parameter p with a gradient g:
    ///
    ///     g  = g + wd * p                                  (if wd != 0)
    ///     b  = g                                           (first step)
    ///     b  = mu * b + (1 - dampening) * g                (later steps)
    ///     g  = g + mu * b  if nesterov,  else  g = b       (if mu != 0)
    ///     p  = p - lr * g
    ///
    /// All parameters in one `step_many` call with the SGD rule (backend/common/optim_math.hpp): one kernel
    /// launch on the GPU, not one per parameter.
    ///
    /// In a step captured into a CUDA graph (cuda::Graph), the first step with momentum is refused
    /// (DeviceError): it creates the buffers and sets b = g, which every replay would then repeat.
    void step() override {
        NoGradGuard no_grad;
        if (opt_.momentum != 0) this->check_capturable_first_step(" with momentum");
        size_t k = 0;  // parameters with a gradient, packed at the front of batch_
        for (size_t i = 0; i < this->params().size(); ++i) {
            const auto* impl = this->params()[i].impl();
            if (!impl->grad) continue;  // no gradient: not part of this step (as in PyTorch)
            bool fresh = false;
            T* buf = opt_.momentum == 0 ? nullptr : this->param_state(i, fresh).buffers[0].data_ptr();
            batch_[k++] = {.n = impl->shape.numel(),
                           .p = impl->data(),
                           .grad = impl->grad->data(),
                           .s0 = buf,
                           .first_step = fresh};
        }
        backend::Ops<D>::step_many(static_cast<int64_t>(k), batch_.data(),
                                   backend::SgdRule<T>::make(static_cast<T>(this->lr()), static_cast<T>(opt_.momentum),
                                                             static_cast<T>(opt_.dampening),
                                                             static_cast<T>(opt_.weight_decay), opt_.nesterov));
    }

private:
    static const SGDOptions& validated(const SGDOptions& o) {
        using detail::check_option;
        check_option(detail::finite_non_negative(o.lr), "SGD", "learning rate", o.lr, "must be >= 0");
        check_option(detail::finite_non_negative(o.momentum), "SGD", "momentum", o.momentum, "must be >= 0");
        check_option(o.dampening >= 0 && o.dampening <= 1, "SGD", "dampening", o.dampening, "must be in [0, 1]");
        check_option(detail::finite_non_negative(o.weight_decay), "SGD", "weight_decay", o.weight_decay,
                     "must be >= 0");
        TAPEGRAD_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), ValueError,
                       "SGD: nesterov momentum requires momentum > 0 and dampening = 0 (got momentum ", o.momentum,
                       ", dampening ", o.dampening, ")");
        return o;
    }
    static std::vector<const char*> names(const SGDOptions& o) {
        if (o.momentum == 0) return {};
        return {"momentum_buffer"};
    }

    SGDOptions opt_;
    /// This step's parameters, rebuilt on each step (pointers change when a gradient or a buffer is created
    /// or replaced) in storage sized once, one entry per parameter, so that a step allocates nothing.
    std::vector<backend::StepParam<T>> batch_;
};

}  // namespace tapegrad::optim
