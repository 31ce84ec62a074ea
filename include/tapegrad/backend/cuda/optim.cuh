#pragma once
/// \file
/// The CUDA launchers of the optimizer family (defined in optim.cu): the one multi-tensor step, which
/// applies an update rule of backend/common/optim_math.hpp to a whole list of tensors, and the list
/// operations fill, scale and norm. Twin of backend/cpu/optim.hpp.
///
/// Each list goes to the kernel by value as a table of pointers and sizes (no device memory, no upload, no
/// synchronisation, so the launches can be captured in a CUDA Graph); a list longer than one table takes
/// several launches. Empty tensors are skipped; a list of empty tensors launches nothing.
/// Launchers only enqueue on `stream` (the caller checks the launch). Never includes Eigen.

#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/backend/common/optim_math.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

/// Tensors one step_many launch takes (a list of more takes several launches).
inline constexpr int step_table_capacity = 40;
/// Tensors one fill_many, scale_many or norm_many launch takes.
inline constexpr int span_table_capacity = 160;

/// rule(params[t], i) for every element of every tensor of params[0, count): one launch for up to
/// step_table_capacity non-empty tensors. Rule: one of TAPEGRAD_OPTIM_RULES, for T.
template <class T, class Rule>
void step_many(int64_t count, const backend::StepParam<T>* params, const Rule& rule, cudaStream_t stream);
/// list[t].data[0, n) = value for every t < count.
template <class T>
void fill_many(int64_t count, const backend::TensorSpan<T>* list, T value, cudaStream_t stream);
/// list[t].data[0, n) *= alpha for every t < count.
template <class T>
void scale_many(int64_t count, const backend::TensorSpan<T>* list, T alpha, cudaStream_t stream);
/// The blocks norm_many's first pass needs: one per chunk (backend::multi_tensor_chunk) of every tensor.
template <class T>
int64_t norm_blocks(int64_t count, const backend::TensorSpan<const T>* list) noexcept;
/// *result (device) = the norm_type-norm of all elements of the list as one vector, in double, as
/// backend/cpu/optim.hpp's norm_many: each block sums |x|^p (or takes the largest |x|) of its chunk into
/// partial[block] (norm_blocks(count, list) device doubles), then one block combines the partials in a fixed
/// order, so the result does not vary between runs. Writes *result = 0 for a list with no elements.
template <class T>
void norm_many(int64_t count, const backend::TensorSpan<const T>* list, double norm_type, double* partial,
               double* result, cudaStream_t stream);

/// Kernel launches made by step_many, fill_many and scale_many so far in this process (for tests that check
/// a step is one launch).
int64_t multi_tensor_launches() noexcept;

}  // namespace tapegrad::cuda
