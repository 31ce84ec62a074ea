// Lesson 8: a character-level language model, and why recurrent networks need gates.
//
//   build/examples/char_lm                                 (LSTM, H = 256, one pass over the training text)
//   build/examples/char_lm --cell rnn                      (the same budget with a plain tanh RNN; also gru)
//   build/examples/char_lm --max-steps 300 --temperature 0.8 --grad-csv grads.csv --grad-svg grads.svg
//
// The data: Debian's fortune files (about 2.6 MB of quotations; examples/common/fortunes.hpp), one byte per
// character, 5% of the quotations held out for validation. The model reads the text one character at a
// time and, at every position, gives the probabilities of the next character:
//     x_t = embed(c_t)    h_t = cell(x_t, h_{t-1})    p(c_{t+1} | c_1..c_t) = softmax(W h_t + b)
// trained with the cross-entropy of the next character, reported in bits per character (bpc = loss / ln 2;
// a uniform guess over the ~100 byte values costs 6.6 bpc, a good model of English about 1.5).
//
// The recurrent layer is the library's nn::RNN, nn::LSTM or nn::GRU (PyTorch's layouts, one fused op per
// layer over all time steps); examples/common/recurrent.hpp spells out the same cell equations with
// elementary ops, as the seq2seq lesson's decoder uses them one step at a time.
//
// Truncated backpropagation through time (TBPTT). The text is cut into B = 32 streams read side by side;
// each training step unrolls the network over the next T = 64 characters of every stream, backpropagates
// through those 64 steps and updates. The state h is carried on to the next step (the model remembers the
// text before), but detached: gradients stop at the step boundary, so the cost of a step does not grow with
// the text. Gradient clipping (norm 1) bounds the occasional huge gradient of a recurrent network.
//
// Why gates. A plain RNN, h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), multiplies the gradient by
// W_hh^T diag(tanh') at every step back in time: like the saturated sigmoids of lesson 3, the factors are
// mostly below 1 and the gradient from a character k steps back shrinks geometrically (vanishing
// gradients), so the RNN learns short-range statistics only. An LSTM keeps a cell c_t = f c_{t-1} + i g:
// along c the gradient is multiplied by the forget gate f, which the network can hold near 1 to remember.
// A GRU does the same with h_t = n + z (h_{t-1} - n). --grad-svg draws ||d loss_t / d x_{t-k}|| against the
// distance k for the trained model(s) (log scale): the RNN's line falls far faster than the LSTM's.
//
// Measured (README, "Lesson 8's closing note": --hidden 128 --max-steps 1000, seed 1): validation 2.839 bpc for
// the RNN, 2.858 for the LSTM, 2.684 for the GRU, and 2.872 for the same LSTM and schedule in LibTorch
// (bench/char_lm_libtorch.cpp, which reads the same text through examples/common/fortunes.hpp).

#include "common/cli.hpp"
#include "common/fortunes.hpp"
#include "common/progress.hpp"
#include "common/recurrent.hpp"

#include <tapegrad/nn/decoding.hpp>
#include <tapegrad/nn/rnn.hpp>
#include <tapegrad/optim/optim.hpp>
#include <tapegrad/tapegrad.hpp>
#include <tapegrad/util/svg_plot.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::TensorF;

namespace {

using State = nn::RecurrentState<float>;  // h (and c for the LSTM): [layers, B, H]; undefined = zeros

class CharLM : public nn::Module<float> {
public:
    CharLM(examples::CellKind kind, int64_t vocab, int64_t embed, int64_t hidden, int64_t layers, tg::Generator& gen)
        : vocab_(vocab), hidden_(hidden) {
        embedding = register_parameter("embedding.weight", TensorF::normal({vocab, embed}, 0.0f, 1.0f, gen));
        const nn::RecurrentOptions opt{.num_layers = layers, .batch_first = true};
        if (kind == examples::CellKind::rnn)
            rnn = register_module("rnn", std::make_shared<nn::RNN<float>>(embed, hidden, gen,
                                                                         nn::RNNOptions{.num_layers = layers, .batch_first = true}));
        else if (kind == examples::CellKind::lstm)
            rnn = register_module("rnn", std::make_shared<nn::LSTM<float>>(embed, hidden, gen, opt));
        else
            rnn = register_module("rnn", std::make_shared<nn::GRU<float>>(embed, hidden, gen, opt));
        head = register_module("head", std::make_shared<nn::Linear<float>>(hidden, vocab, gen));
    }

