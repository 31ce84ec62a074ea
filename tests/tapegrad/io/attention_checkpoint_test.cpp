// Checkpoint round trips of the attention modules (io/checkpoint.hpp with nn/attention.hpp and
// nn/transformer.hpp): PyTorch's state_dict (tests/interop/attention_reference.hpp) -> tapegrad module ->
// io::save -> safetensors holding exactly PyTorch's names, shapes and values -> io::load into a fresh module
// -> PyTorch's outputs. With TAPEGRAD_ATTENTION_INTEROP_DIR set, the post-norm encoder's checkpoint, input
// and output are also written there for tests/interop/attention_roundtrip.py, which loads the checkpoint
// into torch.nn.TransformerEncoderLayer with load_state_dict(strict=True) and compares the outputs.
#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/io/safetensors.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/attention_reference.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

using namespace tapegrad;
using namespace tapegrad::testing;
namespace fs = std::filesystem;

namespace {

struct TempFile {
    fs::path path;
    TempFile() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("tapegrad_attention_ckpt_" + std::to_string(rd()) + ".safetensors");
    }
    ~TempFile() {
        std::error_code ec;
        fs::remove(path, ec);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
};

/// Saves `m` (loaded with the case's PyTorch state) and checks the file holds PyTorch's state_dict exactly.
template <class M>
void check_file_is_torch_state(M& m, const ref::Case& c, const fs::path& path) {
    io::save(path, m);
    const io::StFile f = io::load_safetensors(path);
    CHECK(f.tensors.size() == c.state.size());
    for (const ref::Named& n : c.state) {
        const io::StEntry* e = f.find(n.name);
        REQUIRE_MESSAGE(e != nullptr, c.name << ": '" << n.name << "' is missing from the checkpoint");
        CHECK(e->shape == n.shape);
        CHECK(e->dtype == io::Dtype::F64);
        REQUIRE(e->data.size() == n.values.size() * sizeof(double));
        std::vector<double> v(n.values.size());
        std::memcpy(v.data(), e->data.data(), e->data.size());
        CHECK(v == n.values);
    }
}

void write_raw(const fs::path& p, const TensorD& t) {
    std::ofstream out(p, std::ios::binary);
    const auto v = t.to_vector();
    out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(double)));
}

}  // namespace

TEST_CASE("TransformerEncoderLayer checkpoint: PyTorch state -> tapegrad -> safetensors -> fresh layer -> PyTorch's output") {
    const auto& c = reference_case("encoder post-norm relu, key padding");
    nn::TransformerEncoderLayer<double> enc(8, 2, {.dim_feedforward = 16, .dropout = 0.0});
    load_reference_state(enc, c);
    TempFile file;
    check_file_is_torch_state(enc, c, file.path);
    Generator g(77);
    nn::TransformerEncoderLayer<double> fresh(8, 2, g, {.dim_feedforward = 16, .dropout = 0.0});
    io::load(file.path, fresh);
    const TensorD src = to_tensor(*find_named(c.inputs, "src"));
    const TensorD pad = to_tensor(*find_named(c.inputs, "src_key_padding_mask"));
    const TensorD y = fresh.forward(src, {.src_key_padding_mask = pad});
    check_named(c.name + ": output after the round trip", c.output, y);
    if (const char* dir = std::getenv("TAPEGRAD_ATTENTION_INTEROP_DIR")) {
        io::save(fs::path(dir) / "encoder.safetensors", fresh);
        write_raw(fs::path(dir) / "src.f64", src);
        write_raw(fs::path(dir) / "out.f64", fresh.forward(src));  // without the mask: the script passes none
    }
}

TEST_CASE("MultiheadAttention checkpoint: names in_proj_weight, in_proj_bias, out_proj.* round trip with PyTorch's values") {
    const auto& c = reference_case("mha self-attention [L, N, E]");
    nn::MultiheadAttention<double> mha(8, 2);
    load_reference_state(mha, c);
    TempFile file;
    check_file_is_torch_state(mha, c, file.path);
    Generator g(78);
    nn::MultiheadAttention<double> fresh(8, 2, g);
    io::load(file.path, fresh);
    const TensorD x = to_tensor(*find_named(c.inputs, "query"));
    check_named(c.name + ": output after the round trip", c.output, fresh.forward(x, x, x).output);
}
