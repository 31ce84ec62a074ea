// The README's usage snippets, compiled and run by the test build (CTest: readme/snippets). Each region
// between "// README: <name>" and "// END README" is quoted verbatim in README.md, which readme/in_sync
// checks; the checks after each region make the snippet's claims fail loudly here if they stop being true.

#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/io/onnx.hpp>
#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

void expect(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("README snippet check failed: ") + what);
}

// README: custom-module
namespace tg = tapegrad;
namespace nn = tapegrad::nn;

/// A two-layer perceptron with a skip connection: x [N, in] -> [N, out].
class SkipMlp : public nn::Module<float> {
public:
    SkipMlp(int64_t in, int64_t hidden, int64_t out, tg::Generator& gen) {
        fc1 = register_module("fc1", std::make_shared<nn::Linear<float>>(in, hidden, gen));
        fc2 = register_module("fc2", std::make_shared<nn::Linear<float>>(hidden, out, gen));
        skip = register_module("skip", std::make_shared<nn::Linear<float>>(in, out, gen));
        scale = register_parameter("scale", tg::TensorF::ones({1}));
    }
    tg::TensorF forward(const tg::TensorF& x) override {
        return fc2->forward(tg::relu(fc1->forward(x))) + scale * skip->forward(x);
    }
    std::shared_ptr<nn::Linear<float>> fc1, fc2, skip;
    tg::TensorF scale;
};
// END README

void custom_module() {
    // README: custom-module-use
    tg::Generator gen(1);
    auto net = std::make_shared<SkipMlp>(4, 16, 3, gen);
    for (const auto& [name, p] : net->named_parameters()) std::cout << name << ' ' << p.shape() << '\n';
    // scale [1]  fc1.weight [16, 4]  fc1.bias [16]  ...  skip.bias [3]   (own parameters, then children's)
    tg::optim::Adam<float> opt(net->parameters(), {.lr = 1e-2});
    // END README
    expect(net->named_parameters().size() == 7, "SkipMlp has 7 named parameters");
    expect(net->named_parameters()[0].first == "scale", "the first parameter is scale");
    expect(net->named_parameters()[1].first == "fc1.weight", "then fc1.weight");
    expect(net->named_parameters()[6].first == "skip.bias", "the last parameter is skip.bias");
    const tg::TensorF x = tg::TensorF::uniform({8, 4}, -1.f, 1.f, gen);
    const auto y = net->forward(x);
    expect(y.shape() == tg::Shape{8, 3}, "SkipMlp maps [8, 4] to [8, 3]");
    opt.zero_grad();
    tg::sum(y).backward();
    opt.step();
}

void save_and_load(const std::filesystem::path& dir) {
    tg::Generator gen(2);
    auto net = std::make_shared<SkipMlp>(4, 16, 3, gen);
    tg::optim::Adam<float> opt(net->parameters(), {.lr = 1e-2});
    const std::filesystem::path old = std::filesystem::current_path();
    std::filesystem::current_path(dir);
    // README: save-load
    tg::io::save("model.safetensors", *net, {{"epoch", "3"}});   // atomic: the old file or the new, never half
    tg::io::save_optimizer("model.optim", opt);

    tg::Generator other(7);
    auto restored = std::make_shared<SkipMlp>(4, 16, 3, other);  // the same architecture, other weights
    tg::io::load("model.safetensors", *restored);               // strict: names, shapes and dtypes must match
    tg::optim::Adam<float> resumed(restored->parameters(), {.lr = 1e-2});
    tg::io::load_optimizer("model.optim", resumed);

    // Both files or neither: a failed save never leaves a model beside another run's optimizer state.
    tg::io::save_with_optimizer("model.safetensors", *restored, "model.optim", resumed);
    // END README
    std::filesystem::current_path(old);
    const auto a = net->state_dict(), b = restored->state_dict();
    for (size_t i = 0; i < a.size(); ++i)
        expect(a[i].second.to_vector() == b[i].second.to_vector(), "the loaded model equals the saved one");
    expect(tg::io::load_safetensors(dir / "model.safetensors").metadata.count("format") == 1, "metadata is written");
}

