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
///     auto loss = nn::cross_entropy(fc(x), labels);     // labels stay a host std::vector
///     loss.backward();
///     float value = loss.item();                        // downloads (synchronises)
///
/// `backend::Ops<Cuda>` implements the primitive list of `backend::Ops<Cpu>` (backend/cpu.hpp) by enqueuing
/// the kernels of backend/cuda/*.cu on one stream per process (`cuda::stream()`), so every op runs in
/// order without synchronising; only reading values back to the host waits. Matrix products go through
/// cuBLAS with TF32 off unless `cuda::set_allow_tf32(true)`. Device memory comes from a caching allocator
/// (`cuda::memory_stats()`): after a warm-up step, training calls neither cudaMalloc nor cudaFree.
///
/// Errors: a failing CUDA or cuBLAS call throws `DeviceError` naming the call and the CUDA error string;
/// using a CUDA tensor on a machine without a usable GPU throws `DeviceError` at first use, with the reason.

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
#include <limits>
#include <mutex>
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
inline void synchronize() { check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }

/// Counters of the caching device allocator.
struct MemoryStats {
    int64_t device_mallocs = 0;  ///< cudaMalloc calls so far
    int64_t device_frees = 0;    ///< cudaFree calls so far
    int64_t cached_bytes = 0;    ///< freed blocks held for reuse
};

/// A caching allocator for device memory. Blocks are rounded up to a power of two (at least 512 bytes) and
/// kept on a free list per size when freed, so a training step that frees and re-creates the same tensors
/// every iteration stops calling cudaMalloc/cudaFree after its first iteration. Reuse is safe without
/// events because all work runs in order on one stream: a kernel enqueued after a block is handed out
/// again runs after every kernel that used it before. `release_cached()` returns the cache to the driver.
class DeviceAllocator {
public:
    static DeviceAllocator& get() {
        static DeviceAllocator* a = new DeviceAllocator;  // never destroyed: tensors may die after main
        return *a;
    }

    static size_t block_size(size_t bytes) noexcept { return bytes <= 512 ? 512 : std::bit_ceil(bytes); }

    void* allocate(size_t bytes) {
        (void)Context::get();  // a clear error here when there is no GPU
        const size_t size = block_size(bytes);
        const int c = std::countr_zero(size);
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            auto& list = free_[static_cast<size_t>(c)];
            if (!list.empty()) {
                void* p = list.back();
                list.pop_back();
                cached_ -= static_cast<int64_t>(size);
                return p;
            }
        }
        void* p = nullptr;
        cudaError_t s = cudaMalloc(&p, size);
        if (s == cudaErrorMemoryAllocation) {  // give the cache back to the driver and try once more
            (void)cudaGetLastError();
            release_cached();
            s = cudaMalloc(&p, size);
        }
        check(s, "cudaMalloc");
        mallocs_.fetch_add(1, std::memory_order_relaxed);
        return p;
    }

    void deallocate(void* p, size_t bytes) noexcept {
        if (!p) return;
        const size_t size = block_size(bytes);
        const int c = std::countr_zero(size);
        try {
            const std::lock_guard<std::mutex> lock(mutex_);
            free_[static_cast<size_t>(c)].push_back(p);
            cached_ += static_cast<int64_t>(size);
        } catch (...) {  // no host memory for the free list: give the block back instead
            (void)cudaFree(p);
            frees_.fetch_add(1, std::memory_order_relaxed);
        }
    }

    /// Frees every cached block (waits for the stream first, so no kernel still uses one).
    void release_cached() noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (cached_ == 0) return;
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

    [[nodiscard]] MemoryStats stats() {
        const std::lock_guard<std::mutex> lock(mutex_);
        return {mallocs_.load(std::memory_order_relaxed), frees_.load(std::memory_order_relaxed), cached_};
    }

private:
    DeviceAllocator() = default;
    std::mutex mutex_;
    std::vector<void*> free_[64];
    int64_t cached_ = 0;
    std::atomic<int64_t> mallocs_{0}, frees_{0};
};

