/// \file
/// The CUDA backend's memory kernels: fill (copies and transfers are cudaMemcpyAsync calls in memory.hpp).
/// Semantics are those of backend/cpu/memory.hpp.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/memory.cuh>

namespace tapegrad::cuda {
namespace detail {

/// out[i] = v
template <class T>
__global__ void fill_kernel(int64_t n, T v, T* out) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = v;
}

}  // namespace detail

template <class T>
void fill(int64_t n, T v, T* out, cudaStream_t stream) {
    if (n <= 0) return;
    detail::fill_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, v, out);
}

template void fill<float>(int64_t, float, float*, cudaStream_t);
template void fill<double>(int64_t, double, double*, cudaStream_t);
// integer and mask tensors (the index family)
template void fill<int64_t>(int64_t, int64_t, int64_t*, cudaStream_t);
template void fill<int32_t>(int64_t, int32_t, int32_t*, cudaStream_t);
template void fill<uint8_t>(int64_t, uint8_t, uint8_t*, cudaStream_t);

}  // namespace tapegrad::cuda
