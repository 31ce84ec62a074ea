/// \file
/// The CUDA backend's data-loading primitive: gather_rows, the loader's batch gather on the device. Kernel,
/// then launcher, then the explicit instantiations for float and double.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/kernels.cuh>

namespace tapegrad::cuda {
namespace detail {

/// out[i, c] = src[index[i], c]; one thread per element of out, so a row's threads read one source row
template <class T>
__global__ void gather_rows_kernel(int64_t rows, int64_t cols, const T* src, const int64_t* index, T* out) {
    const int64_t total = rows * cols;
    for (int64_t j = global_thread(); j < total; j += grid_threads()) {
        const int64_t i = j / cols, c = j - i * cols;
        out[j] = src[index[i] * cols + c];
    }
}

}  // namespace detail

// ---- launcher ------------------------------------------------------------------------------------------

template <class T>
void gather_rows(int64_t rows, int64_t cols, const T* src, const int64_t* index, T* out, cudaStream_t stream) {
    const int64_t total = rows * cols;
    if (total <= 0) return;
    detail::gather_rows_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(rows, cols, src, index, out);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

template void gather_rows<float>(int64_t, int64_t, const float*, const int64_t*, float*, cudaStream_t);
template void gather_rows<double>(int64_t, int64_t, const double*, const int64_t*, double*, cudaStream_t);

}  // namespace tapegrad::cuda
