#pragma once
/// \file
/// The CUDA launchers of the random and data family (defined in random_data.cu): dropout masks from the
/// counter RNG, the device loader's batch gather. Twin of backend/cpu/random_data.hpp.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen:
/// host code compiled by any C++20 compiler and the nvcc-compiled .cu file both include it.

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

// ---- data --------------------------------------------------------------------------------------------------
/// A device-resident loader's batch gather (data::DeviceLoader), as Ops<Cpu>::gather_batch: with start =
/// *cursor (device memory), out[i, :] = src[perm[start + i], :] and out_labels[i] = labels[perm[start + i]]
/// for i < rows; then *cursor = start + rows, or 0 when another batch would pass `limit`. Two kernels.
template <class T>
void gather_batch(int64_t rows, int64_t cols, const T* src, const int64_t* labels, const int64_t* perm, int64_t limit,
                  int64_t* cursor, T* out, int64_t* out_labels, cudaStream_t stream);


// ==== random masks (random.cu), from the counter-based generator of backend/common/counter_rng.hpp ================
/// mask[i] = dropout_keeps(seed, offset + i, threshold) ? keep : 0 for i < n, as Ops<Cpu>::dropout_mask
/// (threshold = dropout_threshold(p), keep = 1/(1-p) rounded to T, both computed by the caller).
template <class T>
void dropout_mask(int64_t n, uint64_t threshold, T keep, uint64_t seed, uint64_t offset, T* mask, cudaStream_t stream);

}  // namespace tapegrad::cuda
