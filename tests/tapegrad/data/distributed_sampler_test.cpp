#include <tapegrad/data/dataset.hpp>
#include <tapegrad/data/distributed_sampler.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

using namespace tapegrad;
using data::DistributedSampler;
using data::DistributedSamplerOptions;

namespace {

/// Every rank's indices for the next epoch, rank after rank.
std::vector<std::vector<int64_t>> shards(int64_t n, DistributedSamplerOptions opt, int64_t epoch) {
    std::vector<std::vector<int64_t>> out;
    for (int r = 0; r < opt.num_replicas; ++r) {
        opt.rank = r;
        DistributedSampler s(n, opt);
        s.set_epoch(epoch);
        out.emplace_back();
        s.epoch_indices(out.back());
    }
    return out;
}

std::vector<int64_t> sorted_union(const std::vector<std::vector<int64_t>>& parts) {
    std::vector<int64_t> all;
    for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    std::sort(all.begin(), all.end());
    return all;
}

}  // namespace

TEST_CASE("DistributedSampler: disjoint shards of equal size that cover the dataset") {
    for (const int ranks : {1, 2, 3, 4}) {
        CAPTURE(ranks);
        const auto parts = shards(12, {.num_replicas = ranks, .seed = 3}, 0);
        std::vector<int64_t> expect(12);
        std::iota(expect.begin(), expect.end(), int64_t{0});
        CHECK(sorted_union(parts) == expect);  // each sample exactly once
        for (const auto& p : parts) CHECK(p.size() == static_cast<size_t>(12 / ranks));
    }
}

TEST_CASE("DistributedSampler: an uneven dataset is padded from the front, or cut with drop_last") {
    // 10 samples on 4 ranks: 3 each, 2 repeated; without shuffling, rank r takes r, r + 4, r + 8 (mod 10)
    const auto padded = shards(10, {.num_replicas = 4, .shuffle = false}, 0);
    CHECK(padded[0] == std::vector<int64_t>{0, 4, 8});
    CHECK(padded[1] == std::vector<int64_t>{1, 5, 9});
    CHECK(padded[2] == std::vector<int64_t>{2, 6, 0});
    CHECK(padded[3] == std::vector<int64_t>{3, 7, 1});
    const auto cut = shards(10, {.num_replicas = 4, .shuffle = false, .drop_last = true}, 0);
    for (const auto& p : cut) CHECK(p.size() == 2);
    CHECK(sorted_union(cut) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
    // even = false: exactly disjoint, sizes differ by one (for evaluation)
    const auto exact = shards(10, {.num_replicas = 4, .shuffle = false, .even = false}, 0);
    CHECK(exact[0].size() == 3);
    CHECK(exact[3].size() == 2);
    CHECK(sorted_union(exact) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    // a dataset smaller than the number of ranks still gives every rank one sample
    const auto tiny = shards(1, {.num_replicas = 3, .shuffle = false}, 0);
    for (const auto& p : tiny) CHECK(p == std::vector<int64_t>{0});
}

TEST_CASE("DistributedSampler: the shuffle depends on seed and epoch only, and advances by itself") {
    const auto e0 = shards(50, {.num_replicas = 2, .seed = 7}, 0);
    CHECK(shards(50, {.num_replicas = 2, .seed = 7}, 0) == e0);  // every rank computes the same permutation
    CHECK(shards(50, {.num_replicas = 2, .seed = 7}, 1) != e0);
    CHECK(shards(50, {.num_replicas = 2, .seed = 8}, 0) != e0);
    DistributedSampler s(50, {.num_replicas = 2, .rank = 0, .seed = 7});
    std::vector<int64_t> a, b;
    s.epoch_indices(a);  // epoch 0
    s.epoch_indices(b);  // epoch 1
    CHECK(a == e0[0]);
    CHECK(b == shards(50, {.num_replicas = 2, .seed = 7}, 1)[0]);
    CHECK(s.epoch() == 2);
}

TEST_CASE("DistributedSampler: invalid ranks are errors that name the values") {
    CHECK_THROWS_WITH_AS(DistributedSampler(10, {.num_replicas = 2, .rank = 2}),
                         "DistributedSampler: rank 2 out of range [0, 2)", ValueError);
    CHECK_THROWS_WITH_AS(DistributedSampler(10, {.num_replicas = 0}),
                         "DistributedSampler: num_replicas must be at least 1, got 0", ValueError);
}

TEST_CASE("DataLoader with a sampler: batches follow the sampler's indices, epoch after epoch") {
    data::Dataset<float> ds{Tensor<float>::from({10, 1}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}};
    auto sampler = std::make_shared<DistributedSampler>(10, DistributedSamplerOptions{.num_replicas = 3, .rank = 1,
                                                                                       .shuffle = false});
    data::DataLoader<float> loader(ds, sampler, {.batch_size = 3});
    CHECK(loader.num_batches() == 2);  // 4 samples: 3 + 1
    std::vector<int64_t> seen;
    for (const auto& b : loader) seen.insert(seen.end(), b.y.begin(), b.y.end());
    CHECK(seen == std::vector<int64_t>{1, 4, 7, 0});  // the last one is padding
    CHECK(sampler->epoch() == 1);

    struct Bad final : data::Sampler {
        int64_t size() const override { return 1; }
        void epoch_indices(std::vector<int64_t>& out) override { out.assign(1, 10); }
    };
    data::DataLoader<float> bad(ds, std::make_shared<Bad>(), {.batch_size = 1});
    CHECK_THROWS_WITH_AS(bad.start_epoch(), "DataLoader: the sampler chose index 10, out of range [0, 10)", IndexError);
    CHECK_THROWS_WITH_AS(data::DataLoader<float>(ds, nullptr, {}), "DataLoader: the sampler is null", ValueError);
}
