#pragma once
/// \file
/// The CPU backend's memory and transfer primitives (family `MemoryFamily`, backend/contract.hpp): host
/// memory from the per-thread pool (cpu/host_pool.hpp), fills and copies; uploads and downloads are copies,
/// since the device is the host. Twin: backend/cuda/memory.hpp. Also the Eigen maps the CPU primitives use.

#include <tapegrad/backend/cpu/host_pool.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/live_counters.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

namespace tapegrad::backend {

/// Live bytes allocated by the CPU backend (all threads), for tests that check memory returns to its
/// baseline: `cpu_live_bytes().load()`.
inline tapegrad::detail::LiveCounter<tapegrad::detail::Live::cpu_bytes> cpu_live_bytes() noexcept { return {}; }

template <class T>
using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned64>;
template <class T>
using CVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned64>;
template <class T>
using UVec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CUVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Memory and transfers on the host.
struct CpuMemory {
    /// Alignment of every block allocate() returns, in bytes.
    static constexpr size_t alignment = 64;

    // ---- memory ---------------------------------------------------------------------------------------
    template <class T>
    static T* allocate(int64_t n) {
        TAPEGRAD_CHECK(n >= 0 && static_cast<uint64_t>(n) <= std::numeric_limits<size_t>::max() / sizeof(T) / 2,
                       ValueError, "allocate: cannot allocate ", n, " elements");
        const size_t bytes = static_cast<size_t>(n) * sizeof(T);
        void* p = HostPool::allocate(bytes);
        cpu_live_bytes().add(static_cast<int64_t>(HostPool::block_size(bytes)));
        return static_cast<T*>(p);
    }
    template <class T>
    static void deallocate(T* p, int64_t n) noexcept {
        const size_t bytes = static_cast<size_t>(n) * sizeof(T);
        cpu_live_bytes().add(-static_cast<int64_t>(HostPool::block_size(bytes)));
        HostPool::deallocate(p, bytes);
    }

    /// Whether work is being recorded into a device graph instead of run (never on the CPU; see cuda::Graph).
    static constexpr bool capturing() noexcept { return false; }

    // ---- host transfers (the same memory here; a copy to and from the device elsewhere) ------------------
    /// dst = host values.
    template <class T>
    static void upload(int64_t n, const T* host, T* dst) { copy(n, host, dst); }
    /// host = src.
    template <class T>
    static void download(int64_t n, const T* src, T* host) { copy(n, src, host); }

    // ---- simple fills and copies ------------------------------------------------------------------------
    template <class T>
    static void fill(int64_t n, T v, T* out) { std::fill_n(out, n, v); }
    template <class T>
    static void copy(int64_t n, const T* x, T* out) {
        if (n > 0) std::memcpy(out, x, static_cast<size_t>(n) * sizeof(T));
    }
};

}  // namespace tapegrad::backend