    /// Embedded tokens [B * T] (stream-major) -> [B, T, E]: a one-hot product, which is an embedding lookup.
    [[nodiscard]] TensorF embed(const std::vector<int64_t>& tokens, int64_t B, int64_t T) const {
        return tg::reshape(tg::matmul(examples::one_hot(tokens, vocab_), embedding), {B, T, embedding.size(1)});
    }

    /// Tokens [B * T] (stream-major) -> logits [B * T, V]; `state` is read and replaced by the final state.
    TensorF run(const std::vector<int64_t>& tokens, int64_t B, int64_t T, State& state) const {
        const nn::RecurrentOutput<float> r = rnn->forward(embed(tokens, B, T), state);  // all T steps, all layers
        state = {r.h_n, r.c_n};
        return head->forward(tg::reshape(r.output, {B * T, hidden_}));
    }

    TensorF forward(const TensorF& x) override { return x; }  // (used through run)

    TensorF embedding;
    std::shared_ptr<nn::RecurrentBase<float>> rnn;
    std::shared_ptr<nn::Linear<float>> head;

private:
    int64_t vocab_, hidden_;
};

void detach(State& state) {
    if (state.h.defined()) state.h = state.h.detach();
    if (state.c.defined()) state.c = state.c.detach();
}

/// Validation bits per character: the text read in B streams of T-step windows, the state carried.
double bits_per_char(const CharLM& model, const std::vector<int64_t>& tokens, int64_t B, int64_t T) {
    tg::NoGradGuard no_grad;
    State state;
    std::vector<int64_t> in, target;
    double sum = 0;
    const int64_t batches = examples::tbptt_batches(static_cast<int64_t>(tokens.size()), B, T);
    for (int64_t k = 0; k < batches; ++k) {
        examples::tbptt_batch(tokens, B, T, k, in, target);
        sum += nn::cross_entropy(model.run(in, B, T, state), target).item();
    }
    return sum / static_cast<double>(batches) / std::numbers::ln2;
}

/// ||d loss / d x_{L-1-k}|| for k = 0 .. L-1: the loss is the cross-entropy of the character after a window
/// of L characters (from a zero state), x_t the embedded input t; mean over `windows` windows of `tokens`.
std::vector<double> gradient_by_distance(const CharLM& model, const std::vector<int64_t>& tokens, int64_t L, int64_t windows) {
    std::vector<int64_t> in, target;
    examples::tbptt_batch(tokens, windows, L, 0, in, target);
    TensorF x;
    {
        tg::NoGradGuard no_grad;
        x = model.embed(in, windows, L).clone();
    }
    x.requires_grad_();  // a leaf: x.grad() [W, L, E] holds d loss / d x_t for every step t
    const nn::RecurrentOutput<float> r = model.rnn->forward(x, State{});
    const TensorF h_last = tg::reshape(tg::slice(r.output, 1, L - 1, L), {windows, r.output.size(2)});
    std::vector<int64_t> last;
    for (int64_t w = 0; w < windows; ++w) last.push_back(target[static_cast<size_t>(w * L + L - 1)]);
    nn::cross_entropy(model.head->forward(h_last), last).backward();
    const std::vector<float> g = x.grad().to_vector();
    const int64_t E = x.size(2);
    std::vector<double> norms;
    for (int64_t k = 0; k < L; ++k) {
        const int64_t t = L - 1 - k;
        double sq = 0;
        for (int64_t w = 0; w < windows; ++w)
            for (int64_t e = 0; e < E; ++e) {
                const double v = g[static_cast<size_t>((w * L + t) * E + e)];
                sq += v * v;
            }
        norms.push_back(std::sqrt(sq / static_cast<double>(windows)));
    }
    return norms;
}

/// `length` characters drawn from the model after "%\n" (the start of a new quotation).
std::string sample_text(const CharLM& model, const examples::Corpus& corpus, int64_t length, double temperature, uint64_t seed) {
    tg::NoGradGuard no_grad;
    State primed;
    static_cast<void>(model.run(corpus.encode("%"), 1, 1, primed));
    // Decoding states have their rows first: h and c as [R, layers, H].
    const auto rows_first = [](const State& s) {
        std::vector<TensorF> v;
        v.reserve(2);
        v.push_back(tg::transpose(s.h, 0, 1));
        if (s.c.defined()) v.push_back(tg::transpose(s.c, 0, 1));
        return v;
    };
    const auto step = [&](const std::vector<int64_t>& tokens, const std::vector<TensorF>& st) {
        State s{tg::transpose(st[0], 0, 1), st.size() > 1 ? tg::transpose(st[1], 0, 1) : TensorF{}};
        const TensorF logits = model.run(tokens, static_cast<int64_t>(tokens.size()), 1, s);
        return nn::DecodeStep<float>{tg::log_softmax(logits, 1), rows_first(s)};
    };
    const std::vector<TensorF> state = rows_first(primed);
    tg::Generator gen(seed);
    const auto h = nn::sample_decode(step, corpus.encode("\n"), state, {.temperature = temperature, .max_length = length}, gen);
    std::string text;
    for (const int64_t t : h[0].tokens) text += corpus.vocab[static_cast<size_t>(t)];
    return text;
}

/// Appends this run's curve to `csv` (cell,distance,norm lines) and returns every curve in it by name.
std::map<std::string, std::vector<double>> append_curves(const std::string& csv, const std::string& name,
                                                         const std::vector<double>& norms) {
    std::map<std::string, std::vector<double>> curves;
    if (!csv.empty()) {
        std::ifstream in(csv);
        std::string line;
        while (std::getline(in, line)) {
            std::stringstream row(line);
            std::string cell, k, v;
            if (std::getline(row, cell, ',') && std::getline(row, k, ',') && std::getline(row, v) && cell != name && cell != "cell")
                curves[cell].push_back(std::stod(v));
        }
    }
    curves[name] = norms;
    if (!csv.empty()) {
        std::ofstream out(csv);
        out << "cell,distance,norm\n";
        for (const auto& [c, ns] : curves)
            for (size_t k = 0; k < ns.size(); ++k) out << c << ',' << k << ',' << ns[k] << '\n';
        if (!out) throw tg::FormatError("char_lm: cannot write '" + csv + "'");
    }
    return curves;
}

}  // namespace

