// The same workloads as bench/workloads, in LibTorch, written as a LibTorch user would write them
// (torch::nn modules, functional losses, torch::optim::SGD). Same initial weights (copied in from the
// draws of workloads_common.hpp), same order of the images, same flags and output. Built only where CMake
// finds LibTorch (Debian: libtorch-dev); bench/compare.sh runs it against tapegrad.
//
//   build/bench/workloads_libtorch --workload=xor --reps=3 --threads=1
//
// LibTorch's speed depends on the BLAS it loads: Debian's libtorch uses the system libblas.so.3, and the
// OpenMP build of OpenBLAS (libopenblas0-openmp) is the one that matches LibTorch's own OpenMP threads.

#include "workloads_common.hpp"

#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

/// Copies the shared initial weights into `params` (same order, same shapes).
void load_init(const std::vector<torch::Tensor>& params, std::vector<workloads::ParamInit> init) {
    TORCH_CHECK(params.size() == init.size(), "load_init: ", params.size(), " parameters but ", init.size(),
                " initial tensors");
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
        const torch::Tensor src = torch::from_blob(init[i].values.data(), init[i].shape);
        TORCH_CHECK(params[i].sizes() == src.sizes(), "load_init: parameter ", i, " has shape ", params[i].sizes(),
                    ", the initial values ", src.sizes());
        params[i].copy_(src);
    }
}

// ---- xor -----------------------------------------------------------------------------------------------

workloads::Metrics xor_rep(bool warmup) {
    torch::nn::Sequential net(torch::nn::Linear(2, 4), torch::nn::Tanh(), torch::nn::Linear(4, 1),
                              torch::nn::Sigmoid());
    load_init(net->parameters(), workloads::initial_mlp({2, 4, 1}));
    torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(workloads::xor_lr));
    const torch::Tensor x = torch::tensor({0.f, 0.f, 0.f, 1.f, 1.f, 0.f, 1.f, 1.f}).reshape({4, 2});
    const torch::Tensor y = torch::tensor({0.f, 1.f, 1.f, 0.f}).reshape({4, 1});
    torch::Tensor loss;
    double loss_1k = -1;
    const auto block = [&] {
        for (int i = 0; i < workloads::xor_block; ++i) {
            opt.zero_grad();
            loss = torch::binary_cross_entropy(net->forward(x), y);
            loss.backward();
            opt.step();
        }
        if (loss_1k < 0) loss_1k = loss.item<double>();
    };
    const double secs = workloads::seconds_per_block(block, warmup ? 0.1 : workloads::min_rep_seconds);
    return {{"us_per_step", secs / workloads::xor_block * 1e6}, {"loss_1k", loss_1k}};
}

// ---- op_chain ------------------------------------------------------------------------------------------

workloads::Metrics op_chain_rep(bool warmup) {
    const torch::Tensor w = torch::full({1}, workloads::chain_w, torch::requires_grad());
    const torch::Tensor b = torch::full({1}, workloads::chain_b, torch::requires_grad());
    const torch::Tensor x = torch::full({1}, workloads::chain_x);
    const auto block = [&] {
        for (int i = 0; i < workloads::chain_block; ++i) {
            for (const torch::Tensor& p : {w, b})
                if (p.grad().defined()) p.mutable_grad().zero_();
            torch::Tensor h = x;
            for (int k = 0; k < workloads::chain_links; ++k) h = torch::tanh(h * w + b);
            h.sum().backward();
        }
    };
    const double secs = workloads::seconds_per_block(block, warmup ? 0.1 : workloads::min_rep_seconds);
    return {{"fwdbwd_ns_per_op", secs / (workloads::chain_block * workloads::chain_links) * 1e9}};
}

// ---- MNIST ---------------------------------------------------------------------------------------------

torch::nn::Sequential build_mlp(const std::vector<int64_t>& sizes) {
    torch::nn::Sequential net;
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
        net->push_back(torch::nn::Linear(sizes[i], sizes[i + 1]));
        if (i + 2 < sizes.size()) net->push_back(torch::nn::ReLU());
    }
    return net;
}

/// LeNet-5 with ReLU and max pooling. x: [N, 1, 28, 28] -> [N, 10].
torch::nn::Sequential build_lenet() {
    namespace tn = torch::nn;
    tn::Sequential net(tn::Conv2d(tn::Conv2dOptions(1, 6, 5).padding(2)), tn::ReLU(), tn::MaxPool2d(2),
                       tn::Conv2d(tn::Conv2dOptions(6, 16, 5)), tn::ReLU(), tn::MaxPool2d(2), tn::Flatten());
    net->extend(*build_mlp(workloads::mnist_spec("cnn").sizes));
    return net;
}

/// The features of a dataset as a tensor sharing its memory, and its labels.
struct TorchData {
    torch::Tensor x, y;
};
TorchData as_torch(const tapegrad::data::Dataset<float>& ds) {
    const std::vector<int64_t> shape = ds.features.shape().to_vector();
    return {torch::from_blob(ds.features.data(), shape),
            torch::tensor(ds.labels, torch::kInt64)};
}

double evaluate(torch::nn::Sequential& net, const TorchData& test) {
    torch::NoGradGuard no_grad;
    net->eval();
    const int64_t n = test.x.size(0);
    int64_t correct = 0;
    for (int64_t start = 0; start < n; start += workloads::eval_batch) {
        const int64_t count = std::min(workloads::eval_batch, n - start);
        const torch::Tensor logits = net->forward(test.x.narrow(0, start, count));
        correct += logits.argmax(1).eq(test.y.narrow(0, start, count)).sum().item<int64_t>();
    }
    net->train();
    return static_cast<double>(correct) / static_cast<double>(n);
}

