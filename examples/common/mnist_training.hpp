#pragma once
// The training loop shared by mnist_mlp and mnist_cnn (not part of the library): the lecture's loop --
// zero_grad, forward, loss, backward, step -- with progress, per-epoch evaluation and the metrics files.
// Templated on the device D. On the CPU the batches come from a DataLoader and the running loss and
// accuracy are read after every step. On a GPU (train_on_device) reading a value back waits for the GPU,
// so the loop avoids it: the training set lives on the device (data::DeviceLoader), the loss is summed
// there and read every 100 batches, the training accuracy is measured once per epoch, and the whole step
// can be captured as one CUDA graph (StepGraph, --graph in mnist_mlp).

#include "distributed.hpp"
#include "progress.hpp"

#include <tapegrad/data/dataset.hpp>
#include <tapegrad/data/device_loader.hpp>
#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/nn/metrics.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/transfer.hpp>
#include <tapegrad/optim/optim.hpp>
#include <tapegrad/util/atomic_file.hpp>
#include <tapegrad/util/svg_plot.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace examples {

namespace tg = tapegrad;

/// Checks before training that every file the run will write can be written (`save` and its `.optim`
/// beside it, the metrics files; empty paths are skipped), so that a bad path fails in a second instead
/// of after the last epoch. Leaves nothing behind. Throws tg::FormatError naming the flag and the path
/// (the program adds its own name when it prints it).
inline void check_outputs_writable(const std::string& save, const std::string& csv, const std::string& svg) {
    const auto check = [&](const char* flag, const std::string& path) {
        if (!path.empty()) tg::util::check_writable(path, std::string(flag) + " '" + path + "'");
    };
    check("--save", save);
    check("--save", save.empty() ? save : save + ".optim");
    check("--csv", csv);
    check("--svg", svg);
}

/// Stops training when the loss is not finite (NaN or infinite: the run diverged, typically from too large
/// a learning rate). Nothing after it runs, so no checkpoint of broken weights is written.
inline void check_loss_finite(double loss, int epoch, int64_t batch) {
    if (std::isfinite(loss)) return;
    char text[32];
    std::snprintf(text, sizeof text, "%g", loss);
    throw tg::ValueError(std::string("training diverged: the loss is ") + text + " at epoch " + std::to_string(epoch) +
                         ", batch " + std::to_string(batch) +
                         " (try a smaller --lr); stopped without writing a checkpoint");
}

/// Accuracy of `net` on a whole dataset, evaluated in batches of 1000 without recording.
template <class D = tg::Cpu>
double evaluate(tg::nn::Module<float, D>& net, const tg::data::Dataset<float>& ds) {
    tg::NoGradGuard no_grad;
    net.eval();
    auto loader = Distributed::get().eval_loader(ds, 1000);  // under mpirun: this rank's part
    int64_t correct = 0;
    for (const auto& batch : loader) {
        const auto logits = tg::to<tg::Cpu>(net(tg::to<D>(batch.x)));
        correct += static_cast<int64_t>(tg::nn::accuracy(logits, batch.y) * static_cast<double>(batch.y.size()) + 0.5);
    }
    net.train();
    return Distributed::get().sum(static_cast<double>(correct)) / static_cast<double>(ds.size());
}

/// Prints the network and its size on stderr, then loads the checkpoint `load_path` into it when one is
/// given (a file written on either device loads on either).
template <class D>
void describe_and_load(tg::nn::Module<float, D>& net, const std::string& load_path) {
    std::ostringstream arch;
    arch << net;
    std::fprintf(stderr, "%s\n%lld parameters on %s\n", arch.str().c_str(), static_cast<long long>(net.num_parameters()),
                 D::name);
    if (load_path.empty()) return;
    tg::io::load(load_path, net);
    std::fprintf(stderr, "loaded %s\n", load_path.c_str());
}

/// --eval-only: the test accuracy as the programs' result line.
template <class D>
void print_test_accuracy(tg::nn::Module<float, D>& net, const tg::data::Dataset<float>& test_set) {
    const auto t0 = std::chrono::steady_clock::now();
    const double acc = evaluate<D>(net, test_set);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("result: test_accuracy=%.4f epochs=0 seconds=%.1f\n", acc, secs);
}

