// The test binary's replacements of the global allocation functions, counting calls made while an
// AllocationCounter runs on the calling thread (see alloc_counting.hpp). They are weak, so a stronger
// definition elsewhere in the program (a sanitizer runtime) takes precedence; AllocationCounter::works()
// then reports that nothing is counted.

#include "alloc_counting.hpp"

#include <tapegrad/backend/cpu/host_pool.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {

thread_local bool g_counting = false;
thread_local int64_t g_allocations = 0;

}  // namespace

namespace tapegrad::testing {

AllocationCounter::AllocationCounter() noexcept {
    g_allocations = 0;
    g_counting = true;
}

int64_t AllocationCounter::stop() noexcept {
    g_counting = false;
    return g_allocations;
}

bool AllocationCounter::works() noexcept {
#ifdef TAPEGRAD_POOL_DISABLED
    return false;
#else
    static const bool ok = [] {
        AllocationCounter c;
        void* probe = ::operator new(16);  // a direct call: unlike a new-expression, it cannot be elided
        const int64_t n = c.stop();
        ::operator delete(probe);
        return n == 1;
    }();
    return ok;
#endif
}

const char* AllocationCounter::why_not() noexcept {
#ifdef TAPEGRAD_POOL_DISABLED
    return "the caching allocator is compiled out in this build (sanitizer or TAPEGRAD_NO_CACHING_ALLOCATOR): "
           "allocation counts are not checked";
#else
    return "operator new is not the counting one in this build (a sanitizer runtime?): allocation counts are "
           "not checked";
#endif
}

}  // namespace tapegrad::testing

namespace {

void* counted_alloc(std::size_t n) {
    if (g_counting) ++g_allocations;
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t align) {
    if (g_counting) ++g_allocations;
    const auto a = std::max(static_cast<std::size_t>(align), sizeof(void*));
    const std::size_t size = n == 0 ? a : (n + a - 1) / a * a;  // aligned_alloc wants a multiple of a
    if (void* p = std::aligned_alloc(a, size)) return p;
    throw std::bad_alloc();
}

}  // namespace

#define TAPEGRAD_TEST_WEAK __attribute__((weak))
TAPEGRAD_TEST_WEAK void* operator new(std::size_t n) { return counted_alloc(n); }
TAPEGRAD_TEST_WEAK void* operator new[](std::size_t n) { return counted_alloc(n); }
TAPEGRAD_TEST_WEAK void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n);
    } catch (...) {
        return nullptr;
    }
}
TAPEGRAD_TEST_WEAK void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n);
    } catch (...) {
        return nullptr;
    }
}
TAPEGRAD_TEST_WEAK void* operator new(std::size_t n, std::align_val_t a) { return counted_aligned_alloc(n, a); }
TAPEGRAD_TEST_WEAK void* operator new[](std::size_t n, std::align_val_t a) { return counted_aligned_alloc(n, a); }
TAPEGRAD_TEST_WEAK void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return counted_aligned_alloc(n, a);
    } catch (...) {
        return nullptr;
    }
}
TAPEGRAD_TEST_WEAK void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return counted_aligned_alloc(n, a);
    } catch (...) {
        return nullptr;
    }
}
TAPEGRAD_TEST_WEAK void operator delete(void* p) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete[](void* p) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete(void* p, std::size_t) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
TAPEGRAD_TEST_WEAK void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
