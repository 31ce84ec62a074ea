// Tests of the CUDA backend's multi-tensor updates (backend/cuda/optim_many.cu): sgd_step_many,
// adam_step_many and fill_many over long lists of tensors of mixed sizes (0 to 100000 elements, more tensors
// than one launch's table holds) against the CPU primitives, the optimizers built on them against their
// CPU runs, one kernel launch per step for a small network, and a step captured in a CUDA Graph.
//
// The per-element arithmetic is the CPU's without contracted multiply-adds, so results are compared bit for
// bit, unless the CPU build itself may contract them (FMA available to the host compiler, e.g.
// -march=native): then within 1e-6 + 1e-5 |cpu|.
//
// Without a GPU, every test reports that it skipped (MESSAGE) and passes.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "gpu_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {


namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace optim = tapegrad::optim;
namespace backend = tapegrad::backend;
using tg::Cpu;
using tg::Cuda;

#if defined(__FMA__) || defined(__aarch64__)
constexpr bool cpu_may_contract = true;  // the host compiler may fuse a * b + c: compare with a tolerance
#else
constexpr bool cpu_may_contract = false;
#endif

/// Checks gpu == cpu bit for bit (NaN equal to NaN), or within 1e-6 + 1e-5 |cpu| when the CPU build may
/// contract multiply-adds; names the first offender.
template <class T>
void check_same(const std::string& what, const std::vector<T>& cpu, const std::vector<T>& gpu) {
    REQUIRE_MESSAGE(cpu.size() == gpu.size(), what << ": sizes differ (" << cpu.size() << " vs " << gpu.size() << ")");
    for (size_t i = 0; i < cpu.size(); ++i) {
        const double c = cpu[i], g = gpu[i];
        const bool ok = (std::isnan(c) && std::isnan(g)) || c == g ||
                        (cpu_may_contract && std::abs(g - c) <= 1e-6 + 1e-5 * std::abs(c));
        if (!ok) {
            FAIL_CHECK(what << ": element " << i << " is " << g << " on the GPU, " << c << " on the CPU"
                            << (cpu_may_contract ? "" : " (expected bit for bit)"));
            return;
        }
    }
}

/// `count` sizes from 0 to 100000: the chunk boundaries (2048 elements), empties and random sizes.
std::vector<int64_t> mixed_sizes(tg::Generator& gen, size_t count) {
    const std::vector<int64_t> special{0, 1, 2047, 2048, 2049, 100000, 0, 4096, 7, 65536};
    std::vector<int64_t> sizes;
    for (size_t i = 0; i < count; ++i)
        sizes.push_back(i < special.size() ? special[i] : static_cast<int64_t>(gen.below(100001)));
    return sizes;
}

/// The same tensors on both devices: `cpu[i]` random in [lo, hi), `gpu[i]` its copy.
template <class T>
struct Twin {
    std::vector<tg::Tensor<T, Cpu>> cpu;
    std::vector<tg::Tensor<T, Cuda>> gpu;

    Twin(const std::vector<int64_t>& sizes, T lo, T hi, tg::Generator& gen) {
        for (int64_t n : sizes) {
            cpu.push_back(tg::Tensor<T, Cpu>::uniform({n}, lo, hi, gen));
            gpu.push_back(tg::to<Cuda>(cpu.back()));
        }
    }
    template <class Device>
    T* data(size_t i) {
        if constexpr (std::same_as<Device, Cpu>)
            return cpu[i].data_ptr();
        else
            return gpu[i].data_ptr();
    }
    void check(const std::string& what) const {
        for (size_t i = 0; i < cpu.size(); ++i)
            check_same(what + " of tensor " + std::to_string(i), cpu[i].to_vector(), gpu[i].to_vector());
    }
};

/// Non-empty sizes, hence the launches of one multi-tensor call with tables of `capacity` tensors.
int64_t launches_for(const std::vector<int64_t>& sizes, int64_t capacity) {
    int64_t nonempty = 0;
    for (int64_t n : sizes) nonempty += n > 0;
    return (nonempty + capacity - 1) / capacity;
}

}  // namespace

