// Tests for tapegrad/backend/common/multi_tensor.hpp: the launch plan of the multi-tensor kernels covers every
// element of every tensor exactly once (checked on the host by replaying the kernels' block -> (tensor,
// chunk) mapping), and the CPU list primitives (fill_many, scale_many, norm_many).

#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace backend = tapegrad::backend;
using tapegrad::Generator;
using Ops = backend::Ops<tapegrad::Cpu>;
constexpr int64_t chunk = backend::multi_tensor_chunk;

/// Replays a plan as the kernels would run it: for `sizes`, plans launches with a map of capacity C and
/// `max_blocks`, then for each launch walks every block, finds its tensor and range as a kernel block does,
/// and counts how often each element of each tensor is visited. Returns the number of launches.
template <int C>
int64_t replay(const std::vector<int64_t>& sizes, int64_t max_blocks, std::vector<std::vector<int>>& hits) {
    hits.assign(sizes.size(), {});
    for (size_t i = 0; i < sizes.size(); ++i) hits[i].assign(static_cast<size_t>(sizes[i]), 0);
    backend::BlockMap<C> map;
    std::pair<int64_t, int64_t> slot_of[C];  // (tensor, offset) of each slot of the current launch
    int64_t launched = 0;
    const int64_t launches = backend::plan_launches(
        static_cast<int64_t>(sizes.size()), map, [&](int64_t i) { return sizes[static_cast<size_t>(i)]; },
        [&](int slot, int64_t i, int64_t offset) {
            REQUIRE(slot >= 0);
            REQUIRE(slot < C);
            slot_of[slot] = {i, offset};
        },
        [&] {
            ++launched;
            REQUIRE(map.count >= 1);
            REQUIRE(map.count <= C);
            REQUIRE(map.first_block[0] == 0u);
            REQUIRE(static_cast<int64_t>(map.blocks()) <= max_blocks);
            for (int t = 0; t < map.count; ++t) {
                REQUIRE(map.n[t] > 0);
                // each piece has exactly the blocks its chunks need
                REQUIRE(static_cast<int64_t>(map.first_block[t + 1] - map.first_block[t]) ==
                        (map.n[t] + chunk - 1) / chunk);
            }
            for (uint32_t b = 0; b < map.blocks(); ++b) {
                const int t = map.tensor_of(b);
                REQUIRE(t >= 0);
                REQUIRE(t < map.count);
                int64_t begin = -1, end = -1;
                map.range_of(b, t, begin, end);
                REQUIRE(0 <= begin);
                REQUIRE(begin < end);
                REQUIRE(end <= map.n[t]);
                const auto [i, offset] = slot_of[t];
                auto& h = hits[static_cast<size_t>(i)];
                for (int64_t k = begin; k < end; ++k) ++h[static_cast<size_t>(offset + k)];
            }
        },
        max_blocks);
    CHECK(launches == launched);
    return launches;
}

/// Random sizes: many empty, small and chunk-boundary ones, some spanning several chunks.
std::vector<int64_t> random_sizes(Generator& gen, size_t count) {
    const int64_t special[] = {0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk, 5 * chunk + 17};
    std::vector<int64_t> sizes;
    for (size_t i = 0; i < count; ++i) {
        const uint64_t kind = gen.below(3);
        if (kind == 0)
            sizes.push_back(special[gen.below(7)]);
        else if (kind == 1)
            sizes.push_back(static_cast<int64_t>(gen.below(100)));
        else
            sizes.push_back(static_cast<int64_t>(gen.below(static_cast<uint64_t>(6 * chunk))));
    }
    return sizes;
}

void check_every_element_once(const std::vector<std::vector<int>>& hits) {
    for (size_t i = 0; i < hits.size(); ++i)
        for (size_t k = 0; k < hits[i].size(); ++k)
            if (hits[i][k] != 1) {
                FAIL_CHECK("tensor " << i << " element " << k << " visited " << hits[i][k] << " times");
                return;
            }
}

}  // namespace

TEST_CASE("multi-tensor plan: every element of every tensor is updated exactly once") {
    Generator gen(11);
    for (int trial = 0; trial < 200; ++trial) {
        const std::vector<int64_t> sizes = random_sizes(gen, static_cast<size_t>(gen.below(40)));
        int64_t nonempty = 0;
        for (int64_t n : sizes) nonempty += n > 0;
        std::vector<std::vector<int>> hits;
        INFO("trial " << trial << ", " << sizes.size() << " tensors");
        // the real capacity limit is the only one: one launch per 7 non-empty tensors
        CHECK(replay<7>(sizes, backend::multi_tensor_max_blocks, hits) == (nonempty + 6) / 7);
        check_every_element_once(hits);
        // a small block limit forces launches to end mid-tensor: big tensors are split into pieces
        replay<7>(sizes, 1 + static_cast<int64_t>(gen.below(5)), hits);
        check_every_element_once(hits);
        replay<1>(sizes, 2, hits);
        check_every_element_once(hits);
    }
}

TEST_CASE("multi-tensor plan: an empty list, or a list of empty tensors, launches nothing") {
    std::vector<std::vector<int>> hits;
    CHECK(replay<4>({}, backend::multi_tensor_max_blocks, hits) == 0);
    CHECK(replay<4>({0, 0, 0}, backend::multi_tensor_max_blocks, hits) == 0);
    CHECK(replay<4>({0, 5, 0}, backend::multi_tensor_max_blocks, hits) == 1);
}

TEST_CASE("fill_many fills every buffer of the list, empty ones included") {
    std::vector<std::vector<float>> bufs{std::vector<float>(3, 1.f), {}, std::vector<float>(5000, 2.f)};
    std::vector<backend::TensorSpan<float>> list;
    for (auto& b : bufs) list.push_back({static_cast<int64_t>(b.size()), b.data()});
    Ops::fill_many(static_cast<int64_t>(list.size()), list.data(), 0.5f);
    for (const auto& b : bufs)
        for (float x : b) REQUIRE(x == 0.5f);
    Ops::fill_many<float>(0, nullptr, 1.f);  // an empty list does nothing
}

TEST_CASE("scale_many scales every tensor of the list; norm_many is the norm of all elements as one vector") {
    std::vector<std::vector<double>> bufs{{3, -4}, {}, {12}};
    std::vector<backend::TensorSpan<double>> list;
    std::vector<backend::TensorSpan<const double>> clist;
    for (auto& b : bufs) {
        list.push_back({static_cast<int64_t>(b.size()), b.data()});
        clist.push_back({static_cast<int64_t>(b.size()), b.data()});
    }
    CHECK(Ops::norm_many(3, clist.data(), 2.0) == 13.0);  // sqrt(9 + 16 + 144)
    CHECK(Ops::norm_many(3, clist.data(), 1.0) == 19.0);
    CHECK(Ops::norm_many(3, clist.data(), INFINITY) == 12.0);
    CHECK(Ops::norm_many<double>(0, nullptr, 2.0) == 0.0);
    Ops::scale_many(3, list.data(), 0.5);
    CHECK(bufs[0] == std::vector<double>{1.5, -2});
    CHECK(bufs[2] == std::vector<double>{6});
    bufs[0][1] = NAN;
    CHECK(std::isnan(Ops::norm_many(3, clist.data(), INFINITY)));  // a NaN wins over any magnitude
}
