// One training step (zero_grad, forward, loss, backward, SGD step) of each dense workload of
// bench/workloads.cpp on one fixed batch, beside the same step written by hand in Eigen with every buffer
// allocated once (the floor of bench/workloads_eigen.cpp). No data loading: the gap is the framework's cost
// per step, which the whole-epoch workloads mix with the DataLoader and the evaluation.
//   xor    2-4-1 tanh/sigmoid, BCE, SGD lr 0.5, the 4 examples of XOR
//   mlp_s  784-128-10 ReLU, cross-entropy, SGD lr 0.1, batch 64
//   mlp_l  784-512-256-10 ReLU, cross-entropy, SGD lr 0.05 momentum 0.9, batch 128
// The MLPs read random inputs in [0, 1) with fixed labels (timing does not depend on the values).
//
//   OMP_NUM_THREADS=1 build/bench/bench_train_step --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// items_per_second counts examples; bytes_per_second the parameters read and written by the SGD step;
// FLOP/s the matrix products' 2 flops per multiply-add: forward, the weight gradients and the input
// gradients of every layer but the first (the data needs none).

#include "eigen_mlp.hpp"

#include <tapegrad/tapegrad.hpp>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace {

namespace nn = tapegrad::nn;
using tapegrad::TensorF;
using eigen_floor::Mat;
using eigen_floor::RowVec;

struct MlpSpec {
    std::vector<int64_t> sizes;  ///< layer widths, input first
    float lr;
    float momentum;
    int64_t batch;
};
const MlpSpec mlp_s{{784, 128, 10}, 0.1f, 0.f, 64};
const MlpSpec mlp_l{{784, 512, 256, 10}, 0.05f, 0.9f, 128};

/// Items, bytes and FLOP/s of a step of the dense network with layer widths `sizes` on `batch` examples.
void set_counters(benchmark::State& state, int64_t batch, const std::vector<int64_t>& sizes) {
    int64_t params = 0, weights = 0;
    for (size_t l = 0; l + 1 < sizes.size(); ++l) {
        params += sizes[l + 1] * (sizes[l] + 1);
        weights += sizes[l + 1] * sizes[l];
    }
    const int64_t first = sizes[0] * sizes[1];
    const auto iters = static_cast<int64_t>(state.iterations());
    state.SetItemsProcessed(iters * batch);
    state.SetBytesProcessed(iters * 2 * params * static_cast<int64_t>(sizeof(float)));
    const double flops = 2.0 * static_cast<double>(batch * (2 * weights + weights - first));
    state.counters["FLOP/s"] = benchmark::Counter(flops * static_cast<double>(iters), benchmark::Counter::kIsRate);
}

std::vector<int64_t> labels_for(int64_t rows) {
    std::vector<int64_t> labels(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) labels[static_cast<size_t>(r)] = (r * 7) % 10;
    return labels;
}

// ---- xor -----------------------------------------------------------------------------------------------

void BM_tapegrad_step_xor(benchmark::State& state) {
    tapegrad::Generator gen(1);
    nn::Sequential<float> net{nn::Linear<float>(2, 4, gen), nn::Tanh<float>(), nn::Linear<float>(4, 1, gen),
                              nn::Sigmoid<float>()};
    tapegrad::optim::SGD<float> opt(net.parameters(), {.lr = 0.5});
    const TensorF x = TensorF::from({4, 2}, {0, 0, 0, 1, 1, 0, 1, 1});
    const TensorF y = TensorF::from({4, 1}, {0, 1, 1, 0});
    for (auto _ : state) {
        opt.zero_grad();
        const TensorF loss = nn::bce_loss(net(x), y);
        loss.backward();
        opt.step();
        benchmark::DoNotOptimize(loss.data()[0]);
    }
    set_counters(state, 4, {2, 4, 1});
}
BENCHMARK(BM_tapegrad_step_xor);

