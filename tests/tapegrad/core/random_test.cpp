#include <tapegrad/core/random.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

using tapegrad::Generator;
using tapegrad::TensorD;
using tapegrad::TensorF;

// The literals below pin the stream, so that a change to seeding, xoshiro256**, the float conversion or
// Box-Muller is caught. They were produced once by running (g++ 12 and clang++ 14, x86-64, same output):
//
//   Generator g(42);  for (int i = 0; i < 3; ++i) printf("0x%016llx\n", g.next_u64());
//   Generator g(42);  for (int i = 0; i < 3; ++i) printf("%a\n", g.uniform01<double>());
//   Generator g(42);  for (int i = 0; i < 3; ++i) printf("%a %.17g\n", g.normal(), ...);
//   Generator g(42);  for (int i = 0; i < 3; ++i) printf("%a\n", g.uniform01<float>());

TEST_CASE("Generator: the first draws from seed 42 are pinned") {
    Generator g(42);
    CHECK(g.next_u64() == 0x15780b2e0c2ec716ULL);
    CHECK(g.next_u64() == 0x6104d9866d113a7eULL);
    CHECK(g.next_u64() == 0xae17533239e499a1ULL);
}

TEST_CASE("Generator: the first uniform01<double> and uniform01<float> draws are pinned") {
    Generator g(42);
    CHECK(g.uniform01<double>() == 0x1.5780b2e0c2ecp-4);
    CHECK(g.uniform01<double>() == 0x1.84136619b444ep-2);
    CHECK(g.uniform01<double>() == 0x1.5c2ea66473c93p-1);

    // they are the top 53 bits of next_u64, exactly
    Generator a(42), b(42);
    for (int i = 0; i < 3; ++i) CHECK(a.uniform01<double>() == static_cast<double>(b.next_u64() >> 11) * 0x1p-53);

    Generator f(42);
    CHECK(f.uniform01<float>() == 0x1.5780bp-4f);
    CHECK(f.uniform01<float>() == 0x1.841364p-2f);
    CHECK(f.uniform01<float>() == 0x1.5c2ea6p-1f);
}

TEST_CASE("Generator: the first normal() draws are pinned") {
    // Box-Muller goes through log, sin and cos, which may differ in the last bit between C libraries, so
    // these are compared to 1e-14 relative rather than bitwise.
    Generator g(42);
    CHECK(g.normal() == doctest::Approx(-1.6132237513849161).epsilon(1e-14));  // -0x1.9cfc3b5554226p+0
    CHECK(g.normal() == doctest::Approx(1.5344873235334195).epsilon(1e-14));   // 0x1.88d42946b3de2p+0
    CHECK(g.normal() == doctest::Approx(0.78169204505734891).epsilon(1e-14));  // 0x1.9039f092211cbp-1
}

TEST_CASE("Generator: same seed, same stream; seed() restarts it") {
    Generator a(7), b(7), c(8);
    std::vector<uint64_t> va, vb, vc;
    for (int i = 0; i < 100; ++i) {
        va.push_back(a.next_u64());
        vb.push_back(b.next_u64());
        vc.push_back(c.next_u64());
    }
    CHECK(va == vb);
    CHECK(va != vc);

    a.seed(7);
    CHECK(a.next_u64() == va[0]);

    // seed() also drops the spare Box-Muller value, so the normal stream restarts too
    Generator n1(11);
    const double first = n1.normal();
    (void)n1.normal();
    (void)n1.normal();  // leaves a spare pending
    n1.seed(11);
    CHECK(n1.normal() == first);

    // a copy continues the same stream independently
    Generator d(99);
    (void)d.next_u64();
    Generator e = d;
    CHECK(d.next_u64() == e.next_u64());
    CHECK(d.normal() == e.normal());

    // the default seed is fixed too
    Generator x, y;
    CHECK(x.next_u64() == y.next_u64());
}

TEST_CASE("Generator: uniform01 stays in [0, 1) and below(n) in [0, n), covering it") {
    Generator g(2024);
    double lo = 1, hi = 0;
    float flo = 1, fhi = 0;
    for (int i = 0; i < 10000; ++i) {
        const double u = g.uniform01<double>();
        const float f = g.uniform01<float>();
        lo = std::min(lo, u);
        hi = std::max(hi, u);
        flo = std::min(flo, f);
        fhi = std::max(fhi, f);
    }
    CHECK(lo >= 0.0);
    CHECK(hi < 1.0);
    CHECK(lo < 0.001);
    CHECK(hi > 0.999);
    CHECK(flo >= 0.0f);
    CHECK(fhi < 1.0f);

    for (uint64_t n : {1ULL, 2ULL, 3ULL, 7ULL, 10ULL}) {
        CAPTURE(n);
        std::vector<int> seen(n, 0);
        bool in_range = true;
        for (int i = 0; i < 1000; ++i) {
            const uint64_t k = g.below(n);
            in_range = in_range && k < n;
            if (k < n) ++seen[k];
        }
        CHECK(in_range);
        for (uint64_t k = 0; k < n; ++k) CHECK(seen[k] > 0);
    }
}

TEST_CASE("Generator: normal() has mean 0 and variance 1") {
    Generator g(5);
    const int n = 40000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
        const double v = g.normal();
        s += v;
        s2 += v * v;
    }
    const double mean = s / n;
    CHECK(std::abs(mean) < 0.02);
    CHECK(s2 / n - mean * mean == doctest::Approx(1.0).epsilon(0.03));
}

TEST_CASE("Generator: the same seed reproduces a uniform or normal tensor bitwise") {
    Generator g1(123), g2(123), g3(124);
    const TensorD a = TensorD::uniform({4, 5, 6}, -3.0, 3.0, g1);
    const TensorD b = TensorD::uniform({4, 5, 6}, -3.0, 3.0, g2);
    const TensorD c = TensorD::uniform({4, 5, 6}, -3.0, 3.0, g3);
    CHECK(std::memcmp(a.data(), b.data(), sizeof(double) * 120) == 0);
    CHECK(std::memcmp(a.data(), c.data(), sizeof(double) * 120) != 0);

    // the tensor's elements are the generator's draws, in row-major order
    Generator ref(123);
    CHECK(a.data()[0] == -3.0 + 6.0 * ref.uniform01<double>());
    CHECK(a.data()[1] == -3.0 + 6.0 * ref.uniform01<double>());

    Generator f1(9), f2(9);
    const TensorF fa = TensorF::uniform({33}, 0.f, 1.f, f1);
    const TensorF fb = TensorF::uniform({33}, 0.f, 1.f, f2);
    CHECK(std::memcmp(fa.data(), fb.data(), sizeof(float) * 33) == 0);

    const TensorD na = TensorD::normal({17}, 0.0, 1.0, f1);
    const TensorD nb = TensorD::normal({17}, 0.0, 1.0, f2);
    CHECK(std::memcmp(na.data(), nb.data(), sizeof(double) * 17) == 0);
}
