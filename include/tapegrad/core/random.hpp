#pragma once
/// \file
/// `Generator`: a small, explicitly seeded, portable random number generator.
///
/// The standard library's distributions are implementation-defined (libstdc++ and libc++ give different
/// numbers for the same engine), so tapegrad draws its own: xoshiro256** seeded through splitmix64, uniform
/// floats from the top mantissa bits, normals by Box-Muller. The same seed gives the same tensors on every
/// platform and compiler; a test pins the first draws.

#include <cmath>
#include <cstdint>
#include <numbers>

namespace tapegrad {

namespace detail {
__extension__ typedef unsigned __int128 uint128;  // GCC/Clang extension; __extension__ silences -Wpedantic
}

class Generator {
public:
    /// Seeds the four words of state from `seed` with splitmix64, as the xoshiro authors recommend.
    explicit Generator(uint64_t seed = 0x7a9e9c1dULL) noexcept { this->seed(seed); }

    void seed(uint64_t seed) noexcept {
        uint64_t x = seed;
        for (auto& w : s_) {
            x += 0x9e3779b97f4a7c15ULL;
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            w = z ^ (z >> 31);
        }
        has_spare_ = false;
    }

    /// The next 64 random bits (xoshiro256**).
    uint64_t next_u64() noexcept {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /// Uniform in [0, 1): 53 random bits for double, 24 for float, so every value is exactly representable.
    template <class T>
    T uniform01() noexcept {
        if constexpr (sizeof(T) == sizeof(float))
            return static_cast<T>(next_u64() >> 40) * 0x1p-24f;
        else
            return static_cast<T>(next_u64() >> 11) * 0x1p-53;
    }

    /// Uniform integer in [0, n) for n > 0 (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
    uint64_t below(uint64_t n) noexcept {
        return static_cast<uint64_t>((static_cast<detail::uint128>(next_u64()) * n) >> 64);
    }

    /// Standard normal by Box-Muller in double precision; the second value of each pair is kept for the
    /// next call.
    double normal() noexcept {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = uniform01<double>();
        while (u1 <= 0.0) u1 = uniform01<double>();
        const double u2 = uniform01<double>();
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double th = 2.0 * std::numbers::pi * u2;
        spare_ = r * std::sin(th);
        has_spare_ = true;
        return r * std::cos(th);
    }

private:
    static constexpr uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4]{};
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace tapegrad

namespace tapegrad {

/// This thread's default generator, used by layers constructed without an explicit one. Seed it with
/// `manual_seed` for reproducible initialisation (it starts from a fixed seed, so runs are reproducible
/// even without it).
inline Generator& default_generator() noexcept {
    thread_local Generator gen(0x5eed);
    return gen;
}
/// Re-seeds this thread's default generator.
inline void manual_seed(uint64_t seed) noexcept { default_generator().seed(seed); }

}  // namespace tapegrad
