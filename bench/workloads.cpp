// Whole workloads timed end to end in tapegrad, the way a user writes them (Sequential, the loss, backward,
// SGD, DataLoader), to set against workloads_libtorch (LibTorch) and workloads_eigen (the hand-written
// floor). bench/compare.sh runs all three and tabulates them.
//
//   build/bench/workloads --workload=mlp_s --reps=3 --threads=1
//   build/bench/workloads --workload=mlp_l --reps=3 --threads=0     (0: tapegrad's default thread policy)
//
// Workloads and their metrics (see workloads_common.hpp for the settings):
//   xor       2-4-1 tanh/sigmoid net, BCE, SGD lr 0.5, the full batch of 4        us_per_step, loss_1k
//   op_chain  h = tanh(h * w + b) on 1-element tensors, 100 links, then backward  fwdbwd_ns_per_op (per link)
//   mlp_s     784-128-10 ReLU, cross-entropy, SGD 0.1, batch 64, one epoch        epoch_s, samples_per_s,
//   mlp_l     784-512-256-10 ReLU, SGD 0.05 momentum 0.9, batch 128, one epoch      test_acc (after the
//   cnn       LeNet-5, SGD 0.05 momentum 0.9, batch 64, first 20,000 images         timed epoch)
//   lstm_s    character LM step: Embedding -> LSTM (batch_first) -> Linear,           ms_per_step, loss_end
//   lstm_l    cross-entropy over B*T, Adam 1e-3, clip_grad_norm_ 1.0 (sizes in workloads_common.hpp)
// loss_1k is the training loss after the first 1000 xor steps: with identical initial weights it should
// agree between the frameworks.

#include "blas_trap.hpp"
#include "workloads_common.hpp"

#include <tapegrad/tapegrad.hpp>

#include <CLI/CLI.hpp>
#include <Eigen/Core>

#include <cstdio>
#include <memory>
#include <string>

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::TensorF;

namespace {

// ---- xor -----------------------------------------------------------------------------------------------

workloads::Metrics xor_rep(bool warmup) {
    tg::Generator gen(workloads::init_seed);
    nn::Sequential<float> net{nn::Linear<float>(2, 4, gen), nn::Tanh<float>(), nn::Linear<float>(4, 1, gen),
                              nn::Sigmoid<float>()};
    tg::optim::SGD<float> opt(net.parameters(), {.lr = workloads::xor_lr});
    const TensorF x = TensorF::from({4, 2}, {0, 0, 0, 1, 1, 0, 1, 1});
    const TensorF y = TensorF::from({4, 1}, {0, 1, 1, 0});
    TensorF loss;
    double loss_1k = -1;
    const auto block = [&] {
        for (int i = 0; i < workloads::xor_block; ++i) {
            opt.zero_grad();
            loss = nn::bce_loss(net(x), y);
            loss.backward();
            opt.step();
        }
        if (loss_1k < 0) loss_1k = loss.item();
    };
    const double secs = workloads::seconds_per_block(block, warmup ? 0.1 : workloads::min_rep_seconds);
    return {{"us_per_step", secs / workloads::xor_block * 1e6}, {"loss_1k", loss_1k}};
}

// ---- op_chain ------------------------------------------------------------------------------------------

workloads::Metrics op_chain_rep(bool warmup) {
    TensorF w = TensorF::full({1}, workloads::chain_w).requires_grad_();
    TensorF b = TensorF::full({1}, workloads::chain_b).requires_grad_();
    const TensorF x = TensorF::full({1}, workloads::chain_x);
    const auto block = [&] {
        for (int i = 0; i < workloads::chain_block; ++i) {
            w.zero_grad();
            b.zero_grad();
            TensorF h = x;
            for (int k = 0; k < workloads::chain_links; ++k) h = tg::tanh(h * w + b);
            tg::sum(h).backward();
        }
    };
    const double secs = workloads::seconds_per_block(block, warmup ? 0.1 : workloads::min_rep_seconds);
    return {{"fwdbwd_ns_per_op", secs / (workloads::chain_block * workloads::chain_links) * 1e9}};
}

// ---- MNIST ---------------------------------------------------------------------------------------------

std::shared_ptr<nn::Sequential<float>> build_mlp(const std::vector<int64_t>& sizes, tg::Generator& gen) {
    auto net = std::make_shared<nn::Sequential<float>>();
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
        net->push_back(nn::Linear<float>(sizes[i], sizes[i + 1], gen));
        if (i + 2 < sizes.size()) net->push_back(nn::ReLU<float>());
    }
    return net;
}

/// LeNet-5 with ReLU and max pooling. x: [N, 1, 28, 28] -> [N, 10].
std::shared_ptr<nn::Sequential<float>> build_lenet(tg::Generator& gen) {
    auto net = std::make_shared<nn::Sequential<float>>();
    net->push_back(nn::Conv2d<float>(1, 6, 5, {.padding = 2}, gen));  // [N, 6, 28, 28]
    net->push_back(nn::ReLU<float>());
    net->push_back(nn::MaxPool2d<float>(2));                           // [N, 6, 14, 14]
    net->push_back(nn::Conv2d<float>(6, 16, 5, {}, gen));             // [N, 16, 10, 10]
    net->push_back(nn::ReLU<float>());
    net->push_back(nn::MaxPool2d<float>(2));                           // [N, 16, 5, 5]
    net->push_back(nn::Flatten<float>());                              // [N, 400]
    const auto dense = build_mlp(workloads::mnist_spec("cnn").sizes, gen);
    for (size_t i = 0; i < dense->size(); ++i) net->push_back((*dense)[i]);
    return net;
}

