// Handwritten digits with a multilayer perceptron: the project's headline program.
//
//   bash cmake/run_main.sh                     # fetch MNIST once, build, train with the defaults
//   build/examples/mnist_mlp --help
//   build/examples/mnist_mlp --epochs 10 --save mlp.safetensors
//   build/examples/mnist_mlp --load mlp.safetensors --eval-only
//   build-cuda/examples/mnist_mlp --device cuda       # on an NVIDIA GPU (configure with -DTAPEGRAD_CUDA=ON)
//   build-cuda/examples/mnist_mlp --device cuda --graph   # each epoch's step captured once as a CUDA graph
//   build-cuda/examples/mnist_mlp --device cuda --save mlp.safetensors   # the same file as on the CPU:
//   build/examples/mnist_mlp --load mlp.safetensors --eval-only          # GPU-trained, evaluated on the CPU
//
// The network is Flatten -> [Linear -> ReLU] x len(hidden) -> Linear(10), trained with softmax
// cross-entropy. Each step is the lecture's loop: zero_grad, forward, loss, backward, step.

#include "common/cli.hpp"
#include "common/mnist_model.hpp"
#include "common/mnist_training.hpp"
#include "common/onnx_export.hpp"

#include <tapegrad/data/mnist.hpp>
#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/nn/metrics.hpp>
#include <tapegrad/optim/optim.hpp>
#include <tapegrad/tapegrad.hpp>
#include <tapegrad/util/svg_plot.hpp>

#if defined(TAPEGRAD_WITH_CUDA)  // built with -DTAPEGRAD_CUDA=ON: --device cuda is available
#include <tapegrad/backend/cuda.hpp>
#endif

#include <Eigen/Core>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace tg = tapegrad;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
    std::string data;
    int epochs = 10;
    int64_t batch = 64;
    double lr = 0.05;
    std::string optimizer = "sgd";
    std::vector<int64_t> hidden{256, 128};
    int threads = 1;
    uint64_t seed = 1;
    std::string save, load, csv, svg;
    std::string device = "cpu";
    bool eval_only = false;
    examples::OnnxFlags onnx;
    bool graph = false;
};

#if defined(TAPEGRAD_WITH_CUDA)
/// --graph: the training step as one CUDA graph (tapegrad::cuda::Graph), re-captured every epoch.
struct CudaStepGraph final : examples::StepGraph {
    tg::cuda::Graph graph;
    void capture(const std::function<void()>& step) override { graph.capture(step); }
    void replay() override { graph.replay(); }
    void reset() override { graph.reset(); }
};
#endif

