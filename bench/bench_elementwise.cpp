// Elementwise bandwidth: add, mul, relu and tanh on 1e3 .. 1e6 floats, forward alone (unrecorded) and
// forward + backward (zero_grad, the op, backward with a given dy), beside the same arithmetic as Eigen
// array expressions into preallocated arrays. Small sizes show the per-op cost (allocation, recording),
// large ones the memory bandwidth and the speed of the math (tanh is vectorised).
//
// Reductions (the BM_*_reduce rows), on 1e3 .. 1e7 floats: sum and mean of everything, sums along each axis
// of an [n/64, 64] matrix, and the bias-gradient reduction of x [n/64, 64] + b [64] (backward sums dy over
// the rows), beside Eigen's own (less accurate) sums.
//
//   build/bench/bench_elementwise --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// items_per_second counts elements; bytes_per_second counts the arrays a pass must touch, once each:
// forward the inputs and the output; backward dy, what the derivative reads (inputs or output) and each
// gradient, read and written (gradients accumulate).

#include <tapegrad/tapegrad.hpp>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>

namespace {

using tapegrad::TensorF;
using Arr = Eigen::ArrayXf;

// One struct per op: what tapegrad computes, the same in Eigen, and how many arrays each pass touches.
// Unary ops ignore their second operand.

struct Add {
    static constexpr int inputs = 2, forward_arrays = 3, backward_arrays = 5;  // dy, da rw, db rw
    static TensorF op(const TensorF& a, const TensorF& b) { return a + b; }
    static void eigen_forward(const Arr& a, const Arr& b, Arr& y) { y = a + b; }
    static void eigen_backward(const Arr&, const Arr&, const Arr&, const Arr& dy, Arr& da, Arr& db) {
        da += dy;
        db += dy;
    }
};
struct Mul {
    static constexpr int inputs = 2, forward_arrays = 3, backward_arrays = 7;  // dy, a, b, da rw, db rw
    static TensorF op(const TensorF& a, const TensorF& b) { return a * b; }
    static void eigen_forward(const Arr& a, const Arr& b, Arr& y) { y = a * b; }
    static void eigen_backward(const Arr& a, const Arr& b, const Arr&, const Arr& dy, Arr& da, Arr& db) {
        da += dy * b;
        db += dy * a;
    }
};
struct Relu {
    static constexpr int inputs = 1, forward_arrays = 2, backward_arrays = 4;  // dy, x, dx rw
    static TensorF op(const TensorF& x, const TensorF&) { return tapegrad::relu(x); }
    static void eigen_forward(const Arr& x, const Arr&, Arr& y) { y = x.max(0.f); }
    static void eigen_backward(const Arr& x, const Arr&, const Arr&, const Arr& dy, Arr& dx, Arr&) {
        dx += (x > 0.f).select(dy, 0.f);
    }
};
struct Tanh {
    static constexpr int inputs = 1, forward_arrays = 2, backward_arrays = 4;  // dy, y, dx rw
    static TensorF op(const TensorF& x, const TensorF&) { return tapegrad::tanh(x); }
    static void eigen_forward(const Arr& x, const Arr&, Arr& y) { y = x.tanh(); }
    static void eigen_backward(const Arr&, const Arr&, const Arr& y, const Arr& dy, Arr& dx, Arr&) {
        dx += dy * (1.f - y.square());
    }
};

void set_counters(benchmark::State& state, int64_t n, int arrays) {
    const auto iters = static_cast<int64_t>(state.iterations());
    state.SetItemsProcessed(iters * n);
    state.SetBytesProcessed(iters * n * arrays * static_cast<int64_t>(sizeof(float)));
}

template <class Op>
void BM_tapegrad_forward(benchmark::State& state) {
    const int64_t n = state.range(0);
    tapegrad::Generator gen(1);
    const TensorF a = TensorF::uniform({n}, -2.f, 2.f, gen);
    const TensorF b = TensorF::uniform({n}, -2.f, 2.f, gen);
    tapegrad::NoGradGuard no_grad;
    for (auto _ : state) {
        const TensorF y = Op::op(a, b);
        benchmark::DoNotOptimize(y.data()[0]);
    }
    set_counters(state, n, Op::forward_arrays);
}

template <class Op>
void BM_eigen_forward(benchmark::State& state) {
    const auto n = static_cast<Eigen::Index>(state.range(0));
    const Arr a = 2.f * Arr::Random(n), b = 2.f * Arr::Random(n);
    Arr y(n);
    for (auto _ : state) {
        Op::eigen_forward(a, b, y);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, n, Op::forward_arrays);
}

template <class Op>
void BM_tapegrad_forward_backward(benchmark::State& state) {
    const int64_t n = state.range(0);
    tapegrad::Generator gen(1);
    TensorF a = TensorF::uniform({n}, -2.f, 2.f, gen).requires_grad_();
    TensorF b = TensorF::uniform({n}, -2.f, 2.f, gen).requires_grad_(Op::inputs == 2);
    const TensorF dy = TensorF::uniform({n}, -1.f, 1.f, gen);
    for (auto _ : state) {
        a.zero_grad();
        b.zero_grad();
        Op::op(a, b).backward(dy);
        benchmark::DoNotOptimize(a.grad().data()[0]);
    }
    set_counters(state, n, Op::forward_arrays + Op::backward_arrays);
}

/// The Eigen side of a training step's worth of work: zero the gradients, forward, accumulate backward.
template <class Op>
void BM_eigen_forward_backward(benchmark::State& state) {
    const auto n = static_cast<Eigen::Index>(state.range(0));
    const Arr a = 2.f * Arr::Random(n), b = 2.f * Arr::Random(n), dy = Arr::Random(n);
    Arr y(n), da(n), db(n);
    for (auto _ : state) {
        da.setZero();
        if constexpr (Op::inputs == 2) db.setZero();
        Op::eigen_forward(a, b, y);
        Op::eigen_backward(a, b, y, dy, da, db);
        benchmark::DoNotOptimize(da.data());
        benchmark::DoNotOptimize(db.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, n, Op::forward_arrays + Op::backward_arrays);
}

void sizes(benchmark::internal::Benchmark* b) { b->RangeMultiplier(10)->Range(1000, 1000000)->ArgName("n"); }

// ---- reductions ---------------------------------------------------------------------------------------

enum class Reduce { sum, mean, sum_rows, sum_cols, bias_grad };
constexpr int64_t reduce_cols = 64;

template <Reduce R>
void BM_tapegrad_reduce(benchmark::State& state) {
    const int64_t n = state.range(0);
    tapegrad::Generator gen(1);
    const TensorF x = TensorF::uniform({n / reduce_cols, reduce_cols}, -1.f, 1.f, gen);
    TensorF b = TensorF::zeros({reduce_cols}).requires_grad_();
    const TensorF dy = TensorF::uniform({n / reduce_cols, reduce_cols}, -1.f, 1.f, gen);
    for (auto _ : state) {
        if constexpr (R == Reduce::bias_grad) {
            b.zero_grad();
            (x + b).backward(dy);
            benchmark::DoNotOptimize(b.grad().data()[0]);
        } else {
            tapegrad::NoGradGuard no_grad;
            const TensorF y = R == Reduce::sum    ? tapegrad::sum(x)
                              : R == Reduce::mean ? tapegrad::mean(x)
                              : R == Reduce::sum_rows ? tapegrad::sum(x, 0)
                                                      : tapegrad::sum(x, 1);
            benchmark::DoNotOptimize(y.data()[0]);
        }
    }
    set_counters(state, n, 1);
}

template <Reduce R>
void BM_eigen_reduce(benchmark::State& state) {
    const int64_t n = state.range(0);
    using Mat = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Mat x = Mat::Random(n / reduce_cols, reduce_cols);
    Eigen::ArrayXf out(std::max<int64_t>(n / reduce_cols, reduce_cols));
    for (auto _ : state) {
        if constexpr (R == Reduce::sum) out(0) = x.sum();
        else if constexpr (R == Reduce::mean) out(0) = x.mean();
        else if constexpr (R == Reduce::sum_rows || R == Reduce::bias_grad) out.head(reduce_cols) = x.colwise().sum().transpose();
        else out.head(n / reduce_cols) = x.rowwise().sum();
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, n, 1);
}

void reduce_sizes(benchmark::internal::Benchmark* b) {
    b->RangeMultiplier(10)->Range(1000, 10000000)->ArgName("n");
}

BENCHMARK_TEMPLATE(BM_tapegrad_forward, Add)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward, Add)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_forward, Mul)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward, Mul)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_forward, Relu)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward, Relu)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_forward, Tanh)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward, Tanh)->Apply(sizes);

BENCHMARK_TEMPLATE(BM_tapegrad_forward_backward, Add)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward_backward, Add)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_forward_backward, Mul)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward_backward, Mul)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_forward_backward, Relu)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward_backward, Relu)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_forward_backward, Tanh)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_eigen_forward_backward, Tanh)->Apply(sizes);

BENCHMARK_TEMPLATE(BM_tapegrad_reduce, Reduce::sum)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_eigen_reduce, Reduce::sum)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_reduce, Reduce::mean)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_eigen_reduce, Reduce::mean)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_reduce, Reduce::sum_rows)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_eigen_reduce, Reduce::sum_rows)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_reduce, Reduce::sum_cols)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_eigen_reduce, Reduce::sum_cols)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_tapegrad_reduce, Reduce::bias_grad)->Apply(reduce_sizes);
BENCHMARK_TEMPLATE(BM_eigen_reduce, Reduce::bias_grad)->Apply(reduce_sizes);

}  // namespace

BENCHMARK_MAIN();