void losses_with_labels() {
    // README: losses
    tg::Generator gen(3);
    const tg::TensorF logits = tg::TensorF::uniform({4, 3}, -1.f, 1.f, gen).requires_grad_();  // [N, C] raw scores
    const std::vector<int64_t> labels{2, 0, 1, 2};                                           // one class per row
    const tg::TensorF loss = nn::cross_entropy(logits, labels);   // softmax + negative log-likelihood, mean over rows
    loss.backward();                                              // logits.grad() = (softmax - onehot) / N
    const tg::TensorF per_row = nn::cross_entropy(logits, labels, nn::Reduction::none);   // [N]
    // nll_loss(log_softmax(x), labels) is the same loss in two steps; a label outside [0, C) throws
    // IndexError: "cross_entropy: label 3 out of range [0, 3) at row 1".
    // END README
    expect(per_row.shape() == tg::Shape{4}, "Reduction::none gives one loss per row");
    expect(std::abs(tg::mean(per_row).item() - loss.item()) < 1e-6f, "the mean of the rows is the loss");
    bool threw = false;
    try {
        static_cast<void>(nn::cross_entropy(logits, std::vector<int64_t>{2, 3, 1, 2}));
    } catch (const tg::IndexError& e) {
        threw = std::string(e.what()).find("label 3 out of range [0, 3) at row 1") != std::string::npos;
    }
    expect(threw, "a label out of range throws IndexError naming it");
}

void metrics() {
    tg::Generator gen(4);
    const tg::TensorF scores = tg::TensorF::from({4, 3}, {0.1f, 0.2f, 0.7f,  //
                                                         0.8f, 0.1f, 0.1f,  //
                                                         0.3f, 0.4f, 0.3f,  //
                                                         0.5f, 0.2f, 0.3f});
    const std::vector<int64_t> labels{2, 0, 1, 2};
    // README: metrics
    const double acc = nn::accuracy(scores, labels);   // argmax per row vs labels: 0.75 here
    nn::ConfusionMatrix cm(3);                          // accumulate over every test batch
    cm.update(scores, labels);
    std::cout << cm.str();                              // rows: true class, columns: prediction
    const double p2 = cm.precision(2), r2 = cm.recall(2);   // class 2: precision 1.0, recall 0.5
    // END README
    expect(acc == 0.75, "accuracy is 0.75");
    expect(p2 == 1.0 && r2 == 0.5, "class 2 precision 1, recall 0.5");
    expect(cm.at(2, 0) == 1, "one sample of class 2 was predicted as 0");
}

// README: gradcheck
/// softplus written by hand from existing ops: log(1 + exp(x)).
tg::TensorD my_softplus(const tg::TensorD& x) { return tg::log(tg::exp(x) + 1.0); }
// END README

void gradcheck_own() {
    // README: gradcheck-use
    tg::Generator gen(5);
    const tg::TensorD x = tg::TensorD::uniform({3, 4}, -2.0, 2.0, gen);
    const tg::GradcheckResult r =
        tg::gradcheck([](const std::vector<tg::TensorD>& in) { return my_softplus(in[0]); }, {x});
    if (!r.ok) std::cerr << r.message << '\n';   // names the input, the element, analytic vs numeric
    // END README
    expect(r.ok, "gradcheck passes on a correct function");
    const tg::GradcheckResult wrong = tg::gradcheck(
        [](const std::vector<tg::TensorD>& in) { return tg::log(tg::exp(in[0].detach()) + 1.0) + in[0] * 0.0; }, {x});
    expect(!wrong.ok, "gradcheck catches a function whose backward is wrong");
}

void threads() {
    // README: threads
    tg::set_num_threads(1);                  // Eigen, OpenMP and OpenBLAS together; 0: the library default
    const int n = tg::get_num_threads();     // the most threads one matrix product may use
    std::cout << tg::blas_info() << '\n';    // which BLAS and kernels run the products, and how many threads
    // END README
    expect(n == 1, "set_num_threads(1) gives one thread");
    tg::set_num_threads(0);
}

