// Matrix products: tapegrad::matmul against the same product written in Eigen, on square matrices and on
// the dense layers of the MNIST MLPs; and a recurrent layer's per-step product, [B, H] x [H, 4H] forward and
// [B, 4H] x [4H, H] backward, through the backend's gemm (BLAS packs the weights at every call) against
// gemm_packed on weights packed once (the few-row kernel of backend/cpu/small_gemm.hpp in FMA builds). Both sides compile with the same Eigen settings, so with
// TAPEGRAD_BLAS both call OpenBLAS and the gap is tapegrad's own cost (allocation, recording, backward's
// bookkeeping); build once with -DTAPEGRAD_BLAS=OFF to compare the two product engines.
//
//   OMP_NUM_THREADS=1 build/bench/bench_matmul --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//   OMP_NUM_THREADS=2 build-bench/bench/bench_matmul --benchmark_filter=step   # a -march=native build
//
// OpenBLAS threads its products with omp_get_max_threads() threads: set OMP_NUM_THREADS for a fixed count.
// items_per_second counts products (forward) or training steps of one product (forward + backward);
// bytes_per_second the bytes of A, B and C; FLOP/s counts 2 M N K per product (x3 with backward).

#include "blas_trap.hpp"

#include <tapegrad/tapegrad.hpp>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <string_view>

namespace {

using tapegrad::TensorF;
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// [M, K] x [K, N], from the benchmark's arguments.
struct Dims {
    int64_t m, k, n;
};

Dims dims_of(const benchmark::State& state) { return {state.range(0), state.range(1), state.range(2)}; }

void set_counters(benchmark::State& state, const Dims& d, int products) {
    const auto iters = static_cast<int64_t>(state.iterations());
    state.SetItemsProcessed(iters);
    state.SetBytesProcessed(iters * products * (d.m * d.k + d.k * d.n + d.m * d.n) *
                            static_cast<int64_t>(sizeof(float)));
    state.counters["FLOP/s"] = benchmark::Counter(
        2.0 * products * static_cast<double>(d.m * d.k * d.n) * static_cast<double>(iters),
        benchmark::Counter::kIsRate);
}

void BM_tapegrad_matmul(benchmark::State& state) {
    const Dims d = dims_of(state);
    tapegrad::Generator gen(1);
    const TensorF a = TensorF::uniform({d.m, d.k}, -1.f, 1.f, gen);
    const TensorF b = TensorF::uniform({d.k, d.n}, -1.f, 1.f, gen);
    tapegrad::NoGradGuard no_grad;
    for (auto _ : state) {
        const TensorF c = tapegrad::matmul(a, b);
        benchmark::DoNotOptimize(c.data()[0]);
    }
    set_counters(state, d, 1);
}

void BM_eigen_matmul(benchmark::State& state) {
    const Dims d = dims_of(state);
    const RowMatF a = RowMatF::Random(d.m, d.k), b = RowMatF::Random(d.k, d.n);
    RowMatF c(d.m, d.n);
    for (auto _ : state) {
        c.noalias() = a * b;
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, d, 1);
}

/// y = a b, then backward with a given dy: dA = dY B^T, dB = A^T dY.
void BM_tapegrad_matmul_backward(benchmark::State& state) {
    const Dims d = dims_of(state);
    tapegrad::Generator gen(1);
    TensorF a = TensorF::uniform({d.m, d.k}, -1.f, 1.f, gen).requires_grad_();
    TensorF b = TensorF::uniform({d.k, d.n}, -1.f, 1.f, gen).requires_grad_();
    const TensorF dy = TensorF::uniform({d.m, d.n}, -1.f, 1.f, gen);
    for (auto _ : state) {
        a.zero_grad();
        b.zero_grad();
        tapegrad::matmul(a, b).backward(dy);
        benchmark::DoNotOptimize(b.grad().data()[0]);
    }
    set_counters(state, d, 3);
}

void BM_eigen_matmul_backward(benchmark::State& state) {
    const Dims d = dims_of(state);
    const RowMatF a = RowMatF::Random(d.m, d.k), b = RowMatF::Random(d.k, d.n), dy = RowMatF::Random(d.m, d.n);
    RowMatF c(d.m, d.n), da(d.m, d.k), db(d.k, d.n);
    for (auto _ : state) {
        c.noalias() = a * b;
        da.noalias() = dy * b.transpose();
        db.noalias() = a.transpose() * dy;
        benchmark::DoNotOptimize(c.data());
        benchmark::DoNotOptimize(da.data());
        benchmark::DoNotOptimize(db.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, d, 3);
}

/// Square sizes, then the dense layers of mlp_s (64x784 by 784x128) and mlp_l (128x784 by 784x512,
/// 128x512 by 512x256) as M, K, N.
void shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"M", "K", "N"});
    for (int64_t n : {64, 256, 1024}) b->Args({n, n, n});
    b->Args({64, 784, 128})->Args({128, 784, 512})->Args({128, 512, 256});
    b->Unit(benchmark::kMicrosecond);
}

/// One step's product C += A P of a recurrent layer, A [M, K], P [K, N]: Ops<Cpu>::gemm on the row-major P.
void BM_step_gemm(benchmark::State& state) {
    const Dims d = dims_of(state);
    const RowMatF a = RowMatF::Random(d.m, d.k), p = RowMatF::Random(d.k, d.n);
    RowMatF c = RowMatF::Zero(d.m, d.n);
    for (auto _ : state) {
        tapegrad::backend::Ops<tapegrad::Cpu>::gemm(false, false, d.m, d.n, d.k, 1.0f, a.data(), p.data(), 1.0f,
                                                    c.data());
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, d, 1);
}

/// The same product with P packed once, before the loop (what rnn_layer does per sequence).
void BM_step_gemm_packed(benchmark::State& state) {
    using Ops = tapegrad::backend::Ops<tapegrad::Cpu>;
    const Dims d = dims_of(state);
    const RowMatF a = RowMatF::Random(d.m, d.k), p = RowMatF::Random(d.k, d.n);
    RowMatF c = RowMatF::Zero(d.m, d.n), packed(d.k, d.n);
    Ops::pack_right(d.k, d.n, p.data(), packed.data());
    for (auto _ : state) {
        Ops::gemm_packed(d.m, d.n, d.k, 1.0f, a.data(), packed.data(), 1.0f, c.data());
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, d, 1);
}

/// The step products of bench/workloads' lstm_s (B 16, H 128) and lstm_l (B 64, H 256), as M, K, N.
void step_shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"M", "K", "N"});
    b->Args({16, 128, 512})->Args({16, 512, 128})->Args({64, 256, 1024})->Args({64, 1024, 256});
    b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_tapegrad_matmul)->Apply(shapes);
BENCHMARK(BM_eigen_matmul)->Apply(shapes);
BENCHMARK(BM_tapegrad_matmul_backward)->Apply(shapes);
BENCHMARK(BM_eigen_matmul_backward)->Apply(shapes);
BENCHMARK(BM_step_gemm)->Apply(step_shapes);
BENCHMARK(BM_step_gemm_packed)->Apply(step_shapes);

}  // namespace

// --simulate_blas_trap (bench/blas_configs.sh): OpenBLAS on its generic kernels first, then tapegrad's
// kernel check chooses again (bench/blas_trap.hpp).
int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--simulate_blas_trap") {
            std::fprintf(stderr, "simulated trap: %s\n", workloads::simulate_blas_trap().c_str());
            for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
            --argc;
            break;
        }
    std::fprintf(stderr, "%s\n", tapegrad::blas_info().c_str());
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
