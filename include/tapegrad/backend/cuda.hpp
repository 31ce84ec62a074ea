#pragma once
/// \file
/// The CUDA backend: `Tensor<float, Cuda>` and `Tensor<double, Cuda>` with the same ops, tape, layers,
/// losses and optimizers as on the CPU. Opt-in: not included by tapegrad.hpp; include it and link
/// `tapegrad::cuda` (CMake option TAPEGRAD_CUDA=ON), which adds CUDA::cudart, CUDA::cublas and the kernels.
///
///     #include <tapegrad/tapegrad.hpp>
///     #include <tapegrad/backend/cuda.hpp>
///     using tapegrad::Cuda;
///     auto x = tapegrad::to<Cuda>(cpu_tensor);         // upload
///     nn::Linear<float, Cuda> fc(784, 10, gen);          // initialised on the host, then uploaded
///     auto loss = nn::cross_entropy(fc(x), labels);     // host labels are copied over; Labels<Cuda> stay
///     loss.backward();
///     float value = loss.item();                        // downloads (synchronises)
///
/// `backend::Ops<Cuda>` implements the primitive list of `backend::Ops<Cpu>` (backend/cpu.hpp) by enqueuing
/// the kernels of backend/cuda/*.cu on one stream per process (`cuda::stream()`), so every op runs in
/// order without synchronising; only reading values back to the host waits. Copies from the host go
/// through pinned staging buffers and do not wait either (`cuda::PinnedStaging`). Matrix products go
/// through cuBLAS with TF32 off unless `cuda::set_allow_tf32(true)`. Device memory comes from a caching
/// allocator (`cuda::memory_stats()`): after a warm-up step, training calls neither cudaMalloc nor cudaFree.
/// A whole training step can be captured once and replayed as one CUDA graph (`cuda::Graph`, at the end of
/// this file), with its batches gathered on the device by data::DeviceLoader.
///
/// Errors: a failing CUDA or cuBLAS call throws `DeviceError` naming the call and the CUDA error string;
/// using a CUDA tensor on a machine without a usable GPU throws `DeviceError` at first use, with the reason.

#include <tapegrad/backend/counter_rng.hpp>
#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/backend/cuda/kernels.cuh>
#include <tapegrad/backend/functors.hpp>
#include <tapegrad/core/device.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/live_counters.hpp>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tapegrad {

/// An NVIDIA GPU (the current CUDA device), through the CUDA runtime and cuBLAS.
struct Cuda {
    static constexpr const char* name = "cuda";
};

namespace cuda {

/// Throws DeviceError naming `call` when `status` is not cudaSuccess.
inline void check(cudaError_t status, const char* call) {
    if (status != cudaSuccess) {
        const char* what = cudaGetErrorString(status);
        const char* code = cudaGetErrorName(status);
        (void)cudaGetLastError();  // clear a sticky-free error so later calls report their own
        TAPEGRAD_CHECK(false, DeviceError, "CUDA: ", call, " failed: ", what, " (", code, ")");
    }
}
/// Throws DeviceError naming the kernel launcher when the last launch failed.
inline void check_launch(const char* launcher) { check(cudaGetLastError(), launcher); }

inline const char* cublas_status_name(cublasStatus_t s) noexcept {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        default: return "an unknown cuBLAS status";
    }
}
inline void check(cublasStatus_t status, const char* call) {
    TAPEGRAD_CHECK(status == CUBLAS_STATUS_SUCCESS, DeviceError, "cuBLAS: ", call, " failed: ",
                   cublas_status_name(status));
}

/// Whether a usable CUDA device exists; never throws. Tests use it to skip cleanly without a GPU.
inline bool available() noexcept {
    int n = 0;
    const cudaError_t s = cudaGetDeviceCount(&n);
    if (s != cudaSuccess) (void)cudaGetLastError();
    return s == cudaSuccess && n > 0;
}

/// The process's CUDA context: the stream every op is enqueued on, and the cuBLAS handle bound to it.
/// Created at first use of a CUDA tensor; throws DeviceError there if no GPU can be used.
struct Context {
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    bool allow_tf32 = false;

