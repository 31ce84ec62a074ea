// Tests of the CUDA backend's optimizer primitives (backend/cuda/optim.hpp, optim.cu): step_many with every
// update rule, fill_many, scale_many and norm_many over long lists of tensors of mixed sizes (0 to 100000
// elements, more tensors than one launch's table holds) against the CPU primitives, every optimizer and the
// gradient clipping built on them against their CPU runs, one kernel launch per step for a small network, and
// a step captured in a CUDA Graph.
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

/// Runs step_many with `rule` over the same 100 tensors on both devices for 3 steps and compares every
/// buffer; tensors take their first step at different steps, Adam/Adagrad scalars differ per tensor.
template <class T, class Rule>
void check_rule(const char* what, const Rule& rule, tg::Generator& gen) {
    INFO(what);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 100);
    Twin<T> p(sizes, T(-1), T(1), gen), g(sizes, T(-1), T(1), gen);
    Twin<T> s0(sizes, T(0), T(0.1), gen), s1(sizes, T(-0.1), T(0.1), gen), s2(sizes, T(0), T(0.01), gen);
    for (int step = 1; step <= 3; ++step) {
        std::vector<backend::StepParam<T>> lc, lg;
        for (size_t i = 0; i < sizes.size(); ++i) {
            const int t = step + static_cast<int>(i % 5);
            const T a = static_cast<T>(0.01 / (1 - std::pow(0.9, t))), b = static_cast<T>(std::sqrt(1 - std::pow(0.999, t)));
            const bool first = static_cast<int>(i % 3) == step - 1;
            lc.push_back({sizes[i], p.template data<Cpu>(i), g.template data<Cpu>(i), s0.template data<Cpu>(i),
                          s1.template data<Cpu>(i), s2.template data<Cpu>(i), a, b, first});
            lg.push_back({sizes[i], p.template data<Cuda>(i), g.template data<Cuda>(i), s0.template data<Cuda>(i),
                          s1.template data<Cuda>(i), s2.template data<Cuda>(i), a, b, first});
        }
        backend::Ops<Cpu>::step_many(100, lc.data(), rule);
        const int64_t before = tg::cuda::multi_tensor_launches();
        backend::Ops<Cuda>::step_many(100, lg.data(), rule);
        CHECK(tg::cuda::multi_tensor_launches() - before == launches_for(sizes, tg::cuda::step_table_capacity));
    }
    p.check("parameter");
    s0.check("state 0");
    s1.check("state 1");
    s2.check("state 2");
}

}  // namespace

TEST_CASE_TEMPLATE("CUDA: step_many with every rule and option over 100 tensors of 0 to 100000 elements matches the CPU",
                   T, float, double) {
    REQUIRE_GPU();
    tg::Generator gen(21);
    for (const T mu : {T(0), T(0.9)})
        for (const T wd : {T(0), T(1e-2)}) {
            CAPTURE(mu);
            CAPTURE(wd);
            for (const bool nesterov : {false, true})
                check_rule<T>("SGD", backend::SgdRule<T>::make(T(0.1), mu, T(0.25) * (1 - nesterov), wd, nesterov), gen);
            for (const bool amsgrad : {false, true})
                for (const bool decoupled : {false, true})
                    check_rule<T>("Adam", backend::AdamRule<T>::make(T(1e-2), T(0.9), T(0.999), T(1e-8), wd, decoupled, amsgrad),
                                  gen);
            for (const bool centered : {false, true})
                check_rule<T>("RMSprop", backend::RmspropRule<T>::make(T(1e-2), 0.99, T(1e-8), wd, mu, centered), gen);
            check_rule<T>("Adagrad", backend::AdagradRule<T>::make(T(1e-10), wd), gen);
        }
}

TEST_CASE("CUDA: fill_many and scale_many over 200 tensors of mixed sizes; nothing launched for empty ones") {
    REQUIRE_GPU();
    tg::Generator gen(23);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 200);
    Twin<float> b(sizes, -1.f, 1.f, gen);
    std::vector<backend::TensorSpan<float>> lc, lg;
    for (size_t i = 0; i < sizes.size(); ++i) {
        lc.push_back({sizes[i], b.data<Cpu>(i)});
        lg.push_back({sizes[i], b.data<Cuda>(i)});
    }
    backend::Ops<Cpu>::scale_many(200, lc.data(), 0.5f);
    int64_t before = tg::cuda::multi_tensor_launches();
    backend::Ops<Cuda>::scale_many(200, lg.data(), 0.5f);
    CHECK(tg::cuda::multi_tensor_launches() - before == launches_for(sizes, tg::cuda::span_table_capacity));
    b.check("scaled tensor");
    backend::Ops<Cpu>::fill_many(200, lc.data(), 0.f);
    before = tg::cuda::multi_tensor_launches();
    backend::Ops<Cuda>::fill_many(200, lg.data(), 0.f);
    CHECK(tg::cuda::multi_tensor_launches() - before == launches_for(sizes, tg::cuda::span_table_capacity));
    b.check("filled tensor");
    const std::vector<backend::TensorSpan<float>> empty{{0, lg[0].data}, {0, lg[1].data}};
    before = tg::cuda::multi_tensor_launches();
    backend::Ops<Cuda>::fill_many(2, empty.data(), 1.f);
    backend::Ops<Cuda>::fill_many<float>(0, nullptr, 1.f);
    CHECK(tg::cuda::multi_tensor_launches() == before);
}

