// Checkpoints of CUDA models (io/checkpoint.hpp with Tensor<T, Cuda>):
//  - a CUDA model writes exactly the bytes the same model on the CPU writes, and a file saved on either
//    device loads into the other with every value bitwise equal;
//  - optimizer state (SGD with momentum, Adam) saved on the CPU loads into a CUDA optimizer, saves back
//    byte for byte, and the next step matches the CPU's within fp32 tolerance 1e-6 + 1e-5 |cpu|;
//  - a truncated file, a file with a wrong dtype or shape in its last tensor, or a corrupt optimizer file,
//    leaves the CUDA model and optimizer unchanged;
//  - an F64 file loads into a float CUDA model (values rounded to float, as on the CPU).
//
// Without a GPU every test case reports that it skipped (MESSAGE) and passes.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/tapegrad.hpp>

#include "gpu_support.hpp"
#include "../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using tapegrad::testing::check_close;

namespace fs = std::filesystem;
namespace tg = tapegrad;
namespace io = tapegrad::io;
namespace nn = tapegrad::nn;
namespace optim = tapegrad::optim;
using tg::Cpu;
using tg::Cuda;
using CpuT = tg::Tensor<float, Cpu>;
using GpuT = tg::Tensor<float, Cuda>;
using Bytes = std::vector<unsigned char>;

using tapegrad::testing::TempDir;

using tapegrad::testing::read_bytes;

void write_bytes(const fs::path& p, const Bytes& b, size_t count) {
    std::error_code ec;
    fs::remove(p, ec);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    REQUIRE(out.is_open());
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(count));
}

/// 3 -> 4 -> ReLU -> 2 on device D, weights drawn from `seed` (the same values on every device): state names
/// 0.weight, 0.bias, 2.weight, 2.bias.
template <class T, class D>
std::shared_ptr<nn::Sequential<T, D>> mlp(uint64_t seed) {
    tg::Generator g(seed);
    return std::make_shared<nn::Sequential<T, D>>(nn::Linear<T, D>(3, 4, g), nn::ReLU<T, D>(), nn::Linear<T, D>(4, 2, g));
}

/// Every state tensor's values, copied to the host, in state_dict order.
template <class T, class D>
std::vector<std::vector<T>> snapshot(const nn::Module<T, D>& m) {
    std::vector<std::vector<T>> out;
    for (const auto& [name, t] : m.state_dict()) out.push_back(t.to_vector());
    return out;
}

}  // namespace

TEST_CASE("CUDA checkpoint: a CUDA model saves the CPU model's bytes, and the file loads on the CPU exactly") {
    REQUIRE_GPU();
    TempDir dir;
    const fs::path from_gpu = dir.path / "gpu.safetensors", from_cpu = dir.path / "cpu.safetensors";
    const auto netg = mlp<float, Cuda>(1);
    const auto netc = mlp<float, Cpu>(1);
    REQUIRE(snapshot(*netg) == snapshot(*netc));  // same generator, same values on both devices
    io::save(from_gpu, *netg, {{"epoch", "2"}});
    io::save(from_cpu, *netc, {{"epoch", "2"}});
    CHECK(read_bytes(from_gpu) == read_bytes(from_cpu));

    const auto back = mlp<float, Cpu>(2);
    REQUIRE(snapshot(*back) != snapshot(*netg));
    io::load(from_gpu, *back);
    CHECK(snapshot(*back) == snapshot(*netg));
}

TEST_CASE("CUDA checkpoint: a CPU model's file loads into a CUDA model exactly, and saves back byte for byte") {
    REQUIRE_GPU();
    TempDir dir;
    const fs::path from_cpu = dir.path / "cpu.safetensors", again = dir.path / "again.safetensors";
    const auto netc = mlp<float, Cpu>(11);
    io::save(from_cpu, *netc);
    const auto netg = mlp<float, Cuda>(12);
    REQUIRE(snapshot(*netg) != snapshot(*netc));
    io::load(from_cpu, *netg);
    CHECK(snapshot(*netg) == snapshot(*netc));  // read back from the layers' own device buffers
    io::save(again, *netg);
    CHECK(read_bytes(again) == read_bytes(from_cpu));
}

