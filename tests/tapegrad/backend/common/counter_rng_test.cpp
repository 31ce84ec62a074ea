// Tests for tapegrad/backend/common/counter_rng.hpp and the CPU's dropout_mask built on it: the counter-based bits
// are splitmix64's outputs (pinned to the reference generator's first outputs), a mask drawn from an offset is
// the matching slice of the whole mask (so any split of the work across threads draws the same mask), and the
// drop threshold's edge cases.

#include <tapegrad/backend/common/counter_rng.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

namespace {

namespace backend = tapegrad::backend;
using Ops = backend::Ops<tapegrad::Cpu>;

/// The reference splitmix64 (Vigna, splitmix64.c): a sequential generator whose state steps by the golden
/// ratio and whose output is the state mixed.
struct SplitMix64 {
    uint64_t x;
    uint64_t next() {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
};

}  // namespace

TEST_CASE("random_bits(seed, i) is splitmix64's output number i from state seed") {
    // The reference generator's first outputs from state 0 (python: the same three lines mod 2^64).
    CHECK(backend::random_bits(0, 0) == 0xe220a8397b1dcdafULL);
    CHECK(backend::random_bits(0, 1) == 0x6e789e6aa1b965f4ULL);
    CHECK(backend::random_bits(0, 2) == 0x06c45d188009454fULL);
    for (uint64_t seed : {uint64_t{1}, uint64_t{1234567}, ~uint64_t{0}}) {
        SplitMix64 ref{seed};
        for (uint64_t i = 0; i < 1000; ++i) CHECK(backend::random_bits(seed, i) == ref.next());
    }
    static_assert(backend::random_bits(0, 0) == 0xe220a8397b1dcdafULL, "random_bits is usable in constant expressions");
}

TEST_CASE("dropout_mask: values 0 or 1/(1-p); an offset draws the matching slice; p = 0 keeps everything") {
    const int64_t n = 10000;
    std::vector<float> whole(n), tail(n - 3000);
    Ops::dropout_mask(n, 0.3, 42, 0, whole.data());
    Ops::dropout_mask(n - 3000, 0.3, 42, 3000, tail.data());
    int64_t zeros = 0, others = 0;
    for (int64_t i = 0; i < n; ++i) {
        zeros += whole[static_cast<size_t>(i)] == 0.0f;
        others += whole[static_cast<size_t>(i)] != 0.0f && whole[static_cast<size_t>(i)] != static_cast<float>(1.0 / 0.7);
    }
    CHECK(others == 0);
    CHECK(zeros > 2800);  // p n = 3000, standard deviation 46
    CHECK(zeros < 3200);
    CHECK(std::vector<float>(whole.begin() + 3000, whole.end()) == tail);
    std::vector<double> none(100);
    Ops::dropout_mask(100, 0.0, 7, 0, none.data());
    CHECK(none == std::vector<double>(100, 1.0));
    // a different seed, a different mask
    std::vector<float> other(n);
    Ops::dropout_mask(n, 0.3, 43, 0, other.data());
    CHECK(other != whole);
}

TEST_CASE("dropout_threshold: floor(p 2^64), 0 at p = 0, below 2^64 just under p = 1") {
    CHECK(backend::dropout_threshold(0.0) == 0);
    CHECK(backend::dropout_threshold(0.5) == uint64_t{1} << 63);
    CHECK(backend::dropout_threshold(0.25) == uint64_t{1} << 62);
    CHECK(backend::dropout_threshold(0.9999999999999999) == 0xfffffffffffff800ULL);  // (1 - 2^-53) 2^64
}
