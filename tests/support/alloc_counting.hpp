#pragma once
/// \file
/// Counts heap allocations made by the current thread, for tests that prove a steady-state step makes none.
/// The test binary replaces the global operator new (tests/support/alloc_counting.cpp); each replacement
/// bumps this thread's count while an `AllocationCounter` is running.
///
///     AllocationCounter count;
///     step();
///     CHECK(count.stop() == 0);
///
/// Where the replacement is not the operator new in use (a sanitizer runtime brings its own) or the
/// caching allocator is compiled out, `works()` is false and `why_not()` says so: tests then skip the check
/// with that message instead of passing vacuously.

#include <cstdint>

namespace tapegrad::testing {

class AllocationCounter {
public:
    AllocationCounter() noexcept;
    ~AllocationCounter() { (void)stop(); }
    AllocationCounter(const AllocationCounter&) = delete;
    AllocationCounter& operator=(const AllocationCounter&) = delete;

    /// Stops counting and returns the number of allocations since construction.
    int64_t stop() noexcept;

    /// Whether counting works in this build (probed once by allocating through operator new).
    static bool works() noexcept;
    static const char* why_not() noexcept;
};

}  // namespace tapegrad::testing
