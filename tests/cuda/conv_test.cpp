// Tests of convolution and pooling on the GPU (backend/cuda/conv_pool.hpp, backend/cuda/conv_pool.cu): conv2d over
// strides, paddings, dilations, groups (depthwise included), 1x1 kernels, with and without bias, and max,
// average and adaptive average pooling, each against the CPU, forward and every gradient; a LeNet-style
// network of nn::Conv2d and nn::MaxPool2d against the same network on the CPU.
//
// fp32 tolerances (issue 6): elementwise results within 1e-6 + 1e-5 |cpu|; sums of k terms within
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

TEST_CASE("CUDA conv2d: strides, paddings, dilations, groups and 1x1 kernels match the CPU, forward and backward") {
    REQUIRE_GPU();
    const ConvCase cases[] = {
        {"3x3 same, bias", {2, 3, 9, 8}, {4, 3, 3, 3}, {.padding = 1}, true},
        {"stride 2x1, padding 1x0, 2 groups", {3, 4, 11, 10}, {6, 2, 3, 2}, {.stride = {2, 1}, .padding = {1, 0}, .groups = 2}, false},
        {"dilation 2, padding 2, bias", {2, 2, 12, 12}, {3, 2, 3, 3}, {.padding = 2, .dilation = 2}, true},
        {"dilation 1x3, stride 3", {2, 3, 13, 14}, {2, 3, 2, 3}, {.stride = 3, .dilation = {1, 3}}, true},
        {"depthwise 3x3, stride 2", {2, 6, 7, 7}, {6, 1, 3, 3}, {.stride = 2, .padding = 1, .groups = 6}, true},
        {"depthwise with multiplier 2", {3, 4, 6, 5}, {8, 1, 3, 3}, {.padding = 1, .groups = 4}, false},
        {"1x1, bias", {4, 5, 6, 5}, {7, 5, 1, 1}, {}, true},
        {"1x1 with stride 2 and padding", {2, 3, 7, 6}, {4, 3, 1, 1}, {.stride = 2, .padding = 1}, false},
        {"kernel as large as the image", {3, 3, 5, 5}, {2, 3, 5, 5}, {}, false},
        {"LeNet's first layer", {5, 1, 28, 28}, {6, 1, 5, 5}, {.padding = 2}, true},
        {"one image", {1, 2, 4, 4}, {3, 2, 2, 2}, {.stride = 2}, true},
    };
    for (const ConvCase& c : cases) compare_conv(c);
}

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

TEST_CASE("CUDA avg_pool2d and adaptive_avg_pool2d match the CPU, forward and backward") {
    REQUIRE_GPU();
    tg::Generator gen(5);
    const CpuT x = CpuT::uniform({2, 3, 9, 11}, -1.f, 1.f, gen);
    struct AvgCase {
        const char* name;
        tg::Size2 kernel;
        tg::AvgPool2dParams p;
    };
    const AvgCase cases[] = {
        {"2x2", 2, {}},
        {"3x3 stride 2 padding 1, padding counted", 3, {.stride = 2, .padding = 1}},
        {"3x3 stride 2 padding 1, padding not counted", 3, {.stride = 2, .padding = 1, .count_include_pad = false}},
        {"3x2 stride 1 padding 1x1, not counted", {3, 2}, {.stride = 1, .padding = 1, .count_include_pad = false}},
    };
    for (const AvgCase& c : cases)
        compare_op<float>(std::string("avg_pool2d ") + c.name, {x},
                          [&](const auto& v) { return tg::avg_pool2d(v[0], c.kernel, c.p); }, 9);
    for (const tg::Size2 out : {tg::Size2{3, 4}, tg::Size2{1, 1}, tg::Size2{9, 11}, tg::Size2{13, 17}, tg::Size2{4, 1}})
        compare_op<float>("adaptive_avg_pool2d to " + std::to_string(out.h) + "x" + std::to_string(out.w), {x},
                          [&](const auto& v) { return tg::adaptive_avg_pool2d(v[0], out); }, 99);
    compare_op<float>("global_avg_pool2d", {x}, [](const auto& v) { return tg::global_avg_pool2d(v[0]); }, 99);
}

TEST_CASE("CUDA: a LeNet of nn::Conv2d and nn::MaxPool2d matches the CPU, forward, backward and training steps") {
    REQUIRE_GPU();
    const auto lenet = [](auto device_tag, tg::Generator& gen) {
        using D = decltype(device_tag);
        return nn::Sequential<float, D>{nn::Conv2d<float, D>(1, 6, 5, {.padding = 2}, gen), nn::ReLU<float, D>(),
                                        nn::MaxPool2d<float, D>(2),
                                        nn::Conv2d<float, D>(6, 16, 5, {}, gen), nn::ReLU<float, D>(),
                                        nn::MaxPool2d<float, D>(2),
                                        nn::AvgPool2d<float, D>(1),  // the identity, through the layer
                                        nn::Flatten<float, D>(),
                                        nn::Linear<float, D>(400, 120, gen), nn::ReLU<float, D>(),
                                        nn::Linear<float, D>(120, 10, gen)};
    };
    tg::Generator g1(21), g2(21);
    auto netc = lenet(Cpu{}, g1);
    auto netg = lenet(Cuda{}, g2);
    tg::Generator gd(22);
    const CpuT x = CpuT::uniform({16, 1, 28, 28}, 0.f, 1.f, gd);
    std::vector<int64_t> y;
    for (int i = 0; i < 16; ++i) y.push_back(i % 10);
    const GpuT xg = tg::to<Cuda>(x);

    const CpuT lc = nn::cross_entropy(netc(x), y);
    const GpuT lg = nn::cross_entropy(netg(xg), y);
    CHECK(lg.item() == doctest::Approx(lc.item()).epsilon(1e-5));
    check_close("logits", netc(x).to_vector(), netg(xg).to_vector(), 1e-4);
    lc.backward();
    lg.backward();
    const auto pc = netc.parameters();
    const auto pg = netg.parameters();
    REQUIRE(pc.size() == pg.size());
    for (size_t i = 0; i < pc.size(); ++i)
        check_close("gradient of parameter " + std::to_string(i), pc[i].grad().to_vector(), pg[i].grad().to_vector(), 1e-4);

    tg::optim::SGD<float, Cpu> oc(pc, {.lr = 0.05, .momentum = 0.9});
    tg::optim::SGD<float, Cuda> og(pg, {.lr = 0.05, .momentum = 0.9});
    const auto step = [&] {
        oc.zero_grad();
        og.zero_grad();
        nn::cross_entropy(netc(x), y).backward();
        nn::cross_entropy(netg(xg), y).backward();
        oc.step();
        og.step();
    };
    for (int i = 0; i < 2; ++i) step();
    const tg::cuda::MemoryStats before = tg::cuda::memory_stats();
    for (int i = 0; i < 3; ++i) step();
    const tg::cuda::MemoryStats after = tg::cuda::memory_stats();
    CHECK(after.device_mallocs == before.device_mallocs);  // the convolutions' scratch comes from the cache
    for (size_t i = 0; i < pc.size(); ++i)
        check_close("parameter " + std::to_string(i) + " after 5 steps", pc[i].to_vector(), pg[i].to_vector(), 1e-4);
}