/// "sgd" (momentum 0.9) or "adam" over the network's parameters.
template <class D = tg::Cpu>
std::unique_ptr<tg::optim::Optimizer<float, D>> make_optimizer(const std::string& name,
                                                               std::vector<tg::Tensor<float, D>> params, double lr) {
    if (name == "adam")
        return std::make_unique<tg::optim::Adam<float, D>>(std::move(params), tg::optim::AdamOptions{.lr = lr});
    return std::make_unique<tg::optim::SGD<float, D>>(std::move(params), tg::optim::SGDOptions{.lr = lr, .momentum = 0.9});
}

struct History {
    std::vector<double> epoch, train_loss, train_acc, test_acc;
    double seconds = 0.0;

    /// Records one epoch's metrics and prints its line.
    void add_epoch(int e, int epochs, double loss, double train_accuracy, double test_accuracy, double secs) {
        epoch.push_back(e);
        train_loss.push_back(loss);
        train_acc.push_back(train_accuracy);
        test_acc.push_back(test_accuracy);
        std::printf("epoch %2d/%d  train_loss %.4f  train_acc %.4f  test_acc %.4f  %.1fs\n", e, epochs, loss,
                    train_accuracy, test_accuracy, secs);
        std::fflush(stdout);
    }
};

/// Trains for `epochs` with cross-entropy, a cosine-decayed learning rate and a seeded shuffling loader;
/// prints one line per epoch (and a live bar on a terminal).
template <class D = tg::Cpu>
History train(tg::nn::Module<float, D>& net, tg::optim::Optimizer<float, D>& opt, const tg::data::Dataset<float>& train_set,
              const tg::data::Dataset<float>& test_set, int epochs, int64_t batch_size, uint64_t seed) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    tg::optim::CosineAnnealingLR schedule(opt, epochs);
    Distributed& dist = Distributed::get();  // under mpirun: this rank's shard, metrics summed over ranks
    auto loader = dist.train_loader(train_set, batch_size, seed);
    History h;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        const auto te = Clock::now();
        ProgressBar bar(epoch, epochs, loader.num_batches(), dist.show_progress());
        double loss_sum = 0.0;
        int64_t correct = 0, seen = 0;
        for (const auto& batch : loader) {
            opt.zero_grad();
            const auto logits = net(tg::to<D>(batch.x));
            const auto loss = tg::nn::cross_entropy(logits, batch.y);
            loss.backward();
            opt.step();

            const auto n = static_cast<int64_t>(batch.y.size());
            const auto loss_value = static_cast<double>(loss.item());
            // Under mpirun a rank that stopped alone would leave the others waiting in their next allreduce:
            // there the summed loss is checked by every rank together at the end of the epoch.
            if (dist.size() == 1) check_loss_finite(loss_value, epoch, batch.index + 1);
            loss_sum += loss_value * static_cast<double>(n);
            correct += static_cast<int64_t>(tg::nn::accuracy(tg::to<tg::Cpu>(logits.detach()), batch.y) *
                                                static_cast<double>(n) + 0.5);
            seen += n;
            bar.update(batch.index + 1, loss_sum / static_cast<double>(seen),
                       static_cast<double>(correct) / static_cast<double>(seen));
        }
        schedule.step();
        seen = static_cast<int64_t>(dist.sum(static_cast<double>(seen)));
        const double epoch_loss = dist.sum(loss_sum) / static_cast<double>(seen);
        check_loss_finite(epoch_loss, epoch, loader.num_batches());
        h.add_epoch(epoch, epochs, epoch_loss,
                    dist.sum(static_cast<double>(correct)) / static_cast<double>(seen), evaluate<D>(net, test_set),
                    std::chrono::duration<double>(Clock::now() - te).count());
    }
    h.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return h;
}

/// Captures a training step once and replays it (a CUDA graph on a GPU): the caller's implementation, so
/// that this header needs no device header. See tapegrad::cuda::Graph.
struct StepGraph {
    virtual ~StepGraph() = default;
    virtual void capture(const std::function<void()>& step) = 0;
    virtual void replay() = 0;
    /// Drops the captured step (before what it uses goes away).
    virtual void reset() = 0;
};

