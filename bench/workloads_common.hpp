#pragma once
/// \file
/// What the three workload programs share, so that they measure the same thing: workloads.cpp (tapegrad),
/// workloads_eigen.cpp (hand-written forward and backward on plain Eigen matrices, the floor) and
/// workloads_libtorch.cpp (LibTorch). Here are the command line, each workload's hyper-parameters, the
/// initial weights, the order of the training images, the clock and the output line.
///
/// Every framework starts from the same weights: they are drawn from tapegrad's Generator in the order in
/// which nn::Linear and nn::Conv2d draw them (weight, then bias, layer after layer, U(-1/sqrt(fan_in),
/// 1/sqrt(fan_in)): PyTorch's default), and every framework visits the training images in the order that
/// tapegrad's DataLoader gives its first epoch. So test accuracies differ only by rounding.
///
/// Output, one line per repetition after one warm-up, for bench/compare.sh:
///     FRAMEWORK WORKLOAD THREADS rep=R metric=value ...
/// or `FRAMEWORK WORKLOAD THREADS unavailable` where a program does not implement a workload.

#include <tapegrad/core/random.hpp>
#include <tapegrad/data/mnist.hpp>

#include <CLI/CLI.hpp>
#include <Eigen/Core>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace workloads {

using Clock = std::chrono::steady_clock;

/// The flags every workload program takes.
struct Config {
    std::string workload;
    int reps = 5;
    int threads = 1;
    std::string data;
};

inline const std::vector<std::string>& workload_names() {
    static const std::vector<std::string> names{"xor", "op_chain", "mlp_s", "mlp_l", "cnn", "lstm_s", "lstm_l"};
    return names;
}

/// Declares --workload, --reps, --threads and --data on `app`.
inline void add_flags(CLI::App& app, Config& cfg) {
    app.add_option("--workload", cfg.workload, "xor, op_chain, mlp_s, mlp_l, cnn, lstm_s or lstm_l")
        ->required()
        ->check(CLI::IsMember(workload_names()));
    app.add_option("--reps", cfg.reps, "Timed repetitions (each after one warm-up)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--threads", cfg.threads, "Threads for the framework's parallel kernels (0: its default)")
        ->check(CLI::Range(0, 256))
        ->capture_default_str();
    app.add_option("--data", cfg.data, "Folder with the four MNIST IDX files (default: tapegrad's cache)");
}

// ---- the workloads' settings ---------------------------------------------------------------------------

inline constexpr uint64_t init_seed = 1;     ///< seed of the initial weights
inline constexpr uint64_t shuffle_seed = 2;  ///< seed of the order of the training images
/// xor and op_chain repeat blocks of steps until a repetition has lasted this long.
inline constexpr double min_rep_seconds = 0.5;
inline constexpr int xor_block = 1000;        ///< xor steps per block
inline constexpr double xor_lr = 0.5;
inline constexpr int chain_links = 100;       ///< op_chain: links h = tanh(h * w + b) per forward
inline constexpr int chain_block = 20;        ///< op_chain: forward+backward passes per block
inline constexpr float chain_w = 0.9f, chain_b = 0.1f, chain_x = 0.5f;
/// The warm-up of the MNIST workloads: this many training steps of a throw-away model (enough to fault in
/// memory pools and start thread pools; a whole epoch would double the run time for nothing).
inline constexpr int64_t warmup_steps = 100;
inline constexpr int64_t eval_batch = 1000;   ///< test-set batches, evaluated without recording

/// A training run on MNIST.
struct MnistSpec {
    std::vector<int64_t> sizes;  ///< dense layer widths, input first: {784, 128, 10}
    double lr = 0.1;
    double momentum = 0;
    int64_t batch = 64;
    int64_t train_count = 60000;  ///< the first train_count training images make the timed epoch
};

/// mlp_s: 784-128-10 ReLU, SGD 0.1, batch 64. mlp_l: 784-512-256-10 ReLU, SGD 0.05 momentum 0.9, batch 128.
/// cnn: LeNet-5 (conv 5x5x6 pad 2, ReLU, max-pool 2, conv 5x5x16, ReLU, max-pool 2, then the dense part
/// 400-120-84-10 given here), SGD 0.05 momentum 0.9, batch 64, over the first 20,000 images.
inline MnistSpec mnist_spec(const std::string& workload) {
    if (workload == "mlp_s") return {.sizes = {784, 128, 10}, .lr = 0.1, .momentum = 0, .batch = 64};
    if (workload == "mlp_l") return {.sizes = {784, 512, 256, 10}, .lr = 0.05, .momentum = 0.9, .batch = 128};
    return {.sizes = {400, 120, 84, 10}, .lr = 0.05, .momentum = 0.9, .batch = 64, .train_count = 20000};
}

// ---- initial weights -----------------------------------------------------------------------------------

