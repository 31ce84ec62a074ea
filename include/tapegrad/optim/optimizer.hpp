#pragma once
/// \file
/// The optimizer base class: what SGD, Adam, AdamW, RMSprop and Adagrad have in common.
///
/// The idea: after `loss.backward()` every parameter `p` holds dL/dp in `p.grad()`, the direction in which
/// the loss grows fastest. An optimizer turns that gradient into a small change of `p` against it. Plain
/// gradient descent needs nothing but the gradient and a learning rate; the better optimizers also remember
/// something about past gradients (a running average, a running average of squares...). That memory is the
/// optimizer's *state*: one set of buffers per parameter, created on the parameter's first update and kept
/// between steps, so that a steady-state `step()` allocates nothing. `state()` and `load_state()` let a
/// training run be checkpointed and resumed exactly.
///
/// A training step reads:
///
///     opt.zero_grad();
///     auto loss = loss_fn(model.forward(x), y);
///     loss.backward();
///     opt.step();
///
/// The vocabulary (`step`, `zero_grad`, `lr`, parameters without a gradient are skipped, state names such as
/// `0.exp_avg`) follows `torch.optim`.

#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/backend/common/optim_math.hpp>
#include <tapegrad/core/device.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/tensor.hpp>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tapegrad::optim {

namespace detail {

/// Throws `ValueError("<optimizer>: invalid <option> <value> (<rule>)")` unless `ok`. The message is built
/// only on failure.
inline void check_option(bool ok, const char* who, const char* option, double value, const char* rule) {
    TAPEGRAD_CHECK(ok, ValueError, who, ": invalid ", option, " ", value, " (", rule, ")");
}

/// True for a finite value >= 0 (false for NaN and infinities).
[[nodiscard]] inline bool finite_non_negative(double v) noexcept { return std::isfinite(v) && v >= 0; }

/// `start + weight * (end - start)`, evaluated the way `torch.lerp` does (the form depends on which side of
/// 0.5 the weight lies, for accuracy), so that running averages match PyTorch's.
template <class T>
[[nodiscard]] T lerp(T start, T end, T weight) noexcept {
    return std::abs(weight) < T(0.5) ? start + weight * (end - start) : end - (end - start) * (T(1) - weight);
}

/// Joins names as `a, b, c` for error messages.
inline std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

}  // namespace detail

/// The part of every optimizer that does not depend on the element type: `step`, `zero_grad` and the
/// learning rate. LR schedulers drive an optimizer through this interface.
class OptimizerBase {
public:
    OptimizerBase(const OptimizerBase&) = delete;
    OptimizerBase& operator=(const OptimizerBase&) = delete;
    virtual ~OptimizerBase() = default;

    /// Updates every parameter that has a gradient, in place and without recording.
    virtual void step() = 0;
    /// Zeroes every parameter's gradient in place, keeping the buffer (so the next backward does not
    /// allocate). Parameters without a gradient are left alone.
    virtual void zero_grad() = 0;

    /// The current learning rate.
    [[nodiscard]] double lr() const noexcept { return lr_; }
    /// Sets the learning rate used by the next `step()`. Throws ValueError unless it is finite and >= 0.
    void set_lr(double lr) {
        detail::check_option(detail::finite_non_negative(lr), name_, "learning rate", lr, "must be >= 0");
        lr_ = lr;
    }
    /// The optimizer's name, as it appears in error messages: "SGD", "Adam"...
    [[nodiscard]] const char* name() const noexcept { return name_; }

protected:
    OptimizerBase(const char* name, double lr) : name_(name), lr_(0) { set_lr(lr); }

private:
    const char* name_;
    double lr_;
};