TEST_CASE_TEMPLATE("CUDA: sgd_step_many over 100 tensors of 0 to 100000 elements matches the CPU", T, float, double) {
    REQUIRE_GPU();
    tg::Generator gen(21);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 100);
    for (const T momentum : {T(0), T(0.9)})
        for (const T dampening : {T(0), T(0.25)})
            for (const T wd : {T(0), T(1e-2)})
                for (const bool nesterov : {false, true}) {
                    INFO("momentum " << momentum << ", dampening " << dampening << ", weight_decay " << wd
                                     << ", nesterov " << nesterov);
                    Twin<T> p(sizes, T(-1), T(1), gen), g(sizes, T(-1), T(1), gen), b(sizes, T(-1), T(1), gen);
                    for (int step = 0; step < 3; ++step) {
                        std::vector<backend::SgdParam<T>> lc, lg;
                        for (size_t i = 0; i < sizes.size(); ++i) {
                            const bool first = static_cast<int>(i % 3) == step;  // momentum starts late for some
                            const bool with_buf = momentum != T(0);
                            lc.push_back({sizes[i], p.template data<Cpu>(i), g.template data<Cpu>(i),
                                          with_buf ? b.template data<Cpu>(i) : nullptr, first});
                            lg.push_back({sizes[i], p.template data<Cuda>(i), g.template data<Cuda>(i),
                                          with_buf ? b.template data<Cuda>(i) : nullptr, first});
                        }
                        backend::Ops<Cpu>::sgd_step_many(100, lc.data(), T(0.1), momentum, dampening, wd, nesterov);
                        const int64_t before = tg::cuda::multi_tensor_launches();
                        backend::Ops<Cuda>::sgd_step_many(100, lg.data(), T(0.1), momentum, dampening, wd, nesterov);
                        CHECK(tg::cuda::multi_tensor_launches() - before == launches_for(sizes, 80));
                    }
                    p.check("parameter");
                    if (momentum != T(0)) b.check("momentum buffer");
                }
}

TEST_CASE_TEMPLATE("CUDA: adam_step_many over 100 tensors, each at its own step count, matches the CPU", T, float,
                   double) {
    REQUIRE_GPU();
    tg::Generator gen(22);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 100);
    for (const bool amsgrad : {false, true})
        for (const bool decoupled : {false, true})
            for (const T wd : {T(0), T(1e-2)}) {
                INFO("amsgrad " << amsgrad << ", decoupled " << decoupled << ", weight_decay " << wd);
                Twin<T> p(sizes, T(-1), T(1), gen), g(sizes, T(-1), T(1), gen);
                Twin<T> m(sizes, T(-0.1), T(0.1), gen), v(sizes, T(0), T(0.01), gen), vmax(sizes, T(0), T(0.01), gen);
                for (int step = 1; step <= 3; ++step) {
                    std::vector<backend::AdamParam<T>> lc, lg;
                    for (size_t i = 0; i < sizes.size(); ++i) {
                        const int t = step + static_cast<int>(i % 5);
                        const T bc1 = static_cast<T>(1 - std::pow(0.9, t)), bc2 = static_cast<T>(1 - std::pow(0.999, t));
                        lc.push_back({sizes[i], p.template data<Cpu>(i), g.template data<Cpu>(i), m.template data<Cpu>(i),
                                      v.template data<Cpu>(i), amsgrad ? vmax.template data<Cpu>(i) : nullptr, bc1, bc2});
                        lg.push_back({sizes[i], p.template data<Cuda>(i), g.template data<Cuda>(i),
                                      m.template data<Cuda>(i), v.template data<Cuda>(i),
                                      amsgrad ? vmax.template data<Cuda>(i) : nullptr, bc1, bc2});
                    }
                    backend::Ops<Cpu>::adam_step_many(100, lc.data(), T(1e-2), T(0.9), T(0.999), T(1e-8), wd, decoupled,
                                                      amsgrad);
                    const int64_t before = tg::cuda::multi_tensor_launches();
                    backend::Ops<Cuda>::adam_step_many(100, lg.data(), T(1e-2), T(0.9), T(0.999), T(1e-8), wd,
                                                       decoupled, amsgrad);
                    CHECK(tg::cuda::multi_tensor_launches() - before == launches_for(sizes, 48));
                }
                p.check("parameter");
                m.check("exp_avg");
                v.check("exp_avg_sq");
                if (amsgrad) vmax.check("max_exp_avg_sq");
            }
}

