// Softmax cross-entropy, the loss of every classifier here: nn::cross_entropy (log-softmax and the
// negative log-likelihood fused into one op) forward + backward on [N, 10] logits, beside the same written
// by hand in Eigen and beside the unfused composition nll_loss(log_softmax(x)), which records two ops and
// keeps an extra [N, C] tensor.
//
//   build/bench/bench_cross_entropy --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// items_per_second counts rows (examples); bytes_per_second counts the logits read and their gradient
// written.

#include <tapegrad/tapegrad.hpp>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

namespace nn = tapegrad::nn;
using tapegrad::TensorF;
using RowArrF = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t classes = 10;

std::vector<int64_t> labels_for(int64_t rows) {
    std::vector<int64_t> labels(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) labels[static_cast<size_t>(r)] = (r * 7) % classes;
    return labels;
}

void set_counters(benchmark::State& state, int64_t rows) {
    const auto iters = static_cast<int64_t>(state.iterations());
    state.SetItemsProcessed(iters * rows);
    state.SetBytesProcessed(iters * 2 * rows * classes * static_cast<int64_t>(sizeof(float)));
}

void BM_tapegrad_cross_entropy(benchmark::State& state) {
    const int64_t rows = state.range(0);
    tapegrad::Generator gen(1);
    TensorF logits = TensorF::uniform({rows, classes}, -3.f, 3.f, gen).requires_grad_();
    const std::vector<int64_t> labels = labels_for(rows);
    for (auto _ : state) {
        logits.zero_grad();
        nn::cross_entropy(logits, labels).backward();
        benchmark::DoNotOptimize(logits.grad().data()[0]);
    }
    set_counters(state, rows);
}

void BM_tapegrad_log_softmax_nll(benchmark::State& state) {
    const int64_t rows = state.range(0);
    tapegrad::Generator gen(1);
    TensorF logits = TensorF::uniform({rows, classes}, -3.f, 3.f, gen).requires_grad_();
    const std::vector<int64_t> labels = labels_for(rows);
    for (auto _ : state) {
        logits.zero_grad();
        nn::nll_loss(tapegrad::log_softmax(logits), labels).backward();
        benchmark::DoNotOptimize(logits.grad().data()[0]);
    }
    set_counters(state, rows);
}

/// By hand: loss = mean_r (logsumexp(x_r) - x_r[label_r]), dx_r = (softmax(x_r) - onehot(label_r)) / N.
void BM_eigen_cross_entropy(benchmark::State& state) {
    const int64_t rows = state.range(0);
    const std::vector<int64_t> labels = labels_for(rows);
    const RowArrF x = 3.f * RowArrF::Random(rows, classes);
    RowArrF p(rows, classes), dx(rows, classes);
    const float inv_n = 1.f / static_cast<float>(rows);
    for (auto _ : state) {
        dx.setZero();
        p = (x.colwise() - x.rowwise().maxCoeff()).exp();
        const Eigen::ArrayXf sums = p.rowwise().sum();
        float loss = 0;
        for (Eigen::Index r = 0; r < rows; ++r) {
            const auto label = static_cast<Eigen::Index>(labels[static_cast<size_t>(r)]);
            loss += std::log(sums(r)) - std::log(p(r, label));
        }
        dx += (p.colwise() / sums) * inv_n;
        for (Eigen::Index r = 0; r < rows; ++r) dx(r, static_cast<Eigen::Index>(labels[static_cast<size_t>(r)])) -= inv_n;
        benchmark::DoNotOptimize(loss * inv_n);
        benchmark::DoNotOptimize(dx.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, rows);
}

BENCHMARK(BM_tapegrad_cross_entropy)->Arg(64)->Arg(128)->ArgName("N");
BENCHMARK(BM_tapegrad_log_softmax_nll)->Arg(64)->Arg(128)->ArgName("N");
BENCHMARK(BM_eigen_cross_entropy)->Arg(64)->Arg(128)->ArgName("N");

}  // namespace

BENCHMARK_MAIN();
