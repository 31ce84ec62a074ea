// Tests for tapegrad/data/dataset.hpp: Dataset::subset, train_val_split and DataLoader (batch counts,
// the partial last batch, every sample once per epoch, seeded shuffling, labels following their samples,
// batch buffer reuse) and the argument checks.
//
// The datasets here store each sample's own index in its features, so a batch says which samples it holds.

#include <tapegrad/data/dataset.hpp>
#include <tapegrad/ops/shape.hpp>

#include "indexed_dataset.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace {

using tapegrad::Shape;
using tapegrad::TensorF;
using tapegrad::data::Batch;
using tapegrad::data::DataLoader;
using tapegrad::data::Dataset;
using tapegrad::data::LoaderOptions;

Dataset<float> indexed(int64_t n) { return tapegrad::testing::indexed_dataset(n); }

/// The sample indices of a batch (its first feature), checking that every row is intact and labelled.
std::vector<int64_t> ids_of(const Batch<float>& b) {
    std::vector<int64_t> ids;
    const int64_t per = b.x.numel() / b.x.size(0);
    for (int64_t r = 0; r < b.x.size(0); ++r) {
        const float* row = b.x.data() + r * per;
        const auto id = static_cast<int64_t>(row[0]);
        CHECK(row[1] == -row[0]);
        CHECK(b.y[static_cast<size_t>(r)] == id % 7);  // the label followed its sample
        ids.push_back(id);
    }
    return ids;
}

/// One epoch's sample order.
std::vector<int64_t> epoch(DataLoader<float>& loader) {
    std::vector<int64_t> order;
    for (const auto& b : loader) {
        const auto ids = ids_of(b);
        order.insert(order.end(), ids.begin(), ids.end());
    }
    return order;
}

std::vector<int64_t> iota(int64_t n) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), int64_t{0});
    return v;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST_CASE("DataLoader: batch count with and without drop_last, and the size of the last batch") {
    const auto ds = indexed(10);
    struct Case {
        int64_t batch;
        bool drop_last;
        int64_t batches, last;
    };
    for (const Case c : {Case{4, false, 3, 2}, Case{4, true, 2, 4}, Case{5, false, 2, 5}, Case{5, true, 2, 5},
                         Case{1, false, 10, 1}, Case{10, true, 1, 10}, Case{11, false, 1, 10}, Case{11, true, 0, 0},
                         Case{3, false, 4, 1}, Case{3, true, 3, 3}}) {
        CAPTURE(c.batch);
        CAPTURE(c.drop_last);
        DataLoader<float> loader(ds, {.batch_size = c.batch, .shuffle = true, .drop_last = c.drop_last, .seed = 1});
        CHECK(loader.num_batches() == c.batches);
        std::vector<int64_t> sizes;
        int64_t expected_index = 0;
        for (const auto& b : loader) {
            CHECK(b.index == expected_index++);
            CHECK(b.x.shape() == Shape{b.x.size(0), 2});
            CHECK(static_cast<int64_t>(b.y.size()) == b.x.size(0));
            sizes.push_back(b.x.size(0));
        }
        REQUIRE(static_cast<int64_t>(sizes.size()) == c.batches);
        if (c.batches == 0) continue;
        CHECK(sizes.back() == c.last);
        for (size_t i = 0; i + 1 < sizes.size(); ++i) CHECK(sizes[i] == c.batch);
    }
}

TEST_CASE("DataLoader: every sample is seen exactly once per epoch, labels following their samples") {
    const auto ds = indexed(103);
    DataLoader<float> loader(ds, {.batch_size = 8, .seed = 5});
    for (int e = 0; e < 3; ++e) CHECK(sorted(epoch(loader)) == iota(103));
    // With drop_last, each sample at most once and exactly the 96 of the full batches.
    DataLoader<float> dropping(ds, {.batch_size = 8, .drop_last = true, .seed = 5});
    const auto seen = epoch(dropping);
    CHECK(seen.size() == 96);
    CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 96);
}

TEST_CASE("DataLoader: shuffling differs between epochs and is identical for the same seed") {
    const auto ds = indexed(50);
    DataLoader<float> a(ds, {.batch_size = 7, .seed = 42});
    DataLoader<float> b(ds, {.batch_size = 7, .seed = 42});
    DataLoader<float> c(ds, {.batch_size = 7, .seed = 43});
    const auto a1 = epoch(a), a2 = epoch(a), a3 = epoch(a);
    const auto b1 = epoch(b), b2 = epoch(b), b3 = epoch(b);
    CHECK(a1 != iota(50));  // shuffled (50! orders; the identity has probability ~1e-64)
    CHECK(a1 != a2);
    CHECK(a2 != a3);
    CHECK(a1 == b1);
    CHECK(a2 == b2);
    CHECK(a3 == b3);
    CHECK(epoch(c) != a1);
    // The batch size does not change the order: the same seed with another batch size sees the same sequence.
    DataLoader<float> d(ds, {.batch_size = 50, .seed = 42});
    CHECK(epoch(d) == a1);
}