/// The training loop on a device other than the CPU: as `train`, with the batches gathered on the device,
/// the loss summed there, and (with `graph`) each epoch's step captured once and replayed per batch (it is
/// captured again every epoch, because the learning rate changes). The final partial batch of an epoch is
/// dropped (batches have a fixed size on the device). train_acc is the accuracy on the training set after
/// the epoch, not the running accuracy during it.
template <class D>
History train_on_device(tg::nn::Module<float, D>& net, tg::optim::Optimizer<float, D>& opt,
                        const tg::data::Dataset<float>& train_set, const tg::data::Dataset<float>& test_set, int epochs,
                        int64_t batch_size, uint64_t seed, StepGraph* graph) {
    using Clock = std::chrono::steady_clock;
    using B = tg::backend::Ops<D>;
    const auto t0 = Clock::now();
    tg::optim::CosineAnnealingLR schedule(opt, epochs);
    tg::data::DeviceLoader<float, D> loader(train_set, {.batch_size = batch_size, .shuffle = true, .seed = seed});
    const tg::Tensor<float, D> loss_sum = tg::Tensor<float, D>::zeros({});
    const auto step = [&] {
        loader.next();
        opt.zero_grad();
        const auto loss = tg::nn::cross_entropy(net(loader.x()), loader.y());
        loss.backward();
        opt.step();
        B::axpy(int64_t{1}, 1.f, loss.data_ptr(), loss_sum.data_ptr());  // stays on the device
    };
    History h;
    bool stepped = false;  // SGD's first momentum step cannot be captured: it runs eagerly
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        const auto te = Clock::now();
        const int64_t batches = loader.num_batches();
        ProgressBar bar(epoch, epochs, batches);
        loader.start_epoch();
        B::fill(int64_t{1}, 0.f, loss_sum.data_ptr());
        int64_t b = 0;
        if (graph && !stepped) {
            step();
            ++b;
        }
        if (graph) graph->capture(step);  // this epoch's learning rate
        stepped = true;
        for (; b < batches; ++b) {
            if (graph)
                graph->replay();
            else
                step();
            if (bar.enabled() && ((b + 1) % 100 == 0 || b + 1 == batches))  // item() waits for the GPU
                bar.update(b + 1, static_cast<double>(loss_sum.item()) / static_cast<double>(b + 1), -1.0);
        }
        schedule.step();
        const double loss = static_cast<double>(loss_sum.item()) / static_cast<double>(batches);
        check_loss_finite(loss, epoch, batches);  // the sum stays on the device: checked once per epoch
        h.add_epoch(epoch, epochs, loss, evaluate<D>(net, train_set), evaluate<D>(net, test_set),
                    std::chrono::duration<double>(Clock::now() - te).count());
    }
    if (graph) graph->reset();  // it replays on the loader's buffers, which die with this function
    h.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return h;
}

/// `train` on the CPU, `train_on_device` elsewhere (`graph`: see StepGraph; ignored on the CPU).
template <class D>
History train_any(tg::nn::Module<float, D>& net, tg::optim::Optimizer<float, D>& opt,
                  const tg::data::Dataset<float>& train_set, const tg::data::Dataset<float>& test_set, int epochs,
                  int64_t batch_size, uint64_t seed, StepGraph* graph = nullptr) {
    if constexpr (std::is_same_v<D, tg::Cpu>) {
        (void)graph;
        return train<D>(net, opt, train_set, test_set, epochs, batch_size, seed);
    } else {
        return train_on_device<D>(net, opt, train_set, test_set, epochs, batch_size, seed, graph);
    }
}

/// Writes the per-epoch metrics as CSV and/or an SVG plot (empty path: skipped).
inline void write_history(const History& h, const std::string& csv_path, const std::string& svg_path,
                          const std::string& title) {
    if (!Distributed::get().is_main()) return;  // one writer
    if (!csv_path.empty()) {
        std::ofstream csv(csv_path);
        csv << "epoch,train_loss,train_acc,test_acc\n";
        for (size_t i = 0; i < h.epoch.size(); ++i)
            csv << h.epoch[i] << ',' << h.train_loss[i] << ',' << h.train_acc[i] << ',' << h.test_acc[i] << '\n';
        if (!csv) throw tg::FormatError("write_history: cannot write '" + csv_path + "'");
    }
    if (!svg_path.empty()) {
        tg::util::SvgPlot plot({.title = title, .x_label = "epoch", .y_label = "value"});
        plot.add_series("train loss", h.epoch, h.train_loss);
        plot.add_series("train accuracy", h.epoch, h.train_acc);
        plot.add_series("test accuracy", h.epoch, h.test_acc);
        plot.save(svg_path);
    }
}

}  // namespace examples