/// By hand: h = tanh(x W1^T + b1), p = sigmoid(h W2^T + b2), mean BCE; its gradient at the logit z2 is
/// (p - t) / 4, then dW2 = dz2^T h, dh = dz2 W2, dz1 = dh (1 - h^2), dW1 = dz1^T x.
void BM_eigen_step_xor(benchmark::State& state) {
    Mat x(4, 2), t(4, 1);
    x << 0, 0, 0, 1, 1, 0, 1, 1;
    t << 0, 1, 1, 0;
    Mat w1 = Mat::Random(4, 2) / std::sqrt(2.f), w2 = Mat::Random(1, 4) / 2.f;
    RowVec b1 = RowVec::Random(4) / std::sqrt(2.f), b2 = RowVec::Random(1) / 2.f;
    Mat h(4, 4), p(4, 1), dz2(4, 1), dz1(4, 4), dw1(4, 2), dw2(1, 4);
    const float lr = 0.5f;
    for (auto _ : state) {
        h.noalias() = x * w1.transpose();
        h = (h.rowwise() + b1).array().tanh().matrix();
        p.noalias() = h * w2.transpose();
        p = (1.f / (1.f + (-(p.array() + b2(0))).exp())).matrix();
        // Four scalar logs: Eigen's vectorised AVX-512 log trips GCC 12's -Wuninitialized (GCC bug 105593).
        float loss = 0;
        for (Eigen::Index r = 0; r < 4; ++r) loss -= t(r) * std::log(p(r)) + (1.f - t(r)) * std::log(1.f - p(r));
        loss /= 4.f;
        dz2 = (p - t) / 4.f;
        dw2.noalias() = dz2.transpose() * h;
        dz1.noalias() = dz2 * w2;
        dz1 = (dz1.array() * (1.f - h.array().square())).matrix();
        dw1.noalias() = dz1.transpose() * x;
        w1 -= lr * dw1;
        b1 -= lr * dz1.colwise().sum();
        w2 -= lr * dw2;
        b2 -= lr * dz2.colwise().sum();
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    set_counters(state, 4, {2, 4, 1});
}
BENCHMARK(BM_eigen_step_xor);

// ---- MLPs ----------------------------------------------------------------------------------------------

void BM_tapegrad_step_mlp(benchmark::State& state, const MlpSpec& spec) {
    tapegrad::Generator gen(1);
    nn::Sequential<float> net;
    for (size_t l = 0; l + 1 < spec.sizes.size(); ++l) {
        net.push_back(nn::Linear<float>(spec.sizes[l], spec.sizes[l + 1], gen));
        if (l + 2 < spec.sizes.size()) net.push_back(nn::ReLU<float>());
    }
    tapegrad::optim::SGD<float> opt(net.parameters(), {.lr = spec.lr, .momentum = spec.momentum});
    const TensorF x = TensorF::uniform({spec.batch, spec.sizes.front()}, 0.f, 1.f, gen);
    const std::vector<int64_t> labels = labels_for(spec.batch);
    for (auto _ : state) {
        opt.zero_grad();
        const TensorF loss = nn::cross_entropy(net(x), labels);
        loss.backward();
        opt.step();
        benchmark::DoNotOptimize(loss.data()[0]);
    }
    set_counters(state, spec.batch, spec.sizes);
}
BENCHMARK_CAPTURE(BM_tapegrad_step_mlp, mlp_s, mlp_s)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_tapegrad_step_mlp, mlp_l, mlp_l)->Unit(benchmark::kMicrosecond);

/// The hand-written network of bench/eigen_mlp.hpp (the workloads' Eigen floor), initialised like
/// nn::Linear: U(-1/sqrt(in), 1/sqrt(in)).
eigen_floor::Mlp make_eigen_mlp(const std::vector<int64_t>& sizes) {
    eigen_floor::Mlp net(sizes);
    for (size_t l = 0; l < net.num_layers(); ++l) {
        const float bound = 1.f / std::sqrt(static_cast<float>(sizes[l]));
        eigen_floor::Dense& d = net.layer(l);
        d.w = Mat::Random(sizes[l + 1], sizes[l]) * bound;
        d.b = RowVec::Random(sizes[l + 1]) * bound;
    }
    return net;
}

void BM_eigen_step_mlp(benchmark::State& state, const MlpSpec& spec) {
    eigen_floor::Mlp net = make_eigen_mlp(spec.sizes);
    const Mat x = (Mat::Random(spec.batch, spec.sizes.front()).array() + 1.f).matrix() / 2.f;
    const std::vector<int64_t> labels = labels_for(spec.batch);
    for (auto _ : state) {
        net.forward(x);
        net.backward(x, labels);
        net.step(spec.lr, spec.momentum);
        benchmark::DoNotOptimize(net.logits().data());
        benchmark::ClobberMemory();
    }
    set_counters(state, spec.batch, spec.sizes);
}
BENCHMARK_CAPTURE(BM_eigen_step_mlp, mlp_s, mlp_s)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_eigen_step_mlp, mlp_l, mlp_l)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
