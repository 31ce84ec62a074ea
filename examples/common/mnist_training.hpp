#pragma once
// The training loop shared by mnist_mlp and mnist_cnn (not part of the library): the lecture's loop --
// zero_grad, forward, loss, backward, step -- with progress, per-epoch evaluation and the metrics files.
// Templated on the device D: the loader's batches are built on the host and copied with to<D>; the logits
// come back with to<Cpu> for the accuracy (a no-op on the CPU).

#include "progress.hpp"

#include <tapegrad/data/dataset.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/nn/metrics.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/transfer.hpp>
#include <tapegrad/optim/optim.hpp>
#include <tapegrad/util/svg_plot.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace examples {

namespace tg = tapegrad;

/// Accuracy of `net` on a whole dataset, evaluated in batches of 1000 without recording.
template <class D = tg::Cpu>
double evaluate(tg::nn::Module<float, D>& net, const tg::data::Dataset<float>& ds) {
    tg::NoGradGuard no_grad;
    net.eval();
    tg::data::DataLoader<float> loader(ds, {.batch_size = 1000, .shuffle = false});
    int64_t correct = 0;
    for (const auto& batch : loader) {
        const auto logits = tg::to<tg::Cpu>(net(tg::to<D>(batch.x)));
        correct += static_cast<int64_t>(tg::nn::accuracy(logits, batch.y) * static_cast<double>(batch.y.size()) + 0.5);
    }
    net.train();
    return static_cast<double>(correct) / static_cast<double>(ds.size());
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
};

/// Trains for `epochs` with cross-entropy, a cosine-decayed learning rate and a seeded shuffling loader;
/// prints one line per epoch (and a live bar on a terminal).
template <class D = tg::Cpu>
History train(tg::nn::Module<float, D>& net, tg::optim::Optimizer<float, D>& opt, const tg::data::Dataset<float>& train_set,
              const tg::data::Dataset<float>& test_set, int epochs, int64_t batch_size, uint64_t seed) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    tg::optim::CosineAnnealingLR schedule(opt, epochs);
    tg::data::DataLoader<float> loader(train_set, {.batch_size = batch_size, .shuffle = true, .seed = seed});
    History h;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        const auto te = Clock::now();
        ProgressBar bar(epoch, epochs, loader.num_batches());
        double loss_sum = 0.0;
        int64_t correct = 0, seen = 0;
        for (const auto& batch : loader) {
            opt.zero_grad();
            const auto logits = net(tg::to<D>(batch.x));
            const auto loss = tg::nn::cross_entropy(logits, batch.y);
            loss.backward();
            opt.step();

            const auto n = static_cast<int64_t>(batch.y.size());
            loss_sum += static_cast<double>(loss.item()) * static_cast<double>(n);
            correct += static_cast<int64_t>(tg::nn::accuracy(tg::to<tg::Cpu>(logits.detach()), batch.y) *
                                                static_cast<double>(n) + 0.5);
            seen += n;
            bar.update(batch.index + 1, loss_sum / static_cast<double>(seen),
                       static_cast<double>(correct) / static_cast<double>(seen));
        }
        schedule.step();
        h.epoch.push_back(epoch);
        h.train_loss.push_back(loss_sum / static_cast<double>(seen));
        h.train_acc.push_back(static_cast<double>(correct) / static_cast<double>(seen));
        h.test_acc.push_back(evaluate<D>(net, test_set));
        const double secs = std::chrono::duration<double>(Clock::now() - te).count();
        std::printf("epoch %2d/%d  train_loss %.4f  train_acc %.4f  test_acc %.4f  %.1fs\n", epoch, epochs,
                    h.train_loss.back(), h.train_acc.back(), h.test_acc.back(), secs);
        std::fflush(stdout);
    }
    h.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return h;
}

/// Writes the per-epoch metrics as CSV and/or an SVG plot (empty path: skipped).
inline void write_history(const History& h, const std::string& csv_path, const std::string& svg_path,
                          const std::string& title) {
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
