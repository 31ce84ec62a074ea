#pragma once
/// \file
/// The CUDA backend's memory and transfer primitives (family `MemoryFamily`, backend/contract.hpp): device
/// memory from the caching allocator, uploads through pinned staging, downloads that wait, fill and copy.
/// Twin of backend/cpu/memory.hpp.

#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/allocator.hpp>
#include <tapegrad/backend/cuda/memory.cuh>
#include <tapegrad/backend/cuda/staging.hpp>
#include <tapegrad/core/error.hpp>

#include <cuda_runtime_api.h>

#include <limits>

#include <cstdint>

namespace tapegrad::backend {

/// Memory and transfers on the GPU.
struct CudaMemory {
    // ---- memory ---------------------------------------------------------------------------------------
    template <class T>
    static T* allocate(int64_t n) {
        TAPEGRAD_CHECK(n >= 0 && static_cast<uint64_t>(n) <= std::numeric_limits<size_t>::max() / sizeof(T) / 2,
                       ValueError, "allocate: cannot allocate ", n, " elements on the GPU");
        const size_t bytes = static_cast<size_t>(n) * sizeof(T);
        void* p = cuda::DeviceAllocator::get().allocate(bytes);
        cuda::live_bytes().add(static_cast<int64_t>(cuda::DeviceAllocator::block_size(bytes)));
        return static_cast<T*>(p);
    }
    template <class T>
    static void deallocate(T* p, int64_t n) noexcept {
        const size_t bytes = static_cast<size_t>(n) * sizeof(T);
        cuda::live_bytes().add(-static_cast<int64_t>(cuda::DeviceAllocator::block_size(bytes)));
        cuda::DeviceAllocator::get().deallocate(p, bytes);
    }

    /// Whether work enqueued now is being captured into a cuda::Graph (optimizers refuse what a replay
    /// could not repeat faithfully).
    static bool capturing() { return cuda::capturing(); }

    // ---- host transfers ---------------------------------------------------------------------------------
    /// dst (device) = host values, through pinned staging (cuda::PinnedStaging): enqueued, not waited for;
    /// `host` may be reused as soon as this returns. Throws DeviceError during a graph capture.
    template <class T>
    static void upload(int64_t n, const T* host, T* dst) {
        if (n <= 0) return;
        cuda::PinnedStaging::get().upload(host, dst, static_cast<size_t>(n) * sizeof(T));
    }
    /// host = src (device); waits for every op enqueued before. Throws DeviceError during a graph capture.
    template <class T>
    static void download(int64_t n, const T* src, T* host) {
        if (n <= 0) return;
        cuda::check_not_capturing("reading device values back to the host");
        cuda::check(cudaMemcpyAsync(host, src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost,
                                    cuda::stream()),
                    "cudaMemcpyAsync (device to host)");
        cuda::synchronize();
    }
    // ---- fills and copies -----------------------------------------------------------------------------
    template <class T>
    static void fill(int64_t n, T v, T* out) {
        cuda::fill(n, v, out, cuda::stream());
        cuda::check_launch("fill");
    }
    template <class T>
    static void copy(int64_t n, const T* x, T* out) {
        if (n <= 0) return;
        cuda::check(cudaMemcpyAsync(out, x, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice,
                                    cuda::stream()),
                    "cudaMemcpyAsync (device to device)");
    }
};

}  // namespace tapegrad::backend
