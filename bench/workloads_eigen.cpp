// The floor: mlp_s and mlp_l trained with a hand-written forward and backward on plain Eigen matrices, no
// autograd, no tensors, every buffer allocated once. Same initial weights, same order of the images, same
// flags and output as bench/workloads (see workloads_common.hpp); the other workloads print "unavailable".
//
//   build/bench/workloads_eigen --workload=mlp_l --reps=3 --threads=2
//
// For a dense network with layers l = 1..L, ReLU between them and softmax cross-entropy on top, a batch
// X [B, in] (a_0 = X):
//   forward   z_l = a_{l-1} W_l^T + b_l,  a_l = relu(z_l) (l < L),  p = softmax(z_L) row-wise
//   backward  g_L = (p - onehot(y)) / B
//             dW_l = g_l^T a_{l-1},  db_l = column sums of g_l,  g_{l-1} = (g_l W_l) * [a_{l-1} > 0]
//   SGD       v = g (first step), v = mu v + g (later steps); W -= lr v   (mu = 0: W -= lr g)

#include "eigen_mlp.hpp"
#include "workloads_common.hpp"

#include <CLI/CLI.hpp>
#include <Eigen/Core>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <vector>

namespace {

using eigen_floor::Mat;
using eigen_floor::Mlp;
using eigen_floor::RowVec;
using ConstMap = Eigen::Map<const Mat>;

/// The network with the initial values the workloads share.
Mlp make_mlp(const std::vector<int64_t>& sizes, const std::vector<workloads::ParamInit>& init) {
    Mlp net(sizes);
    for (size_t l = 0; l < net.num_layers(); ++l) {
        eigen_floor::Dense& d = net.layer(l);
        d.w = ConstMap(init[2 * l].values.data(), sizes[l + 1], sizes[l]);
        d.b = Eigen::Map<const RowVec>(init[2 * l + 1].values.data(), sizes[l + 1]);
    }
    return net;
}

double evaluate(Mlp& net, const tapegrad::data::Dataset<float>& test) {
    const int64_t n = test.size(), in = test.sample_shape().numel();
    int64_t correct = 0;
    for (int64_t start = 0; start < n; start += workloads::eval_batch) {
        const int64_t count = std::min(workloads::eval_batch, n - start);
        const Mat& logits = net.forward(ConstMap(test.features.data() + start * in, count, in));
        for (int64_t r = 0; r < count; ++r) {
            Eigen::Index best = 0;
            logits.row(r).maxCoeff(&best);  // the first maximum, as tapegrad's accuracy
            correct += best == test.labels[static_cast<size_t>(start + r)];
        }
    }
    return static_cast<double>(correct) / static_cast<double>(n);
}

workloads::Metrics mlp_rep(const std::string& workload, const tapegrad::data::MnistDatasets<float>& mnist,
                           bool warmup) {
    const workloads::MnistSpec spec = workloads::mnist_spec(workload);
    Mlp net = make_mlp(spec.sizes, workloads::initial_mlp(spec.sizes));
    const int64_t n = spec.train_count, in = spec.sizes.front();
    const ConstMap images(mnist.train.features.data(), mnist.train.size(), in);
    const std::vector<int64_t> order = workloads::epoch_order(n, workloads::shuffle_seed);
    const auto lr = static_cast<float>(spec.lr), mu = static_cast<float>(spec.momentum);
    Mat x;
    std::vector<int64_t> labels;
    int64_t steps = 0;
    const auto t0 = workloads::Clock::now();
    for (int64_t start = 0; start < n; start += spec.batch) {
        const int64_t count = std::min(spec.batch, n - start);
        x.resize(count, in);  // the gather, as a DataLoader does it
        labels.resize(static_cast<size_t>(count));
        for (int64_t r = 0; r < count; ++r) {
            const int64_t k = order[static_cast<size_t>(start + r)];
            x.row(r) = images.row(k);
            labels[static_cast<size_t>(r)] = mnist.train.labels[static_cast<size_t>(k)];
        }
        net.forward(x);
        net.backward(x, labels);
        net.step(lr, mu);
        if (warmup && ++steps == workloads::warmup_steps) return {};
    }
    const double secs = workloads::seconds_since(t0);
    return workloads::epoch_metrics(secs, n, evaluate(net, mnist.test));
}

}  // namespace

int main(int argc, char** argv) {
    workloads::Config cfg;
    CLI::App app{"Hand-written Eigen workloads (the floor): mlp_s, mlp_l"};
    workloads::add_flags(app, cfg);
    CLI11_PARSE(app, argc, argv);
    try {
        workloads::set_threads(cfg.threads);
        if (cfg.workload != "mlp_s" && cfg.workload != "mlp_l") {
            workloads::print_unavailable("eigen", cfg, "only mlp_s and mlp_l are written by hand");
            return 0;
        }
        const auto mnist = workloads::load_mnist(cfg, /*flatten=*/true);
        workloads::repeat("eigen", cfg, [&](bool warmup) { return mlp_rep(cfg.workload, mnist, warmup); });
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "workloads_eigen: %s\n", e.what());
        return 1;
    }
}