/// Base of the optimizers over parameters of type `Tensor<T, D>`: holds the parameters (handles sharing
/// their data with the model) and each parameter's state buffers.
///
/// State is named `"<index>.<buffer>"`, the index being the parameter's position in `params()`:
/// `"0.momentum_buffer"`, `"1.exp_avg"`, `"1.exp_avg_sq"`, and `"1.step"` (a rank-0 tensor holding the
/// number of updates that parameter received) for the optimizers that count steps. A parameter that has
/// not been updated yet has no state.
template <Scalar T, Device D = Cpu>
class Optimizer : public OptimizerBase {

public:
    /// The parameter type.
    using TensorType = Tensor<T, D>;
    /// Named state tensors, as returned by `state()` and accepted by `load_state()`.
    using NamedTensors = std::vector<std::pair<std::string, Tensor<T, D>>>;

    /// One `fill_many` over every gradient (one kernel launch on the GPU, not one per parameter).
    void zero_grad() override {
        size_t k = 0;  // gradients, packed at the front of grads_
        for (const Tensor<T, D>& p : params_)
            if (const auto& g = p.impl()->grad) grads_[k++] = {.n = p.numel(), .data = g->data()};
        backend::Ops<D>::fill_many(static_cast<int64_t>(k), grads_.data(), T(0));
    }

    /// The parameters, in the order given to the constructor.
    [[nodiscard]] const std::vector<Tensor<T, D>>& params() const noexcept { return params_; }

    /// The names of one parameter's state entries, without the index: e.g. {"exp_avg", "exp_avg_sq", "step"}.
    [[nodiscard]] std::vector<std::string> state_keys() const {
        std::vector<std::string> keys(buffer_names_.begin(), buffer_names_.end());
        if (counts_steps_) keys.emplace_back("step");
        return keys;
    }

    /// A snapshot of the state (deep copies: later steps do not change it), for checkpoints. Parameters
    /// not updated yet have no entries.
    [[nodiscard]] virtual NamedTensors state() const {
        NamedTensors out;
        for (size_t i = 0; i < states_.size(); ++i) {
            const ParamState& st = states_[i];
            if (!st.initialized) continue;
            for (size_t b = 0; b < buffer_names_.size(); ++b)
                out.emplace_back(key(i, buffer_names_[b]), copy_of(st.buffers[b]));
            if (counts_steps_) out.emplace_back(key(i, "step"), Tensor<T, D>::scalar(static_cast<T>(st.step)));
        }
        return out;
    }

