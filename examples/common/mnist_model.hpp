#pragma once
// The MLP of mnist_mlp and mnist_predict, and the checks mnist_predict makes before it trusts a checkpoint
// or an image (not part of the library). Everything here is checked before anything is allocated from what
// a file says, so a damaged or foreign file gives a sentence, not std::bad_alloc or a crash.

#include "parse.hpp"

#include <tapegrad/data/idx.hpp>
#include <tapegrad/io/safetensors.hpp>
#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/module.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

namespace tg = tapegrad;

/// Sizes a hidden layer may have (the --hidden flag and the checkpoint metadata).
inline constexpr int64_t max_hidden = int64_t{1} << 16;

/// The architecture of an mnist_mlp network: inputs -> [Linear -> ReLU] x len(hidden) -> Linear(classes).
struct MlpLayout {
    int64_t inputs = 784;
    std::vector<int64_t> hidden;
    int64_t classes = 10;
};

/// Builds the network of `layout` on device D. State names: 0.weight [h0, inputs], 0.bias [h0], 2.weight...
template <class D = tg::Cpu>
std::shared_ptr<tg::nn::Sequential<float, D>> build_mlp(const MlpLayout& layout, tg::Generator& gen) {
    auto net = std::make_shared<tg::nn::Sequential<float, D>>();
    int64_t in = layout.inputs;
    for (int64_t h : layout.hidden) {
        net->push_back(tg::nn::Linear<float, D>(in, h, gen));
        net->push_back(tg::nn::ReLU<float, D>());
        in = h;
    }
    net->push_back(tg::nn::Linear<float, D>(in, layout.classes, gen));
    return net;
}

/// The metadata mnist_mlp writes so that mnist_predict can rebuild the network.
inline std::map<std::string, std::string> mlp_metadata(const MlpLayout& layout) {
    return {{"tapegrad.model", "mnist_mlp"}, {"tapegrad.hidden", int_list_text(layout.hidden)}};
}

[[noreturn]] inline void bad_checkpoint(const std::string& file, const std::string& why) {
    throw tg::FormatError("checkpoint '" + file + "' " + why);
}

/// The layout of the mnist_mlp checkpoint `f` (read from `file`), from its metadata, checked against the
/// shapes of its tensors. Throws tg::FormatError naming the file and what does not fit.
inline MlpLayout mlp_layout(const tg::io::StFile& f, const std::string& file) {
    const auto fail = [&](const std::string& why) { bad_checkpoint(file, why); };
    const auto it = f.metadata.find("tapegrad.hidden");
    if (it == f.metadata.end()) bad_checkpoint(file, "has no tapegrad.hidden metadata (was it written by mnist_mlp --save?)");
    MlpLayout layout;
    try {
        if (!it->second.empty()) layout.hidden = parse_int_list(it->second, 1, max_hidden);
    } catch (const std::invalid_argument& e) {
        bad_checkpoint(file, std::string("has bad tapegrad.hidden metadata: ") + e.what());
    }
    const auto shape_of = [&](const std::string& name) -> const std::vector<int64_t>& {
        const tg::io::StEntry* e = f.find(name);
        if (e == nullptr) bad_checkpoint(file, "has no tensor '" + name + "', which tapegrad.hidden '" + it->second + "' implies");
        return e->shape;
    };
    const auto shape_text = [](const std::vector<int64_t>& s) {
        std::string t = "[";
        for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
        return t + "]";
    };
    // The first layer's weight says how many inputs the network takes; each later one must take the
    // previous layer's outputs.
    const size_t layers = layout.hidden.size() + 1;
    int64_t in = -1;
    for (size_t k = 0; k < layers; ++k) {
        const std::string w = std::to_string(2 * k) + ".weight", b = std::to_string(2 * k) + ".bias";
        const std::vector<int64_t>& ws = shape_of(w);
        const std::vector<int64_t>& bs = shape_of(b);
        if (k == 0 && ws.size() == 2) {
            in = ws[1];
            if (in < 1 || in > (int64_t{1} << 24)) fail("takes " + std::to_string(in) + " inputs");
            layout.inputs = in;
        }
        const int64_t out = k + 1 < layers ? layout.hidden[k] : (ws.size() == 2 ? ws[0] : -1);
        if (k + 1 == layers) {
            if (out < 2 || out > max_hidden) fail("has " + std::to_string(out) + " classes in '" + w + "'");
            layout.classes = out;
        }
        if (ws != std::vector<int64_t>{out, in} || bs != std::vector<int64_t>{out})
            fail("does not match tapegrad.hidden '" + it->second + "': '" + w + "' is " + shape_text(ws) + " and '" +
                 b + "' is " + shape_text(bs) + ", expected [" + std::to_string(out) + ", " + std::to_string(in) +
                 "] and [" + std::to_string(out) + "]");
        in = out;
    }
    if (f.tensors.size() != 2 * layers)
        fail("holds " + std::to_string(f.tensors.size()) + " tensors; an MLP with " +
             std::to_string(layout.hidden.size()) + " hidden layers has " + std::to_string(2 * layers));
    return layout;
}

/// Checks that the test images fit a model taking `inputs` pixels and that every index is one of them.
/// Throws tg::ShapeError or tg::IndexError naming `where` (the folder).
inline void check_test_images(const tg::data::ImageSet& test, const std::vector<int64_t>& indices, int64_t inputs,
                              const std::string& where) {
    if (test.rows * test.cols != inputs)
        throw tg::ShapeError("the test images in '" + where + "' are " + std::to_string(test.rows) + "x" +
                             std::to_string(test.cols) + " (" + std::to_string(test.rows * test.cols) +
                             " pixels) but the model takes " + std::to_string(inputs) + " inputs");
    for (const int64_t i : indices)
        if (i < 0 || i >= test.count)
            throw tg::IndexError("--index " + std::to_string(i) + " is out of range: '" + where + "' holds " +
                                 std::to_string(test.count) + " test images (indices 0 to " +
                                 std::to_string(test.count - 1) + ")");
}

}  // namespace examples