TEST_CASE("DataLoader: shuffle=false keeps the dataset's order in every epoch") {
    const auto ds = indexed(23);
    DataLoader<float> loader(ds, {.batch_size = 5, .shuffle = false});
    CHECK(epoch(loader) == iota(23));
    CHECK(epoch(loader) == iota(23));
}

TEST_CASE("DataLoader: next() drives an epoch by hand; start_epoch rewinds") {
    const auto ds = indexed(5);
    DataLoader<float> loader(ds, {.batch_size = 2, .shuffle = false});
    Batch<float> b;
    loader.start_epoch();
    REQUIRE(loader.next(b));
    CHECK(ids_of(b) == std::vector<int64_t>{0, 1});
    REQUIRE(loader.next(b));
    REQUIRE(loader.next(b));
    CHECK(ids_of(b) == std::vector<int64_t>{4});
    CHECK(b.index == 2);
    CHECK_FALSE(loader.next(b));
    CHECK_FALSE(loader.next(b));
    loader.start_epoch();
    REQUIRE(loader.next(b));
    CHECK(ids_of(b) == std::vector<int64_t>{0, 1});
}

TEST_CASE("DataLoader: samples of any rank keep their shape in the batch [B, ...]") {
    Dataset<float> ds{TensorF::empty({6, 1, 2, 3}), {0, 1, 2, 3, 4, 5}};
    for (int64_t i = 0; i < ds.features.numel(); ++i) ds.features.data()[i] = static_cast<float>(i);
    DataLoader<float> loader(ds, {.batch_size = 4, .shuffle = false});
    std::vector<Shape> shapes;
    std::vector<float> all;
    for (const auto& b : loader) {
        shapes.push_back(b.x.shape());
        all.insert(all.end(), b.x.data(), b.x.data() + b.x.numel());
    }
    CHECK(shapes == std::vector<Shape>{Shape{4, 1, 2, 3}, Shape{2, 1, 2, 3}});
    CHECK(all == ds.features.to_vector());
}

TEST_CASE("DataLoader: an empty dataset gives no batches") {
    Dataset<float> ds{TensorF::empty({0, 3}), {}};
    DataLoader<float> loader(ds, {.batch_size = 4});
    CHECK(loader.num_batches() == 0);
    CHECK(epoch(loader).empty());
}

TEST_CASE("DataLoader: the batch buffer is reused while the user holds no reference to it") {
    // Property: the loader writes each batch into the previous batch's buffer when nothing else shares it
    // (no copy of the tensor handle, no view of its storage), so a training loop does not allocate per batch.
    // A batch of another shape (the last, partial one) gets a new buffer.
    const auto ds = indexed(20);
    DataLoader<float> loader(ds, {.batch_size = 4, .seed = 3});
    std::set<const float*> pointers;
    for (const auto& b : loader) pointers.insert(b.x.data());
    CHECK(pointers.size() == 1);

    // Holding the tensor (or a view of it) keeps that batch intact: the loader allocates a fresh buffer.
    std::vector<TensorF> kept;
    std::vector<std::vector<float>> values;
    for (const auto& b : loader) {
        kept.push_back(b.index % 2 == 0 ? b.x : b.x.reshape({-1}));
        values.push_back(b.x.to_vector());
    }
    REQUIRE(kept.size() == 5);
    std::set<const float*> kept_pointers;
    for (size_t i = 0; i < kept.size(); ++i) {
        CHECK(kept[i].to_vector() == values[i]);  // not overwritten by later batches
        kept_pointers.insert(kept[i].data());
    }
    CHECK(kept_pointers.size() == 5);
}

TEST_CASE("DataLoader: a dataset whose labels do not match its samples, or batch_size <= 0, is rejected") {
    auto ds = indexed(10);
    ds.labels.pop_back();
    CHECK_THROWS_WITH_AS(DataLoader<float>(ds, {}), "DataLoader: 10 samples but 9 labels", tapegrad::ShapeError);
    const auto good = indexed(10);
    CHECK_THROWS_WITH_AS(DataLoader<float>(good, {.batch_size = 0}), "DataLoader: batch_size must be positive, got 0",
                         tapegrad::ValueError);
    CHECK_THROWS_AS(DataLoader<float>(good, {.batch_size = -3}), tapegrad::ValueError);
    Dataset<float> undefined;
    CHECK(undefined.size() == 0);
    CHECK_THROWS_AS(DataLoader<float>(undefined, {}), tapegrad::ShapeError);
    Dataset<float> scalar{TensorF::scalar(1.0f), {}};
    CHECK_THROWS_AS(DataLoader<float>(scalar, {}), tapegrad::ShapeError);
}

