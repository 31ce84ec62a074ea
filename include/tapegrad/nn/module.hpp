#pragma once
/// \file
/// `nn::Module`: the base of every layer and network. A module owns named parameters (tensors that
/// require grad), named buffers (state that is saved but not trained, like batch-norm statistics) and named
/// child modules; `named_parameters()` walks the tree and joins names with dots (`fc1.weight`), the names
/// a PyTorch state_dict uses. Three containers hold children, with PyTorch's names and naming:
/// `nn::Sequential` chains modules ("0", "1", ...), `nn::ModuleList` holds an indexed list that the owner's
/// forward uses as it likes (`layers.0.weight`), and `nn::ModuleDict` holds modules by name
/// (`heads.cls.bias`). Containers nest: `blocks.1.heads.cls.weight`.
///
/// Modules are used through `std::shared_ptr` (runtime polymorphism: a network is a value you build at
/// run time, not a type).

#include <tapegrad/core/tensor.hpp>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tapegrad::nn {

template <Scalar T = float, Device D = Cpu>
class Module {
public:
    using TensorT = Tensor<T, D>;
    using Named = std::vector<std::pair<std::string, TensorT>>;

    Module() = default;
    Module(const Module&) = delete;  // a copy would share parameters silently; build a new module instead
    Module& operator=(const Module&) = delete;
    Module(Module&&) noexcept = default;  // moving keeps the registered handles and the layer's own in step
    Module& operator=(Module&&) noexcept = default;
    virtual ~Module() = default;

    /// The computation: x -> y. Shapes are documented on each layer.
    virtual TensorT forward(const TensorT& x) = 0;
    TensorT operator()(const TensorT& x) { return forward(x); }

    /// A short description for printing, e.g. `Linear(in=784, out=128, bias=true)`.
    [[nodiscard]] virtual std::string describe() const { return "Module"; }

    /// Every parameter of this module and its children, in registration order.
    [[nodiscard]] std::vector<TensorT> parameters() const {
        std::vector<TensorT> out;
        for (auto& [name, t] : named_parameters()) out.push_back(t);
        return out;
    }
    /// Parameters with dotted names: `0.weight`, `fc1.bias`, ...
    [[nodiscard]] Named named_parameters() const {
        Named out;
        collect(out, "", /*buffers=*/false);
        return out;
    }
    /// Buffers (non-trained state) with dotted names.
    [[nodiscard]] Named named_buffers() const {
        Named out;
        collect(out, "", /*buffers=*/true);
        return out;
    }
    /// Parameters then buffers: everything a checkpoint holds, as PyTorch's state_dict.
    [[nodiscard]] Named state_dict() const {
        Named out = named_parameters();
        Named b = named_buffers();
        out.insert(out.end(), b.begin(), b.end());
        return out;
    }
    [[nodiscard]] const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const noexcept {
        return children_;
    }

    /// Zeroes every parameter's gradient in place.
    void zero_grad() {
        for (auto& p : parameters()) p.zero_grad();
    }
    /// Training mode (the default) or evaluation mode, for this module and all children. Layers such as
    /// dropout and batch norm behave differently in each.
    virtual void train(bool on = true) {
        training_ = on;
        for (auto& [name, c] : children_) c->train(on);
    }
    void eval() { train(false); }
    [[nodiscard]] bool is_training() const noexcept { return training_; }

    /// Total number of trainable scalars.
    [[nodiscard]] int64_t num_parameters() const {
        int64_t n = 0;
        for (const auto& p : parameters()) n += p.numel();
        return n;
    }

    /// Prints the module tree, one child per line.
    friend std::ostream& operator<<(std::ostream& os, const Module& m) {
        m.print(os, 0);
        return os;
    }

protected:
    /// Registers `t` as a parameter (sets requires_grad) and returns the shared handle.
    TensorT register_parameter(std::string name, TensorT t) {
        t.requires_grad_(true);
        params_.emplace_back(std::move(name), t);
        return t;
    }
    /// Registers state that is saved with the module but not trained.
    TensorT register_buffer(std::string name, TensorT t) {
        buffers_.emplace_back(std::move(name), t);
        return t;
    }
    /// Registers a child; its parameters appear as `name.<param>`.
    template <class M>
    std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
        static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from nn::Module<T, D>.");
        TAPEGRAD_CHECK(m != nullptr, ValueError, "register_module: child '", name, "' is null");
        children_.emplace_back(std::move(name), m);
        return m;
    }

