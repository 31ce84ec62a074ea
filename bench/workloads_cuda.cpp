// The MNIST MLP workloads of bench/workloads.cpp on the GPU (issue 6): tapegrad's CUDA backend, written the
// way a user writes it (Sequential, cross_entropy, backward, SGD), to set against the same workloads in
// PyTorch eager and CUDA-graph mode (bench/gpu_workloads.py). bench/gpu_check.sh builds and runs both.
//
//   build/bench/workloads_cuda --workload=mlp_l --reps=3 [--data DIR]
//
// Workloads (one epoch each, drop-last batches; mlp_s and mlp_l as in workloads_common.hpp):
//   mlp_s   784-128-10 ReLU, cross-entropy, SGD 0.1, batch 64
//   mlp_l   784-512-256-10 ReLU, SGD 0.05 momentum 0.9, batch 128
//   mlp_xl  784-4096-4096-10 ReLU, SGD 0.05 momentum 0.9, batch 1024 (big enough that cuBLAS dominates)
// Output, one line per repetition after one warm-up (the format of workloads_common.hpp):
//   tapegrad-cuda WORKLOAD 1 rep=R epoch_s=... samples_per_s=... test_acc=...
// samples_per_s counts the samples actually trained on (drop-last: 937 x 64 for mlp_s).
//
// The data is already on the GPU: the training images are put into the order of the CPU workloads' epoch
// (workloads::epoch_order, the first epoch of a shuffling DataLoader) on the host and uploaded once, before
// any timing, as one [60000, 784] Tensor<float, Cuda>. Each batch is then a contiguous `slice` of it along
// axis 0, one device-to-device copy kernel per batch; its labels are a span of the host label vector,
// which cross_entropy takes as it is. Every repetition visits the same (fixed) order. The test set is
// uploaded once as well and evaluated in slices of 1000, the logits downloaded for nn::accuracy.
// TF32 stays off (the default), as in the PyTorch comparison. The clock stops after cuda::synchronize().

#include "workloads_common.hpp"

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Cpu;
using tg::Cuda;
using GpuT = tg::Tensor<float, Cuda>;

namespace {

/// mlp_s and mlp_l as the CPU workloads define them; mlp_xl exists only here (a CPU epoch of it would take
/// minutes). All three train on the whole training set.
workloads::MnistSpec cuda_spec(const std::string& workload) {
    if (workload == "mlp_xl")
        return {.sizes = {784, 4096, 4096, 10}, .lr = 0.05, .momentum = 0.9, .batch = 1024};
    return workloads::mnist_spec(workload);
}

/// A dataset resident on the GPU: features [N, 784] on the device, labels on the host.
struct DeviceSet {
    GpuT x;
    std::vector<int64_t> y;
    [[nodiscard]] int64_t size() const { return static_cast<int64_t>(y.size()); }
};

std::shared_ptr<nn::Sequential<float, Cuda>> build_mlp(const std::vector<int64_t>& sizes, tg::Generator& gen) {
    auto net = std::make_shared<nn::Sequential<float, Cuda>>();
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
        net->push_back(nn::Linear<float, Cuda>(sizes[i], sizes[i + 1], gen));  // drawn on the host, uploaded
        if (i + 2 < sizes.size()) net->push_back(nn::ReLU<float, Cuda>());
    }
    return net;
}

/// Test accuracy, in device batches of workloads::eval_batch rows; only the logits come back to the host.
double evaluate(nn::Module<float, Cuda>& net, const DeviceSet& test) {
    tg::NoGradGuard no_grad;
    net.eval();
    int64_t correct = 0;
    for (int64_t start = 0; start < test.size(); start += workloads::eval_batch) {
        const int64_t end = std::min(start + workloads::eval_batch, test.size());
        const auto logits = tg::to<Cpu>(net(tg::slice(test.x, 0, start, end)));
        const std::span<const int64_t> labels(test.y.data() + start, static_cast<size_t>(end - start));
        correct += static_cast<int64_t>(nn::accuracy(logits, labels) * static_cast<double>(end - start) + 0.5);
    }
    net.train();
    return static_cast<double>(correct) / static_cast<double>(test.size());
}

/// One epoch of a fresh network (or, for the warm-up, a few steps and one evaluation, untimed).
workloads::Metrics mnist_rep(const workloads::MnistSpec& spec, const DeviceSet& train, const DeviceSet& test,
                             bool warmup) {
    tg::Generator gen(workloads::init_seed);
    const auto net = build_mlp(spec.sizes, gen);
    tg::optim::SGD<float, Cuda> opt(net->parameters(), {.lr = spec.lr, .momentum = spec.momentum});
    const int64_t batches = train.size() / spec.batch;  // drop-last
    const int64_t steps = warmup ? std::min(batches, workloads::warmup_steps) : batches;

    tg::cuda::synchronize();  // the uploads and the initial weights are not part of the epoch
    const auto t0 = workloads::Clock::now();
    for (int64_t b = 0; b < steps; ++b) {
        const int64_t start = b * spec.batch;
        const GpuT x = tg::slice(train.x, 0, start, start + spec.batch);
        const std::span<const int64_t> y(train.y.data() + start, static_cast<size_t>(spec.batch));
        opt.zero_grad();
        const GpuT loss = nn::cross_entropy((*net)(x), y);
        loss.backward();
        opt.step();
    }
    tg::cuda::synchronize();  // every kernel of the epoch has finished
    const double secs = workloads::seconds_since(t0);
    const double acc = evaluate(*net, test);
    if (warmup) return {};
    return workloads::epoch_metrics(secs, steps * spec.batch, acc);
}

void run(const workloads::Config& cfg) {
    const workloads::MnistSpec spec = cuda_spec(cfg.workload);
    const auto mnist = workloads::load_mnist(cfg, /*flatten=*/true);
    const std::vector<int64_t> order = workloads::epoch_order(mnist.train.size(), workloads::shuffle_seed);
    const auto shuffled = mnist.train.subset(order);
    const DeviceSet train{tg::to<Cuda>(shuffled.features), shuffled.labels};
    const DeviceSet test{tg::to<Cuda>(mnist.test.features), mnist.test.labels};
    workloads::repeat("tapegrad-cuda", cfg, [&](bool warmup) { return mnist_rep(spec, train, test, warmup); });
}

}  // namespace

int main(int argc, char** argv) {
    workloads::Config cfg;
    CLI::App app{"tapegrad MNIST MLP workloads on the GPU: mlp_s, mlp_l, mlp_xl"};
    app.add_option("--workload", cfg.workload, "mlp_s, mlp_l or mlp_xl")
        ->required()
        ->check(CLI::IsMember({"mlp_s", "mlp_l", "mlp_xl"}));
    app.add_option("--reps", cfg.reps, "Timed repetitions (each after one warm-up)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--data", cfg.data, "Folder with the four MNIST IDX files (default: tapegrad's cache)");
    CLI11_PARSE(app, argc, argv);

    try {
        if (!tg::cuda::available()) {
            (void)tg::cuda::stream();  // throws DeviceError with CUDA's reason
            throw tg::DeviceError("CUDA: no usable GPU");
        }
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "workloads_cuda: this benchmark needs an NVIDIA GPU: %s\n", e.what());
        return 2;
    }
    try {
        run(cfg);
        return 0;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "workloads_cuda: %s\n", e.what());
        return 1;
    }
}