TEST_CASE("CUDA checkpoint: SGD momentum and Adam state round trips through a CUDA optimizer; the next step "
          "matches the CPU") {
    REQUIRE_GPU();
    TempDir dir;
    const fs::path saved_cpu = dir.path / "cpu.optim", saved_gpu = dir.path / "gpu.optim";

    // Gradients are set through sum(p * c), whose gradient is exactly c on both devices, so only the
    // optimizer's own arithmetic can differ between them.
    auto run = [&](const char* name, auto make_cpu, auto make_gpu) {
        INFO(name);
        tg::Generator g(21);
        std::vector<CpuT> pc{CpuT::uniform({3, 4}, -1.f, 1.f, g).requires_grad_(),
                             CpuT::uniform({5}, -1.f, 1.f, g).requires_grad_()};
        auto oc = make_cpu(pc);
        auto grad_step = [&](auto& opt, const auto& params, const std::vector<CpuT>& c) {
            using TensorT = std::remove_cvref_t<decltype(params[0])>;
            using D = typename TensorT::device_type;
            opt.zero_grad();
            for (size_t i = 0; i < params.size(); ++i) tg::sum(params[i] * tg::to<D>(c[i])).backward();
            opt.step();
        };
        auto draw = [&] {
            return std::vector<CpuT>{CpuT::uniform({3, 4}, -1.f, 1.f, g), CpuT::uniform({5}, -1.f, 1.f, g)};
        };
        for (int s = 0; s < 3; ++s) grad_step(oc, pc, draw());
        io::save_optimizer(saved_cpu, oc);

        // The same parameters on the GPU, and a fresh optimizer there that takes the CPU's state.
        std::vector<GpuT> pg;
        for (const CpuT& p : pc) pg.push_back(tg::to<Cuda>(p.detach()).requires_grad_());
        auto og = make_gpu(pg);
        io::load_optimizer(saved_cpu, og);
        io::save_optimizer(saved_gpu, og);
        CHECK(read_bytes(saved_gpu) == read_bytes(saved_cpu));  // the state went to the GPU and back unchanged

        const std::vector<CpuT> c = draw();
        grad_step(oc, pc, c);
        grad_step(og, pg, c);
        for (size_t i = 0; i < pc.size(); ++i)
            check_close(std::string(name) + " parameter " + std::to_string(i) + " after the resumed step",
                        pc[i].to_vector(), pg[i].to_vector());
        const auto sc = oc.state();
        const auto sg = og.state();
        REQUIRE(sc.size() == sg.size());
        for (size_t i = 0; i < sc.size(); ++i) {
            CHECK(sc[i].first == sg[i].first);
            check_close(std::string(name) + " state " + sc[i].first, sc[i].second.to_vector(), sg[i].second.to_vector());
        }
    };
    run(
        "SGD momentum",
        [](std::vector<CpuT> p) { return optim::SGD<float, Cpu>(std::move(p), {.lr = 0.1, .momentum = 0.9}); },
        [](std::vector<GpuT> p) { return optim::SGD<float, Cuda>(std::move(p), {.lr = 0.1, .momentum = 0.9}); });
    run(
        "Adam", [](std::vector<CpuT> p) { return optim::Adam<float, Cpu>(std::move(p), {.lr = 0.01}); },
        [](std::vector<GpuT> p) { return optim::Adam<float, Cuda>(std::move(p), {.lr = 0.01}); });
}

TEST_CASE("CUDA checkpoint: a truncated or mismatched file leaves the CUDA model and optimizer unchanged") {
    REQUIRE_GPU();
    TempDir dir;
    const fs::path good = dir.path / "good.safetensors", bad = dir.path / "bad.safetensors";
    const auto src = mlp<float, Cpu>(31);
    io::save(good, *src);
    const Bytes bytes = read_bytes(good);

    const auto net = mlp<float, Cuda>(32);
    const auto before = snapshot(*net);
    REQUIRE(before != snapshot(*src));
    for (size_t cut : {size_t{0}, size_t{7}, size_t{8}, size_t{40}, bytes.size() / 2, bytes.size() - 4,
                       bytes.size() - 1}) {
        CAPTURE(cut);
        write_bytes(bad, bytes, cut);
        CHECK_THROWS_AS(io::load(bad, *net), tg::FormatError);
        CHECK(snapshot(*net) == before);
    }

    // Well-formed files whose last tensor in the model's order (2.bias) does not fit: the tensors before it
    // are valid, and must not be uploaded either.
    io::StFile wrong_dtype = io::to_safetensors(src->state_dict());
    io::StEntry* last = wrong_dtype.find("2.bias");
    REQUIRE(last != nullptr);
    last->dtype = io::Dtype::I32;  // 4 bytes per element, like F32: still a valid file
    io::save_safetensors(bad, wrong_dtype);
    CHECK_THROWS_AS(io::load(bad, *net), tg::FormatError);
    CHECK(snapshot(*net) == before);

    io::StFile wrong_shape = io::to_safetensors(src->state_dict());
    last = wrong_shape.find("2.bias");
    REQUIRE(last != nullptr);
    last->shape = {1, 2};
    io::save_safetensors(bad, wrong_shape);
    CHECK_THROWS_AS(io::load(bad, *net), tg::ShapeError);
    CHECK(snapshot(*net) == before);

    io::load(good, *net);  // the whole file still loads
    CHECK(snapshot(*net) == snapshot(*src));

    // A truncated optimizer file: the CUDA optimizer keeps its (empty) state.
    optim::SGD<float, Cuda> opt(net->parameters(), {.lr = 0.1, .momentum = 0.9});
    optim::SGD<float, Cpu> opt_cpu(src->parameters(), {.lr = 0.1, .momentum = 0.9});
    for (const auto& p : src->parameters()) tg::sum(p * p).backward();
    opt_cpu.step();
    io::save_optimizer(good, opt_cpu);
    const Bytes opt_bytes = read_bytes(good);
    write_bytes(bad, opt_bytes, opt_bytes.size() - 1);
    CHECK_THROWS_AS(io::load_optimizer(bad, opt), tg::FormatError);
    CHECK(opt.state().empty());
    io::load_optimizer(good, opt);
    CHECK(opt.state().size() == 4);
}

TEST_CASE("CUDA checkpoint: an F64 file loads into a float CUDA model, rounded as on the CPU") {
    REQUIRE_GPU();
    TempDir dir;
    const fs::path p64 = dir.path / "double.safetensors";
    const auto dnet = mlp<double, Cpu>(41);
    io::save(p64, *dnet);
    for (const auto& e : io::load_safetensors(p64).tensors) CHECK(e.dtype == io::Dtype::F64);

    const auto gnet = mlp<float, Cuda>(42);
    io::load(p64, *gnet);
    const auto cnet = mlp<float, Cpu>(43);
    io::load(p64, *cnet);
    CHECK(snapshot(*gnet) == snapshot(*cnet));
    const auto sd = dnet->state_dict();
    const auto sg = gnet->state_dict();
    REQUIRE(sd.size() == sg.size());
    for (size_t i = 0; i < sd.size(); ++i) {
        std::vector<float> rounded;
        for (double v : sd[i].second.to_vector()) rounded.push_back(static_cast<float>(v));
        CHECK(sg[i].second.to_vector() == rounded);
    }
}