TEST_CASE("Dataset: size, sample_shape and subset") {
    const auto ds = indexed(10);
    CHECK(ds.size() == 10);
    CHECK(ds.sample_shape() == Shape{2});
    const std::vector<int64_t> pick = {7, 2, 2, 9};
    const auto sub = ds.subset(pick);
    CHECK(sub.size() == 4);
    CHECK(sub.features.to_vector() == std::vector<float>{7, -7, 2, -2, 2, -2, 9, -9});
    CHECK(sub.labels == std::vector<int64_t>{0, 2, 2, 2});
    // A copy: changing it leaves the original alone.
    sub.features(0, 0) = 100.0f;
    CHECK(ds.features(7, 0) == 7.0f);
    const auto none = ds.subset(std::vector<int64_t>{});
    CHECK(none.size() == 0);
    CHECK(none.features.shape() == Shape{0, 2});
}

TEST_CASE("Dataset: subset with an index out of range throws IndexError; a bad dataset throws ShapeError") {
    const auto ds = indexed(10);
    CHECK_THROWS_WITH_AS(static_cast<void>(ds.subset(std::vector<int64_t>{1, 10})),
                         "Dataset::subset: index 10 out of range [0, 10)", tapegrad::IndexError);
    CHECK_THROWS_AS(static_cast<void>(ds.subset(std::vector<int64_t>{-1})), tapegrad::IndexError);
    auto bad = indexed(4);
    bad.labels.push_back(0);
    CHECK_THROWS_WITH_AS(static_cast<void>(bad.subset(std::vector<int64_t>{0})),
                         "Dataset::subset: 4 samples but 5 labels", tapegrad::ShapeError);
}

TEST_CASE("train_val_split: sizes, disjoint parts covering the dataset, labels kept, seeded") {
    const auto ds = indexed(100);
    const auto [train, val] = tapegrad::data::train_val_split(ds, 30, 7);
    CHECK(train.size() == 70);
    CHECK(val.size() == 30);
    CHECK(static_cast<int64_t>(train.labels.size()) == 70);
    std::vector<int64_t> tr_ids, va_ids;
    for (int64_t i = 0; i < train.size(); ++i) tr_ids.push_back(static_cast<int64_t>(train.features(i, 0)));
    for (int64_t i = 0; i < val.size(); ++i) va_ids.push_back(static_cast<int64_t>(val.features(i, 0)));
    for (size_t i = 0; i < tr_ids.size(); ++i) CHECK(train.labels[i] == tr_ids[i] % 7);
    for (size_t i = 0; i < va_ids.size(); ++i) CHECK(val.labels[i] == va_ids[i] % 7);
    // Each part keeps the dataset's order.
    CHECK(std::is_sorted(tr_ids.begin(), tr_ids.end()));
    CHECK(std::is_sorted(va_ids.begin(), va_ids.end()));
    // Disjoint, and together every sample.
    std::vector<int64_t> both;
    std::set_intersection(tr_ids.begin(), tr_ids.end(), va_ids.begin(), va_ids.end(), std::back_inserter(both));
    CHECK(both.empty());
    std::vector<int64_t> all = tr_ids;
    all.insert(all.end(), va_ids.begin(), va_ids.end());
    CHECK(sorted(all) == iota(100));
    // A random choice, not the last 30.
    const std::vector<int64_t> ids = iota(100);
    CHECK(va_ids != std::vector<int64_t>(ids.begin() + 70, ids.end()));

    const auto [train2, val2] = tapegrad::data::train_val_split(ds, 30, 7);
    CHECK(val2.features.to_vector() == val.features.to_vector());
    CHECK(train2.labels == train.labels);
    const auto [train3, val3] = tapegrad::data::train_val_split(ds, 30, 8);
    CHECK(val3.features.to_vector() != val.features.to_vector());
}

TEST_CASE("train_val_split: the edge sizes 0 and N, and sizes outside [0, N]") {
    const auto ds = indexed(10);
    const auto [all, none] = tapegrad::data::train_val_split(ds, 0, 1);
    CHECK(all.size() == 10);
    CHECK(none.size() == 0);
    CHECK(all.features.to_vector() == ds.features.to_vector());
    const auto [none2, all2] = tapegrad::data::train_val_split(ds, 10, 1);
    CHECK(none2.size() == 0);
    CHECK(all2.size() == 10);
    CHECK_THROWS_WITH_AS(static_cast<void>(tapegrad::data::train_val_split(ds, 11, 1)),
                         "train_val_split: validation size 11 is not within [0, 10]", tapegrad::ValueError);
    CHECK_THROWS_AS(static_cast<void>(tapegrad::data::train_val_split(ds, -1, 1)), tapegrad::ValueError);
}