double evaluate(nn::Module<float>& net, const tg::data::Dataset<float>& ds) {
    tg::NoGradGuard no_grad;
    net.eval();
    tg::data::DataLoader<float> loader(ds, {.batch_size = workloads::eval_batch, .shuffle = false});
    double correct = 0;
    for (const auto& batch : loader)
        correct += nn::accuracy(net(batch.x), batch.y) * static_cast<double>(batch.y.size());
    net.train();
    return correct / static_cast<double>(ds.size());
}

workloads::Metrics mnist_rep(const std::string& workload, const tg::data::Dataset<float>& train,
                             const tg::data::Dataset<float>& test, bool warmup) {
    const workloads::MnistSpec spec = workloads::mnist_spec(workload);
    tg::Generator gen(workloads::init_seed);
    const auto net = workload == "cnn" ? build_lenet(gen) : build_mlp(spec.sizes, gen);
    tg::optim::SGD<float> opt(net->parameters(), {.lr = spec.lr, .momentum = spec.momentum});
    tg::data::DataLoader<float> loader(train,
                                       {.batch_size = spec.batch, .shuffle = true, .seed = workloads::shuffle_seed});
    int64_t steps = 0;
    const auto t0 = workloads::Clock::now();
    for (const auto& batch : loader) {
        opt.zero_grad();
        const TensorF loss = nn::cross_entropy((*net)(batch.x), batch.y);
        loss.backward();
        opt.step();
        if (warmup && ++steps == workloads::warmup_steps) return {};
    }
    const double secs = workloads::seconds_since(t0);
    return workloads::epoch_metrics(secs, train.size(), evaluate(*net, test));
}

// ---- character-level LSTM language model ---------------------------------------------------------------

/// Embedding(V, E) -> LSTM(E, H, batch_first) -> Linear(H, V), one training step per batch of the token
/// stream: 5 untimed steps, then ms_per_step over 40.
workloads::Metrics lstm_rep(const std::string& workload, bool warmup) {
    const workloads::LstmSpec s = workloads::lstm_spec(workload);
    const auto init = workloads::initial_lstm(s);
    tg::Generator gen(workloads::init_seed);
    nn::Embedding<float> emb(s.V, s.E, gen);
    nn::LSTM<float> lstm(s.E, s.H, gen, {.batch_first = true});
    nn::Linear<float> fc(s.H, s.V, gen);
    std::vector<TensorF> params = emb.parameters();
    for (const TensorF& p : lstm.parameters()) params.push_back(p);
    for (const TensorF& p : fc.parameters()) params.push_back(p);
    for (size_t i = 0; i < params.size(); ++i)
        std::copy(init[i].values.begin(), init[i].values.end(), params[i].data());
    tg::optim::Adam<float> opt(params, {.lr = workloads::lstm_lr});
    const int steps = workloads::lstm_warmup_steps + workloads::lstm_timed_steps;
    const std::vector<int64_t> tokens = workloads::lstm_tokens(s, steps);
    std::vector<int64_t> inputs, targets;
    tg::TensorL ids = tg::TensorL::zeros({s.B, s.T});
    float last = 0;
    const auto step = [&](int i) {
        workloads::lstm_batch(s, tokens, i, inputs, targets);
        std::copy(inputs.begin(), inputs.end(), ids.data());
        opt.zero_grad();
        const TensorF logits = fc(lstm(emb(ids))).reshape({s.B * s.T, s.V});
        const TensorF loss = nn::cross_entropy(logits, targets);
        loss.backward();
        tg::optim::clip_grad_norm_(params, workloads::lstm_clip);
        opt.step();
        last = loss.item();
    };
    for (int i = 0; i < workloads::lstm_warmup_steps; ++i) step(i);
    if (warmup) return {};
    const auto t0 = workloads::Clock::now();
    for (int i = workloads::lstm_warmup_steps; i < steps; ++i) step(i);
    return workloads::lstm_metrics(workloads::seconds_since(t0), last);
}

void run(const workloads::Config& cfg) {
    const auto& w = cfg.workload;
    if (w == "xor") return workloads::repeat("tapegrad", cfg, xor_rep);
    if (w == "op_chain") return workloads::repeat("tapegrad", cfg, op_chain_rep);
    if (w == "lstm_s" || w == "lstm_l")
        return workloads::repeat("tapegrad", cfg, [&](bool warmup) { return lstm_rep(w, warmup); });
    auto mnist = workloads::load_mnist(cfg, /*flatten=*/w != "cnn");
    const auto count = workloads::mnist_spec(w).train_count;
    if (count < mnist.train.size()) {
        std::vector<int64_t> first(static_cast<size_t>(count));
        std::iota(first.begin(), first.end(), int64_t{0});
        mnist.train = mnist.train.subset(first);
    }
    workloads::repeat("tapegrad", cfg, [&](bool warmup) { return mnist_rep(w, mnist.train, mnist.test, warmup); });
}

}  // namespace

int main(int argc, char** argv) {
    workloads::Config cfg;
    CLI::App app{"tapegrad workloads: xor, op_chain, mlp_s, mlp_l, cnn, lstm_s, lstm_l"};
    workloads::add_flags(app, cfg);
    bool simulate_trap = false;
    app.add_flag("--simulate-blas-trap", simulate_trap,
                 "Switch OpenBLAS to its generic Prescott kernels (what it runs on a CPU it does not know), then "
                 "let tapegrad's kernel check choose again (bench/blas_configs.sh)");
    CLI11_PARSE(app, argc, argv);
    try {
        tg::set_num_threads(cfg.threads);  // 0: the library's default
        std::fprintf(stderr, "%s\n", tg::blas_info().c_str());
        if (simulate_trap) std::fprintf(stderr, "simulated trap: %s\n", workloads::simulate_blas_trap().c_str());
        run(cfg);
        return 0;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "workloads: %s\n", e.what());
        return 1;
    }
}