TEST_CASE_TEMPLATE("CUDA: norm_many over 200 tensors matches the CPU's norm for p = 1, 2, 3 and infinity", T, float,
                   double) {
    REQUIRE_GPU();
    tg::Generator gen(27);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 200);
    Twin<T> b(sizes, T(-1), T(1), gen);
    std::vector<backend::TensorSpan<const T>> lc, lg;
    for (size_t i = 0; i < sizes.size(); ++i) {
        lc.push_back({sizes[i], b.template data<Cpu>(i)});
        lg.push_back({sizes[i], b.template data<Cuda>(i)});
    }
    for (const double p : {1.0, 2.0, 3.0, static_cast<double>(INFINITY)}) {
        CAPTURE(p);
        const double want = backend::Ops<Cpu>::norm_many(200, lc.data(), p);
        CHECK(backend::Ops<Cuda>::norm_many(200, lg.data(), p) == doctest::Approx(want).epsilon(1e-12));
    }
    CHECK(backend::Ops<Cuda>::norm_many<T>(0, nullptr, 2.0) == 0.0);
}

TEST_CASE("CUDA: SGD, Adam/AdamW, RMSprop and Adagrad over 100 parameters, some without gradients, match the CPU") {
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
    const optim::RMSpropOptions rms{.lr = 0.01, .weight_decay = 1e-2, .momentum = 0.9, .centered = true};
    const optim::RMSpropOptions rms_plain{.lr = 0.01};
    const optim::AdagradOptions adagrad{.lr = 0.1, .lr_decay = 0.01, .weight_decay = 1e-2,
                                        .initial_accumulator_value = 0.1};
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
        {"RMSprop centered momentum", [&](auto p) { return std::make_unique<optim::RMSprop<float, Cpu>>(p, rms); },
         [&](auto p) { return std::make_unique<optim::RMSprop<float, Cuda>>(p, rms); }},
        {"RMSprop", [&](auto p) { return std::make_unique<optim::RMSprop<float, Cpu>>(p, rms_plain); },
         [&](auto p) { return std::make_unique<optim::RMSprop<float, Cuda>>(p, rms_plain); }},
        {"Adagrad", [&](auto p) { return std::make_unique<optim::Adagrad<float, Cpu>>(p, adagrad); },
         [&](auto p) { return std::make_unique<optim::Adagrad<float, Cuda>>(p, adagrad); }},
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

TEST_CASE("CUDA: clip_grad_norm_ and clip_grad_value_ match the CPU") {
    REQUIRE_GPU();
    tg::Generator gen(28);
    const std::vector<int64_t> sizes = mixed_sizes(gen, 30);
    for (const double norm_type : {2.0, 1.0, static_cast<double>(INFINITY)}) {
        CAPTURE(norm_type);
        std::vector<tg::TensorF> pc;
        std::vector<tg::Tensor<float, Cuda>> pg;
        for (int64_t n : sizes) {
            pc.push_back(tg::TensorF::uniform({n}, -1.f, 1.f, gen).requires_grad_());
            pg.push_back(tg::to<Cuda>(pc.back().detach()).requires_grad_());
            const tg::TensorF r = tg::TensorF::uniform({n}, -3.f, 3.f, gen);
            tg::sum(pc.back() * r).backward();
            tg::sum(pg.back() * tg::to<Cuda>(r)).backward();
        }
        const double nc = optim::clip_grad_norm_(pc, 0.5, norm_type);
        const double ng = optim::clip_grad_norm_(pg, 0.5, norm_type);
        CHECK(ng == doctest::Approx(nc).epsilon(1e-12));
        for (size_t i = 0; i < sizes.size(); ++i) {
            const std::vector<float> gc = pc[i].grad().to_vector(), gg = pg[i].grad().to_vector();
            REQUIRE(gc.size() == gg.size());
            for (size_t k = 0; k < gc.size(); ++k) REQUIRE(gg[k] == doctest::Approx(gc[k]).epsilon(1e-6));
        }
        optim::clip_grad_value_(pc, 1e-4);
        optim::clip_grad_value_(pg, 1e-4);
        for (size_t i = 0; i < sizes.size(); ++i)
            check_same("clipped gradient " + std::to_string(i), pc[i].grad().to_vector(), pg[i].grad().to_vector());
    }
}
