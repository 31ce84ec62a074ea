/// \file
/// The CUDA backend's random and data primitives, as backend/cpu/random_data.hpp:
///  - dropout_mask, from the same counter-based generator (backend/common/counter_rng.hpp), so the GPU draws
///    exactly the CPU's mask for a seed. Each element is a pure function of (seed, offset + i): no
///    generator state on the device, no synchronisation, any thread may draw any element.
///  - gather_batch, a device-resident loader's batch gather (data::DeviceLoader). The batch's start is read
///    from device memory (the cursor), not passed from the host, so that one captured gather (cuda::Graph)
///    fetches a new batch at every replay.
/// Kernels, then launchers, then the explicit instantiations for float and double.

#include <tapegrad/backend/common/counter_rng.hpp>
#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/random_data.cuh>

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

// ==== the device loader's batch gather ===================================================================
namespace detail {

/// out[i, c] = src[perm[start + i], c], out_labels[i] = labels[perm[start + i]] with start = *cursor; one
/// thread per element of out (the threads of a row read one source row), one per row when rows are empty.
template <class T>
__global__ void gather_batch_kernel(int64_t rows, int64_t cols, const T* src, const int64_t* labels,
                                    const int64_t* perm, const int64_t* cursor, T* out, int64_t* out_labels) {
    const int64_t start = *cursor;
    const int64_t width = cols > 0 ? cols : 1;
    const int64_t total = rows * width;
    for (int64_t j = global_thread(); j < total; j += grid_threads()) {
        const int64_t i = j / width, c = j - i * width;
        const int64_t k = perm[start + i];
        if (cols > 0) out[j] = src[k * cols + c];
        if (c == 0) out_labels[i] = labels[k];
    }
}

/// *cursor += rows, or 0 when another batch would pass limit. A kernel of its own, after the gather: a
/// thread of the gather cannot know when the others have read the cursor.
__global__ void advance_cursor_kernel(int64_t rows, int64_t limit, int64_t* cursor) {
    const int64_t start = *cursor;
    *cursor = start + 2 * rows <= limit ? start + rows : 0;
}

}  // namespace detail

// ---- launcher ------------------------------------------------------------------------------------------

template <class T>
void gather_batch(int64_t rows, int64_t cols, const T* src, const int64_t* labels, const int64_t* perm, int64_t limit,
                  int64_t* cursor, T* out, int64_t* out_labels, cudaStream_t stream) {
    if (rows <= 0) return;
    const int64_t total = rows * (cols > 0 ? cols : 1);
    detail::gather_batch_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(
        rows, cols, src, labels, perm, cursor, out, out_labels);
    detail::advance_cursor_kernel<<<1, 1, 0, stream>>>(rows, limit, cursor);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

template void gather_batch<float>(int64_t, int64_t, const float*, const int64_t*, const int64_t*, int64_t, int64_t*,
                                  float*, int64_t*, cudaStream_t);
template void gather_batch<double>(int64_t, int64_t, const double*, const int64_t*, const int64_t*, int64_t, int64_t*,
                                   double*, int64_t*, cudaStream_t);

}  // namespace tapegrad::cuda
