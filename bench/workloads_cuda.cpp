// The MNIST MLP workloads of bench/workloads.cpp on the GPU: tapegrad's CUDA backend, written the
// way a user writes it (Sequential, cross_entropy, backward, SGD), to set against the same workloads in
// PyTorch eager and CUDA-graph mode (bench/gpu_workloads.py). bench/gpu_check.sh builds and runs both.
//
//   build/bench/workloads_cuda --workload=mlp_l --mode=graph --reps=3 [--data DIR]
//
// Workloads (one epoch each, drop-last batches; mlp_s and mlp_l as in workloads_common.hpp):
//   mlp_s   784-128-10 ReLU, cross-entropy, SGD 0.1, batch 64
//   mlp_l   784-512-256-10 ReLU, SGD 0.05 momentum 0.9, batch 128
//   mlp_xl  784-4096-4096-10 ReLU, SGD 0.05 momentum 0.9, batch 1024 (big enough that cuBLAS dominates)
// Modes:
//   eager   every step launches its kernels: loader.next(), zero_grad, forward, loss, backward, step
//   graph   the same step captured once into a cuda::Graph (batch gather included), one replay per batch
// Output, one line per repetition after one warm-up (the format of workloads_common.hpp):
//   tapegrad-cuda WORKLOAD 1 rep=R epoch_s=... samples_per_s=... test_acc=...   (tapegrad-graph in graph mode)
// samples_per_s counts the samples actually trained on (drop-last: 937 x 64 for mlp_s).
//
// The data is already on the GPU: the training images are put into the order of the CPU workloads' epoch
// (workloads::epoch_order, the first epoch of a shuffling DataLoader) on the host and uploaded once, before
// any timing, into a data::DeviceLoader without shuffling, images and labels. Each batch is gathered on
// the device (two small kernels) into the loader's fixed buffers; the labels stay on the device
// (Labels<Cuda>). Every repetition visits the same (fixed) order. The test set is uploaded once as well
// and evaluated in slices of 1000, the logits downloaded for nn::accuracy. TF32 stays off (the default),
// as in the PyTorch comparison. The clock stops after cuda::synchronize().
//
// Graph mode and momentum: SGD's first momentum step (buffer = gradient) differs from the later ones, so it
// is not capturable. With momentum, one eager step is taken first, then the initial weights are put back
// and the momentum buffers zeroed (the later-step formula from a zero buffer gives exactly the first
// step's result when dampening is 0), as gpu_workloads.py does after PyTorch's warm-up. Capture is not
// timed; the timed epoch starts from the initial weights, as in eager mode.

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

/// The test set resident on the GPU: features [N, 784] on the device, labels on the host (for accuracy).
struct DeviceSet {
    GpuT x;
    std::vector<int64_t> y;
    [[nodiscard]] int64_t size() const { return static_cast<int64_t>(y.size()); }
};

using Loader = tg::data::DeviceLoader<float, Cuda>;

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

/// One training step on the loader's next batch; returns the loss (not read back).
GpuT train_step(nn::Module<float, Cuda>& net, tg::optim::SGD<float, Cuda>& opt, Loader& loader) {
    loader.next();
    opt.zero_grad();
    GpuT loss = nn::cross_entropy(net(loader.x()), loader.y());
    loss.backward();
    opt.step();
    return loss;
}

/// For graph mode with momentum: one eager step creates the momentum buffers (SGD's first step cannot be
/// captured); then the initial weights are restored and the buffers zeroed, before any capture.
void prime_momentum(nn::Module<float, Cuda>& net, tg::optim::SGD<float, Cuda>& opt, Loader& loader) {
    std::vector<GpuT> initial;
    for (const GpuT& p : net.parameters()) initial.push_back(p.detach().clone());
    (void)train_step(net, opt, loader);
    const auto params = net.parameters();
    for (size_t i = 0; i < params.size(); ++i)
        tg::backend::Ops<Cuda>::copy(params[i].numel(), initial[i].data_ptr(), params[i].data_ptr());
    auto state = opt.state();
    for (auto& entry : state) entry.second = GpuT::zeros(entry.second.shape());
    opt.load_state(state);  // new buffers: before the capture, which binds their addresses
    loader.start_epoch();   // rewind: the timed epoch starts at the first batch
}

/// One epoch of a fresh network (or, for the warm-up, a few steps and one evaluation, untimed).
workloads::Metrics mnist_rep(const workloads::MnistSpec& spec, Loader& loader, const DeviceSet& test, bool graph,
                             bool warmup) {
    tg::Generator gen(workloads::init_seed);
    const auto net = build_mlp(spec.sizes, gen);
    tg::optim::SGD<float, Cuda> opt(net->parameters(), {.lr = spec.lr, .momentum = spec.momentum});
    const int64_t batches = loader.num_batches();  // drop-last
    const int64_t steps = warmup ? std::min(batches, workloads::warmup_steps) : batches;
    loader.start_epoch();

    tg::cuda::Graph step_graph;
    if (graph) {
        if (spec.momentum != 0) prime_momentum(*net, opt, loader);
        (void)step_graph.capture([&] { return train_step(*net, opt, loader); });
    }
    tg::cuda::synchronize();  // the uploads and the initial weights are not part of the epoch
    const auto t0 = workloads::Clock::now();
    for (int64_t b = 0; b < steps; ++b) {
        if (graph)
            step_graph.replay();
        else
            (void)train_step(*net, opt, loader);
    }
    tg::cuda::synchronize();  // every kernel of the epoch has finished
    const double secs = workloads::seconds_since(t0);
    const double acc = evaluate(*net, test);
    if (warmup) return {};
    return workloads::epoch_metrics(secs, steps * spec.batch, acc);
}

void run(const workloads::Config& cfg, bool graph) {
    const workloads::MnistSpec spec = cuda_spec(cfg.workload);
    const auto mnist = workloads::load_mnist(cfg, /*flatten=*/true);
    const std::vector<int64_t> order = workloads::epoch_order(mnist.train.size(), workloads::shuffle_seed);
    Loader loader(mnist.train.subset(order), {.batch_size = spec.batch, .shuffle = false});
    const DeviceSet test{tg::to<Cuda>(mnist.test.features), mnist.test.labels};
    workloads::repeat(graph ? "tapegrad-graph" : "tapegrad-cuda", cfg,
                      [&](bool warmup) { return mnist_rep(spec, loader, test, graph, warmup); });
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
    std::string mode = "eager";
    app.add_option("--mode", mode, "eager (kernel by kernel) or graph (one captured step per batch)")
        ->check(CLI::IsMember({"eager", "graph"}))
        ->capture_default_str();
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
        run(cfg, mode == "graph");
        return 0;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "workloads_cuda: %s\n", e.what());
        return 1;
    }
}