TEST_CASE("CUDA: fill_many fills 200 buffers of mixed sizes, and launches nothing for empty ones") {
    REQUIRE_GPU();
    tg::Generator gen(23);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 200);
    Twin<float> b(sizes, -1.f, 1.f, gen);
    std::vector<backend::Buffer<float>> lc, lg;
    for (size_t i = 0; i < sizes.size(); ++i) {
        lc.push_back({sizes[i], b.data<Cpu>(i)});
        lg.push_back({sizes[i], b.data<Cuda>(i)});
    }
    backend::Ops<Cpu>::fill_many(200, lc.data(), 0.f);
    int64_t before = tg::cuda::multi_tensor_launches();
    backend::Ops<Cuda>::fill_many(200, lg.data(), 0.f);
    CHECK(tg::cuda::multi_tensor_launches() - before == launches_for(sizes, 160));
    b.check("filled buffer");
    const std::vector<backend::Buffer<float>> empty{{0, lg[0].data}, {0, lg[1].data}};
    before = tg::cuda::multi_tensor_launches();
    backend::Ops<Cuda>::fill_many(2, empty.data(), 1.f);
    backend::Ops<Cuda>::fill_many<float>(0, nullptr, 1.f);
    CHECK(tg::cuda::multi_tensor_launches() == before);
}

TEST_CASE("CUDA: SGD and Adam/AdamW over 100 parameters, some without gradients, match the CPU") {
    REQUIRE_GPU();
    struct Config {
        const char* name;
        std::function<std::unique_ptr<optim::Optimizer<float, Cpu>>(std::vector<tg::TensorF>)> cpu;
        std::function<std::unique_ptr<optim::Optimizer<float, Cuda>>(std::vector<tg::Tensor<float, Cuda>>)> gpu;
    };
    const optim::SGDOptions nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-2, .nesterov = true};
    const optim::SGDOptions damped{.lr = 0.05, .momentum = 0.9, .dampening = 0.5};
    const optim::SGDOptions plain{.lr = 0.1, .weight_decay = 1e-2};
    const optim::AdamOptions adam{.lr = 0.01, .weight_decay = 1e-2, .amsgrad = true};
    const optim::AdamWOptions adamw{.lr = 0.01, .weight_decay = 1e-2};
    const std::vector<Config> configs{
        {"SGD nesterov", [&](auto p) { return std::make_unique<optim::SGD<float, Cpu>>(p, nesterov); },
         [&](auto p) { return std::make_unique<optim::SGD<float, Cuda>>(p, nesterov); }},
        {"SGD dampening", [&](auto p) { return std::make_unique<optim::SGD<float, Cpu>>(p, damped); },
         [&](auto p) { return std::make_unique<optim::SGD<float, Cuda>>(p, damped); }},
        {"SGD", [&](auto p) { return std::make_unique<optim::SGD<float, Cpu>>(p, plain); },
         [&](auto p) { return std::make_unique<optim::SGD<float, Cuda>>(p, plain); }},
        {"Adam amsgrad", [&](auto p) { return std::make_unique<optim::Adam<float, Cpu>>(p, adam); },
         [&](auto p) { return std::make_unique<optim::Adam<float, Cuda>>(p, adam); }},
        {"AdamW", [&](auto p) { return std::make_unique<optim::AdamW<float, Cpu>>(p, adamw); },
         [&](auto p) { return std::make_unique<optim::AdamW<float, Cuda>>(p, adamw); }},
    };
    tg::Generator gen(24);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 100);
    for (const Config& c : configs) {
        INFO(c.name);
        std::vector<tg::TensorF> pc;
        std::vector<tg::Tensor<float, Cuda>> pg;
        for (int64_t n : sizes) {
            pc.push_back(tg::TensorF::uniform({n}, -1.f, 1.f, gen).requires_grad_());
            pg.push_back(tg::to<Cuda>(pc.back().detach()).requires_grad_());
        }
        auto oc = c.cpu(pc);
        auto og = c.gpu(pg);
        for (int s = 0; s < 4; ++s) {
            oc->zero_grad();
            og->zero_grad();
            // every third parameter gets its first gradient only at step s = 2, so parameters differ in
            // their step counts and first steps, and some are skipped
            for (size_t i = 0; i < sizes.size(); ++i) {
                if (i % 3 == 0 && s < 2) continue;
                const tg::TensorF target = tg::TensorF::uniform({sizes[i]}, -1.f, 1.f, gen);
                tg::sum(tg::pow(pc[i] - target, 2.0)).backward();
                tg::sum(tg::pow(pg[i] - tg::to<Cuda>(target), 2.0)).backward();
            }
            oc->step();
            og->step();
        }
        for (size_t i = 0; i < sizes.size(); ++i)
            check_same(std::string(c.name) + ": parameter " + std::to_string(i), pc[i].to_vector(), pg[i].to_vector());
        const auto sc = oc->state();
        const auto sg = og->state();
        REQUIRE(sc.size() == sg.size());
        for (size_t k = 0; k < sc.size(); ++k) {
            CHECK(sc[k].first == sg[k].first);
            check_same(std::string(c.name) + ": state " + sc[k].first, sc[k].second.to_vector(),
                       sg[k].second.to_vector());
        }
    }
}

