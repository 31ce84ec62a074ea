// What is CUDA-specific about the dropout and batch-norm layers: the GPU draws exactly the CPU's dropout mask
// for a seed (the counter-based dropout_mask of backend/common/counter_rng.hpp, run on both), so dropout's forward
// and backward match bit for bit, at any offset and past one grid of threads; in a cuda::Graph, dropout in
// training refuses to be captured and a captured batch-norm step updates the running statistics at every
// replay. The layers' values and gradients against the CPU are the LayerTable and LayerFunctionTable of the
// device-generic tables (ops_test.cpp).
//
// fp32 tolerances: elementwise results within 1e-6 + 1e-5 |cpu|; sums of k terms within 1e-6 k + 1e-5 |cpu|.
//
// Without a GPU, every test case reports that it skipped (MESSAGE) and passes.

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

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Cpu;
using tg::Cuda;
using tg::Shape;
using CpuT = tg::Tensor<float, Cpu>;
using GpuT = tg::Tensor<float, Cuda>;

/// Copies the CPU module's parameters and buffers into the GPU module's (same architecture), outside autograd.
template <class MC, class MG>
void copy_state(const MC& cpu, MG& gpu) {
    const auto sc = cpu.state_dict();
    const auto sg = gpu.state_dict();
    REQUIRE(sc.size() == sg.size());
    tg::NoGradGuard no_grad;
    for (size_t i = 0; i < sc.size(); ++i) {
        GpuT dst = sg[i].second;
        dst.copy_(tg::to<Cuda>(sc[i].second));
    }
}

/// Compares every state tensor (parameters, running statistics, num_batches_tracked) within `tol`.
template <class MC, class MG>
void check_state(const std::string& what, const MC& cpu, const MG& gpu, double tol) {
    const auto sc = cpu.state_dict();
    const auto sg = gpu.state_dict();
    REQUIRE(sc.size() == sg.size());
    for (size_t i = 0; i < sc.size(); ++i) {
        REQUIRE(sc[i].first == sg[i].first);
        check_close(what + ": " + sc[i].first, sc[i].second.to_vector(), sg[i].second.to_vector(), tol);
    }
}

/// A batch-norm layer of either kind on device D.
template <class D>
std::shared_ptr<nn::BatchNormBase<float, D>> make_bn(int rank, int64_t C, const nn::BatchNormOptions& opt) {
    if (rank == 4) return std::make_shared<nn::BatchNorm2d<float, D>>(C, opt);
    return std::make_shared<nn::BatchNorm1d<float, D>>(C, opt);
}


}  // namespace

TEST_CASE("CUDA Dropout: the GPU draws exactly the CPU's mask for a seed; forward and backward match exactly") {
    REQUIRE_GPU();
    tg::Generator gen(3);
    for (double p : {0.1, 0.5, 0.9}) {
        CAPTURE(p);
        nn::Dropout<float, Cpu> dc(p, 99);
        nn::Dropout<float, Cuda> dg(p, 99);
        for (int call = 0; call < 3; ++call) {  // a new mask each call, the same on both
            CAPTURE(call);
            const CpuT x = CpuT::uniform({37, 1001}, -1.f, 1.f, gen);
            const CpuT r = CpuT::uniform({37, 1001}, -1.f, 1.f, gen);
            CpuT xc = x.detach().requires_grad_();
            GpuT xg = tg::to<Cuda>(x).requires_grad_();
            const CpuT yc = dc(xc);
            const GpuT yg = dg(xg);
            CHECK(yc.to_vector() == yg.to_vector());
            tg::sum(yc * r).backward();
            tg::sum(yg * tg::to<Cuda>(r)).backward();
            CHECK(xc.grad().to_vector() == xg.grad().to_vector());
        }
        dc.eval();
        dg.eval();
        const CpuT x = CpuT::uniform({5, 7}, -1.f, 1.f, gen);
        CHECK(dg(tg::to<Cuda>(x)).to_vector() == x.to_vector());
    }
    nn::Dropout<float, Cuda> none(0.0, 1);
    const CpuT x = CpuT::uniform({5, 7}, -1.f, 1.f, gen);
    CHECK(none(tg::to<Cuda>(x)).to_vector() == x.to_vector());
}

