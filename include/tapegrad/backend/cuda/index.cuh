#pragma once
/// \file
/// The CUDA launchers of the index family (defined in index.cu): conversions, comparisons, argmax/argmin,
/// strided copies of any element type, the range check of ids, embedding, index_select, gather, where and
/// masked_fill with their backwards. Twin of backend/cpu/index.hpp, whose comments give the semantics.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen.
///
/// Determinism: each gradient element is owned by one thread, which adds its contributions in ascending
/// position from the element's current value, as the CPU's loops do (the same bits); no atomics.

#include <tapegrad/backend/common/index_plan.hpp>
#include <tapegrad/backend/common/strided.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace tapegrad::cuda {

/// out[i] = U(x[i])
template <class S, class U>
void convert(int64_t n, const S* x, U* out, cudaStream_t stream);
/// out[i] = a <op> b (broadcast by p) ? 1 : 0
template <class T>
void compare(const backend::Strided& p, backend::CompareOp op, const T* a, const T* b, uint8_t* out,
             cudaStream_t stream);
/// out[o, i] = argmax (is_min: argmin) over k of x[o, k, i]; first on ties, NaN wins.
template <class T>
void arg_reduce_axis(int64_t outer, int64_t n, int64_t inner, bool is_min, const T* x, int64_t* out,
                     cudaStream_t stream);
/// out[contiguous] = x[strided by p.sa]
template <class T>
void copy_strided(const backend::Strided& p, const T* x, T* out, cudaStream_t stream);
/// *first = the smallest i < n with ids[i] outside [lo, hi), or n when none (*first is device memory).
void find_out_of_range(int64_t n, const int64_t* ids, int64_t lo, int64_t hi, int64_t* first, cudaStream_t stream);

/// out[p, :] = w[ids[p], :] (zeros for an id outside [0, rows), which only an unchecked capture can meet)
template <class T>
void embedding(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, const T* w, T* out, cudaStream_t stream);
/// Bytes of device scratch embedding_backward needs for n ids.
size_t embedding_backward_scratch(int64_t n, int64_t rows);
/// dw[ids[p], :] += dy[p, :] (ids equal to padding_idx skipped): the ids are sorted (stable radix sort of
/// (id, position) pairs, in `scratch`), then one thread per (id, column) adds its positions in order.
template <class T>
void embedding_backward(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, int64_t padding_idx, const T* dy,
                        T* dw, void* scratch, size_t scratch_bytes, cudaStream_t stream);
/// out[o, j, i] = x[o, idx[j], i]
template <class T>
void index_select_axis(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx, const T* x, T* out,
                       cudaStream_t stream);
/// dx[o, r, i] += sum over j with idx[j] == r of dy[o, j, i] (one thread per dx element, j ascending)
template <class T>
void index_select_axis_backward(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx, const T* dy,
                                T* dx, cudaStream_t stream);
/// out[m] = x[m with coordinate g.dim = idx[m]]
template <class T>
void gather_axis(const backend::GatherPlan& g, const int64_t* idx, const T* x, T* out, cudaStream_t stream);
/// dx[m with coordinate g.dim = idx[m]] += dy[m] (one thread per dx element, ascending along g.dim)
template <class T>
void gather_axis_backward(const backend::GatherPlan& g, const int64_t* idx, const T* dy, T* dx, cudaStream_t stream);
/// out[i] = mask[i] ? a[i] : b[i] (mask broadcast by p.sa)
template <class T>
void where(const backend::Strided& p, const uint8_t* mask, const T* a, const T* b, T* out, cudaStream_t stream);
/// out[i] = mask[i] ? v : x[i]
template <class T>
void masked_fill(const backend::Strided& p, const uint8_t* mask, const T* x, T v, T* out, cudaStream_t stream);
/// da[i] += mask[i] ? dy[i] : 0, db[i] += mask[i] ? 0 : dy[i] (null da or db skipped)
template <class T>
void where_backward(const backend::Strided& p, const uint8_t* mask, const T* dy, T* da, T* db, cudaStream_t stream);

}  // namespace tapegrad::cuda
