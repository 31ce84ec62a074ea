// Exports the ONNX test models: for each, `<name>.onnx` (exported from a batch-2 example), and a batch-5
// input with tapegrad's output for it (`<name>.input.bin`, `<name>.expected.bin`: float32, little-endian),
// listed in `manifest.txt` as `<name> <input dims> <output dims>`. run_onnx_tests.sh then runs the ONNX
// checker and onnxruntime on them. The batch of 5 differs from the example's 2: it tests `dynamic_batch`.
//   onnx_export_models OUT_DIR

#include <tapegrad/io/onnx.hpp>
#include <tapegrad/tapegrad.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using TensorF = tg::Tensor<float>;
using ValueF = tg::io::OnnxValue<float>;

namespace {

/// A block with a forward of its own, exported through OnnxExportable with the graph's ops: a residual
/// dense layer, reshape, transpose, matmul, the elementwise ops, softmax, log_softmax and concat.
/// x: [N, 8] -> [N, 32].
class Block : public nn::Module<float>, public tg::io::OnnxExportable<float> {
public:
    explicit Block(tg::Generator& gen) {
        fc_ = register_module("fc", std::make_shared<nn::Linear<float>>(8, 8, gen));
        mix_ = register_parameter("mix", TensorF::uniform({8, 8}, -1.0f, 1.0f, gen));
    }
    TensorF forward(const TensorF& x) override {
        const TensorF h = tg::relu(fc_->forward(x)) + x;                                       // [N, 8]
        const TensorF r = tg::reshape(tg::transpose(tg::reshape(h, {-1, 2, 4}), 1, 2), {-1, 8});  // [N, 8]
        const TensorF m = tg::matmul(r, mix_);                                                 // [N, 8]
        const TensorF q = tg::tanh(h) * tg::sigmoid(m) -
                          tg::exp(-tg::abs(h)) / (tg::sqrt(tg::abs(m)) + 1.0f) + tg::log(tg::abs(h) + 1.0f);
        return tg::concat({tg::softmax(m, -1), tg::log_softmax(h * 0.5f, 1), q, r}, 1);
    }
    ValueF export_onnx(tg::io::OnnxGraph<float>& g, const ValueF& x) override {
        const ValueF h = g.add(g.relu(g.module(*fc_, x, "fc")), x);
        const ValueF r = g.reshape(g.transpose(g.reshape(h, {-1, 2, 4}), 1, 2), {-1, 8});
        const ValueF m = g.matmul(r, g.constant(mix_, "mix"));
        const ValueF one = g.scalar(1.0);
        const ValueF q = g.add(g.sub(g.mul(g.tanh(h), g.sigmoid(m)),
                                     g.div(g.exp(g.neg(g.abs(h))), g.add(g.sqrt(g.abs(m)), one))),
                               g.log(g.add(g.abs(h), one)));
        return g.concat({g.softmax(m, -1), g.log_softmax(g.mul(h, g.scalar(0.5)), 1), q, r}, 1);
    }
    std::string describe() const override { return "Block"; }

private:
    std::shared_ptr<nn::Linear<float>> fc_;
    TensorF mix_;
};

/// Moves batch-norm running statistics away from 0 and 1: a few training-mode forwards on shifted data.
void warm_up(nn::Module<float>& m, const tg::Shape& in, tg::Generator& gen) {
    tg::NoGradGuard ng;
    m.train();
    for (int i = 0; i < 3; ++i) m.forward(TensorF::uniform(in, -1.0f, 3.0f, gen));
    m.eval();
}

void write_floats(const std::filesystem::path& p, const TensorF& t) {
    const std::vector<float> v = t.to_vector();
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    if (!f) throw std::runtime_error("cannot write " + p.string());
}

std::string dims(const tg::Shape& s) {
    std::string out;
    for (int i = 0; i < s.rank(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    return out;
}

struct Case {
    std::string name;
    tg::Shape input;  // with batch 2; the check runs batch 5
    std::function<std::shared_ptr<nn::Module<float>>(tg::Generator&)> build;
    float lo = -3.0f, hi = 3.0f;
    int opset = 17;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: onnx_export_models OUT_DIR\n");
        return 2;
    }
    const std::filesystem::path out = argv[1];
    std::filesystem::create_directories(out);
    using Seq = nn::Sequential<float>;
    const std::vector<Case> cases = {
        {"mlp", {2, 3, 2, 2}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::Flatten<float>(), nn::Linear<float>(12, 16, g), nn::ReLU<float>(),
                                          nn::Dropout<float>(0.3, g), nn::Linear<float>(16, 5, g));
         }},
        {"cnn", {2, 2, 9, 9}, [](tg::Generator& g) {
             return std::make_shared<Seq>(
                 nn::Conv2d<float>(2, 4, 3, {.padding = 1}, g), nn::BatchNorm2d<float>(4), nn::ReLU<float>(),
                 nn::MaxPool2d<float>(2, {.stride = 1, .padding = 1}),
                 nn::Conv2d<float>(4, 6, {3, 2}, {.stride = {1, 2}, .dilation = {2, 1}, .groups = 2}, g),
                 nn::AvgPool2d<float>(2, {.stride = 1, .padding = 1, .count_include_pad = false}),
                 nn::AvgPool2d<float>(2, {.padding = 1}), nn::AdaptiveAvgPool2d<float>({3, 2}),
                 nn::Conv2d<float>(6, 3, 1, {.bias = false}, g), nn::AdaptiveAvgPool2d<float>(1),
                 nn::Flatten<float>(), nn::Linear<float>(3, 4, g), nn::Softplus<float>());
         }},
        {"pools", {2, 3, 8, 8}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::MaxPool2d<float>({3, 2}, {.dilation = {2, 1}}),
                                          nn::AdaptiveAvgPool2d<float>({2, 2}), nn::PReLU<float>(3, 0.1),
                                          nn::Conv2d<float>(3, 5, 1, g), nn::GlobalAvgPool2d<float>(),
                                          nn::PReLU<float>(5, -0.3), nn::Linear<float>(5, 2, g), nn::PReLU<float>());
         }},
        {"activations", {2, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(
                 nn::Linear<float>(6, 8, g), nn::LeakyReLU<float>(0.2), nn::Linear<float>(8, 8, g),
                 nn::ELU<float>(0.7), nn::Linear<float>(8, 8, g), nn::Softplus<float>(2.0, 1.5),
                 nn::Linear<float>(8, 8, g), nn::SiLU<float>(), nn::Linear<float>(8, 8, g), nn::GELU<float>(),
                 nn::Linear<float>(8, 8, g), nn::GELU<float>(tg::GeluApproximation::tanh), nn::Linear<float>(8, 8, g),
                 nn::Activation<"Softsign", tg::fn::Softsign, float>(), nn::Linear<float>(8, 8, g),
                 nn::Sigmoid<float>(), nn::Linear<float>(8, 8, g), nn::Tanh<float>(), nn::Identity<float>(),
                 nn::Linear<float>(8, 8, g), nn::PReLU<float>(), nn::Maxout<float>(8, 4, 3, g),
                 nn::Linear<float>(4, 3, g, {.bias = false}));
         }, -6.0f, 6.0f},
        {"step", {2, 7}, [](tg::Generator&) { return std::make_shared<Seq>(nn::Step<float>()); }},
        {"dropout_only", {2, 4}, [](tg::Generator& g) { return std::make_shared<Seq>(nn::Dropout<float>(0.5, g)); }},
        {"batchnorm1d", {2, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(
                 nn::BatchNorm1d<float>(6), nn::Linear<float>(6, 5, g),
                 nn::BatchNorm1d<float>(5, {.affine = false}), nn::ReLU<float>(),
                 nn::BatchNorm1d<float>(5, {.track_running_stats = false}), nn::Linear<float>(5, 3, g));
         }},
        {"batchnorm_seq", {2, 3, 5}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::BatchNorm1d<float>(3), nn::Flatten<float>(),
                                          nn::Linear<float>(15, 4, g));
         }},
        {"batchnorm2d_batch_stats", {2, 3, 4, 4}, [](tg::Generator&) {
             return std::make_shared<Seq>(nn::BatchNorm2d<float>(3, {.track_running_stats = false}),
                                          nn::BatchNorm2d<float>(3, {.affine = false, .track_running_stats = false}),
                                          nn::Flatten<float>(1, 2));
         }},
        {"rank3_linear_maxout", {2, 3, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::Linear<float>(6, 5, g), nn::Maxout<float>(5, 4, 2, g),
                                          nn::Linear<float>(4, 2, g, {.bias = false}), nn::Flatten<float>(0, 1));
         }},
        {"layernorm", {2, 3, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::LayerNorm<float>(tg::Shape{6}), nn::Linear<float>(6, 4, g),
                                          nn::LayerNorm<float>({3, 4}, {.eps = 1e-3, .elementwise_affine = false}),
                                          nn::Flatten<float>(), nn::Linear<float>(12, 2, g));
         }},
        {"layernorm_opset13", {2, 3, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::LayerNorm<float>(tg::Shape{6}), nn::Linear<float>(6, 4, g),
                                          nn::LayerNorm<float>({3, 4}, {.eps = 1e-3, .elementwise_affine = false}),
                                          nn::Flatten<float>(), nn::Linear<float>(12, 2, g));
         }, -3.0f, 3.0f, 13},
        {"cnn_opset13", {2, 1, 8, 8}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::Conv2d<float>(1, 3, 3, g), nn::BatchNorm2d<float>(3), nn::GELU<float>(),
                                          nn::MaxPool2d<float>(2), nn::Flatten<float>(), nn::Linear<float>(27, 3, g));
         }, -3.0f, 3.0f, 13},
        {"lstm", {2, 4, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(
                 nn::LSTM<float>(6, 5, g,
                                 {.num_layers = 2, .batch_first = true, .dropout = 0.2, .bidirectional = true}),
                 nn::Flatten<float>(), nn::Linear<float>(4 * 10, 3, g));
         }},
        {"gru_time_major", {4, 2, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::GRU<float>(6, 5, g, {.num_layers = 2, .bidirectional = true}),
                                          nn::GRU<float>(10, 3, g, {.bias = false}));
         }},
        {"rnn_relu", {2, 4, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(
                 nn::RNN<float>(6, 5, g, {.nonlinearity = nn::RNNNonlinearity::relu, .batch_first = true,
                                          .bidirectional = true}),
                 nn::RNN<float>(10, 4, g, {.batch_first = true}),
                 nn::LSTM<float>(4, 3, g, {.bias = false, .batch_first = true}));
         }},
        {"cells", {2, 6}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::LSTMCell<float>(6, 5, g), nn::GRUCell<float>(5, 4, g),
                                          nn::RNNCell<float>(4, 3, g, {.nonlinearity = nn::RNNNonlinearity::relu}),
                                          nn::RNNCell<float>(3, 3, g, {.bias = false}));
         }},
        {"custom_block", {2, 8}, [](tg::Generator& g) {
             return std::make_shared<Seq>(nn::Linear<float>(8, 8, g), std::make_shared<Block>(g), nn::ReLU<float>());
         }},
    };
    try {
        std::ofstream manifest(out / "manifest.txt");
        for (const Case& c : cases) {
            tg::Generator gen(42);
            auto model = c.build(gen);
            warm_up(*model, c.input, gen);
            const TensorF example = TensorF::uniform(c.input, c.lo, c.hi, gen);
            tg::io::export_onnx(*model, example, out / (c.name + ".onnx"), {.opset = c.opset, .dynamic_batch = true});
            tg::Shape in = c.input;
            in[0] = 5;
            const TensorF x = TensorF::uniform(in, c.lo, c.hi, gen);
            TensorF y;
            {
                tg::NoGradGuard ng;
                y = model->forward(x);
            }
            write_floats(out / (c.name + ".input.bin"), x);
            write_floats(out / (c.name + ".expected.bin"), y);
            manifest << c.name << ' ' << dims(x.shape()) << ' ' << dims(y.shape()) << '\n';
            std::printf("exported %s: input %s -> output %s\n", c.name.c_str(), dims(x.shape()).c_str(),
                        dims(y.shape()).c_str());
        }
        if (!manifest) throw std::runtime_error("cannot write manifest.txt");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "onnx_export_models: %s\n", e.what());
        return 1;
    }
    return 0;
}
