#pragma once
/// \file
/// A counter-based random generator: the random bits number i of a stream are a pure function of (seed, i),
/// so any element of a random mask can be drawn independently of the others, in any order, by any thread,
/// on the host or on the GPU, and the same seed gives the same bits everywhere. The CPU and CUDA backends'
/// `dropout_mask` both call `dropout_keeps` below, which is why a Dropout layer on the GPU draws exactly the
/// mask the same layer draws on the CPU.
///
/// The bits are splitmix64's: random_bits(seed, i) is the (i+1)-th output of a splitmix64 generator started
/// at state `seed` (its state after i+1 steps is seed + (i+1) * golden, and the output is a fixed mix of the
/// state), so a stream has splitmix64's statistical quality (it passes BigCrush) and period 2^64.
///
/// No Eigen and no other tapegrad header: the CUDA kernels (backend/cuda/*.cu) include it.

#include <tapegrad/backend/common/host_device.hpp>

#include <cstdint>

namespace tapegrad::backend {

/// splitmix64's output function: a bijection of 64-bit words that spreads every input bit over the output.
TAPEGRAD_HD constexpr uint64_t mix64(uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/// The 64 random bits number `counter` of the stream `seed` (counter 0, 1, ... gives splitmix64's outputs
/// from state `seed`, in order).
TAPEGRAD_HD constexpr uint64_t random_bits(uint64_t seed, uint64_t counter) noexcept {
    return mix64(seed + (counter + 1) * 0x9e3779b97f4a7c15ULL);
}

/// The integer form of a drop probability p in [0, 1): floor(p * 2^64), so that a uniform 64-bit word is
/// below it with probability p (to within 2^-64). Computed once on the host and compared as integers, so the
/// host and the GPU agree on every element whatever their floating-point differences.
constexpr uint64_t dropout_threshold(double p) noexcept {
    // p < 1 is a double at most 1 - 2^-53, so p * 2^64 <= 2^64 - 2^11 fits in 64 bits.
    return p <= 0.0 ? 0 : static_cast<uint64_t>(p * 18446744073709551616.0);
}

/// Whether dropout keeps element `index` of the mask drawn with `seed` (kept with probability 1 - p, where
/// threshold = dropout_threshold(p)).
TAPEGRAD_HD constexpr bool dropout_keeps(uint64_t seed, uint64_t index, uint64_t threshold) noexcept {
    return random_bits(seed, index) >= threshold;
}

}  // namespace tapegrad::backend
