// The char_lm lesson's LSTM in LibTorch: the same corpus and split (examples/common/fortunes.hpp), the same
// model (Embedding(V, E) -> LSTM(E, H, layers) -> Linear(H, V)), the same truncated-BPTT schedule (B streams,
// T steps, the state carried and detached), Adam, gradient clipping and validation bits per character, so
// the lesson's closing note can put the two side by side:
//
//   build/bench/char_lm_libtorch --hidden 256 --threads 2
//   build/examples/char_lm --cell lstm --hidden 256 --threads 2
//
// Built only where LibTorch is found (TAPEGRAD_BENCH_LIBTORCH=ON, like workloads_libtorch). The initial
// weights differ (each framework draws its own, from the same distributions), so the runs agree in
// distribution, not bit for bit.

#include "../examples/common/fortunes.hpp"

#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <numbers>
#include <string>
#include <vector>

namespace {

struct CharLMImpl : torch::nn::Module {
    CharLMImpl(int64_t vocab, int64_t embed, int64_t hidden, int64_t layers)
        : embedding(register_module("embedding", torch::nn::Embedding(vocab, embed))),
          lstm(register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(embed, hidden).num_layers(layers).batch_first(true)))),
          head(register_module("head", torch::nn::Linear(hidden, vocab))) {}

    /// tokens [B, T] -> logits [B * T, V]; `state` (h, c) is read and replaced.
    torch::Tensor forward(const torch::Tensor& tokens, std::tuple<torch::Tensor, torch::Tensor>& state) {
        auto [out, next] = lstm->forward(embedding->forward(tokens), state);
        state = next;
        return head->forward(out.reshape({-1, out.size(2)}));
    }

    torch::nn::Embedding embedding;
    torch::nn::LSTM lstm;
    torch::nn::Linear head;
};
TORCH_MODULE(CharLM);

torch::Tensor as_tensor(const std::vector<int64_t>& v, int64_t B, int64_t T) {
    return torch::from_blob(const_cast<int64_t*>(v.data()), {B, T}, torch::kInt64).clone();
}

}  // namespace

int main(int argc, char** argv) {
    int64_t hidden = 256, embed = 64, layers = 1, batch = 32, steps = 64, max_steps = 0;
    int epochs = 1, threads = 0;
    double lr = 2e-3, clip = 1.0;
    uint64_t seed = 1;
    std::string data_dir = "/usr/share/games/fortunes";
    CLI::App app{"The char_lm lesson's LSTM and schedule in LibTorch"};
    app.add_option("--hidden", hidden)->capture_default_str();
    app.add_option("--embed", embed)->capture_default_str();
    app.add_option("--layers", layers)->capture_default_str();
    app.add_option("--batch-size", batch)->capture_default_str();
    app.add_option("--bptt", steps)->capture_default_str();
    app.add_option("--epochs", epochs)->capture_default_str();
    app.add_option("--max-steps", max_steps, "Stop each epoch after this many steps (0: the whole text)")->capture_default_str();
    app.add_option("--lr", lr)->capture_default_str();
    app.add_option("--clip", clip)->capture_default_str();
    app.add_option("--seed", seed)->capture_default_str();
    app.add_option("--threads", threads, "torch::set_num_threads (0: LibTorch's default)")->capture_default_str();
    app.add_option("--data", data_dir)->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    try {
        if (threads > 0) torch::set_num_threads(threads);
        torch::manual_seed(seed);
        const auto start = std::chrono::steady_clock::now();
        const examples::Corpus corpus = examples::read_fortunes(data_dir);
        const std::vector<int64_t> train = corpus.encode(corpus.train), val = corpus.encode(corpus.val);
        CharLM model(corpus.vocab_size(), embed, hidden, layers);
        torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(lr));
        int64_t batches = examples::tbptt_batches(static_cast<int64_t>(train.size()), batch, steps);
        if (max_steps > 0) batches = std::min(batches, max_steps);
        std::printf("LibTorch %s LSTM H = %lld: %lld steps of %lld x %lld characters per epoch, %d threads\n",
                    TORCH_VERSION, static_cast<long long>(hidden), static_cast<long long>(batches),
                    static_cast<long long>(batch), static_cast<long long>(steps), torch::get_num_threads());
        std::vector<int64_t> in, target;
        double val_bpc = 0;
        const auto zero_state = [&](int64_t b) {
            return std::tuple<torch::Tensor, torch::Tensor>{torch::zeros({layers, b, hidden}), torch::zeros({layers, b, hidden})};
        };
        for (int epoch = 1; epoch <= epochs; ++epoch) {
            auto state = zero_state(batch);
            double loss_sum = 0;
            for (int64_t k = 0; k < batches; ++k) {
                examples::tbptt_batch(train, batch, steps, k, in, target);
                state = {std::get<0>(state).detach(), std::get<1>(state).detach()};
                opt.zero_grad();
                const torch::Tensor loss =
                    torch::nn::functional::cross_entropy(model->forward(as_tensor(in, batch, steps), state), as_tensor(target, batch, steps).reshape({-1}));
                loss.backward();
                if (clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), clip);
                opt.step();
                loss_sum += loss.item<double>();
            }
            {
                torch::NoGradGuard no_grad;
                auto vs = zero_state(batch);
                const int64_t vb = examples::tbptt_batches(static_cast<int64_t>(val.size()), batch, steps);
                double sum = 0;
                for (int64_t k = 0; k < vb; ++k) {
                    examples::tbptt_batch(val, batch, steps, k, in, target);
                    sum += torch::nn::functional::cross_entropy(model->forward(as_tensor(in, batch, steps), vs),
                                                                as_tensor(target, batch, steps).reshape({-1}))
                               .item<double>();
                }
                val_bpc = sum / static_cast<double>(vb) / std::numbers::ln2;
            }
            std::printf("epoch %d  train %.3f bpc  validation %.3f bpc  %.1f s\n", epoch,
                        loss_sum / static_cast<double>(batches) / std::numbers::ln2, val_bpc,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("result: val_bpc=%.4f epochs=%d seconds=%.1f cell=lstm framework=libtorch\n", val_bpc, epochs, secs);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "char_lm_libtorch: %s\n", e.what());
        return 1;
    }
}