int main(int argc, char** argv) {
    std::string cell_name = "lstm", data_dir = "/usr/share/games/fortunes", grad_csv, grad_svg;
    int64_t hidden = 256, embed = 64, layers = 1, batch = 32, steps = 64, max_steps = 0, sample_length = 300;
    int epochs = 1, threads = 0;
    double lr = 2e-3, clip = 1.0, temperature = 0.8, max_val_bpc = 100.0;
    uint64_t seed = 1;
    CLI::App app{"Train a character-level language model (RNN, LSTM or GRU) on the fortune files"};
    app.add_option("--cell", cell_name, "rnn, lstm or gru")->check(CLI::IsMember({"rnn", "lstm", "gru"}))->default_str(cell_name);
    examples::number(app, "--hidden", hidden, "Size H of the recurrent state", int64_t{1}, int64_t{8192});
    examples::number(app, "--embed", embed, "Size of the character embeddings", int64_t{1}, int64_t{8192});
    examples::number(app, "--layers", layers, "Stacked recurrent layers", int64_t{1}, int64_t{16});
    examples::number(app, "--batch-size", batch, "Streams B read side by side", int64_t{1}, int64_t{4096});
    examples::number(app, "--bptt", steps, "Time steps T per training step (truncated BPTT)", int64_t{1}, int64_t{4096});
    examples::number(app, "--epochs", epochs, "Passes over the training text", 1, 1000);
    examples::number(app, "--max-steps", max_steps, "Stop each epoch after this many steps (0: the whole text)", int64_t{0}, INT64_MAX);
    examples::number(app, "--lr", lr, "Adam learning rate", 1e-7, 10.0);
    examples::number(app, "--clip", clip, "Clip the gradient norm to this (0: no clipping)", 0.0, 1e9);
    examples::number(app, "--temperature", temperature, "Sampling temperature of the generated text", 1e-3, 100.0);
    examples::number(app, "--sample-length", sample_length, "Characters of generated text (0: none)", int64_t{0}, int64_t{100000});
    examples::number(app, "--seed", seed, "Seed of the weights and the sample", uint64_t{0}, UINT64_MAX);
    examples::number(app, "--threads", threads, "Threads for matrix products (0: the library default)", 0, 1024);
    examples::number(app, "--max-val-bpc", max_val_bpc, "Exit with status 1 if the validation bpc ends above this", 0.0, 100.0);
    app.add_option("--data", data_dir, "Folder of fortune files")->default_str(data_dir);
    app.add_option("--grad-csv", grad_csv, "Add this run's gradient-norm-by-distance curve to a CSV file");
    app.add_option("--grad-svg", grad_svg, "Plot the curves (this run's and the CSV's) as SVG");
    if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;

    try {
        if (threads > 0) tg::set_num_threads(threads);
        const auto start = std::chrono::steady_clock::now();
        const examples::Corpus corpus = examples::read_fortunes(data_dir);
        const std::vector<int64_t> train = corpus.encode(corpus.train), val = corpus.encode(corpus.val);
        const examples::CellKind kind = examples::parse_cell(cell_name);
        tg::Generator gen(seed);
        CharLM model(kind, corpus.vocab_size(), embed, hidden, layers, gen);
        tg::optim::Adam<float> opt(model.parameters(), {.lr = lr});
        int64_t batches = examples::tbptt_batches(static_cast<int64_t>(train.size()), batch, steps);
        if (max_steps > 0) batches = std::min(batches, max_steps);
        std::printf("%lld quotations from %lld files: %zu training and %zu validation characters, %lld distinct\n",
                    static_cast<long long>(corpus.quotes), static_cast<long long>(corpus.files), train.size(), val.size(),
                    static_cast<long long>(corpus.vocab_size()));
        std::printf("%s, %lld layer(s), H = %lld: %lld parameters; %lld steps of %lld x %lld characters per epoch; %s\n",
                    cell_name.c_str(), static_cast<long long>(layers), static_cast<long long>(hidden),
                    static_cast<long long>(model.num_parameters()), static_cast<long long>(batches), static_cast<long long>(batch),
                    static_cast<long long>(steps), tg::blas_info().c_str());

        std::vector<int64_t> in, target;
        double val_bpc = 0;
        for (int epoch = 1; epoch <= epochs; ++epoch) {
            State state;  // zeros
            examples::ProgressBar bar(epoch, epochs, batches);
            double loss_sum = 0;
            for (int64_t k = 0; k < batches; ++k) {
                examples::tbptt_batch(train, batch, steps, k, in, target);
                detach(state);  // truncated BPTT: keep the state, cut the gradient
                opt.zero_grad();
                const TensorF loss = nn::cross_entropy(model.run(in, batch, steps, state), target);
                loss.backward();
                if (clip > 0) tg::optim::clip_grad_norm_(model.parameters(), clip);
                opt.step();
                loss_sum += loss.item();
                bar.update(k + 1, loss_sum / static_cast<double>(k + 1) / std::numbers::ln2, -1.0);
            }
            val_bpc = bits_per_char(model, val, batch, steps);
            std::printf("epoch %d  train %.3f bpc  validation %.3f bpc  %.1f s\n", epoch,
                        loss_sum / static_cast<double>(batches) / std::numbers::ln2, val_bpc,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        if (sample_length > 0)
            std::printf("\n--- a sample at temperature %g ---\n%s\n---\n", temperature,
                        sample_text(model, corpus, sample_length, temperature, seed).c_str());
        if (!grad_csv.empty() || !grad_svg.empty()) {
            const std::vector<double> norms = gradient_by_distance(model, val, 100, 32);
            std::printf("gradient norm at distance 1, 10, 50: %.3g %.3g %.3g\n", norms[1], norms[10], norms[50]);
            const auto curves = append_curves(grad_csv, cell_name, norms);
            if (!grad_svg.empty()) {
                tg::util::SvgPlot plot({.title = "Vanishing gradients: ||d loss_t / d x_(t-k)|| after training",
                                        .x_label = "distance k in time steps",
                                        .y_label = "log10 gradient norm"});
                for (const auto& [c, ns] : curves) {
                    std::vector<double> ks, ys;
                    for (size_t k = 0; k < ns.size(); ++k) {
                        ks.push_back(static_cast<double>(k));
                        ys.push_back(std::log10(std::max(ns[k], 1e-30)));
                    }
                    plot.add_series(c, ks, ys);
                }
                plot.save(grad_svg);
                std::printf("wrote %s\n", grad_svg.c_str());
            }
        }
        std::printf("result: val_bpc=%.4f epochs=%d seconds=%.1f cell=%s\n", val_bpc, epochs, secs, cell_name.c_str());
        if (!(val_bpc <= max_val_bpc)) {
            std::fprintf(stderr, "char_lm: validation %.4f bpc is above the bound %.4f\n", val_bpc, max_val_bpc);
            return 1;
        }
        return 0;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "char_lm: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "char_lm: %s\n", e.what());
        return 1;
    }
}
