// Classifies digits with a model saved by mnist_mlp: test images by index, or your own 28x28 PGM files.
//
//   build/examples/mnist_mlp --save mlp.safetensors
//   build/examples/mnist_predict --model mlp.safetensors --index 0 --index 7
//   build/examples/mnist_predict --model mlp.safetensors --pgm my_digit.pgm
//
// Prints the top-3 classes with their softmax probabilities.

#include <tapegrad/data/mnist.hpp>
#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/ops/softmax.hpp>
#include <tapegrad/tapegrad.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

namespace tg = tapegrad;

namespace {

/// Reads an 8-bit greyscale PGM (P5 binary or P2 text) of 28x28 pixels; white digit on black like MNIST
/// (use --invert for dark ink on white paper).
std::vector<unsigned char> read_pgm(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw tg::FormatError("read_pgm: cannot open '" + path + "'");
    std::string magic;
    in >> magic;
    auto next_int = [&]() {
        long v = -1;
        in >> std::ws;
        while (in.peek() == '#') {
            std::string line;
            std::getline(in, line);
            in >> std::ws;
        }
        if (!(in >> v)) throw tg::FormatError("read_pgm: '" + path + "' has a malformed header");
        return v;
    };
    if (magic != "P5" && magic != "P2") throw tg::FormatError("read_pgm: '" + path + "' is not a P5/P2 PGM file");
    const long w = next_int(), h = next_int(), maxval = next_int();
    if (w != 28 || h != 28)
        throw tg::FormatError("read_pgm: '" + path + "' is " + std::to_string(w) + "x" + std::to_string(h) +
                              "; the model expects 28x28");
    if (maxval <= 0 || maxval > 255)
        throw tg::FormatError("read_pgm: '" + path + "' has maxval " + std::to_string(maxval) + "; need 1..255");
    std::vector<unsigned char> px(28 * 28);
    if (magic == "P5") {
        in.get();  // the single whitespace after maxval
        if (!in.read(reinterpret_cast<char*>(px.data()), static_cast<std::streamsize>(px.size())))
            throw tg::FormatError("read_pgm: '" + path + "' is truncated");
    } else {
        for (auto& p : px) p = static_cast<unsigned char>(std::clamp(next_int(), 0L, maxval));
    }
    for (auto& p : px) p = static_cast<unsigned char>(p * 255 / maxval);
    return px;
}

void print_digit(const unsigned char* px) {
    static const char* shades = " .:-=+*#%@";
    for (int r = 0; r < 28; r += 2) {
        std::string line;
        for (int c = 0; c < 28; ++c) line += shades[px[r * 28 + c] * 9 / 255];
        std::printf("  %s\n", line.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string model, data;
    std::vector<int64_t> indices;
    std::vector<std::string> pgms;
    bool invert = false, show = false;
    CLI::App app{"Classify MNIST digits with a model trained by mnist_mlp"};
    app.add_option("--model", model, "Checkpoint written by mnist_mlp --save")->required()->check(CLI::ExistingFile);
    app.add_option("--index", indices, "Test-set image index (repeatable)")->check(CLI::Range(int64_t{0}, int64_t{9999}));
    app.add_option("--pgm", pgms, "A 28x28 greyscale PGM file (repeatable)")->check(CLI::ExistingFile);
    app.add_option("--data", data, "MNIST folder (for --index; default: the cache)");
    app.add_flag("--invert", invert, "PGM has dark ink on a light background");
    app.add_flag("--show", show, "Draw each image as text");
    CLI11_PARSE(app, argc, argv);
    if (indices.empty() && pgms.empty()) indices = {0, 1, 2};

    try {
        const tg::io::StFile file = tg::io::load_safetensors(model);
        auto it = file.metadata.find("tapegrad.hidden");
        std::vector<int64_t> hidden;
        if (it != file.metadata.end() && !it->second.empty()) {
            std::stringstream ss(it->second);
            std::string tok;
            while (std::getline(ss, tok, ',')) hidden.push_back(std::stoll(tok));
        } else {
            throw tg::FormatError("mnist_predict: '" + model + "' has no tapegrad.hidden metadata (not from mnist_mlp?)");
        }
        tg::nn::Sequential<float> net;
        int64_t in = 784;
        for (int64_t h : hidden) {
            net.push_back(tg::nn::Linear<float>(in, h));
            net.push_back(tg::nn::ReLU<float>());
            in = h;
        }
        net.push_back(tg::nn::Linear<float>(in, 10));
        tg::io::load_named<float>(file, net.state_dict(), model);
        net.eval();

        struct Item {
            std::string label;
            std::vector<unsigned char> px;
            int truth;
        };
        std::vector<Item> items;
        if (!indices.empty()) {
            const auto mnist =
                tg::data::load_mnist_folder(data.empty() ? tg::data::default_mnist_dir() : std::filesystem::path(data));
            for (int64_t i : indices) {
                const auto* p = mnist.test.pixels.data() + i * 784;
                items.push_back({"test image " + std::to_string(i), {p, p + 784}, mnist.test.labels[static_cast<size_t>(i)]});
            }
        }
        for (const auto& f : pgms) {
            auto px = read_pgm(f);
            if (invert)
                for (auto& p : px) p = static_cast<unsigned char>(255 - p);
            items.push_back({f, std::move(px), -1});
        }

        tg::NoGradGuard no_grad;
        for (const auto& item : items) {
            tg::data::ImageSet one{1, 28, 28, item.px, {0}};
            const auto x = tg::data::to_dataset<float>(one).features;
            const auto probs = tg::softmax(net(x), -1);
            std::vector<int> order(10);
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](int a, int b) { return probs.data()[a] > probs.data()[b]; });
            std::printf("%s%s:", item.label.c_str(),
                        item.truth >= 0 ? (" (label " + std::to_string(item.truth) + ")").c_str() : "");
            for (int k = 0; k < 3; ++k)
                std::printf("  %d (%.3f)", order[static_cast<size_t>(k)],
                            static_cast<double>(probs.data()[order[static_cast<size_t>(k)]]));
            std::printf("\n");
            if (show) print_digit(item.px.data());
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mnist_predict: %s\n", e.what());
        return 1;
    }
}
