// A kernel of the consumer's own, compiled by nvcc, on the memory of a tapegrad CUDA tensor: it applies
// tapegrad's own sigmoid functor (backend/common/functors.hpp, host and device from one definition).
#include <tapegrad/backend/common/functors.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace {

__global__ void sigmoid_kernel(int64_t n, float* x) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] = tapegrad::fn::Sigmoid{}(x[i]);
}

}  // namespace

/// x[i] = sigmoid(x[i]) for i < n, enqueued on `stream`; returns the launch's status.
cudaError_t sigmoid_in_place(int64_t n, float* x, cudaStream_t stream) {
    if (n <= 0) return cudaSuccess;
    sigmoid_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(n, x);
    return cudaGetLastError();
}