private:
    void collect(Named& out, const std::string& prefix, bool buffers) const {
        for (const auto& [name, t] : buffers ? buffers_ : params_) out.emplace_back(prefix + name, t);
        for (const auto& [name, c] : children_) c->collect(out, prefix + name + ".", buffers);
    }
    void print(std::ostream& os, int indent) const {
        os << describe();
        if (children_.empty()) return;
        os << " (\n";
        for (const auto& [name, c] : children_) {
            os << std::string(static_cast<size_t>(indent + 2), ' ') << '(' << name << "): ";
            c->print(os, indent + 2);
            os << '\n';
        }
        os << std::string(static_cast<size_t>(indent), ' ') << ')';
    }

    Named params_;
    Named buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

/// Modules applied one after another; children are named "0", "1", ... as in torch.nn.Sequential.
///   nn::Sequential<float> net{nn::Linear<float>(784, 128), nn::ReLU<float>(), nn::Linear<float>(128, 10)};
/// Use braces: inside braces C++ constructs the layers left to right, so layers that draw their initial
/// weights from the default generator get the same weights with every compiler (with parentheses the
/// order is unspecified).
template <Scalar T = float, Device D = Cpu>
class Sequential : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    Sequential() = default;
    /// Builds from modules given by value (moved into shared ownership) or as shared_ptrs.
    template <class... Ms>
        requires(sizeof...(Ms) > 0)
    explicit Sequential(Ms&&... ms) {
        (push_back(std::forward<Ms>(ms)), ...);
    }

    /// Appends a module; returns its shared handle.
    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        // Register first: it rejects a null module, and then nothing has changed.
        this->register_module(std::to_string(layers_.size()), m);
        layers_.push_back(m);
        return m;
    }
    template <class M>
        requires std::is_base_of_v<Module<T, D>, std::remove_cvref_t<M>>
    std::shared_ptr<std::remove_cvref_t<M>> push_back(M&& m) {
        return push_back(std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(m)));
    }

    TensorT forward(const TensorT& x) override {
        TensorT h = x;
        for (auto& l : layers_) h = l->forward(h);
        return h;
    }
    [[nodiscard]] std::string describe() const override { return "Sequential"; }
    [[nodiscard]] size_t size() const noexcept { return layers_.size(); }
    [[nodiscard]] const std::shared_ptr<Module<T, D>>& operator[](size_t i) const {
        TAPEGRAD_CHECK(i < layers_.size(), IndexError, "Sequential: index ", i, " out of range (", layers_.size(),
                       " modules)");
        return layers_[i];
    }

private:
    std::vector<std::shared_ptr<Module<T, D>>> layers_;
};

/// A list of modules, as torch.nn.ModuleList: children named "0", "1", ... in order, so that a module owning
/// one as `layers` has parameters `layers.0.weight`, `layers.1.bias`, ... It has no forward of its own: the
/// owner's forward calls its modules, in any order or pattern (a residual stack, a shared head).
///   auto layers = register_module("layers", std::make_shared<nn::ModuleList<float>>());
///   for (int i = 0; i < depth; ++i) layers->push_back(nn::Linear<float>(64, 64));
///   for (auto& layer : *layers) h = tapegrad::relu(layer->forward(h));
template <Scalar T = float, Device D = Cpu>
class ModuleList : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    using Ptr = std::shared_ptr<Module<T, D>>;
    ModuleList() = default;
    /// Builds from modules given by value (moved into shared ownership) or as shared_ptrs; use braces, as
    /// for Sequential, so that layers drawing from the default generator are built left to right.
    template <class... Ms>
        requires(sizeof...(Ms) > 0)
    explicit ModuleList(Ms&&... ms) {
        (push_back(std::forward<Ms>(ms)), ...);
    }

    /// Appends a module, named by its index; returns its shared handle. Throws ValueError for a null one.
    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        this->register_module(std::to_string(modules_.size()), m);
        modules_.push_back(m);
        return m;
    }
    template <class M>
        requires std::is_base_of_v<Module<T, D>, std::remove_cvref_t<M>>
    std::shared_ptr<std::remove_cvref_t<M>> push_back(M&& m) {
        return push_back(std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(m)));
    }

    /// Throws ValueError: a ModuleList is not called itself; its owner's forward calls its modules.
    TensorT forward(const TensorT&) override {
        TAPEGRAD_CHECK(false, ValueError, "ModuleList: has no forward (it holds ", modules_.size(),
                       " modules); call them from your module's forward, or use nn::Sequential to chain them");
        return {};
    }
    [[nodiscard]] std::string describe() const override { return "ModuleList"; }
    [[nodiscard]] size_t size() const noexcept { return modules_.size(); }
    [[nodiscard]] bool empty() const noexcept { return modules_.empty(); }
    /// The module at `i`; throws IndexError past the end.
    [[nodiscard]] const Ptr& operator[](size_t i) const {
        TAPEGRAD_CHECK(i < modules_.size(), IndexError, "ModuleList: index ", i, " out of range (", modules_.size(),
                       " modules)");
        return modules_[i];
    }
    [[nodiscard]] auto begin() const noexcept { return modules_.begin(); }
    [[nodiscard]] auto end() const noexcept { return modules_.end(); }