    static Context& get() {
        static Context ctx = make();
        return ctx;
    }

private:
    static Context make() {
        int n = 0;
        const cudaError_t s = cudaGetDeviceCount(&n);
        if (s != cudaSuccess) {
            (void)cudaGetLastError();
            TAPEGRAD_CHECK(false, DeviceError, "CUDA: no usable GPU: cudaGetDeviceCount failed: ", cudaGetErrorString(s),
                           " (", cudaGetErrorName(s), "). A Tensor<T, Cuda> needs an NVIDIA GPU and its driver");
        }
        TAPEGRAD_CHECK(n > 0, DeviceError, "CUDA: no GPU found (cudaGetDeviceCount returned 0). A Tensor<T, Cuda> ",
                       "needs an NVIDIA GPU and its driver");
        Context c;
        check(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        check(cublasCreate(&c.blas), "cublasCreate");
        check(cublasSetStream(c.blas, c.stream), "cublasSetStream");
        check(cublasSetMathMode(c.blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
        return c;
    }
};

/// The stream all tapegrad CUDA work is enqueued on (created at first use).
inline cudaStream_t stream() { return Context::get().stream; }

/// Lets float matrix products use TF32 tensor cores (about 10 mantissa bits in the products): faster, less
/// exact. Off by default, as in PyTorch's matmul since 1.12.
inline void set_allow_tf32(bool on) {
    Context& c = Context::get();
    check(cublasSetMathMode(c.blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    c.allow_tf32 = on;
}

/// Waits until every op enqueued so far has finished (and reports an error any of them raised).
/// Throws DeviceError during a graph capture.
inline void synchronize();

/// Throws DeviceError when a CUDA graph is being captured: `what` (a host round trip, a synchronisation)
/// cannot be recorded into a graph. See cuda::Graph.
/// Set while a cuda::Graph capture is in progress. Process-wide, like the stream: while a capture runs,
/// CUDA work from any thread goes into the graph, so other threads must leave CUDA tensors alone.
inline std::atomic<bool>& capture_flag() noexcept {
    static std::atomic<bool> flag{false};
    return flag;
}

inline void check_not_capturing(const char* what) {
    TAPEGRAD_CHECK(!capture_flag().load(std::memory_order_relaxed), DeviceError, "cuda::Graph: ", what,
                   " cannot be captured into a CUDA graph (a graph replays device work only; the host is not part of "
                   "it). Move it out of the captured step, or keep the data on the device (e.g. Labels<Cuda> instead "
                   "of host labels, data::DeviceLoader instead of a host loader)");
}

/// Whether a cuda::Graph capture is in progress (work enqueued now is recorded, not run).
inline bool capturing() noexcept { return capture_flag().load(std::memory_order_relaxed); }

inline void synchronize() {
    check_not_capturing("waiting for the GPU (cuda::synchronize)");
    check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
}

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
inline detail::LiveCounter<detail::Live::cuda_bytes> live_bytes() noexcept { return {}; }

/// Page-locked (pinned) host memory, through which every host-to-device copy goes, so that a copy is
/// asynchronous: the host values are copied into a pinned slot and the DMA transfer is queued on the
/// stream, and the caller may reuse its own memory at once, without waiting for the GPU. (From ordinary
/// pageable memory the driver would stage the copy itself and may wait for the stream to drain first.)
/// A ring of `slots` slots of `slot_bytes` each; a slot is reused once the transfer that last read it has
/// finished (an event per slot); larger copies go through the ring in pieces. Allocated at first use.
class PinnedStaging {
public:
    static constexpr size_t slot_bytes = size_t{4} << 20;
    static constexpr int slots = 4;

    static PinnedStaging& get() {
        static PinnedStaging* s = new PinnedStaging;  // never destroyed, as the allocator
        return *s;
    }

    /// dst (device) = host[0, bytes), enqueued on the stream; `host` may be reused when this returns.
    void upload(const void* host, void* dst, size_t bytes) {
        check_not_capturing("copying host values to the device");
        const std::lock_guard<std::mutex> lock(mutex_);
        init();
        const auto* src = static_cast<const unsigned char*>(host);
        auto* out = static_cast<unsigned char*>(dst);
        while (bytes > 0) {
            const size_t n = bytes < slot_bytes ? bytes : slot_bytes;
            Slot& s = slot_[next_];
            next_ = (next_ + 1) % slots;
            check(cudaEventSynchronize(s.done), "cudaEventSynchronize (pinned staging slot)");
            std::memcpy(s.host, src, n);
            check(cudaMemcpyAsync(out, s.host, n, cudaMemcpyHostToDevice, stream()), "cudaMemcpyAsync (host to device)");
            check(cudaEventRecord(s.done, stream()), "cudaEventRecord (pinned staging slot)");
            src += n;
            out += n;
            bytes -= n;
        }
    }

private:
    struct Slot {
        void* host = nullptr;
        cudaEvent_t done = nullptr;
    };
    PinnedStaging() = default;
    void init() {
        if (ready_) return;
        (void)Context::get();
        for (Slot& s : slot_) {
            if (!s.host) check(cudaHostAlloc(&s.host, slot_bytes, cudaHostAllocDefault), "cudaHostAlloc (pinned staging)");
            if (!s.done) check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "cudaEventCreateWithFlags");
        }
        ready_ = true;
    }
    std::mutex mutex_;
    Slot slot_[slots];
    int next_ = 0;
    bool ready_ = false;
};

}  // namespace cuda

namespace backend {

/// The CUDA primitives: the list of `Ops<Cpu>`, each enqueued on `cuda::stream()`.
template <>
struct Ops<Cuda> {
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

    // ---- data: a device-resident loader's batch gather (data::DeviceLoader) -----------------------------
    /// As Ops<Cpu>::gather_batch; every pointer is device memory (the cursor too), so a captured gather
    /// fetches the next batch at each replay.
    template <class T>
    static void gather_batch(int64_t rows, int64_t cols, const T* src, const int64_t* labels, const int64_t* perm,
                             int64_t limit, int64_t* cursor, T* out, int64_t* out_labels) {
        cuda::gather_batch(rows, cols, src, labels, perm, limit, cursor, out, out_labels, cuda::stream());
        cuda::check_launch("gather_batch");
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
    template <class T>
    static void axpy(int64_t n, T alpha, const T* x, T* y) {
        cuda::axpy(n, alpha, x, y, cuda::stream());
        cuda::check_launch("axpy");
    }
    template <class T>
    static void scale(int64_t n, T alpha, T* y) {
        cuda::scale(n, alpha, y, cuda::stream());
        cuda::check_launch("scale");
    }

    // ---- elementwise ----------------------------------------------------------------------------------
    template <class T, class F>
    static void map(int64_t n, const T* x, T* y, const F& f) {
        cuda::map(n, x, y, f, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T, class F>
    static void map_backward(int64_t n, const T* x, const T* y, const T* dy, T* dx, const F& f, bool assign = false) {
        cuda::map_backward(n, x, y, dy, dx, f, assign, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T, class F>
    static void zip(const Strided& p, const T* a, const T* b, T* out, const F& f) {
        cuda::zip(p, a, b, out, f, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T, class F>
    static void zip_backward(const Strided& p, const T* a, const T* b, const T* y, const T* dy, T* da, T* db,
                             const F& f, bool assign_a = false) {
        cuda::zip_backward(p, a, b, y, dy, da, db, f, assign_a, cuda::stream());
        cuda::check_launch(F::name);
    }
    template <class T>
    static void strided_copy(const Strided& p, const T* in, T* out) {
        cuda::strided_copy(p, in, out, cuda::stream());
        cuda::check_launch("strided_copy");
    }
    template <class T>
    static void strided_add(const Strided& p, const T* in, T* out) {
        cuda::strided_add(p, in, out, cuda::stream());
        cuda::check_launch("strided_add");
    }

    // ---- reductions -------------------------------------------------------------------------------------
    template <class T>
    static void sum_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out) {
        cuda::sum_axis(outer, n, inner, x, out, cuda::stream());
        cuda::check_launch("sum_axis");
    }
    template <class T>
    static void expand_axis_add(int64_t outer, int64_t n, int64_t inner, T alpha, const T* g, T* dx) {
        cuda::expand_axis_add(outer, n, inner, alpha, g, dx, cuda::stream());
        cuda::check_launch("expand_axis_add");
    }
    /// `arg` is host memory here as on the CPU (ops keep the indices in a host vector): the indices are
    /// computed on the device and downloaded.
    template <class T>
    static void max_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, int64_t* arg) {
        const int64_t m = outer * inner;
        int64_t* darg = allocate<int64_t>(m);
        try {
            cuda::max_axis(outer, n, inner, x, out, darg, cuda::stream());
            cuda::check_launch("max_axis");
            download(m, darg, arg);
        } catch (...) {
            deallocate(darg, m);
            throw;
        }
        deallocate(darg, m);
    }
    /// `arg`: host indices, as max_axis returned them.
    template <class T>
    static void scatter_axis_add(int64_t outer, int64_t n, int64_t inner, const int64_t* arg, const T* g, T* dx) {
        const int64_t m = outer * inner;
        int64_t* darg = allocate<int64_t>(m);
        try {
            upload(m, arg, darg);
            cuda::scatter_axis_add(outer, n, inner, darg, g, dx, cuda::stream());
            cuda::check_launch("scatter_axis_add");
        } catch (...) {
            deallocate(darg, m);
            throw;
        }
        deallocate(darg, m);  // reused only by work enqueued after the kernel (one stream)
    }
    template <class T>
    static void copy_axis_block(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* src,
                                int64_t dst_n, int64_t dst_start, T* dst, bool add) {
        cuda::copy_axis_block(outer, n, inner, start, len, src, dst_n, dst_start, dst, add, cuda::stream());
        cuda::check_launch("copy_axis_block");
    }
    template <class T>
    static void add_row_vector(int64_t rows, int64_t cols, const T* v, T* y) {
        cuda::add_row_vector(rows, cols, v, y, cuda::stream());
        cuda::check_launch("add_row_vector");
    }
    template <class T>
    static void add_column_sums(int64_t rows, int64_t cols, const T* g, T* out) {
        cuda::add_column_sums(rows, cols, g, out, cuda::stream());
        cuda::check_launch("add_column_sums");
    }

    // ---- matrix products (cuBLAS) ---------------------------------------------------------------------
    /// C[M,N] = alpha op(A) op(B) + beta C, row-major, as Ops<Cpu>::gemm. cuBLAS is column-major: a
    /// row-major [M,N] matrix is its column-major transpose, so C^T = op(B)^T op(A)^T is computed instead,
    /// with the operands swapped and no data moved.
    template <class T>
    static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B,
                     T beta, T* C) {
        if (M == 0 || N == 0) return;
        if (K == 0) {
            if (beta == T(0))
                fill(M * N, T(0), C);
            else
                scale(M * N, beta, C);
            return;
        }
        constexpr int64_t max_int = std::numeric_limits<int>::max();
        TAPEGRAD_CHECK(M <= max_int && N <= max_int && K <= max_int, ShapeError, "matmul (CUDA): sizes ", M, "x", K,
                       " and ", K, "x", N, " exceed cuBLAS's 32-bit dimensions");
        const cublasOperation_t opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
        const int ldb = static_cast<int>(trans_b ? K : N);  // B stored [N,K] when trans_b, else [K,N]
        const int lda = static_cast<int>(trans_a ? M : K);  // A stored [K,M] when trans_a, else [M,K]
        const int ldc = static_cast<int>(N);
        cublasHandle_t h = cuda::Context::get().blas;
        if constexpr (std::same_as<T, float>)
            cuda::check(cublasSgemm(h, opb, opa, m, n, k, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasSgemm");
        else
            cuda::check(cublasDgemm(h, opb, opa, m, n, k, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasDgemm");
    }

    // ---- softmax and the row-wise losses (labels: device memory, from Labels<Cuda>) ----------------------
    template <class T>
    static void softmax_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log) {
        cuda::softmax_axis(outer, n, inner, x, y, log, cuda::stream());
        cuda::check_launch(log ? "log_softmax" : "softmax");
    }
    template <class T>
    static void softmax_axis_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx,
                                      bool log) {
        cuda::softmax_axis_backward(outer, n, inner, y, dy, dx, log, cuda::stream());
        cuda::check_launch(log ? "log_softmax backward" : "softmax backward");
    }
    template <class T>
    static void softmax_xent_rows(int64_t N, int64_t C, const T* logits, const int64_t* labels, T* probs, T* loss) {
        cuda::softmax_xent_rows(N, C, logits, labels, probs, loss, cuda::stream());
        cuda::check_launch("cross_entropy");
    }
    template <class T>
    static void softmax_xent_rows_backward(int64_t N, int64_t C, const T* probs, const int64_t* labels, const T* dloss,
                                           int64_t dloss_stride, T scale, T* dlogits) {
        cuda::softmax_xent_rows_backward(N, C, probs, labels, dloss, dloss_stride, scale, dlogits, cuda::stream());
        cuda::check_launch("cross_entropy backward");
    }
    template <class T>
    static void nll_rows(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss) {
        cuda::nll_rows(N, C, logp, labels, loss, cuda::stream());
        cuda::check_launch("nll_loss");
    }
    template <class T>
    static void nll_rows_backward(int64_t N, int64_t C, const int64_t* labels, const T* dloss, int64_t dloss_stride,
                                  T scale, T* dlogp) {
        cuda::nll_rows_backward(N, C, labels, dloss, dloss_stride, scale, dlogp, cuda::stream());
        cuda::check_launch("nll_loss backward");
    }

    // ---- optimizer updates (optim/sgd.hpp, optim/adam.hpp) -----------------------------------------------
    template <class T>
    static void sgd_step(int64_t n, T* p, const T* grad, T* momentum_buf, T lr, T momentum, T dampening,
                         T weight_decay, bool nesterov, bool first_step) {
        cuda::sgd_step(n, p, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, first_step,
                       cuda::stream());
        cuda::check_launch("SGD step");
    }
    template <class T>
    static void adam_step(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, T lr, T beta1, T beta2, T eps,
                          T weight_decay, bool decoupled, bool amsgrad, T bc1, T bc2) {
        cuda::adam_step(n, p, grad, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, bc1, bc2,
                        cuda::stream());
        cuda::check_launch("Adam step");
    }

    // ---- multi-tensor optimizer updates (backend/multi_tensor.hpp): one launch per list ---------------
    /// sgd_step on every parameter of params[0, count), in one kernel launch (several past 80 parameters).
    template <class T>
    static void sgd_step_many(int64_t count, const SgdParam<T>* params, T lr, T momentum, T dampening,
                              T weight_decay, bool nesterov) {
        cuda::sgd_step_many(count, params, lr, momentum, dampening, weight_decay, nesterov, cuda::stream());
        cuda::check_launch("SGD step");
    }
    /// adam_step on every parameter of params[0, count), in one kernel launch (several past 48 parameters).
    template <class T>
    static void adam_step_many(int64_t count, const AdamParam<T>* params, T lr, T beta1, T beta2, T eps,
                               T weight_decay, bool decoupled, bool amsgrad) {
        cuda::adam_step_many(count, params, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, cuda::stream());
        cuda::check_launch("Adam step");
    }
    /// fill on every buffer of buffers[0, count), in one kernel launch (several past 160 buffers).
    template <class T>
    static void fill_many(int64_t count, const Buffer<T>* buffers, T value) {
        cuda::fill_many(count, buffers, value, cuda::stream());
        cuda::check_launch("fill_many");
    }

    // ==== random masks (nn/dropout.hpp), from the counter-based generator of backend/counter_rng.hpp ======
    /// As Ops<Cpu>::dropout_mask, drawn on the GPU: the same seed and offset give the same mask, bit for bit.
    template <class T>
    static void dropout_mask(int64_t n, double p, uint64_t seed, uint64_t offset, T* mask) {
        cuda::dropout_mask(n, dropout_threshold(p), static_cast<T>(1.0 / (1.0 - p)), seed, offset, mask,
                           cuda::stream());
        cuda::check_launch("dropout");
    }
    // ==== end of the random-mask section ===================================================================
};

}  // namespace backend

namespace cuda {

/// One training step (or any sequence of CUDA work with fixed shapes) captured once and replayed: the
/// whole step becomes one cudaGraphLaunch instead of dozens of kernel launches, which is where a small
/// network spends most of its time on a GPU.
///
///     data::DeviceLoader<float, Cuda> loader(train, {.batch_size = 64, .drop_last = true});
///     optim::SGD<float, Cuda> opt(net.parameters(), {.lr = 0.1});
///     cuda::Graph graph;
///     auto loss = graph.capture([&] {             // records; nothing runs yet
///         loader.next();                          // gathers the batch on the device
///         opt.zero_grad();
///         auto l = nn::cross_entropy(net(loader.x()), loader.y());
///         l.backward();
///         opt.step();
///         return l;
///     });
///     for (int epoch = 0; epoch < epochs; ++epoch) {
///         loader.start_epoch();                   // new order (outside the graph)
///         for (int64_t b = 0; b < loader.num_batches(); ++b) graph.replay();
///         std::printf("last loss %f\n", loss.item());  // `loss` is rewritten by every replay
///     }
///
/// What a replay does is exactly the device work of the capture, on the same memory: the host code of the
/// step (the tape, the optimizer's bookkeeping) ran once, during capture. So:
///  - Shapes, hyper-parameters (the learning rate...) and the choice of kernels are frozen at capture;
///    capture again after changing them.
///  - Inputs are read from where they were at capture: refresh them on the device between replays (a
///    DeviceLoader's next() inside the step does that), never with new host tensors.
///  - Nothing in the step may read values back to the host or copy from the host (item(), to<Cpu>, host
///    labels, the indices of max() over an axis): these throw DeviceError naming the operation, and the
///    capture is abandoned. Dropout in training mode throws too: each call draws its mask's seed on the host,
///    so a replay would repeat the captured mask instead of drawing a new one. So does batch norm with
///    momentum=None in training (it reads num_batches_tracked back); with a momentum it captures, and every
///    replay updates the running statistics and the count.
///  - Every tensor the step uses that was made before the capture (parameters, optimizer state, the
///    loader's buffers) must outlive the graph, and keep its buffer: an optimizer's load_state() replaces
///    its buffers, so call it before capturing.
///  - SGD with momentum must have taken one step before a capture (its first step differs from the others),
///    and Adam cannot be captured (its bias correction is computed on the host each step); both throw.
/// Memory: blocks the captured work uses are reserved for the graph (cuda::MemoryStats::graph_bytes) and
/// return to the cache when the graph is destroyed or captures again (while other graphs live, only once
/// they are gone too: their captures may have used the same blocks). A capture may take blocks the eager
/// cache held, so the first eager step after a capture may call cudaMalloc again.
class Graph {
public:
    Graph() = default;
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    ~Graph() { reset(); }

    /// Records the device work of `step()` into this graph (replacing what it held) and returns what step
    /// returned (e.g. the loss tensor, whose buffer each replay rewrites). Nothing runs: replay() runs it.
    /// Waits for earlier work first, so that its errors are reported here and not inside the graph. If
    /// step throws, or did something a graph cannot hold, the capture is abandoned and the error thrown.
    template <class F>
    auto capture(F&& step) -> std::invoke_result_t<F&> {
        using R = std::invoke_result_t<F&>;
        static_assert(!std::is_reference_v<R>, "cuda::Graph::capture: the step must return a value (e.g. the loss "
                                               "tensor) or nothing, not a reference.");
        TAPEGRAD_CHECK(!capturing(), DeviceError, "cuda::Graph::capture: another capture is in progress (captures ",
                       "cannot nest)");
        reset();
        const cudaStream_t st = stream();
        check(cudaStreamSynchronize(st), "cudaStreamSynchronize (before graph capture)");
        pool_ = std::make_shared<DeviceAllocator::Pool>();
        DeviceAllocator::get().begin_capture(pool_);
        const cudaError_t began = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
        if (began != cudaSuccess) {
            DeviceAllocator::get().end_capture();
            reset();
            check(began, "cudaStreamBeginCapture");
        }
        capture_flag().store(true);
        std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result;
        try {
            if constexpr (std::is_void_v<R>) {
                step();
                result.emplace(0);
            } else {
                result.emplace(step());
            }
        } catch (...) {
            cudaGraph_t partial = nullptr;
            (void)cudaStreamEndCapture(st, &partial);
            if (partial) (void)cudaGraphDestroy(partial);
            (void)cudaGetLastError();
            capture_flag().store(false);
            DeviceAllocator::get().end_capture();
            reset();
            throw;
        }
        cudaGraph_t graph = nullptr;
        const cudaError_t ended = cudaStreamEndCapture(st, &graph);
        capture_flag().store(false);
        DeviceAllocator::get().end_capture();
        cudaError_t s = ended;
        const char* call = "cudaStreamEndCapture";
        size_t nodes = 0;
        cudaGraphExec_t exec = nullptr;
        if (s == cudaSuccess) {
            call = "cudaGraphGetNodes";
            s = cudaGraphGetNodes(graph, nullptr, &nodes);
        }
        if (s == cudaSuccess) {
            call = "cudaGraphInstantiate";
            s = cudaGraphInstantiate(&exec, graph, 0);
            if (s != cudaSuccess) exec = nullptr;
        }
        if (graph) (void)cudaGraphDestroy(graph);
        if (s == cudaSuccess) {  // the graph's one-time setup now, so that the first replay costs what others do
            call = "cudaGraphUpload";
            s = cudaGraphUpload(exec, st);
        }
        if (s != cudaSuccess) {
            (void)cudaGetLastError();
            if (exec) (void)cudaGraphExecDestroy(exec);
            reset();
            TAPEGRAD_CHECK(ended != cudaErrorStreamCaptureInvalidated && ended != cudaErrorStreamCaptureUnsupported,
                           DeviceError, "cuda::Graph::capture: the captured work was invalidated (",
                           cudaGetErrorString(ended), "): something in the step called a CUDA function that cannot ",
                           "be captured, or another thread used the GPU during the capture");
            check(s, call);
        }
        exec_ = exec;
        nodes_ = nodes;
        if constexpr (!std::is_void_v<R>) return std::move(*result);
    }

    /// Runs the captured work once more, enqueued on the stream like any op (does not wait).
    void replay() {
        TAPEGRAD_CHECK(exec_ != nullptr, DeviceError, "cuda::Graph::replay: nothing has been captured");
        check_not_capturing("replaying a graph");
        check(cudaGraphLaunch(exec_, stream()), "cudaGraphLaunch");
    }

    /// Whether capture() has succeeded (and reset() not been called since).
    [[nodiscard]] bool captured() const noexcept { return exec_ != nullptr; }
    /// Kernels, copies and other nodes in the captured graph (0 before a capture).
    [[nodiscard]] size_t node_count() const noexcept { return nodes_; }

    /// Drops the captured graph and gives its memory back to the cache.
    void reset() noexcept {
        if (exec_) {
            (void)cudaGraphExecDestroy(exec_);
            exec_ = nullptr;
        }
        if (pool_) {
            DeviceAllocator::get().close_pool(*pool_);
            pool_.reset();
        }
        nodes_ = 0;
    }

private:
    cudaGraphExec_t exec_ = nullptr;
    std::shared_ptr<DeviceAllocator::Pool> pool_;
    size_t nodes_ = 0;
};

}  // namespace cuda

}  // namespace tapegrad

#include <tapegrad/backend/cuda_conv.hpp>  // ConvOps<Cuda>: convolution and pooling on the GPU
