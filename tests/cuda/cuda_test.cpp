// Tests of what is CUDA-specific in the backend (backend/cuda.hpp): transfers, the optimizers' fused kernels
// against their CPU loops, the caching allocator (a steady training step calls no cudaMalloc/cudaFree, live
// bytes return to their baseline), stability of the fused losses, and the no-GPU error. Every op, layer and
// loss is checked against the CPU by the device-generic tables, in ops_test.cpp.
//
// fp32 tolerance: |gpu - cpu| <= abs_tol + 1e-5 |cpu|.
//
// Without a GPU, every test that needs one reports that it skipped (MESSAGE) and passes; the error a user
// gets on such a machine is checked instead.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "gpu_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace {

using tapegrad::testing::check_close;
using tapegrad::testing::have_gpu;

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace optim = tapegrad::optim;
using tg::Cpu;
using tg::Cuda;
using tg::Shape;
using CpuT = tg::Tensor<float, Cpu>;
using GpuT = tg::Tensor<float, Cuda>;

}  // namespace

TEST_CASE("CUDA: without a GPU, the first CUDA tensor throws DeviceError saying why") {
    if (have_gpu()) {
        MESSAGE("a GPU is present: the no-GPU error path is not exercised here");
        return;
    }
    bool threw = false;
    try {
        (void)GpuT::zeros({2, 3});
    } catch (const tg::DeviceError& e) {
        threw = true;
        const std::string msg = e.what();
        CHECK(msg.find("CUDA") != std::string::npos);
        CHECK(msg.find("GPU") != std::string::npos);
    }
    CHECK(threw);
}

TEST_CASE("CUDA: upload, download and to<> round trips keep every value and carry gradients across") {
    REQUIRE_GPU();
    const CpuT a = CpuT::from({2, 3}, {1, -2, 3.5f, 4, 1e30f, -0.f});
    const GpuT g = tg::to<Cuda>(a);
    CHECK(g.shape() == a.shape());
    CHECK(g.to_vector() == a.to_vector());
    CHECK(tg::to<Cpu>(g).to_vector() == a.to_vector());
    CHECK(GpuT::from({2}, {7.f, 8.f}).to_vector() == std::vector<float>{7.f, 8.f});
    CHECK(tg::sum(g).item() == doctest::Approx(1e30f));
    // gradient through a CPU -> GPU -> CPU chain
    CpuT x = CpuT::from({3}, {1, 2, 3}).requires_grad_();
    const CpuT y = tg::to<Cpu>(tg::to<Cuda>(x) * tg::to<Cuda>(x));
    tg::sum(y).backward();
    CHECK(x.grad().to_vector() == std::vector<float>{2, 4, 6});
    CHECK(GpuT::zeros({0}).to_vector().empty());
}

TEST_CASE("CUDA: the fused losses and softmax stay finite for logits of magnitude 1e4") {
    REQUIRE_GPU();
    const GpuT big = tg::to<Cuda>(CpuT::from({2, 3}, {1e4f, -1e4f, 0, 0, 0, 1e4f}));
    const std::vector<int64_t> y{1, 0};
    const float l = nn::cross_entropy(big, y).item();
    CHECK(std::isfinite(l));
    CHECK(l == doctest::Approx((2e4 + 1e4) / 2).epsilon(1e-6));
    for (float v : tg::softmax(big, 1).to_vector()) CHECK(std::isfinite(v));
    for (float v : tg::log_softmax(big, 1).to_vector()) CHECK(std::isfinite(v));
}

