// What is CUDA-specific about convolution and pooling on the GPU (backend/cuda/conv_pool.hpp, backend/cuda/conv_pool.cu):
// a batch whose column matrix is formed in chunks, gradients for a subset of inputs and accumulation, a
// bitwise-deterministic backward, and max pooling's first-maximum argmax on ties and NaN, each against the
// CPU. The ops over strides, paddings, dilations and groups are the ConvPoolTable of the device-generic
// tables (ops_test.cpp).
//
// fp32 tolerances: elementwise results within 1e-6 + 1e-5 |cpu|; sums of k terms within
// 1e-6 k + 1e-5 |cpu|, k being the longest sum the op forms (forward or backward).
//
// Without a GPU, every test case reports that it skipped (MESSAGE) and passes.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "gpu_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
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

/// Runs `f` on the given CPU inputs and on their copies on the GPU, compares the outputs, then backpropagates
/// sum(out * r) for a random r on both and compares every input's gradient. `k` is the longest sum the op
/// forms (1 for an op that only moves values).
template <class T, class F>
void compare_op(const std::string& name, const std::vector<tg::Tensor<T, Cpu>>& inputs, F f, double k) {
    INFO("op: " << name);
    std::vector<tg::Tensor<T, Cpu>> xc;
    std::vector<tg::Tensor<T, Cuda>> xg;
    for (const auto& x : inputs) {
        xc.push_back(x.detach().requires_grad_());
        xg.push_back(tg::to<Cuda>(x.detach()).requires_grad_());
    }
    const tg::Tensor<T, Cpu> yc = f(xc);
    const tg::Tensor<T, Cuda> yg = f(xg);
    REQUIRE(yc.shape() == yg.shape());
    const double tol = 1e-6 * k;
    check_close(name + " forward", yc.to_vector(), yg.to_vector(), tol);
    tg::Generator gen(7);
    const auto r = tg::Tensor<T, Cpu>::uniform(yc.shape(), T(-1), T(1), gen);
    tg::sum(yc * r).backward();
    tg::sum(yg * tg::to<Cuda>(r)).backward();
    for (size_t i = 0; i < xc.size(); ++i) {
        REQUIRE_MESSAGE(xg[i].grad().defined(), name << ": input " << i << " got no gradient on the GPU");
        check_close(name + " gradient of input " + std::to_string(i), xc[i].grad().to_vector(),
                    xg[i].grad().to_vector(), tol);
    }
}

/// One convolution to compare: input [N, C, H, W], weight [O, C/groups, kh, kw], options, bias or not.
struct ConvCase {
    const char* name;
    Shape x, w;
    tg::Conv2dParams p;
    bool bias;
};

/// The longest sum a convolution forms: the forward's C/groups*kh*kw, dx's O/groups*kh*kw or dw's N*OH*OW.
double conv_terms(const ConvCase& c, const Shape& y) {
    const double fwd = static_cast<double>(c.w[1] * c.w[2] * c.w[3]);
    const double dx = static_cast<double>(c.w[0] / c.p.groups * c.w[2] * c.w[3]);
    const double dw = static_cast<double>(y[0] * y[2] * y[3]);
    return std::max({fwd, dx, dw});
}

void compare_conv(const ConvCase& c) {
    tg::Generator gen(11);
    std::vector<CpuT> in{CpuT::uniform(c.x, -1.f, 1.f, gen), CpuT::uniform(c.w, -1.f, 1.f, gen)};
    if (c.bias) in.push_back(CpuT::uniform({c.w[0]}, -1.f, 1.f, gen));
    const Shape y = tg::conv2d(in[0], in[1], c.p).shape();
    compare_op<float>(c.name, in,
                      [&](const auto& v) { return c.bias ? tg::conv2d(v[0], v[1], v[2], c.p) : tg::conv2d(v[0], v[1], c.p); },
                      conv_terms(c, y));
}

}  // namespace

TEST_CASE("CUDA conv2d: a batch whose column matrix is not kept (over 8M elements) is processed in chunks") {
    REQUIRE_GPU();
    // N*K*L = 128 * 144 * 1024 = 18.9M column elements: conv2d keeps none, and the GPU forms them in two
    // chunks of images, forward and backward.
    compare_conv({"large batch", {128, 16, 32, 32}, {8, 16, 3, 3}, {.padding = 1}, true});
}

