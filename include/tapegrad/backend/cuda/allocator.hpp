#pragma once
/// \file
/// The CUDA backend's device memory: a caching allocator (`cuda::DeviceAllocator`) with its graph pools,
/// its counters (`cuda::memory_stats()`), and the live-bytes counter of CUDA tensors.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/live_counters.hpp>

#include <cuda_runtime_api.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tapegrad::cuda {

/// Counters of the caching device allocator.
struct MemoryStats {
    int64_t device_mallocs = 0;  ///< cudaMalloc calls so far
    int64_t device_frees = 0;    ///< cudaFree calls so far
    int64_t cached_bytes = 0;    ///< freed blocks held for reuse by eager work
    int64_t graph_bytes = 0;     ///< blocks reserved by captured graphs (free or in use)
};

/// A caching allocator for device memory. Blocks are rounded up to a power of two (at least 512 bytes) and
/// kept on a free list per size when freed, so a training step that frees and re-creates the same tensors
/// every iteration stops calling cudaMalloc/cudaFree after its first iteration. Reuse is safe without
/// events because all work runs in order on one stream: a kernel enqueued after a block is handed out
/// again runs after every kernel that used it before. `release_cached()` returns the cache to the driver.
///
/// Graph pools. A captured graph replays kernels on the addresses they had at capture time, so every block
/// the captured work touched must stay reserved for the graph as long as it exists, even after the
/// tensor that held it is gone: otherwise eager work could be handed the block and a replay would
/// overwrite it. While a capture runs, blocks handed out, and blocks freed, belong to the graph's Pool:
/// reused within the capture (in stream order, which the replay keeps), never by eager work. When the
/// graph is destroyed, its free blocks return to the eager cache, and its blocks still held by tensors
/// return when those tensors die.
class DeviceAllocator {
public:
    /// The blocks of one captured graph (see the class comment).
    struct Pool {
        std::vector<void*> free[64];
        int64_t bytes = 0;  ///< bytes of all blocks this pool owns (free or in use)
        bool open = true;   ///< false once its graph is gone: blocks then return to the eager cache
    };

    static DeviceAllocator& get() {
        static DeviceAllocator* a = new DeviceAllocator;  // never destroyed: tensors may die after main
        return *a;
    }

    static size_t block_size(size_t bytes) noexcept { return bytes <= 512 ? 512 : std::bit_ceil(bytes); }

    void* allocate(size_t bytes) {
        (void)Context::get();  // a clear error here when there is no GPU
        const size_t size = block_size(bytes);
        const auto c = static_cast<size_t>(std::countr_zero(size));
        std::shared_ptr<Pool> pool;
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            pool = capture_pool_;
            if (pool && !pool->free[c].empty()) {
                void* p = pool->free[c].back();
                pool->free[c].pop_back();
                return p;
            }
            auto& list = free_[c];
            if (!list.empty()) {
                void* p = list.back();
                list.pop_back();
                cached_ -= static_cast<int64_t>(size);
                if (pool) adopt(p, size, pool);
                return p;
            }
        }
        void* p = device_malloc(size, pool != nullptr);
        if (pool) {
            const std::lock_guard<std::mutex> lock(mutex_);
            adopt(p, size, pool);  // on failure the new block is dropped: no cudaFree during a capture
        }
        return p;
    }

    void deallocate(void* p, size_t bytes) noexcept {
        if (!p) return;
        const size_t size = block_size(bytes);
        const auto c = static_cast<size_t>(std::countr_zero(size));
        try {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (!owner_.empty()) {
                const auto it = owner_.find(p);
                if (it != owner_.end()) {
                    Pool& pool = *it->second;
                    if (pool.open) {
                        pool.free[c].push_back(p);
                        return;
                    }
                    pool.bytes -= static_cast<int64_t>(size);
                    graph_bytes_ -= static_cast<int64_t>(size);
                    owner_.erase(it);  // its graph is gone
                    release_block(p, c);
                    return;
                }
            }
            if (capture_pool_) {  // freed during a capture: the captured work may still use it on replay
                adopt(p, size, capture_pool_);
                capture_pool_->free[c].push_back(p);
                return;
            }
            free_[c].push_back(p);
            cached_ += static_cast<int64_t>(size);
        } catch (...) {
            // No host memory for the lists. A block a graph may still use is dropped (leaked), never freed;
            // a plain eager block goes back to the driver.
            if (!capture_pool_ && open_pools_ == 0 && !owner_.contains(p)) {
                (void)cudaFree(p);
                frees_.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }

    /// Frees every cached block (waits for the stream first, so no kernel still uses one). Does nothing
    /// while a graph is being captured (it cannot synchronise then).
    void release_cached() noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (cached_ == 0 || capture_pool_) return;
        (void)cudaStreamSynchronize(Context::get().stream);
        for (auto& list : free_) {
            for (void* p : list) {
                (void)cudaFree(p);
                frees_.fetch_add(1, std::memory_order_relaxed);
            }
            list.clear();
        }
        cached_ = 0;
    }

    /// From now on, blocks handed out or freed belong to `pool`, a new, open pool (cuda::Graph::capture).
    void begin_capture(std::shared_ptr<Pool> pool) {
        const std::lock_guard<std::mutex> lock(mutex_);
        capture_pool_ = std::move(pool);
        ++open_pools_;
    }
    void end_capture() noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        capture_pool_.reset();
    }
    /// The pool's graph is gone (or its capture failed). Its free blocks, and later its blocks still in use
    /// when their tensors die, are released: to the eager cache once no graph pool is open any more, and
    /// until then held back (a block one graph's capture used may also have been used by another graph's
    /// capture, which would still replay on it). The caller has made sure that everything enqueued later
    /// runs after any replay still queued (one stream). Closing twice does nothing.
    void close_pool(Pool& pool) noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (!pool.open) return;
        pool.open = false;
        --open_pools_;
        for (size_t c = 0; c < 64; ++c) {
            for (void* p : pool.free[c]) {
                const auto size = int64_t{1} << c;
                owner_.erase(p);
                pool.bytes -= size;
                graph_bytes_ -= size;
                release_block(p, c);
            }
            pool.free[c].clear();
        }
        if (open_pools_ == 0) {
            for (size_t c = 0; c < 64; ++c) {
                for (void* p : retired_[c]) {
                    graph_bytes_ -= int64_t{1} << c;
                    release_block(p, c);  // to the eager cache now
                }
                retired_[c].clear();
            }
        }
    }

    [[nodiscard]] MemoryStats stats() {
        const std::lock_guard<std::mutex> lock(mutex_);
        return {mallocs_.load(std::memory_order_relaxed), frees_.load(std::memory_order_relaxed), cached_,
                graph_bytes_};
    }