TEST_CASE("CUDA dropout_mask: equals the CPU's for any offset, past one grid of threads, in float and double") {
    REQUIRE_GPU();
    // 2^24 + 4099 elements: more than max_grid * block_size threads, so the kernel's grid-stride loop runs.
    const int64_t n = (int64_t{1} << 24) + 4099;
    for (uint64_t offset : {uint64_t{0}, uint64_t{12345}, ~uint64_t{0} - 7}) {
        CAPTURE(offset);
        const GpuT mg = GpuT::empty({n});
        tg::backend::Ops<Cuda>::dropout_mask(n, 0.3, 0xdeadbeef, offset, mg.data_ptr());
        std::vector<float> mc(static_cast<size_t>(n));
        tg::backend::Ops<Cpu>::dropout_mask(n, 0.3, 0xdeadbeef, offset, mc.data());
        CHECK(mg.to_vector() == mc);
    }
    const int64_t m = 100003;
    const tg::Tensor<double, Cuda> dg = tg::Tensor<double, Cuda>::empty({m});
    tg::backend::Ops<Cuda>::dropout_mask(m, 0.25, 7, 3, dg.data_ptr());
    std::vector<double> dc(static_cast<size_t>(m));
    tg::backend::Ops<Cpu>::dropout_mask(m, 0.25, 7, 3, dc.data());
    CHECK(dg.to_vector() == dc);
}

TEST_CASE("CUDA graphs: dropout in training refuses to be captured; a captured batch-norm step updates the "
          "running statistics at every replay") {
    REQUIRE_GPU();
    tg::Generator gen(4);
    const CpuT x = CpuT::uniform({8, 3, 4, 4}, -1.f, 1.f, gen);
    const GpuT xg = tg::to<Cuda>(x);
    {
        nn::Dropout<float, Cuda> drop(0.5, 1);
        tg::cuda::Graph graph;
        try {
            graph.capture([&] { return drop(xg); });
            FAIL("no exception; dropout in training was captured");
        } catch (const tg::DeviceError& e) {
            CHECK_MESSAGE(std::string(e.what()).find("dropout: cannot be captured") != std::string::npos,
                          "message was: ", e.what());
        }
        CHECK_FALSE(tg::cuda::capturing());
        drop.eval();  // eval mode is the identity: nothing to draw
        const GpuT y = graph.capture([&] { return drop(xg) * 1.f; });
        graph.replay();
        CHECK(y.to_vector() == x.to_vector());
    }
    nn::BatchNorm2d<float, Cpu> bc(3);
    nn::BatchNorm2d<float, Cuda> bg(3);
    tg::cuda::Graph graph;
    const GpuT y = graph.capture([&] { return bg(xg); });  // recorded, not run
    for (int i = 0; i < 3; ++i) {
        graph.replay();
        (void)bc(x);
    }
    check_close("output", bc(x).to_vector(), y.to_vector(), 1e-6 * 128);  // bc's 4th step: same batch statistics
    (void)bg(xg);                                                          // and the GPU's 4th, eagerly
    check_state("captured BatchNorm2d", bc, bg, 1e-6 * 128);
    CHECK(bg.num_batches_tracked().item() == 4.f);
    // momentum=None reads num_batches_tracked back to the host: not capturable, and said so
    nn::BatchNorm2d<float, Cuda> cumulative(3, {.momentum = std::nullopt});
    tg::cuda::Graph g2;
    CHECK_THROWS_AS(g2.capture([&] { return cumulative(xg); }), tg::DeviceError);
}
