// Recurrent modules through checkpoints: a safetensors file written by PyTorch (torch 1.13's state_dicts of
// the reference cases, embedded in rnn_reference.hpp by tests/interop/make_rnn_reference.py) loads strictly
// by name into tapegrad's RNN, LSTM, GRU and cells and gives PyTorch's outputs; tapegrad's own save and load
// round trip. The other direction (a tapegrad checkpoint loaded in PyTorch) is tests/interop/rnn_roundtrip.py,
// which reads the files this test writes when TAPEGRAD_RNN_ROUNDTRIP_DIR names a folder.

#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../nn/rnn_reference_run.hpp"
#include "../../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;
namespace fs = std::filesystem;

namespace {

using tapegrad::testing::TempDir;

/// Every reference case's module, under the case's name.
nn::ModuleDict<double> all_modules() {
    nn::ModuleDict<double> dict;
    for (const RnnReference& r : rnn_references()) dict.insert(r.name, make_module(r));
    return dict;
}

void write_doubles(const fs::path& p, const std::vector<double>& v) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(double)));
}

}  // namespace

TEST_CASE("a PyTorch checkpoint of RNN, LSTM, GRU and the cells loads by name and gives PyTorch's outputs") {
    TempDir dir;
    const fs::path file = dir.path / "torch_rnn.safetensors";
    {
        const std::vector<unsigned char> bytes = rnn_reference_checkpoint();
        std::ofstream f(file, std::ios::binary);
        f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    nn::ModuleDict<double> dict = all_modules();
    io::load(file, dict);  // strict: every name of the file, and only those, with the same shapes
    const auto refs = rnn_references();
    for (size_t i = 0; i < refs.size(); ++i) {
        const RnnReference& r = refs[i];
        CAPTURE(r.name);
        const RefRun run = run_case(*dict[r.name], r, /*backward=*/false);
        if (!r.out.empty()) check_values(r.name + " output", run.out, r.out);
        check_values(r.name + " h_n", run.h_n, r.h_n);
        if (!r.c_n.empty()) check_values(r.name + " c_n", run.c_n, r.c_n);
    }
}

TEST_CASE("recurrent modules: save and load round trip (and the files for the PyTorch side)") {
    TempDir tmp;
    const char* env = std::getenv("TAPEGRAD_RNN_ROUNDTRIP_DIR");
    const fs::path dir = env ? fs::path(env) : tmp.path;
    nn::ModuleDict<double> saved = all_modules();  // tapegrad's own initialisation
    io::save(dir / "tapegrad_rnn.safetensors", saved);
    nn::ModuleDict<double> loaded;
    {
        Generator other(99);
        for (const RnnReference& r : rnn_references()) {
            auto m = make_module(r);
            for (auto& p : m->parameters()) nn::init::uniform_(p, -1.0, 1.0, other);
            loaded.insert(r.name, m);
        }
    }
    io::load(dir / "tapegrad_rnn.safetensors", loaded);
    for (const RnnReference& r : rnn_references()) {
        CAPTURE(r.name);
        const RefRun a = run_case(*saved[r.name], r, false);
        const RefRun b = run_case(*loaded[r.name], r, false);
        if (a.out.defined()) CHECK(a.out.to_vector() == b.out.to_vector());
        CHECK(a.h_n.to_vector() == b.h_n.to_vector());
        // for rnn_roundtrip.py: tapegrad's outputs of this checkpoint on the reference inputs
        if (env) {
            write_doubles(dir / (r.name + ".out.bin"), a.out.defined() ? a.out.to_vector() : std::vector<double>{});
            write_doubles(dir / (r.name + ".h_n.bin"), a.h_n.to_vector());
            if (a.c_n.defined()) write_doubles(dir / (r.name + ".c_n.bin"), a.c_n.to_vector());
        }
    }
}