/// One parameter tensor: its shape and row-major values.
struct ParamInit {
    std::vector<int64_t> shape;
    std::vector<float> values;
};

/// Appends a layer's weight of `shape` and bias of `shape[0]` elements, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
/// each, drawn exactly as tapegrad's init::uniform_ draws them (lo + (hi - lo) * u, in float).
inline void draw_layer(tapegrad::Generator& gen, std::vector<int64_t> shape, std::vector<ParamInit>& out) {
    int64_t fan_in = 1, count = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        count *= shape[i];
        if (i > 0) fan_in *= shape[i];
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    const auto lo = static_cast<float>(-bound), hi = static_cast<float>(bound);
    const auto draw = [&](int64_t n) {
        std::vector<float> v(static_cast<size_t>(n));
        for (float& x : v) x = lo + (hi - lo) * gen.uniform01<float>();
        return v;
    };
    std::vector<float> w = draw(count);
    std::vector<float> b = draw(shape[0]);
    const int64_t out_features = shape[0];
    out.push_back({std::move(shape), std::move(w)});
    out.push_back({{out_features}, std::move(b)});
}

/// The parameters of a dense network with these widths, as `Linear(in, out, gen)` layers built in order
/// from Generator(init_seed) hold them: weight [out, in] then bias [out], layer by layer.
inline std::vector<ParamInit> initial_mlp(const std::vector<int64_t>& sizes) {
    tapegrad::Generator gen(init_seed);
    std::vector<ParamInit> p;
    for (size_t i = 0; i + 1 < sizes.size(); ++i) draw_layer(gen, {sizes[i + 1], sizes[i]}, p);
    return p;
}

/// The parameters of the LeNet-5 of the cnn workload, in construction order (conv1, conv2, fc1..fc3).
inline std::vector<ParamInit> initial_cnn() {
    tapegrad::Generator gen(init_seed);
    std::vector<ParamInit> p;
    draw_layer(gen, {6, 1, 5, 5}, p);
    draw_layer(gen, {16, 6, 5, 5}, p);
    const std::vector<int64_t> dense = mnist_spec("cnn").sizes;
    for (size_t i = 0; i + 1 < dense.size(); ++i) draw_layer(gen, {dense[i + 1], dense[i]}, p);
    return p;
}

// ---- the character-LM step (lstm_s, lstm_l) -------------------------------------------------------------

/// A character-level language model's training step on a fixed random token stream: Embedding(V, E) ->
/// LSTM(E, H, one layer, batch_first) -> Linear(H, V), cross-entropy over all B*T positions (targets: the
/// next token), Adam(1e-3), clip_grad_norm_(1.0). lstm_s is overhead-bound, lstm_l GEMM-bound.
struct LstmSpec {
    int64_t V, E, H, B, T;
};
inline LstmSpec lstm_spec(const std::string& workload) {
    if (workload == "lstm_s") return {.V = 64, .E = 32, .H = 128, .B = 16, .T = 32};
    return {.V = 96, .E = 64, .H = 256, .B = 64, .T = 64};
}
inline constexpr int lstm_warmup_steps = 5;   ///< untimed steps before the timed ones
inline constexpr int lstm_timed_steps = 40;   ///< ms_per_step is their mean
inline constexpr double lstm_lr = 1e-3;
inline constexpr double lstm_clip = 1.0;

