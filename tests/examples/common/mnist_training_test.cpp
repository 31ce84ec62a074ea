// Tests for examples/common/mnist_training.hpp: a diverging run stops with a sentence instead of training
// on NaN (and so never reaches the save), and unwritable outputs are found before training starts.

#include "../../../examples/common/mnist_training.hpp"

#include "../../../examples/common/mnist_model.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace fs = std::filesystem;

namespace {

/// 64 random 4-pixel samples in 3 classes.
tg::data::Dataset<float> tiny_set(uint64_t seed) {
    tg::Generator gen(seed);
    tg::data::Dataset<float> ds{tg::TensorF::uniform({64, 4}, -1.f, 1.f, gen), std::vector<int64_t>(64)};
    for (size_t i = 0; i < ds.labels.size(); ++i) ds.labels[i] = static_cast<int64_t>(i % 3);
    return ds;
}

}  // namespace

TEST_CASE("train: a loss that becomes NaN or infinite stops training with a sentence") {
    const auto train_set = tiny_set(1), test_set = tiny_set(2);
    tg::Generator gen(3);
    const auto net = examples::build_mlp({4, {8}, 3}, gen);
    const auto opt = examples::make_optimizer(std::string("sgd"), net->parameters(), 1e30);
    try {
        static_cast<void>(examples::train(*net, *opt, train_set, test_set, 2, 8, 1));
        FAIL("training with lr 1e30 finished without an error");
    } catch (const tg::ValueError& e) {
        const std::string msg = e.what();
        CHECK(msg.find("training diverged: the loss is ") == 0);
        CHECK(msg.find("at epoch 1, batch ") != std::string::npos);
        CHECK(msg.find("stopped without writing a checkpoint") != std::string::npos);
    }
    // A sane learning rate trains to the end.
    tg::Generator gen2(3);
    const auto net2 = examples::build_mlp({4, {8}, 3}, gen2);
    const auto opt2 = examples::make_optimizer(std::string("sgd"), net2->parameters(), 0.05);
    const auto h = examples::train(*net2, *opt2, train_set, test_set, 2, 8, 1);
    CHECK(h.epoch.size() == 2);
    CHECK(std::isfinite(h.train_loss.back()));
}

TEST_CASE("check_loss_finite: names the value, the epoch and the batch") {
    examples::check_loss_finite(0.5, 1, 1);
    CHECK_THROWS_WITH_AS(examples::check_loss_finite(std::nan(""), 2, 17),
                         doctest::Contains("the loss is nan at epoch 2, batch 17 (try a smaller --lr)"), tg::ValueError);
    CHECK_THROWS_AS(examples::check_loss_finite(INFINITY, 1, 1), tg::ValueError);
}

TEST_CASE("check_outputs_writable: --save to a missing folder fails up front and creates nothing") {
    std::random_device rd;
    const fs::path dir = fs::temp_directory_path() / ("tapegrad_outputs_test_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir);
    examples::check_outputs_writable((dir / "m.safetensors").string(), (dir / "h.csv").string(), "");
    CHECK(fs::is_empty(dir));
    CHECK_THROWS_WITH_AS(examples::check_outputs_writable("/nonexistent/dir/m.safetensors", "", ""),
                         "--save '/nonexistent/dir/m.safetensors': its folder '/nonexistent/dir' does not exist",
                         tg::FormatError);
    // The optimizer state's file is checked too: a folder in its place.
    fs::create_directory(dir / "m.safetensors.optim");
    CHECK_THROWS_WITH_AS(examples::check_outputs_writable((dir / "m.safetensors").string(), "", ""),
                         doctest::Contains("m.safetensors.optim': is a folder, not a file"), tg::FormatError);
    CHECK_THROWS_AS(examples::check_outputs_writable("", (dir / "no" / "h.csv").string(), ""), tg::FormatError);
    std::error_code ec;
    fs::remove_all(dir, ec);
}