private:
    DeviceAllocator() = default;

    /// cudaMalloc, retried once after releasing the cache. During a capture the thread's capture mode is
    /// relaxed around the call: cudaMalloc is not recorded into the graph (the block simply exists from now
    /// on), but the default mode would invalidate the capture.
    void* device_malloc(size_t size, bool in_capture) {
        void* p = nullptr;
        cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
        if (in_capture) check(cudaThreadExchangeStreamCaptureMode(&mode), "cudaThreadExchangeStreamCaptureMode");
        cudaError_t s = cudaMalloc(&p, size);
        if (s == cudaErrorMemoryAllocation && !in_capture) {  // give the cache back to the driver, try once more
            (void)cudaGetLastError();
            release_cached();
            s = cudaMalloc(&p, size);
        }
        if (in_capture) (void)cudaThreadExchangeStreamCaptureMode(&mode);
        check(s, "cudaMalloc");
        mallocs_.fetch_add(1, std::memory_order_relaxed);
        return p;
    }

    /// A block no graph pool owns any more (mutex held): to the eager cache when no pool is open, else held
    /// back in retired_ (see close_pool; counted in graph_bytes). Never throws: a block that finds no room in
    /// a list is dropped.
    void release_block(void* p, size_t c) noexcept {
        const auto size = int64_t{1} << c;
        try {
            if (open_pools_ > 0) {
                retired_[c].push_back(p);
                graph_bytes_ += size;
                return;
            }
            free_[c].push_back(p);
            cached_ += size;
        } catch (...) {
        }
    }

    /// Makes `pool` the owner of block p (mutex held).
    void adopt(void* p, size_t size, const std::shared_ptr<Pool>& pool) {
        owner_.emplace(p, pool);
        pool->bytes += static_cast<int64_t>(size);
        graph_bytes_ += static_cast<int64_t>(size);
    }

    std::mutex mutex_;
    std::vector<void*> free_[64];
    std::vector<void*> retired_[64];  ///< released by closed pools while other pools are open
    int64_t cached_ = 0;
    int64_t graph_bytes_ = 0;
    int64_t open_pools_ = 0;
    std::shared_ptr<Pool> capture_pool_;
    std::unordered_map<void*, std::shared_ptr<Pool>> owner_;  ///< blocks owned by graph pools
    std::atomic<int64_t> mallocs_{0}, frees_{0};
};

/// The caching allocator's counters (cudaMalloc/cudaFree calls, bytes cached).
inline MemoryStats memory_stats() { return DeviceAllocator::get().stats(); }
/// Returns cached device blocks to the driver (e.g. before handing the GPU to another library).
inline void release_cached_memory() { DeviceAllocator::get().release_cached(); }

/// Live bytes of CUDA tensors (all threads), for tests that check memory returns to its baseline.
inline tapegrad::detail::LiveCounter<tapegrad::detail::Live::cuda_bytes> live_bytes() noexcept { return {}; }

}  // namespace tapegrad::cuda
