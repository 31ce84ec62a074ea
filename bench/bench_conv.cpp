// conv2d at LeNet-5's sizes (batch 64), forward and forward + backward, beside the plain matrix products
// (backend::Ops<Cpu>::gemm on Eigen) that do the same arithmetic. The gap between the two is what im2col,
// col2im, the layout changes and the tape cost.
//
//   build/bench/bench_conv --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// items_per_second counts images; FLOP/s counts 2 flops per multiply-add of the matrix products:
//   forward 2*N*O*OH*OW*C*kh*kw, and the same again for dW and for dx (conv1's input is the image, which
//   needs no gradient, as in the network).

#include <tapegrad/tapegrad.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace {

using tapegrad::TensorF;
using Gemm = tapegrad::backend::Ops<tapegrad::Cpu>;

struct Layer {
    int64_t n, c, h, w, o, k, pad;
    bool input_grad;  ///< does backward compute dx (not for the first layer, whose input is the image)
    [[nodiscard]] int64_t out_h() const { return h + 2 * pad - k + 1; }
    [[nodiscard]] int64_t out_w() const { return w + 2 * pad - k + 1; }
    [[nodiscard]] int64_t rows() const { return c * k * k; }         // K of the column matrix
    [[nodiscard]] int64_t cols() const { return n * out_h() * out_w(); }  // N*OH*OW
    [[nodiscard]] double flops_forward() const { return 2.0 * static_cast<double>(o * rows() * cols()); }
    [[nodiscard]] double flops_backward() const { return flops_forward() * (input_grad ? 2.0 : 1.0); }
};

const Layer conv1{64, 1, 28, 28, 6, 5, 2, false};  // 1 -> 6, 5x5, padding 2, 28x28 -> 28x28
const Layer conv2{64, 6, 14, 14, 16, 5, 0, true};  // 6 -> 16, 5x5, 14x14 -> 10x10

const Layer& layer_of(const benchmark::State& state) { return state.range(0) == 1 ? conv1 : conv2; }

void set_counters(benchmark::State& state, const Layer& l, double flops) {
    state.SetItemsProcessed(state.iterations() * l.n);
    state.counters["FLOP/s"] = benchmark::Counter(flops * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

void BM_conv2d_forward(benchmark::State& state) {
    const Layer& l = layer_of(state);
    tapegrad::Generator gen(1);
    const TensorF x = TensorF::uniform({l.n, l.c, l.h, l.w}, -1.f, 1.f, gen);
    const TensorF w = TensorF::uniform({l.o, l.c, l.k, l.k}, -.1f, .1f, gen);
    const TensorF b = TensorF::uniform({l.o}, -.1f, .1f, gen);
    tapegrad::NoGradGuard ng;
    for (auto _ : state) {
        const TensorF y = tapegrad::conv2d(x, w, b, {.padding = l.pad});
        benchmark::DoNotOptimize(y.data()[0]);
    }
    set_counters(state, l, l.flops_forward());
}
BENCHMARK(BM_conv2d_forward)->Arg(1)->Arg(2)->ArgName("conv")->Unit(benchmark::kMicrosecond);

void BM_conv2d_forward_backward(benchmark::State& state) {
    const Layer& l = layer_of(state);
    tapegrad::Generator gen(1);
    TensorF x = TensorF::uniform({l.n, l.c, l.h, l.w}, -1.f, 1.f, gen);
    if (l.input_grad) x.requires_grad_();
    TensorF w = TensorF::uniform({l.o, l.c, l.k, l.k}, -.1f, .1f, gen).requires_grad_();
    TensorF b = TensorF::uniform({l.o}, -.1f, .1f, gen).requires_grad_();
    const TensorF dy = TensorF::uniform({l.n, l.o, l.out_h(), l.out_w()}, -1.f, 1.f, gen);
    for (auto _ : state) {
        const TensorF y = tapegrad::conv2d(x, w, b, {.padding = l.pad});
        y.backward(dy);
        benchmark::DoNotOptimize(w.grad().data()[0]);
    }
    set_counters(state, l, l.flops_forward() + l.flops_backward());
}
BENCHMARK(BM_conv2d_forward_backward)->Arg(1)->Arg(2)->ArgName("conv")->Unit(benchmark::kMicrosecond);

// The floor: the same matrix products on ready-made buffers, with no im2col, col2im, layout change or tape.
//   forward Y [O, N*L] = W [O, K] * col [K, N*L];  dW [O, K] = dY * col^T;  dcol [K, N*L] = W^T * dY.
struct GemmBuffers {
    std::vector<float> w, col, y, dy, dw, dcol;
    explicit GemmBuffers(const Layer& l)
        : w(static_cast<size_t>(l.o * l.rows()), 0.01f),
          col(static_cast<size_t>(l.rows() * l.cols()), 0.5f),
          y(static_cast<size_t>(l.o * l.cols())),
          dy(static_cast<size_t>(l.o * l.cols()), 0.25f),
          dw(w.size()),
          dcol(col.size()) {}
};

void BM_gemm_forward(benchmark::State& state) {
    const Layer& l = layer_of(state);
    GemmBuffers m(l);
    for (auto _ : state) {
        Gemm::gemm(false, false, l.o, l.cols(), l.rows(), 1.f, m.w.data(), m.col.data(), 0.f, m.y.data());
        benchmark::DoNotOptimize(m.y[0]);
    }
    set_counters(state, l, l.flops_forward());
}
BENCHMARK(BM_gemm_forward)->Arg(1)->Arg(2)->ArgName("conv")->Unit(benchmark::kMicrosecond);

void BM_gemm_forward_backward(benchmark::State& state) {
    const Layer& l = layer_of(state);
    GemmBuffers m(l);
    for (auto _ : state) {
        Gemm::gemm(false, false, l.o, l.cols(), l.rows(), 1.f, m.w.data(), m.col.data(), 0.f, m.y.data());
        Gemm::gemm(false, true, l.o, l.rows(), l.cols(), 1.f, m.dy.data(), m.col.data(), 0.f, m.dw.data());
        if (l.input_grad)
            Gemm::gemm(true, false, l.rows(), l.cols(), l.o, 1.f, m.w.data(), m.dy.data(), 0.f, m.dcol.data());
        benchmark::DoNotOptimize(m.dw[0]);
        benchmark::DoNotOptimize(m.dcol[0]);
    }
    set_counters(state, l, l.flops_forward() + l.flops_backward());
}
BENCHMARK(BM_gemm_forward_backward)->Arg(1)->Arg(2)->ArgName("conv")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