private:
    std::vector<Ptr> modules_;
};

/// Modules by name, in insertion order, as torch.nn.ModuleDict: each child is registered under its key, so a
/// module owning one as `heads` has parameters `heads.cls.weight`, `heads.box.bias`, ... Like ModuleList it
/// has no forward of its own.
///   auto heads = register_module("heads", std::make_shared<nn::ModuleDict<float>>());
///   heads->insert("cls", nn::Linear<float>(64, 10));
///   auto logits = (*heads)["cls"]->forward(h);
template <Scalar T = float, Device D = Cpu>
class ModuleDict : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    using Ptr = std::shared_ptr<Module<T, D>>;
    ModuleDict() = default;
    /// Builds from (key, module) pairs, inserted in order.
    ModuleDict(std::initializer_list<std::pair<std::string, Ptr>> items) {
        for (const auto& [key, m] : items) insert(key, m);
    }

    /// Adds `m` under `key`; returns its shared handle. Throws ValueError for an empty key, one holding a
    /// '.' (it would make the dotted names ambiguous), a key already present, or a null module.
    template <class M>
    std::shared_ptr<M> insert(const std::string& key, std::shared_ptr<M> m) {
        TAPEGRAD_CHECK(!key.empty() && key.find('.') == std::string::npos, ValueError, "ModuleDict: key '", key,
                       "' must be non-empty and hold no '.' (parameters are named <key>.<name>)");
        TAPEGRAD_CHECK(!contains(key), ValueError, "ModuleDict: key '", key, "' is already present");
        this->register_module(key, m);
        items_.emplace_back(key, m);
        return m;
    }
    template <class M>
        requires std::is_base_of_v<Module<T, D>, std::remove_cvref_t<M>>
    std::shared_ptr<std::remove_cvref_t<M>> insert(const std::string& key, M&& m) {
        return insert(key, std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(m)));
    }

    /// Throws ValueError: a ModuleDict is not called itself; its owner's forward calls its modules.
    TensorT forward(const TensorT&) override {
        TAPEGRAD_CHECK(false, ValueError, "ModuleDict: has no forward (it holds ", items_.size(),
                       " modules); call them from your module's forward");
        return {};
    }
    [[nodiscard]] std::string describe() const override { return "ModuleDict"; }
    [[nodiscard]] size_t size() const noexcept { return items_.size(); }
    [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
    [[nodiscard]] bool contains(const std::string& key) const {
        return std::any_of(items_.begin(), items_.end(), [&](const auto& kv) { return kv.first == key; });
    }
    /// The module under `key`; throws IndexError, listing the keys, when there is none.
    [[nodiscard]] const Ptr& operator[](const std::string& key) const {
        for (const auto& [k, m] : items_)
            if (k == key) return m;
        std::string keys;
        for (const auto& [k, m] : items_) keys += (keys.empty() ? "'" : ", '") + k + "'";
        TAPEGRAD_CHECK(false, IndexError, "ModuleDict: no module under key '", key, "' (keys: ",
                       keys.empty() ? std::string("none") : keys, ")");
        return items_.front().second;  // not reached
    }
    /// The keys, in insertion order.
    [[nodiscard]] std::vector<std::string> keys() const {
        std::vector<std::string> out;
        for (const auto& [k, m] : items_) out.push_back(k);
        return out;
    }
    /// (key, module) pairs in insertion order.
    [[nodiscard]] auto begin() const noexcept { return items_.begin(); }
    [[nodiscard]] auto end() const noexcept { return items_.end(); }

private:
    std::vector<std::pair<std::string, Ptr>> items_;
};

}  // namespace tapegrad::nn
