// Tests of nn::Dropout and nn::BatchNorm1d / BatchNorm2d on the GPU (issue 6: layers work unchanged on CUDA
// tensors): the GPU draws exactly the CPU's dropout mask for a seed (the counter-based dropout_mask of
// backend/common/counter_rng.hpp, run on both), so dropout's forward and backward match bit for bit; batch norm's
// training and eval forward, every gradient, and the running statistics and num_batches_tracked after several
// steps match the CPU, for affine or not, with or without running statistics, momentum=None included; in a
// cuda::Graph, dropout in training refuses to be captured and a captured batch-norm step updates the running
// statistics at every replay.
//
// fp32 tolerances (issue 6): elementwise results within 1e-6 + 1e-5 |cpu|; sums of k terms within
// 1e-6 k + 1e-5 |cpu| (a batch-norm channel sums its M = N*L values; the normalised outputs and dx depend on
// those sums, so they get the k = M bound too).
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

/// Runs `steps` training steps (forward, backward of sum(y * r) for a fixed random r) and then one eval
/// forward and backward of a batch-norm layer with `opt` on input `shape`, on both devices, comparing
/// outputs, every gradient and the state after each step.
void compare_batch_norm(const std::string& name, const Shape& shape, const nn::BatchNormOptions& opt, int steps = 3) {
    INFO("case: " << name);
    const int64_t C = shape[1];
    const double M = static_cast<double>(shape.numel() / C);
    const double tol = 1e-6 * M;  // every output depends on the channel's sums of M terms
    auto bc = make_bn<Cpu>(static_cast<int>(shape.rank()), C, opt);
    auto bg = make_bn<Cuda>(static_cast<int>(shape.rank()), C, opt);
    tg::Generator gen(5);
    if (opt.affine) {  // non-trivial gamma and beta
        tg::NoGradGuard no_grad;
        bc->weight().copy_(CpuT::uniform({C}, 0.5f, 1.5f, gen));
        bc->bias().copy_(CpuT::uniform({C}, -0.5f, 0.5f, gen));
    }
    copy_state(*bc, *bg);
    for (int step = 0; step <= steps; ++step) {
        const bool train = step < steps;
        CAPTURE(step);
        bc->train(train);
        bg->train(train);
        // an offset and a scale per step, so that the running statistics move
        const CpuT x = CpuT::uniform(shape, -1.f, 1.f, gen) * static_cast<float>(1 + step) + static_cast<float>(step);
        const CpuT r = CpuT::uniform(shape, -1.f, 1.f, gen);
        CpuT xc = x.detach().requires_grad_();
        GpuT xg = tg::to<Cuda>(x).requires_grad_();
        bc->zero_grad();
        bg->zero_grad();
        const CpuT yc = (*bc)(xc);
        const GpuT yg = (*bg)(xg);
        check_close(name + " forward", yc.to_vector(), yg.to_vector(), tol);
        tg::sum(yc * r).backward();
        tg::sum(yg * tg::to<Cuda>(r)).backward();
        check_close(name + " dx", xc.grad().to_vector(), xg.grad().to_vector(), tol);
        if (opt.affine) {
            check_close(name + " dgamma", bc->weight().grad().to_vector(), bg->weight().grad().to_vector(), tol);
            check_close(name + " dbeta", bc->bias().grad().to_vector(), bg->bias().grad().to_vector(), tol);
        }
        check_state(name + " state", *bc, *bg, tol);
    }
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

TEST_CASE("CUDA BatchNorm1d and BatchNorm2d: training and eval forward, every gradient and the running "
          "statistics match the CPU") {
    REQUIRE_GPU();
    compare_batch_norm("BatchNorm1d [N, C]", {64, 10}, {});
    compare_batch_norm("BatchNorm1d [N, C], one block per few values", {3, 300}, {});
    compare_batch_norm("BatchNorm1d [N, C, L]", {8, 5, 33}, {});
    compare_batch_norm("BatchNorm2d", {4, 3, 9, 7}, {});
    compare_batch_norm("BatchNorm2d, large channels", {16, 4, 32, 32}, {});
    compare_batch_norm("BatchNorm2d, momentum=None", {4, 3, 5, 5}, {.momentum = std::nullopt});
    compare_batch_norm("BatchNorm2d, momentum 0.5, eps 1e-3", {4, 3, 5, 5}, {.eps = 1e-3, .momentum = 0.5});
    compare_batch_norm("BatchNorm2d, affine=false", {4, 3, 5, 5}, {.affine = false});
    compare_batch_norm("BatchNorm2d, track_running_stats=false", {4, 3, 5, 5}, {.track_running_stats = false});
    compare_batch_norm("BatchNorm1d, neither", {6, 4, 3}, {.affine = false, .track_running_stats = false});
}

TEST_CASE("CUDA batch_norm: the functional form in double, gradients w.r.t. input, weight and bias") {
    REQUIRE_GPU();
    using CpuD = tg::Tensor<double, Cpu>;
    using GpuD = tg::Tensor<double, Cuda>;
    tg::Generator gen(8);
    const CpuD x = CpuD::uniform({5, 4, 6}, -2.0, 2.0, gen);
    const CpuD w = CpuD::uniform({4}, 0.5, 1.5, gen), b = CpuD::uniform({4}, -1.0, 1.0, gen);
    const CpuD r = CpuD::uniform({5, 4, 6}, -1.0, 1.0, gen);
    for (bool training : {true, false}) {
        CAPTURE(training);
        CpuD rmc = CpuD::uniform({4}, -0.5, 0.5, gen), rvc = CpuD::uniform({4}, 0.5, 2.0, gen);
        GpuD rmg = tg::to<Cuda>(rmc), rvg = tg::to<Cuda>(rvc);
        CpuD xc = x.detach().requires_grad_(), wc = w.detach().requires_grad_(), bc = b.detach().requires_grad_();
        GpuD xg = tg::to<Cuda>(x).requires_grad_(), wg = tg::to<Cuda>(w).requires_grad_(),
             bg = tg::to<Cuda>(b).requires_grad_();
        const CpuD yc = tg::batch_norm(xc, rmc, rvc, wc, bc, training, 0.2, 1e-4);
        const GpuD yg = tg::batch_norm(xg, rmg, rvg, wg, bg, training, 0.2, 1e-4);
        check_close("forward", yc.to_vector(), yg.to_vector(), 1e-12);
        tg::sum(yc * r).backward();
        tg::sum(yg * tg::to<Cuda>(r)).backward();
        check_close("dx", xc.grad().to_vector(), xg.grad().to_vector(), 1e-12);
        check_close("dweight", wc.grad().to_vector(), wg.grad().to_vector(), 1e-12);
        check_close("dbias", bc.grad().to_vector(), bg.grad().to_vector(), 1e-12);
        check_close("running_mean", rmc.to_vector(), rmg.to_vector(), 1e-12);
        check_close("running_var", rvc.to_vector(), rvg.to_vector(), 1e-12);
    }
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