/// The caching allocator's counters (cudaMalloc/cudaFree calls, bytes cached).
inline MemoryStats memory_stats() { return DeviceAllocator::get().stats(); }
/// Returns cached device blocks to the driver (e.g. before handing the GPU to another library).
inline void release_cached_memory() { DeviceAllocator::get().release_cached(); }

/// Live bytes of CUDA tensors (all threads), for tests that check memory returns to its baseline.
inline detail::LiveCounter<detail::Live::cuda_bytes> live_bytes() noexcept { return {}; }

/// A device copy of host int64 values (class labels) from the caching allocator, freed with it. The upload is
/// enqueued on the stream, so it is ordered before the kernels that read it.
class DeviceLabels {
public:
    DeviceLabels(const int64_t* host, int64_t n) : n_(n) {
        if (n_ == 0) return;
        const size_t bytes = static_cast<size_t>(n_) * sizeof(int64_t);
        p_ = static_cast<int64_t*>(DeviceAllocator::get().allocate(bytes));
        try {
            check(cudaMemcpyAsync(p_, host, bytes, cudaMemcpyHostToDevice, stream()), "cudaMemcpyAsync (labels)");
            // The host array may be freed or reused as soon as we return: wait for a pageable copy to be
            // staged. cudaMemcpyAsync from pageable memory returns once the source has been read.
        } catch (...) {
            DeviceAllocator::get().deallocate(p_, bytes);
            throw;
        }
    }
    DeviceLabels(const DeviceLabels&) = delete;
    DeviceLabels& operator=(const DeviceLabels&) = delete;
    ~DeviceLabels() {
        if (p_) DeviceAllocator::get().deallocate(p_, static_cast<size_t>(n_) * sizeof(int64_t));
    }
    [[nodiscard]] const int64_t* data() const noexcept { return p_; }

private:
    int64_t* p_ = nullptr;
    int64_t n_;
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

    // ---- host transfers ---------------------------------------------------------------------------------
    /// dst (device) = host values; returns once `host` may be reused.
    template <class T>
    static void upload(int64_t n, const T* host, T* dst) {
        if (n <= 0) return;
        cuda::check(cudaMemcpyAsync(dst, host, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice,
                                    cuda::stream()),
                    "cudaMemcpyAsync (host to device)");
        cuda::synchronize();  // `host` may be a temporary of the caller's
    }
    /// host = src (device); waits for every op enqueued before.
    template <class T>
    static void download(int64_t n, const T* src, T* host) {
        if (n <= 0) return;
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
        const cuda::DeviceLabels darg(arg, outer * inner);
        cuda::scatter_axis_add(outer, n, inner, darg.data(), g, dx, cuda::stream());
        cuda::check_launch("scatter_axis_add");
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

    // ---- softmax and the row-wise losses (labels arrive as host arrays, as on the CPU) ----------------
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
        const cuda::DeviceLabels d(labels, N);
        cuda::softmax_xent_rows(N, C, logits, d.data(), probs, loss, cuda::stream());
        cuda::check_launch("cross_entropy");
    }
    template <class T>
    static void softmax_xent_rows_backward(int64_t N, int64_t C, const T* probs, const int64_t* labels, const T* dloss,
                                           int64_t dloss_stride, T scale, T* dlogits) {
        const cuda::DeviceLabels d(labels, N);
        cuda::softmax_xent_rows_backward(N, C, probs, d.data(), dloss, dloss_stride, scale, dlogits, cuda::stream());
        cuda::check_launch("cross_entropy backward");
    }
    template <class T>
    static void nll_rows(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss) {
        const cuda::DeviceLabels d(labels, N);
        cuda::nll_rows(N, C, logp, d.data(), loss, cuda::stream());
        cuda::check_launch("nll_loss");
    }
    template <class T>
    static void nll_rows_backward(int64_t N, int64_t C, const int64_t* labels, const T* dloss, int64_t dloss_stride,
                                  T scale, T* dlogp) {
        const cuda::DeviceLabels d(labels, N);
        cuda::nll_rows_backward(N, C, d.data(), dloss, dloss_stride, scale, dlogp, cuda::stream());
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
};

}  // namespace backend

}  // namespace tapegrad
