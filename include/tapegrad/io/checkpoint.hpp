#pragma once
/// \file
/// Checkpoints: a module's parameters and buffers saved to and loaded from safetensors files, by their
/// dotted names and in PyTorch's layouts, so `model.safetensors` written here loads into the same
/// architecture built with torch.nn (`model.load_state_dict(safetensors.torch.load_file(path))`) and the
/// other way round.
///
/// Loading is strict by default: every missing, unexpected or mismatched name is listed in one message.
/// Saving is atomic (temporary file + rename), so an error or a crash never leaves a half-written file or
/// damages the previous checkpoint.

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/io/safetensors.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/optim/optimizer.hpp>

#include <bit>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tapegrad::io {

static_assert(std::endian::native == std::endian::little,
              "tapegrad::io: safetensors data is little-endian; big-endian hosts are not supported yet.");

template <Scalar T>
constexpr Dtype dtype_of() {
    return std::same_as<T, float> ? Dtype::F32 : Dtype::F64;
}

/// Named tensors -> a safetensors file structure (copies the data).
template <Scalar T>
StFile to_safetensors(const std::vector<std::pair<std::string, Tensor<T>>>& named,
                      std::map<std::string, std::string> metadata = {}) {
    StFile f;
    f.metadata = std::move(metadata);
    for (const auto& [name, t] : named) {
        StEntry e{name, dtype_of<T>(), t.shape().to_vector(), {}};
        e.data.resize(static_cast<size_t>(t.numel()) * sizeof(T));
        if (t.numel() > 0) std::memcpy(e.data.data(), t.data(), e.data.size());
        f.tensors.push_back(std::move(e));
    }
    return f;
}

/// Copies an entry's values into `dst` (same shape), converting F32 <-> F64 as needed.
template <Scalar T>
void copy_entry(const StEntry& e, Tensor<T>& dst, const std::string& file) {
    NoGradGuard ng;
    const int64_t n = dst.numel();
    if (e.dtype == dtype_of<T>()) {
        if (n > 0) std::memcpy(dst.data(), e.data.data(), static_cast<size_t>(n) * sizeof(T));
    } else if (e.dtype == Dtype::F32 || e.dtype == Dtype::F64) {
        for (int64_t i = 0; i < n; ++i) {
            if (e.dtype == Dtype::F32) {
                float v;
                std::memcpy(&v, e.data.data() + i * 4, 4);
                dst.data()[i] = static_cast<T>(v);
            } else {
                double v;
                std::memcpy(&v, e.data.data() + i * 8, 8);
                dst.data()[i] = static_cast<T>(v);
            }
        }
    } else {
        ::tapegrad::detail::raise<FormatError>("load: '", file, "': tensor '", e.name, "' has dtype ", dtype_name(e.dtype),
                                   "; only F32 and F64 can be loaded into a floating-point model");
    }
}

struct LoadOptions {
    /// Require the file's names to match the module's exactly (no missing, no unexpected).
    bool strict = true;
};

/// Copies the matching tensors of `f` into `targets`. Lists every problem in one error.
template <Scalar T>
void load_named(const StFile& f, const std::vector<std::pair<std::string, Tensor<T>>>& targets, const std::string& file,
                LoadOptions opt = {}) {
    std::vector<std::string> missing, unexpected, mismatched;
    std::map<std::string, const StEntry*> by_name;
    for (const auto& e : f.tensors) by_name[e.name] = &e;
    std::map<std::string, bool> known;
    for (const auto& [name, t] : targets) {
        known[name] = true;
        auto it = by_name.find(name);
        if (it == by_name.end()) {
            missing.push_back(name);
            continue;
        }
        if (Shape(it->second->shape) != t.shape()) {
            std::ostringstream os;
            os << name << " (file " << Shape(it->second->shape) << ", model " << t.shape() << ")";
            mismatched.push_back(os.str());
        }
    }
    for (const auto& e : f.tensors)
        if (!known.count(e.name)) unexpected.push_back(e.name);
    const bool bad = !mismatched.empty() || (opt.strict && (!missing.empty() || !unexpected.empty()));
    if (bad) {
        std::ostringstream os;
        os << "load: '" << file << "' does not match the model:";
        auto list = [&](const char* what, const std::vector<std::string>& v) {
            if (v.empty()) return;
            os << ' ' << what << " [";
            for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
            os << "];";
        };
        list("missing", missing);
        if (opt.strict) list("unexpected", unexpected);
        list("shape mismatch", mismatched);
        throw ShapeError(os.str());
    }
    // Validate every dtype before writing anything, so a failed load leaves the model untouched.
    for (const auto& [name, t] : targets) {
        auto it = by_name.find(name);
        if (it == by_name.end()) continue;
        const Dtype d = it->second->dtype;
        TAPEGRAD_CHECK(d == Dtype::F32 || d == Dtype::F64, FormatError, "load: '", file, "': tensor '", name,
                       "' has dtype ", dtype_name(d), "; only F32 and F64 can be loaded into a floating-point model");
    }
    for (const auto& [name, t] : targets) {
        auto it = by_name.find(name);
        if (it == by_name.end()) continue;
        Tensor<T> dst = t;
        copy_entry(*it->second, dst, file);
    }
}

/// Saves `module`'s parameters and buffers (its state_dict) to `path`, atomically.
template <Scalar T>
void save(const std::filesystem::path& path, const nn::Module<T>& module, std::map<std::string, std::string> metadata = {}) {
    metadata.emplace("format", "pt");
    save_safetensors(path, to_safetensors<T>(module.state_dict(), std::move(metadata)));
}

/// Loads a state_dict saved by `save` (or by PyTorch's safetensors) into `module`. Strict by default.
template <Scalar T>
void load(const std::filesystem::path& path, nn::Module<T>& module, LoadOptions opt = {}) {
    load_named<T>(load_safetensors(path), module.state_dict(), path.string(), opt);
}

/// Saves an optimizer's state (momentum buffers, moment estimates, step counts), named "<param index>.<key>",
/// atomically. Load it into an optimizer built over the same parameters in the same order.
template <Scalar T>
void save_optimizer(const std::filesystem::path& path, const optim::Optimizer<T>& opt) {
    save_safetensors(path, to_safetensors<T>(opt.state(), {{"tapegrad.optimizer", opt.name()}}));
}

/// Restores a state saved by `save_optimizer`; the optimizer validates names and shapes strictly.
template <Scalar T>
void load_optimizer(const std::filesystem::path& path, optim::Optimizer<T>& opt) {
    const StFile f = load_safetensors(path);
    auto it = f.metadata.find("tapegrad.optimizer");
    TAPEGRAD_CHECK(it != f.metadata.end() && it->second == opt.name(), FormatError, "load_optimizer: '", path.string(),
                   "' holds the state of ", it == f.metadata.end() ? std::string("no tapegrad optimizer") : it->second,
                   ", not of ", opt.name());
    std::vector<std::pair<std::string, Tensor<T>>> state;
    for (const auto& e : f.tensors) {
        Tensor<T> t = Tensor<T>::empty(Shape(e.shape));
        copy_entry(e, t, path.string());
        state.emplace_back(e.name, t);
    }
    opt.load_state(state);
}

}  // namespace tapegrad::io