/// The token stream: `steps` batches of B rows of T + 1 tokens in [0, V) (a row's inputs are its first T
/// tokens, its targets the last T), row-major [steps, B, T + 1], from Generator(shuffle_seed).
inline std::vector<int64_t> lstm_tokens(const LstmSpec& s, int steps) {
    tapegrad::Generator gen(shuffle_seed);
    std::vector<int64_t> t(static_cast<size_t>(steps * s.B * (s.T + 1)));
    for (int64_t& v : t) v = static_cast<int64_t>(gen.below(static_cast<uint64_t>(s.V)));
    return t;
}
/// Batch `step`'s inputs and targets, each [B, T] row-major.
inline void lstm_batch(const LstmSpec& s, const std::vector<int64_t>& tokens, int step, std::vector<int64_t>& inputs,
                       std::vector<int64_t>& targets) {
    inputs.resize(static_cast<size_t>(s.B * s.T));
    targets.resize(static_cast<size_t>(s.B * s.T));
    const int64_t* base = tokens.data() + static_cast<int64_t>(step) * s.B * (s.T + 1);
    for (int64_t b = 0; b < s.B; ++b)
        for (int64_t t = 0; t < s.T; ++t) {
            inputs[static_cast<size_t>(b * s.T + t)] = base[b * (s.T + 1) + t];
            targets[static_cast<size_t>(b * s.T + t)] = base[b * (s.T + 1) + t + 1];
        }
}
/// The initial parameters, in the order of the modules' parameters: embedding weight [V, E] ~ N(0, 1) (as
/// torch.nn.Embedding), the LSTM's weight_ih_l0 [4H, E], weight_hh_l0 [4H, H], bias_ih_l0, bias_hh_l0 [4H]
/// ~ U(-1/sqrt(H), 1/sqrt(H)) (as torch.nn.LSTM), the output layer's weight [V, H] and bias [V] ~
/// U(-1/sqrt(H), 1/sqrt(H)) (as torch.nn.Linear).
inline std::vector<ParamInit> initial_lstm(const LstmSpec& s) {
    tapegrad::Generator gen(init_seed);
    std::vector<ParamInit> p;
    const auto uniform = [&](std::vector<int64_t> shape, double bound) {
        int64_t n = 1;
        for (const int64_t d : shape) n *= d;
        std::vector<float> v(static_cast<size_t>(n));
        const auto lo = static_cast<float>(-bound), hi = static_cast<float>(bound);
        for (float& x : v) x = lo + (hi - lo) * gen.uniform01<float>();
        p.push_back({std::move(shape), std::move(v)});
    };
    std::vector<float> emb(static_cast<size_t>(s.V * s.E));
    for (float& x : emb) x = static_cast<float>(gen.normal());
    p.push_back({{s.V, s.E}, std::move(emb)});
    const double b = 1.0 / std::sqrt(static_cast<double>(s.H));
    uniform({4 * s.H, s.E}, b);
    uniform({4 * s.H, s.H}, b);
    uniform({4 * s.H}, b);
    uniform({4 * s.H}, b);
    uniform({s.V, s.H}, b);
    uniform({s.V}, b);
    return p;
}
/// The metrics of one repetition: mean milliseconds per timed step and the loss of the last step.
inline std::vector<std::pair<std::string, double>> lstm_metrics(double seconds, double last_loss) {
    return {{"ms_per_step", seconds * 1e3 / lstm_timed_steps}, {"loss_end", last_loss}};
}

// ---- data ----------------------------------------------------------------------------------------------

/// MNIST from --data or tapegrad's cache: images as [N, 784] (flatten) or [N, 1, 28, 28], normalised.
inline tapegrad::data::MnistDatasets<float> load_mnist(const Config& cfg, bool flatten) {
    const std::string dir = cfg.data.empty() ? tapegrad::data::default_mnist_dir().string() : cfg.data;
    return tapegrad::data::load_mnist<float>(dir, {.flatten = flatten});
}

/// The order in which `DataLoader(ds, {.shuffle = true, .seed = seed})` visits `n` samples in its first
/// epoch (the same Fisher-Yates draws).
inline std::vector<int64_t> epoch_order(int64_t n, uint64_t seed) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    tapegrad::Generator gen(seed);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen.below(i)]);
    return order;
}

// ---- timing and output ---------------------------------------------------------------------------------

using Metrics = std::vector<std::pair<std::string, double>>;

[[nodiscard]] inline double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Calls `block` until `min_seconds` have passed; returns the seconds per call.
template <class F>
double seconds_per_block(F&& block, double min_seconds) {
    const auto t0 = Clock::now();
    int64_t calls = 0;
    double elapsed = 0;
    do {
        block();
        ++calls;
        elapsed = seconds_since(t0);
    } while (elapsed < min_seconds);
    return elapsed / static_cast<double>(calls);
}

/// The metrics of one timed epoch and the test accuracy after it.
inline Metrics epoch_metrics(double seconds, int64_t samples, double test_acc) {
    return {{"epoch_s", seconds}, {"samples_per_s", static_cast<double>(samples) / seconds}, {"test_acc", test_acc}};
}

/// Runs `rep(true)` once as the warm-up, then prints one line per `rep(false)`.
template <class F>
void repeat(const char* framework, const Config& cfg, F&& rep) {
    (void)rep(true);
    for (int r = 1; r <= cfg.reps; ++r) {
        const Metrics m = rep(false);
        std::printf("%s %s %d rep=%d", framework, cfg.workload.c_str(), cfg.threads, r);
        for (const auto& [name, value] : m) std::printf(" %s=%.6g", name.c_str(), value);
        std::printf("\n");
        std::fflush(stdout);
    }
}

/// The line for a workload that this program does not implement.
inline void print_unavailable(const char* framework, const Config& cfg, const char* why) {
    std::printf("%s %s %d unavailable\n", framework, cfg.workload.c_str(), cfg.threads);
    std::fprintf(stderr, "%s: %s: %s\n", framework, cfg.workload.c_str(), why);
}

/// `n` threads for matrix products in Eigen and, when tapegrad routes products to OpenBLAS (TAPEGRAD_BLAS),
/// in OpenBLAS's OpenMP pool, which ignores Eigen::setNbThreads.
inline void set_threads(int n) {
    Eigen::setNbThreads(n);
#if defined(_OPENMP)
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
#endif
}

}  // namespace workloads
