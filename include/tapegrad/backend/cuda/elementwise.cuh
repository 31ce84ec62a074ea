#pragma once
/// \file
/// The CUDA launchers of the elementwise family: axpy, scale, map / map_backward (elementwise.cu) and zip /
/// zip_backward / strided copies (elementwise_broadcast.cu), instantiated for float and double and, for the
/// functor launchers, for every functor of the one list (backend/common/functor_list.hpp).
/// Twin of backend/cpu/elementwise.hpp.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen:
/// host code compiled by any C++20 compiler and the nvcc-compiled .cu file both include it.

#include <tapegrad/backend/common/strided.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

/// y[i] += alpha * x[i]
template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y, cudaStream_t stream);
/// y[i] *= alpha
template <class T>
void scale(int64_t n, T alpha, T* y, cudaStream_t stream);

// ---- elementwise through functors (F: a struct of backend/*functors.hpp) ----------------------------------
/// y[i] = f(x[i])
template <class T, class F>
void map(int64_t n, const T* x, T* y, F f, cudaStream_t stream);
/// dx[i] += f.backward(x[i], y[i], dy[i]); with `assign`, = instead (dx may then be dy itself).
template <class T, class F>
void map_backward(int64_t n, const T* x, const T* y, const T* dy, T* dx, F f, bool assign, cudaStream_t stream);
/// out = f(a, b) over the broadcast plan p (strides 0 on broadcast dimensions).
template <class T, class F>
void zip(const backend::Strided& p, const T* a, const T* b, T* out, F f, cudaStream_t stream);
/// da[a index] += f.da(a, b, y, dy), db[b index] += f.db(a, b, y, dy) summed over the broadcast output;
/// either target may be null. With `assign_a` (a has the output's shape) da is overwritten and may be dy.
/// Broadcast operands are reduced deterministically (no floating-point atomics), so results do not vary
/// between runs.
template <class T, class F>
void zip_backward(const backend::Strided& p, const T* a, const T* b, const T* y, const T* dy, T* da, T* db, F f,
                  bool assign_a, cudaStream_t stream);
/// out[contiguous] = in[strided by p.sa] (transpose, permute, expand).
template <class T>
void strided_copy(const backend::Strided& p, const T* in, T* out, cudaStream_t stream);
/// out[strided by p.sa] += in[contiguous]: the adjoint of strided_copy (sums over broadcast dimensions).
template <class T>
void strided_add(const backend::Strided& p, const T* in, T* out, cudaStream_t stream);

}  // namespace tapegrad::cuda