TEST_CASE("CUDA: a training step of a small MLP makes one launch for zero_grad and one for the update") {
    REQUIRE_GPU();
    tg::Generator gen(25);
    nn::Sequential<float, Cuda> net{nn::Linear<float, Cuda>(784, 128, gen), nn::ReLU<float, Cuda>(),
                                    nn::Linear<float, Cuda>(128, 10, gen)};
    const auto x = tg::to<Cuda>(tg::TensorF::uniform({64, 784}, 0.f, 1.f, gen));
    std::vector<int64_t> y;
    for (int i = 0; i < 64; ++i) y.push_back(i % 10);
    optim::SGD<float, Cuda> sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
    optim::Adam<float, Cuda> adam(net.parameters(), {.lr = 1e-3});
    int64_t before = tg::cuda::multi_tensor_launches();
    sgd.zero_grad();
    CHECK(tg::cuda::multi_tensor_launches() == before);  // no gradients yet: nothing to zero, no launch
    nn::cross_entropy(net(x), y).backward();
    for (optim::Optimizer<float, Cuda>* opt : {static_cast<optim::Optimizer<float, Cuda>*>(&sgd),
                                               static_cast<optim::Optimizer<float, Cuda>*>(&adam)}) {
        INFO(opt->name());
        for (int s = 0; s < 2; ++s) {
            before = tg::cuda::multi_tensor_launches();
            opt->zero_grad();
            CHECK(tg::cuda::multi_tensor_launches() - before == 1);  // 4 gradients, one launch
            nn::cross_entropy(net(x), y).backward();
            const int64_t mid = tg::cuda::multi_tensor_launches();
            opt->step();
            CHECK(tg::cuda::multi_tensor_launches() - mid == 1);  // 4 parameters, one launch
        }
    }
}

TEST_CASE("CUDA: an SGD step captured in a CUDA Graph replays as the eager steps do") {
    REQUIRE_GPU();
    tg::Generator gen(26);
    const std::vector<int64_t> sizes{100000, 128, 0, 1280, 10};
    std::vector<tg::TensorF> pc;
    std::vector<tg::Tensor<float, Cuda>> pg;
    for (int64_t n : sizes) {
        pc.push_back(tg::TensorF::uniform({n}, -1.f, 1.f, gen).requires_grad_());
        pg.push_back(tg::to<Cuda>(pc.back().detach()).requires_grad_());
        const tg::TensorF r = tg::TensorF::uniform({n}, -1.f, 1.f, gen);
        tg::sum(pc.back() * r).backward();
        tg::sum(pg.back() * tg::to<Cuda>(r)).backward();
    }
    const optim::SGDOptions o{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-2};
    optim::SGD<float, Cpu> oc(pc, o);
    optim::SGD<float, Cuda> og(pg, o);
    oc.step();  // the first step creates the momentum buffers: eager on both
    og.step();
    // capture one steady-state step (the gradients stay as they are), then replay it three times
    cudaStream_t s = tg::cuda::stream();
    cudaGraph_t graph = nullptr;
    tg::cuda::check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    og.step();
    tg::cuda::check(cudaStreamEndCapture(s, &graph), "cudaStreamEndCapture");
    size_t nodes = 0;
    tg::cuda::check(cudaGraphGetNodes(graph, nullptr, &nodes), "cudaGraphGetNodes");
    CHECK(nodes == 1);  // the whole update is one kernel node
    cudaGraphExec_t exec = nullptr;
    tg::cuda::check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    for (int i = 0; i < 3; ++i) {
        oc.step();
        tg::cuda::check(cudaGraphLaunch(exec, s), "cudaGraphLaunch");
    }
    tg::cuda::synchronize();
    (void)cudaGraphExecDestroy(exec);
    (void)cudaGraphDestroy(graph);
    for (size_t i = 0; i < sizes.size(); ++i)
        check_same("parameter " + std::to_string(i) + " after 4 steps", pc[i].to_vector(), pg[i].to_vector());
}
