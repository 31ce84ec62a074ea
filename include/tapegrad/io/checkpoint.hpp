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
///
/// Every function takes tensors, modules and optimizers of any device D. The file never depends on it: a
/// model on the GPU saves exactly the bytes the same model on the CPU does, and a file loads into either.
/// Values leave and reach a device through its backend's `download` and `upload` primitives, so this header
/// needs no device header (`Tensor<float, Cuda>` users include backend/cuda.hpp themselves).

#include <tapegrad/core/device.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/io/safetensors.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/optim/optimizer.hpp>

#include <bit>
#include <concepts>
#include <cstdint>
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

/// Named tensors of any device -> a safetensors file structure (copies the data; from a GPU this downloads,
/// waiting for the ops that produce the values).
template <Scalar T, Device D>
StFile to_safetensors(const std::vector<std::pair<std::string, Tensor<T, D>>>& named,
                      std::map<std::string, std::string> metadata = {}) {
    StFile f;
    f.metadata = std::move(metadata);
    for (const auto& [name, t] : named) {
        StEntry e{name, dtype_of<T>(), t.shape().to_vector(), {}};
        const int64_t n = t.numel();
        e.data.resize(static_cast<size_t>(n) * sizeof(T));
        if constexpr (std::same_as<D, Cpu>) {
            if (n > 0) std::memcpy(e.data.data(), t.data_ptr(), e.data.size());
        } else if (n > 0) {
            const std::vector<T> host = t.to_vector();
            std::memcpy(e.data.data(), host.data(), e.data.size());
        }
        f.tensors.push_back(std::move(e));
    }
    return f;
}

namespace detail {

/// Throws FormatError unless `e` holds floating-point values (F32 or F64), the only kinds a model loads.
inline void check_float_entry(const StEntry& e, const std::string& file) {
    if (e.dtype == Dtype::F32 || e.dtype == Dtype::F64) return;
    ::tapegrad::detail::raise<FormatError>("load: '", file, "': tensor '", e.name, "' has dtype ",
                                           dtype_name(e.dtype),
                                           "; only F32 and F64 can be loaded into a floating-point model");
}

/// Writes the `n` values of `e` (F32 or F64, checked by the caller) to host memory `out`, converted to T.
template <Scalar T>
void decode_values(const StEntry& e, T* out, int64_t n) {
    if (e.dtype == dtype_of<T>()) {
        if (n > 0) std::memcpy(out, e.data.data(), static_cast<size_t>(n) * sizeof(T));
    } else if (e.dtype == Dtype::F32) {
        for (int64_t i = 0; i < n; ++i) {
            float v;
            std::memcpy(&v, e.data.data() + i * 4, 4);
            out[i] = static_cast<T>(v);
        }
    } else {
        for (int64_t i = 0; i < n; ++i) {
            double v;
            std::memcpy(&v, e.data.data() + i * 8, 8);
            out[i] = static_cast<T>(v);
        }
    }
}

/// The `n` values of `e`, converted to T, in a new host vector (the staging area before an upload).
template <Scalar T>
std::vector<T> decode_to_host(const StEntry& e, int64_t n) {
    std::vector<T> host(static_cast<size_t>(n));
    decode_values(e, host.data(), n);
    return host;
}

}  // namespace detail

/// Copies an entry's values into `dst` (same shape), converting F32 <-> F64 as needed. On the CPU they go
/// straight into `dst`; on another device they are converted on the host and then uploaded.
template <Scalar T, Device D>
void copy_entry(const StEntry& e, Tensor<T, D>& dst, const std::string& file) {
    detail::check_float_entry(e, file);
    const int64_t n = dst.numel();
    if constexpr (std::same_as<D, Cpu>) {
        detail::decode_values(e, dst.data_ptr(), n);
    } else {
        const std::vector<T> host = detail::decode_to_host<T>(e, n);
        backend::Ops<D>::upload(n, host.data(), dst.data_ptr());
    }
}

struct LoadOptions {
    /// Require the file's names to match the module's exactly (no missing, no unexpected).
    bool strict = true;
};