TEST_CASE("CUDA conv2d: gradients for a subset of inputs, accumulation into existing gradients, double precision") {
    REQUIRE_GPU();
    tg::Generator gen(3);
    const CpuT x = CpuT::uniform({2, 4, 6, 6}, -1.f, 1.f, gen), w = CpuT::uniform({4, 2, 3, 3}, -1.f, 1.f, gen);
    const tg::Conv2dParams p{.padding = 1, .groups = 2};
    SUBCASE("only the weight requires a gradient; used twice, its gradient is the sum") {
        const CpuT wc = w.detach().requires_grad_();
        const GpuT wg = tg::to<Cuda>(w.detach()).requires_grad_();
        const GpuT xg = tg::to<Cuda>(x);
        tg::sum(tg::conv2d(x, wc, p) + tg::conv2d(x * 2.f, wc, p)).backward();
        tg::sum(tg::conv2d(xg, wg, p) + tg::conv2d(xg * 2.f, wg, p)).backward();
        check_close("weight gradient", wc.grad().to_vector(), wg.grad().to_vector(), 1e-6 * 2 * 36 * 3);
    }
    SUBCASE("only the input requires a gradient") {
        const CpuT xc = x.detach().requires_grad_();
        const GpuT xg = tg::to<Cuda>(x.detach()).requires_grad_();
        tg::sum(tg::conv2d(xc, w, p)).backward();
        tg::sum(tg::conv2d(xg, tg::to<Cuda>(w), p)).backward();
        check_close("input gradient", xc.grad().to_vector(), xg.grad().to_vector(), 1e-6 * 18);
    }
    SUBCASE("double") {
        using CpuD = tg::Tensor<double, Cpu>;
        std::vector<CpuD> in{CpuD::uniform({2, 3, 7, 5}, -1.0, 1.0, gen), CpuD::uniform({6, 1, 3, 2}, -1.0, 1.0, gen),
                             CpuD::uniform({6}, -1.0, 1.0, gen)};
        const tg::Conv2dParams pd{.stride = {1, 2}, .padding = 1, .dilation = {2, 1}, .groups = 3};
        compare_op<double>("conv2d (double)", in, [&](const auto& v) { return tg::conv2d(v[0], v[1], v[2], pd); },
                           1e-6);  // tolerance 1e-12 + 1e-5 |cpu|
    }
}

TEST_CASE("CUDA conv2d: the backward is deterministic (bitwise equal on every run)") {
    REQUIRE_GPU();
    tg::Generator gen(9);
    const CpuT x = CpuT::uniform({8, 3, 16, 16}, -1.f, 1.f, gen), w = CpuT::uniform({5, 3, 3, 3}, -1.f, 1.f, gen);
    const CpuT b = CpuT::uniform({5}, -1.f, 1.f, gen);
    const GpuT r = tg::to<Cuda>(CpuT::uniform({8, 5, 14, 14}, -1.f, 1.f, gen));
    std::vector<std::vector<float>> first;
    for (int run = 0; run < 3; ++run) {
        const GpuT xg = tg::to<Cuda>(x.detach()).requires_grad_(), wg = tg::to<Cuda>(w.detach()).requires_grad_();
        const GpuT bg = tg::to<Cuda>(b.detach()).requires_grad_();
        const GpuT y = tg::conv2d(xg, wg, bg, {.stride = 1, .padding = 2, .dilation = 2});  // [8, 5, 16, 16]
        tg::sum(tg::max_pool2d(y, 3, {.stride = 1}) * r).backward();  // overlapping windows
        const std::vector<std::vector<float>> now{xg.grad().to_vector(), wg.grad().to_vector(), bg.grad().to_vector()};
        if (run == 0)
            first = now;
        else
            for (size_t i = 0; i < now.size(); ++i) CHECK_MESSAGE(now[i] == first[i], "gradient " << i << " differs in run " << run);
    }
}

TEST_CASE("CUDA max_pool2d: values, first-maximum argmax (ties, NaN) and gradients match the CPU") {
    REQUIRE_GPU();
    tg::Generator gen(4);
    struct PoolCase {
        const char* name;
        tg::Size2 kernel;
        tg::MaxPool2dParams p;
    };
    const PoolCase cases[] = {
        {"2x2", 2, {}},
        {"3x3 stride 2 padding 1 (overlapping)", 3, {.stride = 2, .padding = 1}},
        {"3x3 stride 1 (heavily overlapping)", 3, {.stride = 1}},
        {"2x3 stride 1x2 padding 1 dilation 2", {2, 3}, {.stride = {1, 2}, .padding = 1, .dilation = 2}},
    };
    for (const PoolCase& c : cases) {
        // Random values, then small integers: many ties, where the first maximum must win on both devices.
        const CpuT smooth = CpuT::uniform({2, 3, 9, 10}, -1.f, 1.f, gen);
        std::vector<float> small(2 * 3 * 9 * 10);
        for (size_t i = 0; i < small.size(); ++i) small[i] = static_cast<float>((i * 7919) % 5) - 2.f;
        const CpuT ties = CpuT::from({2, 3, 9, 10}, small);
        for (const CpuT& x : {smooth, ties})
            compare_op<float>(std::string("max_pool2d ") + c.name, {x},
                              [&](const auto& v) { return tg::max_pool2d(v[0], c.kernel, c.p); }, 9);
    }
    SUBCASE("a NaN wins its windows, forward and backward, as on the CPU") {
        std::vector<float> v(1 * 2 * 6 * 6);
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) - 3.f;
        v[8] = std::numeric_limits<float>::quiet_NaN();
        v[44] = std::numeric_limits<float>::quiet_NaN();
        v[45] = std::numeric_limits<float>::quiet_NaN();
        v[50] = -std::numeric_limits<float>::infinity();
        const CpuT x = CpuT::from({1, 2, 6, 6}, v);
        compare_op<float>("max_pool2d with NaN", {x}, [](const auto& t) { return tg::max_pool2d(t[0], 3, {.stride = 1}); }, 9);
    }
}

