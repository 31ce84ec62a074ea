#pragma once
/// \file
/// The CUDA launchers of the memory family (defined in memory.cu): fill. Twin of backend/cpu/memory.hpp.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen:
/// host code compiled by any C++20 compiler and the nvcc-compiled .cu file both include it.

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

/// out[i] = v
template <class T>
void fill(int64_t n, T v, T* out, cudaStream_t stream);

}  // namespace tapegrad::cuda
