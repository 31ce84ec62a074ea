// The framework's own cost per op: a chain of `h = tanh(h * w + b)` on 1-element tensors, where the
// arithmetic is negligible and everything measured is recording, allocation and dispatch. A raw-Eigen
// chain with a hand-written backward is the floor.
//
//   build/bench/bench_op_overhead --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// items_per_second counts links of the chain (one link = mul + add + tanh).

#include <tapegrad/tapegrad.hpp>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <vector>

namespace {

constexpr int chain = 100;

using tapegrad::TensorF;

void BM_tapegrad_forward(benchmark::State& state) {
    TensorF w = TensorF::full({1}, 0.9f).requires_grad_();
    TensorF b = TensorF::full({1}, 0.1f).requires_grad_();
    const TensorF x = TensorF::full({1}, 0.5f);
    for (auto _ : state) {
        TensorF h = x;
        for (int i = 0; i < chain; ++i) h = tapegrad::tanh(h * w + b);
        benchmark::DoNotOptimize(h.data()[0]);
    }
    state.SetItemsProcessed(state.iterations() * chain);
}
BENCHMARK(BM_tapegrad_forward);

void BM_tapegrad_forward_backward(benchmark::State& state) {
    TensorF w = TensorF::full({1}, 0.9f).requires_grad_();
    TensorF b = TensorF::full({1}, 0.1f).requires_grad_();
    const TensorF x = TensorF::full({1}, 0.5f);
    for (auto _ : state) {
        w.zero_grad();
        b.zero_grad();
        TensorF h = x;
        for (int i = 0; i < chain; ++i) h = tapegrad::tanh(h * w + b);
        tapegrad::sum(h).backward();
        benchmark::DoNotOptimize(w.grad().data()[0]);
    }
    state.SetItemsProcessed(state.iterations() * chain);
}
BENCHMARK(BM_tapegrad_forward_backward);

void BM_tapegrad_forward_nograd(benchmark::State& state) {
    const TensorF w = TensorF::full({1}, 0.9f);
    const TensorF b = TensorF::full({1}, 0.1f);
    const TensorF x = TensorF::full({1}, 0.5f);
    for (auto _ : state) {
        tapegrad::NoGradGuard ng;
        TensorF h = x;
        for (int i = 0; i < chain; ++i) h = tapegrad::tanh(h * w + b);
        benchmark::DoNotOptimize(h.data()[0]);
    }
    state.SetItemsProcessed(state.iterations() * chain);
}
BENCHMARK(BM_tapegrad_forward_nograd);

// Raw Eigen: the same chain on 1x1 arrays, saving activations for a hand-written backward.
void BM_eigen_forward_backward(benchmark::State& state) {
    using A = Eigen::Array<float, 1, 1>;
    A w = A::Constant(0.9f), b = A::Constant(0.1f), x = A::Constant(0.5f);
    std::vector<A> hs(chain + 1);
    for (auto _ : state) {
        hs[0] = x;
        for (int i = 0; i < chain; ++i) hs[static_cast<size_t>(i) + 1] = (hs[static_cast<size_t>(i)] * w + b).tanh();
        A g = A::Constant(1.f), gw = A::Zero(), gb = A::Zero();
        for (int i = chain; i > 0; --i) {
            const A& y = hs[static_cast<size_t>(i)];
            const A dz = g * (1.f - y * y);
            gw += dz * hs[static_cast<size_t>(i) - 1];
            gb += dz;
            g = dz * w;
        }
        benchmark::DoNotOptimize(gw(0));
        benchmark::DoNotOptimize(gb(0));
    }
    state.SetItemsProcessed(state.iterations() * chain);
}
BENCHMARK(BM_eigen_forward_backward);

}  // namespace

BENCHMARK_MAIN();
