#pragma once
/// \file
/// The CUDA backend's kernel launchers: the same primitive list as `backend::Ops<Cpu>` (backend/cpu.hpp),
/// over raw device pointers, each enqueued on `stream`. Declared here for host code compiled by any C++20
/// compiler (backend/cuda.hpp calls them); defined and explicitly instantiated, for float and double and
/// for every functor of backend/functors.hpp, activation_functors.hpp and loss_functors.hpp, in the .cu
/// files beside this header, which nvcc compiles into the `tapegrad::cuda` library.
///
/// Never includes Eigen (nvcc 13 prints hundreds of warnings on Eigen 3.4's headers). Sizes are element
/// counts; every pointer is device memory unless its name says host. Launchers with n == 0 enqueue nothing.
/// They only enqueue: errors of the launch itself are checked (cudaGetLastError) and thrown by the caller
/// in backend/cuda.hpp; errors inside a kernel surface at the next synchronising call.

#include <tapegrad/backend/multi_tensor.hpp>
#include <tapegrad/backend/strided.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

// ---- fills and copies ------------------------------------------------------------------------------------
/// out[i] = v
template <class T>
void fill(int64_t n, T v, T* out, cudaStream_t stream);
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

// ---- softmax and the row-wise losses (labels: device int64 class indices, already range-checked) ---------
/// y = softmax (or log_softmax when `log`) along the middle axis of [outer, n, inner], max-shifted.
template <class T>
void softmax_axis(int64_t outer, int64_t n, int64_t inner, const T* x, T* y, bool log, cudaStream_t stream);
/// dx += the softmax (or log_softmax) backward from the output y and its gradient dy.
template <class T>
void softmax_axis_backward(int64_t outer, int64_t n, int64_t inner, const T* y, const T* dy, T* dx, bool log,
                           cudaStream_t stream);
/// Fused softmax-cross-entropy forward over the rows of logits [N, C]: probs = softmax(row) and
/// loss[r] = logsumexp(row) - row[labels[r]], max-shifted (finite for logits of magnitude 1e4).
template <class T>
void softmax_xent_rows(int64_t N, int64_t C, const T* logits, const int64_t* labels, T* probs, T* loss,
                       cudaStream_t stream);
/// dlogits[r, :] += scale * dloss[r * dloss_stride] * (probs[r, :] - onehot(labels[r])).
template <class T>
void softmax_xent_rows_backward(int64_t N, int64_t C, const T* probs, const int64_t* labels, const T* dloss,
                                int64_t dloss_stride, T scale, T* dlogits, cudaStream_t stream);
/// loss[r] = -logp[r, labels[r]]
template <class T>
void nll_rows(int64_t N, int64_t C, const T* logp, const int64_t* labels, T* loss, cudaStream_t stream);
/// dlogp[r, labels[r]] -= scale * dloss[r * dloss_stride]
template <class T>
void nll_rows_backward(int64_t N, int64_t C, const int64_t* labels, const T* dloss, int64_t dloss_stride, T scale,
                       T* dlogp, cudaStream_t stream);

// ---- fused optimizer updates (one kernel per parameter tensor) ---------------------------------------------
/// torch.optim.SGD's update, in one pass: g = grad + weight_decay * p; with momentum, buf = g on the first
/// step else momentum * buf + (1 - dampening) * g, and g = nesterov ? g + momentum * buf : buf; p -= lr * g.
template <class T>
void sgd_step(int64_t n, T* p, const T* grad, T* momentum_buf, T lr, T momentum, T dampening, T weight_decay,
              bool nesterov, bool first_step, cudaStream_t stream);
/// torch.optim.Adam / AdamW's update, in one pass, with bias corrections bc1 = 1 - beta1^t and
/// bc2 = 1 - beta2^t computed by the caller: weight decay is L2 (g += wd p) unless `decoupled` (p *= 1 -
/// lr wd first); m = lerp(m, g, 1 - beta1) (torch.lerp's form); v = beta2 v + (1 - beta2) g^2; with
/// amsgrad vmax = max(vmax, v) (NaN propagates) is used in place of v; p -= (lr / bc1) * m / (sqrt(v) /
/// sqrt(bc2) + eps), PyTorch's arrangement, as Ops<Cpu>::adam_step.
template <class T>
void adam_step(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, T lr, T beta1, T beta2, T eps, T weight_decay,
               bool decoupled, bool amsgrad, T bc1, T bc2, cudaStream_t stream);

// ---- data --------------------------------------------------------------------------------------------------
/// A device-resident loader's batch gather (data::DeviceLoader), as Ops<Cpu>::gather_batch: with start =
/// *cursor (device memory), out[i, :] = src[perm[start + i], :] and out_labels[i] = labels[perm[start + i]]
/// for i < rows; then *cursor = start + rows, or 0 when another batch would pass `limit`. Two kernels.
template <class T>
void gather_batch(int64_t rows, int64_t cols, const T* src, const int64_t* labels, const int64_t* perm, int64_t limit,
                  int64_t* cursor, T* out, int64_t* out_labels, cudaStream_t stream);

// ---- multi-tensor optimizer updates (optim_many.cu): a whole list of tensors per kernel launch -----------
// Each list goes to the kernel by value as a table of pointers and sizes (no device memory, no upload, no
// synchronisation, so the launches can be captured in a CUDA Graph); a list longer than one table takes
// several launches. Empty tensors are skipped; a list of empty tensors launches nothing.

/// sgd_step on every parameter of params[0, count), each with its own buffer and first-step flag: one
/// launch for up to 80 non-empty parameters.
template <class T>
void sgd_step_many(int64_t count, const backend::SgdParam<T>* params, T lr, T momentum, T dampening, T weight_decay,
                   bool nesterov, cudaStream_t stream);
/// adam_step on every parameter of params[0, count), each with its own bias corrections: one launch for up
/// to 48 non-empty parameters.
template <class T>
void adam_step_many(int64_t count, const backend::AdamParam<T>* params, T lr, T beta1, T beta2, T eps,
                    T weight_decay, bool decoupled, bool amsgrad, cudaStream_t stream);
/// buffers[i].data[0, n) = value for every i < count: one launch for up to 160 non-empty buffers.
template <class T>
void fill_many(int64_t count, const backend::Buffer<T>* buffers, T value, cudaStream_t stream);
/// Kernel launches made by sgd_step_many, adam_step_many and fill_many so far in this process (for tests
/// that check a step is one launch).
int64_t multi_tensor_launches() noexcept;

// ==== random masks (random.cu), from the counter-based generator of backend/counter_rng.hpp ================
/// mask[i] = dropout_keeps(seed, offset + i, threshold) ? keep : 0 for i < n, as Ops<Cpu>::dropout_mask
/// (threshold = dropout_threshold(p), keep = 1/(1-p) rounded to T, both computed by the caller).
template <class T>
void dropout_mask(int64_t n, uint64_t threshold, T keep, uint64_t seed, uint64_t offset, T* mask, cudaStream_t stream);
// ==== end of the random-mask section =========================================================================

}  // namespace tapegrad::cuda
