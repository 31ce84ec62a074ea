/// \file
/// The CUDA backend's random masks: dropout_mask, as backend::Ops<Cpu>::dropout_mask, from the same
/// counter-based generator (backend/counter_rng.hpp), so the GPU draws exactly the CPU's mask for a seed.
/// Each element is a pure function of (seed, offset + i): no generator state on the device, no
/// synchronisation, any thread may draw any element. Kernels, then the launcher, then the explicit
/// instantiations for float and double.

#include <tapegrad/backend/counter_rng.hpp>
#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/kernels.cuh>

namespace tapegrad::cuda {
namespace detail {

/// mask[i] = keep or 0 by element offset + i of the stream `seed`; grid-stride over i < n.
template <class T>
__global__ void dropout_mask_kernel(int64_t n, uint64_t threshold, T keep, uint64_t seed, uint64_t offset, T* mask) {
    for (int64_t i = global_thread(); i < n; i += grid_threads())
        mask[i] = backend::dropout_keeps(seed, offset + static_cast<uint64_t>(i), threshold) ? keep : T(0);
}

}  // namespace detail

// ---- launcher ------------------------------------------------------------------------------------------

template <class T>
void dropout_mask(int64_t n, uint64_t threshold, T keep, uint64_t seed, uint64_t offset, T* mask,
                  cudaStream_t stream) {
    if (n <= 0) return;
    detail::dropout_mask_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, threshold, keep, seed,
                                                                                         offset, mask);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

template void dropout_mask<float>(int64_t, uint64_t, float, uint64_t, uint64_t, float*, cudaStream_t);
template void dropout_mask<double>(int64_t, uint64_t, double, uint64_t, uint64_t, double*, cudaStream_t);

}  // namespace tapegrad::cuda
