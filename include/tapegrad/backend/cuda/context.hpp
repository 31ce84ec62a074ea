#pragma once
/// \file
/// The CUDA backend's context: the `Cuda` device tag, error checks (CUDA and cuBLAS statuses become
/// `DeviceError` naming the call), the process's stream and cuBLAS handle (`cuda::Context`), synchronisation,
/// and the flag that says a cuda::Graph capture is in progress. The bottom of the CUDA backend: every other
/// CUDA header includes it, it includes none of them.

#include <tapegrad/core/error.hpp>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>

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

}  // namespace cuda

}  // namespace tapegrad
