#pragma once
/// \file
/// A per-thread caching allocator for host memory. A training step creates and frees the same tensors,
/// nodes and closures every time; after the first step each request is served from a free list of the same
/// size class instead of the system allocator, so a steady-state step makes no heap allocation.
///
/// Sizes are rounded up to a power of two (at least 64 bytes, 64-byte aligned). Freed blocks go to the
/// freeing thread's cache, which holds at most `max_cached_bytes`; beyond that they return to the system.
/// Under AddressSanitizer (or with TAPEGRAD_NO_CACHING_ALLOCATOR defined) every block goes straight to the
/// system allocator, so use-after-free is still caught.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_POOL_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_POOL_DISABLED 1
#endif
#endif
#if defined(TAPEGRAD_NO_CACHING_ALLOCATOR)
#define TAPEGRAD_POOL_DISABLED 1
#endif

namespace tapegrad::backend {

/// The free lists of one thread. A plain aggregate with constant initialisation and no destructor, so it
/// stays usable for the whole life of the thread, even while other thread-local or static objects (which may
/// hold tensors) are being destroyed; `PoolReaper` empties it at thread exit and marks it dead, after which
/// blocks go straight back to the system.
struct PoolState {
    struct FreeBlock {
        FreeBlock* next;
    };
    static constexpr size_t alignment = 64;
    static constexpr int max_shift = 30;  // blocks above 1 GiB are never cached
    static constexpr size_t max_cached_bytes = size_t{256} << 20;

    FreeBlock* free[max_shift + 1];
    size_t cached;
    bool dead;

    void release_all() noexcept {
        for (int c = 0; c <= max_shift; ++c) {
            while (FreeBlock* b = free[c]) {
                free[c] = b->next;
                ::operator delete(b, std::align_val_t{alignment});
            }
        }
        cached = 0;
    }
};

inline PoolState& pool_state() noexcept {
    thread_local constinit PoolState state{};
    return state;
}

struct PoolReaper {
    PoolReaper() = default;
    PoolReaper(const PoolReaper&) = delete;
    PoolReaper& operator=(const PoolReaper&) = delete;
    ~PoolReaper() {
        PoolState& s = pool_state();
        s.release_all();
        s.dead = true;
    }
};

/// The host allocator every tensor buffer, tensor and tape node goes through.
struct HostPool {
    static constexpr size_t alignment = PoolState::alignment;

    /// The size actually reserved for a request of `bytes`.
    static size_t block_size(size_t bytes) noexcept { return bytes <= alignment ? alignment : std::bit_ceil(bytes); }

    static void* allocate(size_t bytes) {
        const size_t size = block_size(bytes);
#ifndef TAPEGRAD_POOL_DISABLED
        thread_local PoolReaper reaper;  // registers the thread-exit cleanup on first use
        (void)reaper;
        PoolState& s = pool_state();
        const int c = std::countr_zero(size);
        if (c <= PoolState::max_shift && s.free[c] != nullptr) {
            PoolState::FreeBlock* b = s.free[c];
            s.free[c] = b->next;
            s.cached -= size;
            return b;
        }
#endif
        return ::operator new(size, std::align_val_t{alignment});
    }

    static void deallocate(void* p, size_t bytes) noexcept {
        if (!p) return;
        [[maybe_unused]] const size_t size = block_size(bytes);  // unused when the pool is disabled
#ifndef TAPEGRAD_POOL_DISABLED
        PoolState& s = pool_state();
        const int c = std::countr_zero(size);
        if (!s.dead && c <= PoolState::max_shift && s.cached + size <= PoolState::max_cached_bytes) {
            auto* b = static_cast<PoolState::FreeBlock*>(p);
            b->next = s.free[c];
            s.free[c] = b;
            s.cached += size;
            return;
        }
#endif
        ::operator delete(p, std::align_val_t{alignment});
    }

    /// Bytes held in this thread's cache (free, ready for reuse).
    static size_t cached_bytes() noexcept { return pool_state().cached; }
    /// Returns this thread's cached blocks to the system.
    static void release_cached() noexcept { pool_state().release_all(); }
};

/// A standard allocator over the host pool, for `std::allocate_shared` of tensors and tape nodes.
template <class T>
struct PoolAllocator {
    using value_type = T;
    PoolAllocator() noexcept = default;
    template <class U>
    PoolAllocator(const PoolAllocator<U>&) noexcept {}
    T* allocate(size_t n) { return static_cast<T*>(HostPool::allocate(n * sizeof(T))); }
    void deallocate(T* p, size_t n) noexcept { HostPool::deallocate(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const PoolAllocator<U>&) const noexcept {
        return true;
    }
};

/// A vector whose storage comes from the host pool: for what backward closures keep (class labels), so
/// that a steady-state step stays free of heap allocations.
template <class T>
using HostVector = std::vector<T, PoolAllocator<T>>;

}  // namespace tapegrad::backend