void attention() {
    // README: attention
    tg::Generator gen(7);
    nn::TransformerEncoderLayer<float> layer(32, 4, gen, {.dim_feedforward = 64, .dropout = 0.1,
                                                         .batch_first = true, .norm_first = true});
    const tg::TensorF x = tg::TensorF::uniform({8, 20, 32}, -1.f, 1.f, gen);   // [N, L, E]
    const std::vector<int64_t> lengths{20, 17, 12, 20, 5, 9, 20, 14};          // valid tokens per sequence
    const tg::TensorF h = layer.forward(x, {.is_causal = true, .lengths = lengths});   // [N, L, E]
    nn::MultiheadAttention<float> attn(32, 4, gen, {.batch_first = true});
    attn.eval();                                           // no dropout on the weights
    const auto [out, weights] = attn.forward(h, x, x);     // out [N, L, E], weights [N, L, S] (mean over heads)
    // functional forms: tg::scaled_dot_product_attention(q, k, v, {.attn_mask = m, .is_causal = true}),
    // tg::masked_softmax(x, mask), tg::layer_norm(x, {E}, w, b), tg::bmm(a, b), tg::stack / unbind / select
    // END README
    expect(out.shape() == tg::Shape{8, 20, 32} && weights.shape() == tg::Shape{8, 20, 20}, "attention shapes");
    double row = 0;
    for (int64_t s = 0; s < 20; ++s) row += weights(3, 4, s);
    expect(std::abs(row - 1.0) < 1e-5, "attention weights sum to 1 over the keys");
}

void ids_and_embeddings() {
    // README: ids
    const tg::TensorL ids = tg::TensorL::from({2, 4}, {5, 1, 1, 0, 7, 3, 0, 0});   // int64 token ids, [B, T]
    nn::Embedding<float> emb(8, 16, {.padding_idx = 0});   // weight [8, 16], N(0, 1), row 0 zero and frozen
    const tg::TensorF h = emb(ids);                         // [2, 4, 16]
    const tg::Mask<> pad = tg::eq(ids, int64_t{0});         // uint8 0/1, [2, 4]
    const tg::TensorL best = tg::argmax(h, -1);             // int64, [2, 4]
    const tg::TensorF count = tg::sum(tg::cast<float>(pad));   // 3 padding positions
    // END README
    expect(h.shape() == tg::Shape{2, 4, 16}, "an embedding adds a trailing dimension");
    expect(best.shape() == tg::Shape{2, 4}, "argmax drops the axis");
    expect(count.item() == 3.f, "three padding ids");
    expect(tg::masked_fill(h, tg::reshape(pad, {2, 4, 1}), 0.f).shape() == h.shape(), "masked_fill broadcasts");
}

// README: onnx-custom
/// relu(fc(x)) + x. A module with a forward of its own tells the exporter its ONNX form with the graph's ops.
class Residual : public nn::Module<float>, public tg::io::OnnxExportable<float> {
public:
    explicit Residual(int64_t n) { fc = register_module("fc", std::make_shared<nn::Linear<float>>(n, n)); }
    tg::TensorF forward(const tg::TensorF& x) override { return tg::relu(fc->forward(x)) + x; }
    tg::io::OnnxValue<float> export_onnx(tg::io::OnnxGraph<float>& g, const tg::io::OnnxValue<float>& x) override {
        return g.add(g.relu(g.module(*fc, x, "fc")), x);
    }
    std::shared_ptr<nn::Linear<float>> fc;
};
// END README

void onnx_export(const std::filesystem::path& dir) {
    const std::filesystem::path old = std::filesystem::current_path();
    std::filesystem::current_path(dir);
    // README: onnx
    nn::Sequential<float> net{nn::Conv2d<float>(1, 8, 3, {.padding = 1}), nn::BatchNorm2d<float>(8),
                              nn::ReLU<float>(), nn::MaxPool2d<float>(2), nn::Flatten<float>(),
                              nn::Linear<float>(8 * 14 * 14, 32), Residual(32), nn::Linear<float>(32, 10)};
    // ... train ...
    tg::io::export_onnx(net, tg::TensorF::zeros({1, 1, 28, 28}), "model.onnx", {.opset = 17, .dynamic_batch = true});
    // END README
    std::filesystem::current_path(old);
    expect(std::filesystem::file_size(dir / "model.onnx") > 8 * 14 * 14 * 32 * 4, "model.onnx holds the weights");
    expect(net.is_training(), "export_onnx restores training mode");
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::filesystem::path dir =
            argc > 1 ? std::filesystem::path(argv[1]) : std::filesystem::temp_directory_path() / "tapegrad_readme";
        std::filesystem::create_directories(dir);
        custom_module();
        save_and_load(dir);
        losses_with_labels();
        metrics();
        gradcheck_own();
        threads();
        attention();
        ids_and_embeddings();
        onnx_export(dir);
        std::filesystem::remove_all(dir);
        std::puts("readme snippets: all ran and their checks passed");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "readme snippets: %s\n", e.what());
        return 1;
    }
}
