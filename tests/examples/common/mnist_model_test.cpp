// Tests for examples/common/mnist_model.hpp: mnist_predict trusts neither a checkpoint's metadata nor the
// test set: sizes, shapes and indices are checked before anything is allocated or read from them.

#include "../../../examples/common/mnist_model.hpp"

#include <tapegrad/io/checkpoint.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tg = tapegrad;
using examples::MlpLayout;

namespace {

/// The checkpoint mnist_mlp writes for `layout`, as a file structure (nothing on disk).
tg::io::StFile checkpoint_of(const MlpLayout& layout) {
    tg::Generator gen(3);
    const auto net = examples::build_mlp(layout, gen);
    return tg::io::to_safetensors<float, tg::Cpu>(net->state_dict(), examples::mlp_metadata(layout));
}

std::string message_of(const tg::io::StFile& f) {
    try {
        static_cast<void>(examples::mlp_layout(f, "m.safetensors"));
    } catch (const tg::FormatError& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

TEST_CASE("mlp_layout: reads back the layout mnist_mlp saved, including the input size") {
    const MlpLayout saved{196, {32, 16}, 10};
    const MlpLayout read = examples::mlp_layout(checkpoint_of(saved), "m.safetensors");
    CHECK(read.inputs == 196);
    CHECK(read.hidden == std::vector<int64_t>{32, 16});
    CHECK(read.classes == 10);
    const MlpLayout none = examples::mlp_layout(checkpoint_of({784, {}, 10}), "m.safetensors");
    CHECK(none.hidden.empty());
    CHECK(none.inputs == 784);
}

TEST_CASE("mlp_layout: bad metadata is reported in a sentence before any network is built") {
    tg::io::StFile f = checkpoint_of({784, {32}, 10});
    SUBCASE("a huge size that would have been allocated") {
        f.metadata["tapegrad.hidden"] = "99999999999";
        CHECK(message_of(f) ==
              "checkpoint 'm.safetensors' has bad tapegrad.hidden metadata: 99999999999 is outside [1, 65536]");
    }
    SUBCASE("not numbers (stoll's message before)") {
        f.metadata["tapegrad.hidden"] = "abc";
        CHECK(message_of(f).find("'abc' is not an integer") != std::string::npos);
    }
    SUBCASE("an empty item") {
        f.metadata["tapegrad.hidden"] = "32,,16";
        CHECK(message_of(f).find("empty item") != std::string::npos);
    }
    SUBCASE("sizes that do not match the tensors") {
        f.metadata["tapegrad.hidden"] = "64";
        CHECK(message_of(f) == "checkpoint 'm.safetensors' does not match tapegrad.hidden '64': '0.weight' is [32, 784] "
                               "and '0.bias' is [32], expected [64, 784] and [64]");
    }
    SUBCASE("more layers than the file holds") {
        f.metadata["tapegrad.hidden"] = "32,16";
        CHECK(message_of(f).find("does not match tapegrad.hidden '32,16'") != std::string::npos);
    }
    SUBCASE("no metadata") {
        f.metadata.erase("tapegrad.hidden");
        CHECK(message_of(f).find("has no tapegrad.hidden metadata") != std::string::npos);
    }
    SUBCASE("a tensor missing") {
        f.tensors.erase(f.tensors.begin());
        CHECK(message_of(f).find("has no tensor") != std::string::npos);
    }
    SUBCASE("an extra tensor") {
        f.tensors.push_back(f.tensors.front());
        f.tensors.back().name = "9.weight";
        CHECK(message_of(f).find("holds 5 tensors") != std::string::npos);
    }
}

TEST_CASE("check_test_images: indices within the set and images of the model's input size") {
    tg::data::ImageSet five{5, 28, 28, std::vector<unsigned char>(5 * 784), std::vector<uint8_t>(5)};
    examples::check_test_images(five, {0, 4}, 784, "DIR");
    CHECK_THROWS_WITH_AS(examples::check_test_images(five, {0, 9999}, 784, "DIR"),
                         "--index 9999 is out of range: 'DIR' holds 5 test images (indices 0 to 4)", tg::IndexError);
    CHECK_THROWS_AS(examples::check_test_images(five, {7}, 784, "DIR"), tg::IndexError);
    CHECK_THROWS_AS(examples::check_test_images(five, {-1}, 784, "DIR"), tg::IndexError);
    tg::data::ImageSet small{5, 14, 14, std::vector<unsigned char>(5 * 196), std::vector<uint8_t>(5)};
    CHECK_THROWS_WITH_AS(examples::check_test_images(small, {0}, 784, "DIR"),
                         "the test images in 'DIR' are 14x14 (196 pixels) but the model takes 784 inputs", tg::ShapeError);
}