TEST_CASE("CUDA: SGD (momentum, nesterov, weight decay) and Adam/AdamW/AMSGrad kernels match the CPU loops") {
    REQUIRE_GPU();
    using MakeCpu = std::function<std::unique_ptr<optim::Optimizer<float, Cpu>>(std::vector<CpuT>)>;
    using MakeGpu = std::function<std::unique_ptr<optim::Optimizer<float, Cuda>>(std::vector<GpuT>)>;
    struct Config {
        const char* name;
        MakeCpu cpu;
        MakeGpu gpu;
    };
    const optim::SGDOptions sgd{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-2, .nesterov = true};
    const optim::SGDOptions plain{.lr = 0.1};
    const optim::AdamOptions adam{.lr = 0.01, .weight_decay = 1e-2, .amsgrad = true};
    const optim::AdamWOptions adamw{.lr = 0.01, .weight_decay = 1e-2, .amsgrad = true};
    const std::vector<Config> configs{
        {"SGD nesterov", [&](auto p) { return std::make_unique<optim::SGD<float, Cpu>>(p, sgd); },
         [&](auto p) { return std::make_unique<optim::SGD<float, Cuda>>(p, sgd); }},
        {"SGD", [&](auto p) { return std::make_unique<optim::SGD<float, Cpu>>(p, plain); },
         [&](auto p) { return std::make_unique<optim::SGD<float, Cuda>>(p, plain); }},
        {"Adam amsgrad", [&](auto p) { return std::make_unique<optim::Adam<float, Cpu>>(p, adam); },
         [&](auto p) { return std::make_unique<optim::Adam<float, Cuda>>(p, adam); }},
        {"AdamW", [&](auto p) { return std::make_unique<optim::AdamW<float, Cpu>>(p, adamw); },
         [&](auto p) { return std::make_unique<optim::AdamW<float, Cuda>>(p, adamw); }},
    };
    for (const Config& c : configs) {
        INFO(c.name);
        tg::Generator gen(7);
        CpuT pc = CpuT::uniform({1000}, -1.f, 1.f, gen).requires_grad_();
        GpuT pg = tg::to<Cuda>(pc.detach()).requires_grad_();
        auto oc = c.cpu({pc});
        auto og = c.gpu({pg});
        for (int s = 0; s < 5; ++s) {
            const CpuT target = CpuT::uniform({1000}, -1.f, 1.f, gen);
            oc->zero_grad();
            og->zero_grad();
            tg::sum(tg::pow(pc - target, 2.0)).backward();
            tg::sum(tg::pow(pg - tg::to<Cuda>(target), 2.0)).backward();
            oc->step();
            og->step();
        }
        check_close(std::string(c.name) + " parameters after 5 steps", pc.to_vector(), pg.to_vector(), 1e-5);
    }
}

TEST_CASE("CUDA: an MLP training step matches the CPU, and the steady state calls no cudaMalloc/cudaFree") {
    REQUIRE_GPU();
    tg::Generator g1(5), g2(5);
    nn::Sequential<float, Cpu> netc{nn::Linear<float, Cpu>(20, 16, g1), nn::ReLU<float, Cpu>(),
                                    nn::Linear<float, Cpu>(16, 5, g1)};
    nn::Sequential<float, Cuda> netg{nn::Linear<float, Cuda>(20, 16, g2), nn::ReLU<float, Cuda>(),
                                     nn::Linear<float, Cuda>(16, 5, g2)};
    optim::SGD<float, Cpu> oc(netc.parameters(), {.lr = 0.1, .momentum = 0.9});
    optim::SGD<float, Cuda> og(netg.parameters(), {.lr = 0.1, .momentum = 0.9});
    tg::Generator gd(6);
    const CpuT x = CpuT::uniform({32, 20}, -1.f, 1.f, gd);
    std::vector<int64_t> y;
    for (int i = 0; i < 32; ++i) y.push_back(i % 5);
    const GpuT xg = tg::to<Cuda>(x);
    float lc = 0, lg = 0;
    const auto step = [&] {
        oc.zero_grad();
        og.zero_grad();
        const CpuT l1 = nn::cross_entropy(netc(x), y);
        const GpuT l2 = nn::cross_entropy(netg(xg), y);
        l1.backward();
        l2.backward();
        oc.step();
        og.step();
        lc = l1.item();
        lg = l2.item();
    };
    for (int i = 0; i < 3; ++i) step();
    const tg::cuda::MemoryStats before = tg::cuda::memory_stats();
    for (int i = 0; i < 5; ++i) step();
    const tg::cuda::MemoryStats after = tg::cuda::memory_stats();
    CHECK(after.device_mallocs == before.device_mallocs);
    CHECK(after.device_frees == before.device_frees);
    CHECK(lg == doctest::Approx(lc).epsilon(1e-4));
    const auto pc = netc.parameters();
    const auto pg = netg.parameters();
    for (size_t i = 0; i < pc.size(); ++i)
        check_close("parameter " + std::to_string(i) + " after 8 steps", pc[i].to_vector(), pg[i].to_vector(), 1e-4);
}

TEST_CASE("CUDA: live device bytes return to their baseline after tensors die") {
    REQUIRE_GPU();
    const int64_t before = tg::cuda::live_bytes().load();
    {
        GpuT a = GpuT::ones({1000}).requires_grad_();
        tg::sum(tg::exp(a) * a).backward();
        CHECK(tg::cuda::live_bytes().load() > before);
    }
    CHECK(tg::cuda::live_bytes().load() == before);
}
