// Tests for tapegrad/data/mnist.hpp: to_dataset's normalisation and layouts on a tiny synthetic ImageSet,
// its argument checks, and load_mnist on the real files when they are present (skipped with a message
// otherwise; cmake/fetch_mnist.sh downloads them).

#include <tapegrad/data/mnist.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using tapegrad::Shape;
using tapegrad::data::ImageOptions;
using tapegrad::data::ImageSet;

/// Two 2x3 images: the first counts 0, 51, 102, 153, 204, 255; the second is 255 - the first.
ImageSet tiny() {
    ImageSet s;
    s.count = 2;
    s.rows = 2;
    s.cols = 3;
    s.pixels = {0, 51, 102, 153, 204, 255, 255, 204, 153, 102, 51, 0};
    s.labels = {3, 9};
    return s;
}

/// Writes an IDX file: `dims` big-endian after the magic 0x0000 08 <rank>, then `count` bytes of `fill`.
void write_idx(const std::filesystem::path& p, const std::vector<uint32_t>& dims, unsigned char fill) {
    std::ofstream f(p, std::ios::binary);
    const unsigned char magic[4] = {0, 0, 8, static_cast<unsigned char>(dims.size())};
    f.write(reinterpret_cast<const char*>(magic), 4);
    size_t count = 1;
    for (uint32_t d : dims) {
        const unsigned char be[4] = {static_cast<unsigned char>(d >> 24), static_cast<unsigned char>(d >> 16),
                                     static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
        f.write(reinterpret_cast<const char*>(be), 4);
        count *= d;
    }
    const std::string body(count, static_cast<char>(fill));
    f.write(body.data(), static_cast<std::streamsize>(body.size()));
    REQUIRE(f.good());
}

/// An MNIST-style folder with `n_train` images of `train_side`^2 pixels and `n_test` of `test_side`^2.
struct FakeMnist {
    std::filesystem::path dir;
    FakeMnist(uint32_t n_train, uint32_t train_side, uint32_t n_test, uint32_t test_side) {
        std::random_device rd;
        dir = std::filesystem::temp_directory_path() / ("tapegrad_fake_mnist_" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(dir);
        write_idx(dir / "train-images-idx3-ubyte", {n_train, train_side, train_side}, 7);
        write_idx(dir / "train-labels-idx1-ubyte", {n_train}, 1);
        write_idx(dir / "t10k-images-idx3-ubyte", {n_test, test_side, test_side}, 9);
        write_idx(dir / "t10k-labels-idx1-ubyte", {n_test}, 2);
    }
    ~FakeMnist() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    FakeMnist(const FakeMnist&) = delete;
    FakeMnist& operator=(const FakeMnist&) = delete;
};

bool mnist_present(const std::filesystem::path& dir) {
    std::error_code ec;
    return !dir.empty() && std::filesystem::is_directory(dir, ec);
}

}  // namespace

TEST_CASE("to_dataset: pixel p becomes (p / 255 - mean) / std; 0 -> -mean/std, 255 -> (1 - mean)/std") {
    const auto ds = tapegrad::data::to_dataset<float>(tiny());
    REQUIRE(ds.features.shape() == Shape{2, 6});
    CHECK(ds.labels == std::vector<int64_t>{3, 9});
    const double mean = 0.1307, sd = 0.3081;
    CHECK(ds.features(0, 0) == doctest::Approx(-mean / sd).epsilon(1e-6));        // -0.424212...
    CHECK(ds.features(0, 5) == doctest::Approx((1 - mean) / sd).epsilon(1e-6));   // 2.821486...
    CHECK(ds.features(1, 0) == doctest::Approx((1 - mean) / sd).epsilon(1e-6));
    for (int64_t i = 0; i < 6; ++i) {
        const double p = 51.0 * static_cast<double>(i);
        CHECK(ds.features(0, i) == doctest::Approx((p / 255 - mean) / sd).epsilon(1e-6));
        CHECK(ds.features(1, 5 - i) == doctest::Approx((p / 255 - mean) / sd).epsilon(1e-6));
    }
}

TEST_CASE("to_dataset: custom mean and std; mean 0, std 1 maps pixels to [0, 1]") {
    const auto ds = tapegrad::data::to_dataset<double>(tiny(), {.mean = 0.0, .stddev = 1.0});
    const std::vector<double> want = {0, 0.2, 0.4, 0.6, 0.8, 1.0};
    for (int64_t i = 0; i < 6; ++i) CHECK(ds.features(0, i) == doctest::Approx(want[static_cast<size_t>(i)]).epsilon(1e-15));
    const auto half = tapegrad::data::to_dataset<float>(tiny(), {.mean = 0.5, .stddev = 0.5});
    CHECK(half.features(0, 0) == doctest::Approx(-1.0));
    CHECK(half.features(0, 5) == doctest::Approx(1.0));
}

TEST_CASE("to_dataset: flatten gives [N, rows*cols]; flatten=false gives [N, 1, rows, cols] with the same values") {
    const auto flat = tapegrad::data::to_dataset<float>(tiny());
    const auto nchw = tapegrad::data::to_dataset<float>(tiny(), {.flatten = false});
    CHECK(flat.features.shape() == Shape{2, 6});
    CHECK(nchw.features.shape() == Shape{2, 1, 2, 3});
    CHECK(nchw.sample_shape() == Shape{1, 2, 3});
    CHECK(flat.features.to_vector() == nchw.features.to_vector());
    CHECK(nchw.features(0, 0, 1, 2) == flat.features(0, 5));  // row-major: pixel (1, 2) is the 6th
    CHECK(nchw.labels == flat.labels);
}

TEST_CASE("to_dataset: a non-positive stddev, or pixels that do not fill count x rows x cols, are rejected") {
    CHECK_THROWS_WITH_AS(static_cast<void>(tapegrad::data::to_dataset<float>(tiny(), {.stddev = 0})),
                         "to_dataset: stddev must be positive, got 0", tapegrad::ValueError);
    CHECK_THROWS_AS(static_cast<void>(tapegrad::data::to_dataset<float>(tiny(), {.stddev = -1})), tapegrad::ValueError);
    ImageSet extra = tiny();
    extra.pixels.push_back(7);  // one pixel more than 2 x 2 x 3: would write past the tensor
    CHECK_THROWS_AS(static_cast<void>(tapegrad::data::to_dataset<float>(extra)), tapegrad::ShapeError);
    ImageSet missing = tiny();
    missing.pixels.pop_back();  // one pixel short: would leave an element uninitialised
    CHECK_THROWS_AS(static_cast<void>(tapegrad::data::to_dataset<float>(missing)), tapegrad::ShapeError);
    ImageSet labels = tiny();
    labels.labels.push_back(1);
    CHECK_THROWS_AS(static_cast<void>(tapegrad::data::to_dataset<float>(labels)), tapegrad::ShapeError);
}

TEST_CASE("to_dataset: an empty ImageSet gives an empty dataset") {
    ImageSet s;
    s.rows = 28;
    s.cols = 28;
    const auto ds = tapegrad::data::to_dataset<float>(s);
    CHECK(ds.size() == 0);
    CHECK(ds.features.shape() == Shape{0, 784});
}

TEST_CASE("default_mnist_dir honours TAPEGRAD_MNIST_DIR") {
    const char* old = std::getenv("TAPEGRAD_MNIST_DIR");
    const std::string saved = old ? old : "";
    ::setenv("TAPEGRAD_MNIST_DIR", "/some/where/mnist", 1);
    CHECK(tapegrad::data::default_mnist_dir() == std::filesystem::path("/some/where/mnist"));
    if (old)
        ::setenv("TAPEGRAD_MNIST_DIR", saved.c_str(), 1);
    else
        ::unsetenv("TAPEGRAD_MNIST_DIR");
}

TEST_CASE("load_mnist: a folder without the files throws FormatError naming it") {
    const auto dir = std::filesystem::temp_directory_path() / "tapegrad_mnist_test_no_such_dir";
    CHECK_THROWS_AS(static_cast<void>(tapegrad::data::load_mnist<float>(dir)), tapegrad::FormatError);
}

TEST_CASE("load_mnist: training and test images of different sizes are rejected at load time") {
    const FakeMnist mixed(6, 28, 5, 14);
    CHECK_THROWS_WITH_AS(static_cast<void>(tapegrad::data::load_mnist<float>(mixed.dir)),
                         doctest::Contains("the training images are 28x28 but the test images are 14x14"),
                         tapegrad::ShapeError);
    const FakeMnist same(6, 14, 5, 14);
    const auto m = tapegrad::data::load_mnist<float>(same.dir);
    CHECK(m.train.features.shape() == Shape{6, 196});
    CHECK(m.test.features.shape() == Shape{5, 196});
}

TEST_CASE("load_mnist: the real MNIST files (when present) give 60000 + 10000 standardised samples") {
    const std::filesystem::path dir = tapegrad::data::default_mnist_dir();
    if (!mnist_present(dir)) {
        MESSAGE("MNIST not found in '", dir.string(),
                "' (set TAPEGRAD_MNIST_DIR or run cmake/fetch_mnist.sh): load_mnist test skipped");
        return;
    }
    const auto m = tapegrad::data::load_mnist<float>(dir);
    CHECK(m.train.features.shape() == Shape{60000, 784});
    CHECK(m.test.features.shape() == Shape{10000, 784});
    CHECK(m.train.labels.size() == 60000);
    CHECK(m.test.labels.size() == 10000);
    std::vector<int64_t> counts(10, 0);
    const bool labels_in_range = std::all_of(m.train.labels.begin(), m.train.labels.end(),
                                             [](int64_t l) { return l >= 0 && l < 10; });
    REQUIRE(labels_in_range);
    for (int64_t l : m.train.labels) ++counts[static_cast<size_t>(l)];
    for (int64_t c : counts) CHECK(c > 5000);  // each digit has 5421 to 6742 training images
    CHECK(counts[1] == 6742);
    CHECK(counts[5] == 5421);
    // The default mean and std are the training set's own: standardised, it has mean ~0 and std ~1.
    double sum = 0, sq = 0;
    float lo = m.train.features.data()[0], hi = lo;
    for (float v : m.train.features.span()) {
        sum += v;
        sq += static_cast<double>(v) * v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    const double n = static_cast<double>(m.train.features.numel());
    const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    CHECK(std::abs(mean) < 1e-3);
    CHECK(sd == doctest::Approx(1.0).epsilon(1e-3));
    CHECK(lo == doctest::Approx(-0.1307 / 0.3081).epsilon(1e-6));
    CHECK(hi == doctest::Approx((1 - 0.1307) / 0.3081).epsilon(1e-6));
    // The NCHW layout holds the same values.
    const auto nchw = tapegrad::data::load_mnist<float>(dir, {.flatten = false});
    CHECK(nchw.test.features.shape() == Shape{10000, 1, 28, 28});
    CHECK(nchw.test.features(9999, 0, 27, 27) == m.test.features(9999, 783));
    CHECK(nchw.test.labels == m.test.labels);
}