workloads::Metrics mnist_rep(const std::string& workload, const TorchData& train, const TorchData& test,
                             bool warmup) {
    const workloads::MnistSpec spec = workloads::mnist_spec(workload);
    const bool cnn = workload == "cnn";
    torch::nn::Sequential net = cnn ? build_lenet() : build_mlp(spec.sizes);
    load_init(net->parameters(), cnn ? workloads::initial_cnn() : workloads::initial_mlp(spec.sizes));
    torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(spec.lr).momentum(spec.momentum));
    const int64_t n = spec.train_count, per = train.x[0].numel();
    const std::vector<int64_t> order = workloads::epoch_order(n, workloads::shuffle_seed);
    const float* images = train.x.data_ptr<float>();
    const int64_t* labels = train.y.data_ptr<int64_t>();
    std::vector<int64_t> batch_shape = train.x.sizes().vec();
    int64_t steps = 0;
    const auto t0 = workloads::Clock::now();
    for (int64_t start = 0; start < n; start += spec.batch) {
        const int64_t count = std::min(spec.batch, n - start);
        batch_shape[0] = count;
        const torch::Tensor xb = torch::empty(batch_shape);  // the gather, as a DataLoader does it
        const torch::Tensor yb = torch::empty({count}, torch::kInt64);
        float* xd = xb.data_ptr<float>();
        int64_t* yd = yb.data_ptr<int64_t>();
        for (int64_t r = 0; r < count; ++r) {
            const int64_t k = order[static_cast<size_t>(start + r)];
            std::memcpy(xd + r * per, images + k * per, static_cast<size_t>(per) * sizeof(float));
            yd[r] = labels[k];
        }
        opt.zero_grad();
        const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(xb), yb);
        loss.backward();
        opt.step();
        if (warmup && ++steps == workloads::warmup_steps) return {};
    }
    const double secs = workloads::seconds_since(t0);
    return workloads::epoch_metrics(secs, n, evaluate(net, test));
}

// ---- character-level LSTM language model ---------------------------------------------------------------

/// Embedding(V, E) -> LSTM(E, H, batch_first) -> Linear(H, V), as bench/workloads' lstm_rep.
workloads::Metrics lstm_rep(const std::string& workload, bool warmup) {
    const workloads::LstmSpec s = workloads::lstm_spec(workload);
    torch::nn::Embedding emb(s.V, s.E);
    torch::nn::LSTM lstm(torch::nn::LSTMOptions(s.E, s.H).batch_first(true));
    torch::nn::Linear fc(s.H, s.V);
    std::vector<torch::Tensor> params = emb->parameters();
    for (const auto& p : lstm->parameters()) params.push_back(p);
    for (const auto& p : fc->parameters()) params.push_back(p);
    load_init(params, workloads::initial_lstm(s));
    torch::optim::Adam opt(params, torch::optim::AdamOptions(workloads::lstm_lr));
    const int steps = workloads::lstm_warmup_steps + workloads::lstm_timed_steps;
    const std::vector<int64_t> tokens = workloads::lstm_tokens(s, steps);
    std::vector<int64_t> inputs, targets;
    float last = 0;
    const auto step = [&](int i) {
        workloads::lstm_batch(s, tokens, i, inputs, targets);
        const torch::Tensor x = torch::from_blob(inputs.data(), {s.B, s.T}, torch::kInt64);
        const torch::Tensor y = torch::from_blob(targets.data(), {s.B * s.T}, torch::kInt64);
        opt.zero_grad();
        const torch::Tensor out = std::get<0>(lstm->forward(emb->forward(x)));
        const torch::Tensor logits = fc->forward(out).reshape({s.B * s.T, s.V});
        const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
        loss.backward();
        torch::nn::utils::clip_grad_norm_(params, workloads::lstm_clip);
        opt.step();
        last = loss.item<float>();
    };
    for (int i = 0; i < workloads::lstm_warmup_steps; ++i) step(i);
    if (warmup) return {};
    const auto t0 = workloads::Clock::now();
    for (int i = workloads::lstm_warmup_steps; i < steps; ++i) step(i);
    return workloads::lstm_metrics(workloads::seconds_since(t0), last);
}

void run(const workloads::Config& cfg) {
    const auto& w = cfg.workload;
    if (w == "xor") return workloads::repeat("libtorch", cfg, xor_rep);
    if (w == "op_chain") return workloads::repeat("libtorch", cfg, op_chain_rep);
    if (w == "lstm_s" || w == "lstm_l")
        return workloads::repeat("libtorch", cfg, [&](bool warmup) { return lstm_rep(w, warmup); });
    const auto mnist = workloads::load_mnist(cfg, /*flatten=*/w != "cnn");
    const TorchData train = as_torch(mnist.train), test = as_torch(mnist.test);
    workloads::repeat("libtorch", cfg, [&](bool warmup) { return mnist_rep(w, train, test, warmup); });
}

}  // namespace

int main(int argc, char** argv) {
    workloads::Config cfg;
    CLI::App app{"LibTorch workloads: xor, op_chain, mlp_s, mlp_l, cnn, lstm_s, lstm_l"};
    workloads::add_flags(app, cfg);
    CLI11_PARSE(app, argc, argv);
    try {
        if (cfg.threads > 0) at::set_num_threads(cfg.threads);  // 0: LibTorch's default
        torch::manual_seed(static_cast<uint64_t>(workloads::init_seed));
        run(cfg);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "workloads_libtorch: %s\n", e.what());
        return 1;
    }
}
