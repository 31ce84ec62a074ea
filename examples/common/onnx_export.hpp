#pragma once
// --export-onnx for mnist_mlp and mnist_cnn (not part of the library): the trained network as an ONNX file,
// and with --export-onnx-check N the first N test images and the network's outputs for them beside it, for
// tests/onnx/check_onnx.sh to compare with onnxruntime.

#include <tapegrad/data/dataset.hpp>
#include <tapegrad/io/onnx.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/util/atomic_file.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace examples {

namespace tg = tapegrad;

/// The ONNX flags of an MNIST program.
struct OnnxFlags {
    std::string path;    ///< --export-onnx PATH (.onnx)
    int64_t check = 0;   ///< --export-onnx-check N: also write N test images and the outputs for them
};

inline void add_onnx_flags(CLI::App& app, OnnxFlags& f) {
    app.add_option("--export-onnx", f.path,
                   "Write the trained (or --load'ed) network as an ONNX model (opset 17, any batch size), for "
                   "onnxruntime and other ONNX runtimes");
    app.add_option("--export-onnx-check", f.check,
                   "With --export-onnx a.onnx: also write the first N test images (a.input.bin) and the network's "
                   "outputs for them (a.expected.bin, float32) with a.manifest.txt, for tests/onnx/check_onnx.sh")
        ->check(CLI::Range(int64_t{0}, int64_t{10000}));
}

/// Checks the ONNX flags before training: the path ends in .onnx when the check files are asked for, and
/// every file can be written. Throws tg::FormatError naming the flag.
inline void check_onnx_flags(const OnnxFlags& f) {
    if (f.path.empty()) {
        if (f.check > 0) throw tg::ValueError("--export-onnx-check needs --export-onnx");
        return;
    }
    const std::filesystem::path p(f.path);
    tg::util::check_writable(p, "--export-onnx '" + f.path + "'");
    if (f.check > 0 && p.extension() != ".onnx")
        throw tg::ValueError("--export-onnx-check: the model path '" + f.path + "' must end in .onnx");
}

namespace detail {
inline std::string dims_text(const tg::Shape& s) {
    std::string out;
    for (int i = 0; i < s.rank(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    return out;
}
inline void write_floats(const std::filesystem::path& p, const std::vector<float>& v) {
    std::vector<unsigned char> bytes(v.size() * sizeof(float));
    if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
    tg::util::write_file_atomically(p, bytes, "--export-onnx-check '" + p.string() + "'");
}
}  // namespace detail

/// Exports `net` (on the CPU) with the first test image as the example input; with f.check > 0 writes the
/// check files. Prints what it wrote on stderr.
inline void export_onnx(tg::nn::Module<float>& net, const tg::data::Dataset<float>& test, const OnnxFlags& f) {
    if (f.path.empty()) return;
    const int64_t n = std::max<int64_t>(1, std::min(f.check, test.size()));
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    const tg::data::Dataset<float> first = test.subset(std::span<const int64_t>(all.data(), 1));
    tg::io::export_onnx(net, first.features, f.path, {.opset = 17, .dynamic_batch = true});
    std::fprintf(stderr, "exported %s (ONNX opset 17, input [batch, %s])\n", f.path.c_str(),
                 detail::dims_text(test.sample_shape()).c_str());
    if (f.check <= 0) return;
    const tg::data::Dataset<float> images = test.subset(all);
    tg::Tensor<float> out;
    {
        tg::NoGradGuard ng;
        net.eval();
        out = net.forward(images.features);
    }
    const std::filesystem::path p(f.path);
    const std::filesystem::path stem = p.parent_path() / p.stem();
    detail::write_floats(stem.string() + ".input.bin", images.features.to_vector());
    detail::write_floats(stem.string() + ".expected.bin", out.to_vector());
    const std::string line = p.stem().string() + " " + detail::dims_text(images.features.shape()) + " " +
                             detail::dims_text(out.shape()) + "\n";
    tg::util::write_file_atomically(stem.string() + ".manifest.txt",
                                    std::span(reinterpret_cast<const unsigned char*>(line.data()), line.size()),
                                    "--export-onnx-check");
    std::fprintf(stderr, "wrote %lld test images and the outputs for them beside %s (check: bash "
                         "tests/onnx/check_onnx.sh %s.manifest.txt)\n",
                 static_cast<long long>(n), f.path.c_str(), stem.string().c_str());
}

}  // namespace examples