    /// Replaces the whole state by `state` (values are copied in; `state` is not kept). Validation is strict
    /// and happens before anything changes: each name must be `<index>.<key>` with an index below the
    /// number of parameters and a key from `state_keys()`, a parameter's entries must be all present or all
    /// absent (absent: it starts fresh), no name may repeat (ValueError listing the missing, unexpected and
    /// repeated names), each buffer must have its parameter's shape and each step must be rank 0 (ShapeError
    /// listing every mismatch), and each step must be a whole number >= 1 (ValueError).
    virtual void load_state(const NamedTensors& state) {
        const size_t nkeys = buffer_names_.size() + (counts_steps_ ? 1 : 0);
        std::vector<const Tensor<T, D>*> slot(params_.size() * nkeys, nullptr);
        std::vector<std::string> unexpected, repeated, missing, mismatched;
        for (const auto& [name, tensor] : state) {
            const std::ptrdiff_t k = slot_of(name, nkeys);
            if (k < 0)
                unexpected.push_back(name);
            else if (slot[static_cast<size_t>(k)] != nullptr)
                repeated.push_back(name);
            else
                slot[static_cast<size_t>(k)] = &tensor;
        }
        const std::vector<std::string> keys = state_keys();
        for (size_t i = 0; i < params_.size(); ++i) {
            bool any = false;
            for (size_t k = 0; k < nkeys; ++k) any = any || slot[i * nkeys + k] != nullptr;
            if (!any) continue;
            for (size_t k = 0; k < nkeys; ++k)
                if (slot[i * nkeys + k] == nullptr) missing.push_back(key(i, keys[k].c_str()));
        }
        if (!unexpected.empty() || !repeated.empty() || !missing.empty()) [[unlikely]] {
            std::string problems;
            if (!missing.empty()) problems += "; missing: " + detail::join(missing);
            if (!unexpected.empty()) problems += "; unexpected: " + detail::join(unexpected);
            if (!repeated.empty()) problems += "; repeated: " + detail::join(repeated);
            tapegrad::detail::raise<ValueError>(name(), "::load_state: the state does not fit this optimizer (",
                                                params_.size(), " parameters; keys per parameter: ",
                                                keys.empty() ? std::string("none") : detail::join(keys), ")",
                                                problems);
        }
        for (size_t i = 0; i < params_.size(); ++i)
            for (size_t k = 0; k < nkeys; ++k) {
                const Tensor<T, D>* t = slot[i * nkeys + k];
                if (t == nullptr) continue;
                TAPEGRAD_CHECK(t->defined(), ValueError, name(), "::load_state: '", key(i, keys[k].c_str()),
                               "' is an undefined tensor");
                const bool is_step = k == buffer_names_.size();
                const Shape want = is_step ? Shape{} : params_[i].shape();
                if (!(t->shape() == want))
                    mismatched.push_back(tapegrad::detail::concat(key(i, keys[k].c_str()), " has shape ",
                                                                  t->shape(), ", expected ", want));
            }
        TAPEGRAD_CHECK(mismatched.empty(), ShapeError, name(), "::load_state: shape mismatch: ",
                       detail::join(mismatched));
        std::vector<int64_t> steps(params_.size(), 0);
        if (counts_steps_)
            for (size_t i = 0; i < params_.size(); ++i) {
                const Tensor<T, D>* t = slot[i * nkeys + nkeys - 1];
                if (t == nullptr) continue;
                const double v = static_cast<double>(t->item());
                TAPEGRAD_CHECK(v >= 1 && v <= 9007199254740992.0 && std::floor(v) == v, ValueError, name(),
                               "::load_state: '", key(i, "step"), "' is ", v, " (must be a whole number >= 1)");
                steps[i] = static_cast<int64_t>(v);
            }
        // Everything is valid: build the new state aside, then swap it in (so a failed allocation leaves
        // the old state intact).
        std::vector<ParamState> fresh(params_.size());
        for (size_t i = 0; i < params_.size(); ++i) {
            if (nkeys == 0 || slot[i * nkeys] == nullptr) continue;  // all-or-none was checked above
            ParamState& st = fresh[i];
            st.initialized = true;
            st.step = steps[i];
            for (size_t b = 0; b < buffer_names_.size(); ++b) st.buffers.push_back(copy_of(*slot[i * nkeys + b]));
        }
        states_.swap(fresh);
    }

protected:
    /// One parameter's state: its buffers, in the order of the names given to the constructor, and the
    /// number of updates it received.
    struct ParamState {
        bool initialized = false;
        int64_t step = 0;
        std::vector<Tensor<T, D>> buffers;
    };

    /// `name` appears in error messages; `buffer_names` are the per-parameter state buffers this
    /// configuration needs (none for plain SGD); `counts_steps` adds the `step` entry. Throws ValueError
    /// for an empty list, an undefined or non-leaf tensor, or a parameter given twice.
    Optimizer(std::vector<Tensor<T, D>> params, const char* name, double lr, std::vector<const char*> buffer_names,
              bool counts_steps)
        : OptimizerBase(name, lr),
          params_(std::move(params)),
          buffer_names_(std::move(buffer_names)),
          counts_steps_(counts_steps),
          states_(params_.size()) {
        grads_.resize(params_.size());
        TAPEGRAD_CHECK(!params_.empty(), ValueError, name, ": got an empty parameter list");
        for (size_t i = 0; i < params_.size(); ++i) {
            TAPEGRAD_CHECK(params_[i].defined(), ValueError, name, ": parameter ", i, " is an undefined tensor");
            TAPEGRAD_CHECK(params_[i].is_leaf(), ValueError, name, ": parameter ", i, " of shape ",
                           params_[i].shape(), " is not a leaf (it was produced by '", params_[i].grad_fn_name(),
                           "'); optimize leaf tensors only");
            for (size_t j = 0; j < i; ++j)
                TAPEGRAD_CHECK(!params_[i].same_as(params_[j]), ValueError, name, ": parameter ", i,
                               " is the same tensor as parameter ", j, " (it would be updated twice)");
        }
    }