/// Copies the matching tensors of `f` into `targets`. Lists every problem in one error. Every name, shape
/// and dtype is checked before any value is written, so a failed load leaves the targets untouched. Off the
/// CPU every value is also converted into host memory first and only then uploaded, so nothing about the
/// file can fail half way through the uploads (only the device itself can).
template <Scalar T, Device D>
void load_named(const StFile& f, const std::vector<std::pair<std::string, Tensor<T, D>>>& targets,
                const std::string& file, LoadOptions opt = {}) {
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
        detail::check_float_entry(*it->second, file);
    }
    if constexpr (std::same_as<D, Cpu>) {
        for (const auto& [name, t] : targets) {
            auto it = by_name.find(name);
            if (it == by_name.end()) continue;
            Tensor<T, D> dst = t;
            copy_entry(*it->second, dst, file);
        }
    } else {
        // Stage everything on the host (the one step that can run out of memory) before the first upload.
        std::vector<std::pair<const Tensor<T, D>*, std::vector<T>>> staged;
        staged.reserve(targets.size());
        for (const auto& [name, t] : targets) {
            auto it = by_name.find(name);
            if (it == by_name.end()) continue;
            staged.emplace_back(&t, detail::decode_to_host<T>(*it->second, t.numel()));
        }
        for (const auto& [t, host] : staged) backend::Ops<D>::upload(t->numel(), host.data(), t->data_ptr());
    }
}

/// Saves `module`'s parameters and buffers (its state_dict) to `path`, atomically. On any device; the file is
/// the one the same model on the CPU would write.
template <Scalar T, Device D>
void save(const std::filesystem::path& path, const nn::Module<T, D>& module,
          std::map<std::string, std::string> metadata = {}) {
    metadata.emplace("format", "pt");
    save_safetensors(path, to_safetensors<T, D>(module.state_dict(), std::move(metadata)));
}

/// Loads a state_dict saved by `save` (or by PyTorch's safetensors) into `module`, on any device (a file
/// saved from a GPU model loads on the CPU and the other way round). Strict by default.
template <Scalar T, Device D>
void load(const std::filesystem::path& path, nn::Module<T, D>& module, LoadOptions opt = {}) {
    load_named<T, D>(load_safetensors(path), module.state_dict(), path.string(), opt);
}

/// Saves an optimizer's state (momentum buffers, moment estimates, step counts), named "<param index>.<key>",
/// atomically. Load it into an optimizer built over the same parameters in the same order, on any device.
template <Scalar T, Device D>
void save_optimizer(const std::filesystem::path& path, const optim::Optimizer<T, D>& opt) {
    save_safetensors(path, to_safetensors<T, D>(opt.state(), {{"tapegrad.optimizer", opt.name()}}));
}

/// Saves `module` to `model_path` and `opt`'s state to `optimizer_path`, all or nothing: both files are
/// encoded and written to temporaries first, and renamed over their targets only when both are written.
/// If either fails, neither target changes, so a model never sits beside another run's optimizer state.
/// `metadata` goes into the model file, as in `save`.
template <Scalar T, Device D>
void save_with_optimizer(const std::filesystem::path& model_path, const nn::Module<T, D>& module,
                         const std::filesystem::path& optimizer_path, const optim::Optimizer<T, D>& opt,
                         std::map<std::string, std::string> metadata = {}) {
    metadata.emplace("format", "pt");
    const std::string model_where = ::tapegrad::detail::concat("save_with_optimizer: '", model_path.string(), "'");
    const std::string opt_where = ::tapegrad::detail::concat("save_with_optimizer: '", optimizer_path.string(), "'");
    const std::vector<unsigned char> model_bytes =
        detail::st_encode(to_safetensors<T, D>(module.state_dict(), std::move(metadata)), model_where);
    const std::vector<unsigned char> opt_bytes =
        detail::st_encode(to_safetensors<T, D>(opt.state(), {{"tapegrad.optimizer", opt.name()}}), opt_where);
    const util::FileContent files[] = {{model_path, model_bytes, model_where}, {optimizer_path, opt_bytes, opt_where}};
    util::write_files_atomically(files);
}

/// Restores a state saved by `save_optimizer`; the optimizer validates names and shapes strictly. The file is
/// read and decoded in full before the optimizer changes, and `load_state` swaps the new state in only once it
/// is all valid, so a failed load leaves the optimizer as it was.
template <Scalar T, Device D>
void load_optimizer(const std::filesystem::path& path, optim::Optimizer<T, D>& opt) {
    const StFile f = load_safetensors(path);
    auto it = f.metadata.find("tapegrad.optimizer");
    TAPEGRAD_CHECK(it != f.metadata.end() && it->second == opt.name(), FormatError, "load_optimizer: '", path.string(),
                   "' holds the state of ", it == f.metadata.end() ? std::string("no tapegrad optimizer") : it->second,
                   ", not of ", opt.name());
    std::vector<std::pair<std::string, Tensor<T, D>>> state;
    state.reserve(f.tensors.size());
    for (const auto& e : f.tensors) {
        Tensor<T, D> t = Tensor<T, D>::empty(Shape(e.shape));
        copy_entry(e, t, path.string());
        state.emplace_back(e.name, t);
    }
    opt.load_state(state);
}

}  // namespace tapegrad::io