/// Builds, trains (or evaluates) and saves the network on device D.
template <class D>
int run(const Config& cfg, const tg::data::MnistDatasets<float>& mnist) {
    tg::Generator gen(cfg.seed);
    // The input size comes from the data (784 for MNIST's 28x28 images).
    const examples::MlpLayout layout{mnist.train.features.shape()[1], cfg.hidden, 10};
    auto net = examples::build_mlp<D>(layout, gen);
    examples::describe_and_load<D>(*net, cfg.load);
    if (cfg.eval_only) {
        examples::print_test_accuracy<D>(*net, mnist.test);
        if constexpr (std::is_same_v<D, tg::Cpu>) examples::export_onnx(*net, mnist.test, cfg.onnx);
        return 0;
    }

    const auto t0 = Clock::now();

    auto model = examples::Distributed::get().wrap<D>(net);  // under mpirun: dist::DataParallel
    auto opt = examples::make_optimizer<D>(cfg.optimizer, net->parameters(), cfg.lr);
#if defined(TAPEGRAD_WITH_CUDA)
    CudaStepGraph graph;  // --graph: one CUDA graph per step (checked in main: only with --device cuda)
    examples::StepGraph* step_graph = cfg.graph ? &graph : nullptr;
#else
    examples::StepGraph* step_graph = nullptr;
#endif
    const examples::History history = examples::train_any<D>(*model, *opt, mnist.train, mnist.test, cfg.epochs,
                                                             cfg.batch, cfg.seed, step_graph);
    const double test_acc = history.test_acc.back();
    const double total = std::chrono::duration<double>(Clock::now() - t0).count();

    if (!cfg.save.empty() && examples::Distributed::get().is_main()) {  // the same file on either device
        // The architecture travels in the file's metadata so mnist_predict can rebuild the network. Model
        // and optimizer state are written together or not at all.
        tg::io::save_with_optimizer(cfg.save, *net, cfg.save + ".optim", *opt, examples::mlp_metadata(layout));
        std::fprintf(stderr, "saved %s (optimizer state: %s.optim)\n", cfg.save.c_str(), cfg.save.c_str());
    }
    examples::write_history(history, cfg.csv, cfg.svg, "MNIST MLP");
    if constexpr (std::is_same_v<D, tg::Cpu>) {
        if (examples::Distributed::get().is_main()) examples::export_onnx(*net, mnist.test, cfg.onnx);
    }
    std::printf("result: test_accuracy=%.4f epochs=%d seconds=%.1f device=%s\n", test_acc, cfg.epochs, total, D::name);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config cfg;
    CLI::App app{"Train a multilayer perceptron on MNIST with tapegrad"};
    app.add_option("--data", cfg.data, "Folder with the four MNIST IDX files, raw or .gz (default: the cache "
                                       "that cmake/fetch_mnist.sh fills; env TAPEGRAD_MNIST_DIR)");
    examples::number(app, "--epochs", cfg.epochs, "Training epochs", 1, 1000);
    examples::number(app, "--batch", cfg.batch, "Mini-batch size", int64_t{1}, int64_t{60000});
    examples::number(app, "--lr", cfg.lr, "Initial learning rate (decayed by a cosine schedule)", 1e-12, 1e30);
    app.add_option("--optimizer", cfg.optimizer, "sgd (momentum 0.9) or adam")
        ->check(CLI::IsMember({"sgd", "adam"}))
        ->capture_default_str();
    examples::int_list(app, "--hidden", cfg.hidden, "Hidden layer sizes", 1, examples::max_hidden);
    examples::number(app, "--threads", cfg.threads,
                     "Threads for matrix products (Eigen through OpenMP; 0: all cores). One thread is the default: "
                     "at this network's sizes a second thread gains little and loses much on a busy machine",
                     0, 256);
    app.add_option("--device", cfg.device, "cpu, or cuda (an NVIDIA GPU; needs a build with -DTAPEGRAD_CUDA=ON)")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    app.add_flag("--graph", cfg.graph,
                 "With --device cuda: capture the training step once per epoch as a CUDA graph and replay it for "
                 "every batch (fewer launches; needs --optimizer sgd)");
    examples::number(app, "--seed", cfg.seed, "Seed of initialisation and shuffling", uint64_t{0}, UINT64_MAX);
    app.add_option("--save", cfg.save,
                   "Write the trained model (safetensors; optimizer state beside it, in <file>.optim). The file does "
                   "not depend on --device");
    app.add_option("--load", cfg.load, "Start from a saved model (saved with either --device)")
        ->check(CLI::ExistingFile);
    app.add_flag("--eval-only", cfg.eval_only, "Only evaluate the (loaded) model on the test set");
    examples::add_onnx_flags(app, cfg.onnx);
    app.add_option("--csv", cfg.csv, "Write per-epoch metrics as CSV");
    app.add_option("--svg", cfg.svg, "Write the loss/accuracy curves as SVG");
    if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;
    if (cfg.graph && (cfg.device != "cuda" || cfg.optimizer != "sgd")) {
        std::fprintf(stderr, "mnist_mlp: --graph needs --device cuda and --optimizer sgd (Adam's step cannot be "
                             "captured)\n");
        return 2;
    }

    try {
        const auto& dist = examples::Distributed::get();  // started by mpirun: one rank of a data-parallel job
        // A run whose result cannot be written is lost work: find out now, not after the last epoch.
        if (dist.is_main()) examples::check_outputs_writable(cfg.save, cfg.csv, cfg.svg);
        if (!cfg.onnx.path.empty() && cfg.device != "cpu") {
            std::fprintf(stderr, "mnist_mlp: --export-onnx runs on the CPU: train with --save m.safetensors, then export "
                                 "with --load m.safetensors --eval-only --export-onnx m.onnx\n");
            return 2;
        }
        if (dist.is_main()) examples::check_onnx_flags(cfg.onnx);
        tg::set_num_threads(cfg.threads);  // Eigen, OpenMP and OpenBLAS together; 0: the library default
        if (dist.is_main()) std::fprintf(stderr, "%s\n", tg::blas_info().c_str());
        const std::string dir = cfg.data.empty() ? tg::data::default_mnist_dir().string() : cfg.data;
        const auto t_load = Clock::now();
        const auto mnist = tg::data::load_mnist<float>(dir);
        std::fprintf(stderr, "loaded MNIST from %s: %lld train, %lld test images (%.2fs)\n", dir.c_str(),
                     static_cast<long long>(mnist.train.size()), static_cast<long long>(mnist.test.size()),
                     std::chrono::duration<double>(Clock::now() - t_load).count());

        if (cfg.device == "cuda") {
#if defined(TAPEGRAD_WITH_CUDA)
            return run<tg::Cuda>(cfg, mnist);
#else
            std::fprintf(stderr, "mnist_mlp: this build has no CUDA backend (configure with -DTAPEGRAD_CUDA=ON)\n");
            return 2;
#endif
        }
        return run<tg::Cpu>(cfg, mnist);
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "mnist_mlp: %s\n", e.what());
        return examples::Distributed::get().fail(1);  // under mpirun: ends every rank
    }
}
