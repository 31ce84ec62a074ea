// Classifies digits with a model saved by mnist_mlp: test images by index, or your own 28x28 PGM files.
//
//   build/examples/mnist_mlp --save mlp.safetensors
//   build/examples/mnist_predict --model mlp.safetensors --index 0 --index 7
//   build/examples/mnist_predict --model mlp.safetensors --pgm my_digit.pgm
//
// Prints the top-3 classes with their softmax probabilities.

#include "common/cli.hpp"
#include "common/mnist_model.hpp"

#include <tapegrad/data/mnist.hpp>
#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/ops/softmax.hpp>
#include <tapegrad/tapegrad.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

namespace tg = tapegrad;

namespace {

/// A greyscale picture: rows x cols bytes, white digit on black like MNIST.
struct Picture {
    int64_t rows = 0, cols = 0;
    std::vector<unsigned char> px;
};

/// Reads an 8-bit greyscale PGM (P5 binary or P2 text) of `inputs` pixels (28x28 for MNIST models); white
/// digit on black like MNIST (use --invert for dark ink on white paper).
Picture read_pgm(const std::string& path, int64_t inputs) {
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
    if (w < 1 || h < 1 || w > 4096 || h > 4096 || static_cast<int64_t>(w) * h != inputs)
        throw tg::FormatError("read_pgm: '" + path + "' is " + std::to_string(w) + "x" + std::to_string(h) +
                              "; the model takes " + std::to_string(inputs) + " pixels");
    if (maxval <= 0 || maxval > 255)
        throw tg::FormatError("read_pgm: '" + path + "' has maxval " + std::to_string(maxval) + "; need 1..255");
    Picture pic{h, w, std::vector<unsigned char>(static_cast<size_t>(inputs))};
    if (magic == "P5") {
        in.get();  // the single whitespace after maxval
        if (!in.read(reinterpret_cast<char*>(pic.px.data()), static_cast<std::streamsize>(pic.px.size())))
            throw tg::FormatError("read_pgm: '" + path + "' is truncated");
    } else {
        for (auto& p : pic.px) p = static_cast<unsigned char>(std::clamp(next_int(), 0L, maxval));
    }
    for (auto& p : pic.px) p = static_cast<unsigned char>(std::min<long>(p, maxval) * 255 / maxval);
    return pic;
}

void print_digit(const Picture& pic) {
    static const char* shades = " .:-=+*#%@";
    for (int64_t r = 0; r < pic.rows; r += 2) {
        std::string line;
        for (int64_t c = 0; c < pic.cols; ++c) line += shades[pic.px[static_cast<size_t>(r * pic.cols + c)] * 9 / 255];
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
    app.add_option("--index", indices, "Test-set image index (repeatable)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                try {
                    static_cast<void>(examples::parse_number<int64_t>(text, 0, INT32_MAX));
                } catch (const std::invalid_argument& e) {
                    return e.what();
                }
                return {};
            },
            "", "index"));
    app.add_option("--pgm", pgms, "A greyscale PGM file of the model's input size, 28x28 (repeatable)")
        ->check(CLI::ExistingFile);
    app.add_option("--data", data, "MNIST folder (for --index; default: the cache)");
    app.add_flag("--invert", invert, "PGM has dark ink on a light background");
    app.add_flag("--show", show, "Draw each image as text");
    if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;
    if (indices.empty() && pgms.empty()) indices = {0, 1, 2};

    try {
        // Everything the file says is checked against its tensors before a network is built from it.
        const tg::io::StFile file = tg::io::load_safetensors(model);
        const examples::MlpLayout layout = examples::mlp_layout(file, model);
        tg::Generator gen(0);  // the values are overwritten by the checkpoint's
        const auto net = examples::build_mlp(layout, gen);
        tg::io::load_named<float>(file, net->state_dict(), model);
        net->eval();

        struct Item {
            std::string label;
            Picture pic;
            int truth;
        };
        std::vector<Item> items;
        if (!indices.empty()) {
            const std::filesystem::path dir = data.empty() ? tg::data::default_mnist_dir() : std::filesystem::path(data);
            const auto mnist = tg::data::load_mnist_folder(dir);
            examples::check_test_images(mnist.test, indices, layout.inputs, dir.string());
            const auto n = static_cast<size_t>(layout.inputs);
            for (int64_t i : indices) {
                const auto* p = mnist.test.pixels.data() + static_cast<size_t>(i) * n;
                items.push_back({"test image " + std::to_string(i),
                                 {mnist.test.rows, mnist.test.cols, {p, p + n}},
                                 mnist.test.labels[static_cast<size_t>(i)]});
            }
        }
        for (const auto& f : pgms) {
            Picture pic = read_pgm(f, layout.inputs);
            if (invert)
                for (auto& p : pic.px) p = static_cast<unsigned char>(255 - p);
            items.push_back({f, std::move(pic), -1});
        }

        tg::NoGradGuard no_grad;
        const int top = static_cast<int>(std::min<int64_t>(3, layout.classes));
        for (const auto& item : items) {
            tg::data::ImageSet one{1, item.pic.rows, item.pic.cols, item.pic.px, {0}};
            const auto x = tg::data::to_dataset<float>(one).features;
            const auto probs = tg::softmax((*net)(x), -1);
            std::vector<int> order(static_cast<size_t>(layout.classes));
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](int a, int b) { return probs.data()[a] > probs.data()[b]; });
            std::printf("%s%s:", item.label.c_str(),
                        item.truth >= 0 ? (" (label " + std::to_string(item.truth) + ")").c_str() : "");
            for (int k = 0; k < top; ++k)
                std::printf("  %d (%.3f)", order[static_cast<size_t>(k)],
                            static_cast<double>(probs.data()[order[static_cast<size_t>(k)]]));
            std::printf("\n");
            if (show) print_digit(item.pic);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mnist_predict: %s\n", e.what());
        return 1;
    }
}
