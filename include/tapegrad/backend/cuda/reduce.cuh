#pragma once
/// \file
/// The CUDA launchers of the reduction family (defined in reduce.cu). Twin of backend/cpu/reduce.hpp.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen:
/// host code compiled by any C++20 compiler and the nvcc-compiled .cu file both include it.

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

// ---- reductions over the middle axis of an [outer, n, inner] view ------------------------------------------
/// out[o, i] = sum_k x[o, k, i]
template <class T>
void sum_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, cudaStream_t stream);
/// dx[o, k, i] += alpha * g[o, i]
template <class T>
void expand_axis_add(int64_t outer, int64_t n, int64_t inner, T alpha, const T* g, T* dx, cudaStream_t stream);
/// out[o, i] = max_k x[o, k, i], arg[o, i] = the first k reaching it (NaN counts as the maximum).
template <class T>
void max_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* out, int64_t* arg, cudaStream_t stream);
/// dx[o, arg[o, i], i] += g[o, i]
template <class T>
void scatter_axis_add(int64_t outer, int64_t n, int64_t inner, const int64_t* arg, const T* g, T* dx,
                      cudaStream_t stream);
/// The block [outer, len, inner] at `start` of an [outer, n, inner] source into an [outer, dst_n, inner]
/// destination at `dst_start`; `add` accumulates.
template <class T>
void copy_axis_block(int64_t outer, int64_t n, int64_t inner, int64_t start, int64_t len, const T* src, int64_t dst_n,
                     int64_t dst_start, T* dst, bool add, cudaStream_t stream);

// ---- dense layers --------------------------------------------------------------------------------------------
/// y[r, :] += v for every row of a [rows, cols] matrix.
template <class T>
void add_row_vector(int64_t rows, int64_t cols, const T* v, T* y, cudaStream_t stream);
/// out[c] += sum_r g[r, c]
template <class T>
void add_column_sums(int64_t rows, int64_t cols, const T* g, T* out, cudaStream_t stream);

}  // namespace tapegrad::cuda
