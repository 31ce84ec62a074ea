// Tests for tapegrad/data/device_loader.hpp on the CPU: DeviceLoader's batches are DataLoader's (drop-last)
// batches in the same order for the same seed, epoch after epoch, with and without shuffling; labels follow
// their samples and carry the dataset's bound; extra next() calls start the order again instead of reading
// past it; the argument checks; and a training loop on it. (tests/cuda/ runs the same loader on a GPU.)
//
// Sample i is (i, -i) with label i % 7, so a batch says which samples it holds.

#include <tapegrad/data/dataset.hpp>
#include <tapegrad/data/device_loader.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/optim/sgd.hpp>

#include "../../support/check_throws.hpp"

#include "indexed_dataset.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using tapegrad::TensorF;
using tapegrad::data::Batch;
using tapegrad::data::DataLoader;
using tapegrad::data::Dataset;
using tapegrad::data::DeviceLoader;
using tapegrad::data::LoaderOptions;

Dataset<float> indexed_data(int64_t n) { return tapegrad::testing::indexed_dataset(n); }

/// The sample ids of the loader's current batch, checking rows and labels.
std::vector<int64_t> ids_in(const DeviceLoader<float>& l) {
    const std::vector<float> x = l.x().to_vector();
    const std::vector<int64_t> y = l.y().to_vector();
    std::vector<int64_t> ids;
    for (int64_t r = 0; r < l.batch_size(); ++r) {
        const auto id = static_cast<int64_t>(x[static_cast<size_t>(2 * r)]);
        CHECK(x[static_cast<size_t>(2 * r + 1)] == -x[static_cast<size_t>(2 * r)]);
        CHECK(y[static_cast<size_t>(r)] == id % 7);
        ids.push_back(id);
    }
    return ids;
}

std::vector<int64_t> ids_in(const Batch<float>& b) {
    std::vector<int64_t> ids;
    for (int64_t r = 0; r < b.x.size(0); ++r) ids.push_back(static_cast<int64_t>(b.x(r, 0)));
    return ids;
}

using tapegrad::testing::check_throws;

}  // namespace

TEST_CASE("DeviceLoader gives DataLoader's drop-last batches in the same order, epoch after epoch") {
    const Dataset<float> ds = indexed_data(103);
    for (const bool shuffle : {true, false}) {
        CAPTURE(shuffle);
        const LoaderOptions opt{.batch_size = 10, .shuffle = shuffle, .drop_last = true, .seed = 5};
        DataLoader<float> host(ds, opt);
        DeviceLoader<float> dev(ds, opt);
        CHECK(dev.num_batches() == 10);
        CHECK(dev.num_batches() == host.num_batches());
        for (int epoch = 0; epoch < 3; ++epoch) {
            dev.start_epoch();
            int64_t b = 0;
            for (const auto& batch : host) {
                dev.next();
                CHECK(ids_in(dev) == ids_in(batch));
                ++b;
            }
            CHECK(b == dev.num_batches());
        }
    }
}

TEST_CASE("DeviceLoader drops the partial batch even without drop_last, and wraps instead of overrunning") {
    const Dataset<float> ds = indexed_data(25);
    DeviceLoader<float> l(ds, {.batch_size = 10, .shuffle = false});
    CHECK(l.num_batches() == 2);
    l.start_epoch();
    l.next();
    CHECK(ids_in(l).front() == 0);
    l.next();
    CHECK(ids_in(l).front() == 10);
    l.next();  // one more than the epoch holds: the order starts again, never rows 20..29
    CHECK(ids_in(l).front() == 0);
    CHECK(l.y().max_label() == 6);  // the dataset's largest label bounds every batch
    CHECK(l.y().max_row() == -1);
}

TEST_CASE("DeviceLoader checks its arguments") {
    const Dataset<float> ds = indexed_data(5);
    check_throws<tapegrad::ValueError>([&] { DeviceLoader<float> l(ds, {.batch_size = 0}); },
                                       "DeviceLoader: batch_size 0 must be in [1, 5]");
    check_throws<tapegrad::ValueError>([&] { DeviceLoader<float> l(ds, {.batch_size = 6}); },
                                       "DeviceLoader: batch_size 6 must be in [1, 5]");
    Dataset<float> neg = indexed_data(4);
    neg.labels[2] = -3;
    check_throws<tapegrad::IndexError>([&] { DeviceLoader<float> l(neg, {.batch_size = 2}); },
                                       "label -3 at row 2 is negative");
    Dataset<float> short_labels = indexed_data(4);
    short_labels.labels.pop_back();
    check_throws<tapegrad::ShapeError>([&] { DeviceLoader<float> l(short_labels, {.batch_size = 2}); },
                                       "DeviceLoader: 4 samples but 3 labels");
}

TEST_CASE("A training loop on DeviceLoader matches one on DataLoader step for step") {
    const Dataset<float> ds = indexed_data(60);
    const LoaderOptions opt{.batch_size = 8, .shuffle = true, .drop_last = true, .seed = 9};
    auto train = [&](bool device) {
        tapegrad::Generator gen(3);
        tapegrad::nn::Linear<float> fc(2, 7, gen);
        tapegrad::optim::SGD<float> sgd(fc.parameters(), {.lr = 0.01, .momentum = 0.9});
        DataLoader<float> host(ds, opt);
        DeviceLoader<float> dev(ds, opt);
        for (int epoch = 0; epoch < 2; ++epoch) {
            if (device) {
                dev.start_epoch();
                for (int64_t b = 0; b < dev.num_batches(); ++b) {
                    dev.next();
                    sgd.zero_grad();
                    tapegrad::nn::cross_entropy(fc(dev.x()), dev.y()).backward();
                    sgd.step();
                }
            } else {
                for (const auto& batch : host) {
                    sgd.zero_grad();
                    tapegrad::nn::cross_entropy(fc(batch.x), batch.y).backward();
                    sgd.step();
                }
            }
        }
        return fc.weight().to_vector();
    };
    CHECK(train(true) == train(false));
}