    /// Whether parameter i has state yet (it has been updated, or its state was loaded).
    [[nodiscard]] bool has_state(size_t i) const noexcept { return states_[i].initialized; }

    /// Throws DeviceError inside a CUDA graph capture (cuda::Graph) when a parameter with a gradient has no
    /// state yet: its first step creates the state (and may set it from the gradient), which every replay
    /// would then redo. `which` completes "the first step" in the message (e.g. " with momentum").
    void check_capturable_first_step(const char* which = "") const {
        if (!backend::Ops<D>::capturing()) return;
        for (size_t i = 0; i < params_.size(); ++i)
            TAPEGRAD_CHECK(!params_[i].impl()->grad || has_state(i), DeviceError, name(), ": the first step", which,
                           " cannot be captured into a CUDA graph (it creates the optimizer state, which every ",
                           "replay would redo); take one step eagerly before capturing");
    }

    /// The state of parameter `i`, created on first use with zero-filled buffers; `fresh` tells the caller
    /// it was just created (SGD copies the gradient into its momentum buffer then, Adagrad fills its sum).
    /// The only place a step allocates, and only on a parameter's first update.

    ParamState& param_state(size_t i, bool& fresh) {
        ParamState& st = states_[i];
        fresh = !st.initialized;
        if (fresh) {
            st.buffers.clear();
            for (size_t b = 0; b < buffer_names_.size(); ++b)
                st.buffers.push_back(Tensor<T, D>::zeros(params_[i].shape()));
            st.step = 0;
            st.initialized = true;
        }
        return st;
    }

private:
    static std::string key(size_t index, const char* buffer) { return std::to_string(index) + "." + buffer; }

    static Tensor<T, D> copy_of(const Tensor<T, D>& t) {
        Tensor<T, D> c = Tensor<T, D>::empty(t.shape());
        backend::Ops<D>::copy(t.numel(), t.data_ptr(), c.data_ptr());
        return c;
    }

    /// Position of `name` in the [parameter][key] slot table, or -1 when it names no slot.
    std::ptrdiff_t slot_of(const std::string& name, size_t nkeys) const {
        const size_t dot = name.find('.');
        if (dot == 0 || dot == std::string::npos || dot > 18) return -1;
        size_t index = 0;
        for (size_t c = 0; c < dot; ++c) {
            if (name[c] < '0' || name[c] > '9') return -1;
            index = index * 10 + static_cast<size_t>(name[c] - '0');
        }
        if (index >= params_.size() || (dot > 1 && name[0] == '0')) return -1;
        const std::string_view field = std::string_view(name).substr(dot + 1);
        for (size_t k = 0; k < buffer_names_.size(); ++k)
            if (field == buffer_names_[k]) return static_cast<std::ptrdiff_t>(index * nkeys + k);
        if (counts_steps_ && field == "step") return static_cast<std::ptrdiff_t>(index * nkeys + nkeys - 1);
        return -1;
    }

    std::vector<Tensor<T, D>> params_;
    std::vector<const char*> buffer_names_;
    bool counts_steps_;
    std::vector<ParamState> states_;  ///< one per parameter, same order as params()
    /// zero_grad's list of gradient buffers, rebuilt on each call (pointers change when a gradient is
    /// created or dropped) in storage sized once, one entry per parameter, so that zero_grad never allocates.
    std::vector<backend::TensorSpan<T>> grads_;
};

}  // namespace tapegrad::optim
