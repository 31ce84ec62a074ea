#pragma once
/// \file
/// The backend contract: the primitives a device must provide, written once, as one concept per family.
/// `Ops<D>` (a specialisation per device) provides them; each backend states that it is complete with
/// `static_assert(Backend<D>)` (backend/cpu/ops.hpp, backend/cuda/ops.hpp), so a primitive missing on a
/// device, or with the wrong parameters, stops that backend's build with the family's name.
///
/// Every primitive takes raw buffers (device memory of D, unless a name says host) and sizes, and knows
/// nothing of `Tensor`; the generic layers above (tensor and tape, ops, nn, optim) call
/// `backend::Ops<D>::name(...)`. The families, each checked for float and double:
///
///   MemoryFamily       allocate, deallocate, capturing, upload, download, fill, copy           memory
///   ElementwiseFamily  axpy, scale, map(_backward), zip(_backward), strided_copy, strided_add  elementwise
///   ReductionFamily    sum_axis, expand_axis_add, max_axis, scatter_axis_add, copy_axis_block,  reduce
///                      add_row_vector, add_column_sums
///   BlasFamily         gemm, pack_right + gemm_packed (one right operand, many products)      blas
///   SoftmaxLossFamily  softmax_axis(_backward), softmax_xent_rows(_backward), nll_rows(_back.)  softmax_loss
///   ConvPoolFamily     im2col_is_identity, conv2d_forward/backward, im2col, col2im, max, avg   conv_pool
///                      and adaptive average pooling with their backwards
///   NormFamily         channel_mean_var, channel_batch_stats, channel_running_stats,          norm
///                      channel_normalize(_backward)
///   OptimFamily        step_many (every rule of TAPEGRAD_OPTIM_RULES), fill_many, scale_many,  optim
///                      norm_many
///   RandomDataFamily   dropout_mask, gather_batch                                            random_data
///   AttentionFamily    gemm_batched, layer_norm(_backward), masked_softmax                    attention
///   RnnFamily          rnn/lstm/gru_cell_forward(_backward): fused gate nonlinearities      rnn
///   IndexFamily        memory for int64/int32/uint8, convert, compare, arg_reduce_axis,       index
///                      copy_strided, find_out_of_range, embedding, index_select_axis,
///                      gather_axis, where, masked_fill, with their backwards
/// The last column names the files: backend/cpu/<name>.hpp and its twin backend/cuda/<name>.hpp (with the
/// kernels in backend/cuda/<name>.cu).
///
/// The device-neutral pieces the primitives share live in backend/common/: the functors (with their one
/// list), the Strided and Window2d plans, the multi-tensor tables, the counter RNG and the optimizer rules.

#include <tapegrad/backend/common/attention_mask.hpp>
#include <tapegrad/backend/common/functor_list.hpp>
#include <tapegrad/backend/common/index_plan.hpp>
#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/backend/common/optim_math.hpp>
#include <tapegrad/backend/common/strided.hpp>
#include <tapegrad/backend/common/window.hpp>
#include <tapegrad/core/device.hpp>

#include <concepts>
#include <cstdint>

namespace tapegrad::backend {

/// The primitives of device D. Only specialisations exist (backend/cpu/ops.hpp, backend/cuda/ops.hpp).
template <Device D>
struct Ops;

namespace contract {

template <class B, class T>
concept StorageOf = requires(int64_t n, T* p, const T* c) {
    { B::template allocate<T>(n) } -> std::same_as<T*>;
    B::deallocate(p, n);
    B::upload(n, c, p);
    B::download(n, c, p);
    B::copy(n, c, p);
};
template <class B, class T>
concept MemoryOf = StorageOf<B, T> && requires(int64_t n, T v, T* p) { B::fill(n, v, p); };
template <class B, class T>
concept ElementwiseOf = requires(int64_t n, T v, T* p, const T* c, const Strided& s, bool flag) {
    B::axpy(n, v, c, p);
    B::scale(n, v, p);
    B::map(n, c, p, fn::Relu{});
    B::map_backward(n, c, c, c, p, fn::Relu{}, flag);
    B::zip(s, c, c, p, fn::Add{});
    B::zip_backward(s, c, c, c, c, p, p, fn::Add{}, flag);
    B::strided_copy(s, c, p);
    B::strided_add(s, c, p);
};
template <class B, class T>
concept ReductionOf = requires(int64_t n, T v, T* p, const T* c, int64_t* arg, const int64_t* carg, bool flag) {
    B::sum_axis(n, n, n, c, p);
    B::expand_axis_add(n, n, n, v, c, p);
    B::max_axis(n, n, n, c, p, arg);
    B::scatter_axis_add(n, n, n, carg, c, p);
    B::copy_axis_block(n, n, n, n, n, c, n, n, p, flag);
    B::add_row_vector(n, n, c, p);
    B::add_column_sums(n, n, c, p);
};
template <class B, class T>
concept BlasOf = requires(int64_t n, T v, T* p, const T* c, bool flag) {
    B::gemm(flag, flag, n, n, n, v, c, c, v, p);
    B::pack_right(n, n, c, p);
    B::gemm_packed(n, n, n, v, c, c, v, p);
};
template <class B, class T>
concept SoftmaxLossOf = requires(int64_t n, T v, T* p, const T* c, const int64_t* labels, bool flag) {
    B::softmax_axis(n, n, n, c, p, flag);
    B::softmax_axis_backward(n, n, n, c, c, p, flag);
    B::softmax_xent_rows(n, n, c, labels, p, p);
    B::softmax_xent_rows_backward(n, n, c, labels, c, n, v, p);
    B::nll_rows(n, n, c, labels, p);
    B::nll_rows_backward(n, n, labels, c, n, v, p);
};
template <class B, class T>
concept ConvPoolOf = requires(int64_t n, T* p, const T* c, const Window2d& g, int64_t* arg, const int64_t* carg,
                              bool flag) {
    { B::im2col_is_identity(g) } -> std::convertible_to<bool>;
    B::conv2d_forward(g, n, n, n, c, c, c, p, p);
    B::conv2d_backward(g, n, n, n, c, c, c, p, p, flag, p, c);
    B::im2col(g, n, c, p);
    B::col2im(g, n, c, p);
    B::max_pool2d(g, n, c, p, arg);
    B::max_pool2d_backward(g, n, carg, c, p);
    B::avg_pool2d(g, n, c, p, flag);
    B::avg_pool2d_backward(g, n, c, p, flag);
    B::adaptive_avg_pool2d(g, n, c, p);
    B::adaptive_avg_pool2d_backward(g, n, c, p);
};
template <class B, class T>
concept NormOf = requires(int64_t n, T v, T* p, const T* c, bool flag) {
    B::channel_mean_var(n, n, n, c, p, p);
    B::channel_batch_stats(n, n, n, c, v, v, p, p, p, p);
    B::channel_running_stats(n, c, c, v, p, p);
    B::channel_normalize(n, n, n, c, c, c, c, c, p);
    B::channel_normalize_backward(n, n, n, c, c, c, c, c, flag, p, p, p);
};
template <class B, class T>
concept OptimOf = requires(int64_t n, T v, const StepParam<T>* params, const TensorSpan<T>* list,
                           const TensorSpan<const T>* clist, double norm_type) {
    B::step_many(n, params, SgdRule<T>{});
    B::step_many(n, params, AdamRule<T>{});
    B::step_many(n, params, RmspropRule<T>{});
    B::step_many(n, params, AdagradRule<T>{});
    B::fill_many(n, list, v);
    B::scale_many(n, list, v);
    { B::norm_many(n, clist, norm_type) } -> std::same_as<double>;
};
template <class B, class T>
concept RandomDataOf = requires(int64_t n, T* p, const T* c, double prob, uint64_t seed, const int64_t* ci,
                                int64_t* i) {
    B::dropout_mask(n, prob, seed, seed, p);
    B::gather_batch(n, n, c, ci, ci, n, i, p, i);
};

template <class B, class T>
concept AttentionOf = requires(int64_t n, T v, T* p, const T* c, bool flag, SoftmaxMask<T> m) {
    B::gemm_batched(flag, flag, n, n, n, n, v, c, n, c, n, v, p, n);
    B::layer_norm(n, n, c, c, c, v, p, p, p);
    B::layer_norm_backward(n, n, c, c, c, c, c, p, p, p);
    B::masked_softmax(n, n, n, c, m, m, flag, p);
};

template <class B, class T>
concept IndexOf = requires(int64_t n, T v, T* p, const T* c, const int64_t* ci, int64_t* i, const uint8_t* cm,
                           uint8_t* m, const Strided& s, const GatherPlan& g, bool flag) {
    B::compare(s, CompareOp::eq, c, c, m);
    B::arg_reduce_axis(n, n, n, flag, c, i);
    B::copy_strided(s, c, p);
    B::convert(n, c, static_cast<float*>(nullptr));
    B::convert(n, static_cast<const int64_t*>(nullptr), p);
};
template <class B, class T>
concept IndexGradOf = requires(int64_t n, T v, T* p, const T* c, const int64_t* ci, const uint8_t* cm,
                               const Strided& s, const GatherPlan& g) {
    B::embedding(n, n, n, ci, c, p);
    B::embedding_backward(n, n, n, ci, n, c, p);
    B::index_select_axis(n, n, n, n, ci, c, p);
    B::index_select_axis_backward(n, n, n, n, ci, c, p);
    B::gather_axis(g, ci, c, p);
    B::gather_axis_backward(g, ci, c, p);
    B::where(s, cm, c, c, p);
    B::masked_fill(s, cm, c, v, p);
    B::where_backward(s, cm, c, p, p);
};

}  // namespace contract

/// Memory and transfer: device memory (allocate / deallocate, host <-> device copies and copy, for T and for
/// int64_t labels and indices), fill, and whether work is being captured into a device graph.
template <class B>
concept MemoryFamily = contract::MemoryOf<B, float> && contract::MemoryOf<B, double> &&
                       contract::StorageOf<B, int64_t> && requires {
                           { B::capturing() } -> std::convertible_to<bool>;
                       };
/// Elementwise and broadcast: axpy, scale, unary and binary functors (every one of functor_list.hpp) with
/// their backwards, strided copies.
template <class B>
concept ElementwiseFamily = contract::ElementwiseOf<B, float> && contract::ElementwiseOf<B, double>;
/// Reductions over the middle axis of [outer, n, inner], their adjoints, block copies, bias rows and sums.
template <class B>
concept ReductionFamily = contract::ReductionOf<B, float> && contract::ReductionOf<B, double>;
/// BLAS: the row-major matrix product.
template <class B>
concept BlasFamily = contract::BlasOf<B, float> && contract::BlasOf<B, double>;
/// Softmax, log-softmax and the fused row-wise losses (cross-entropy, NLL).
template <class B>
concept SoftmaxLossFamily = contract::SoftmaxLossOf<B, float> && contract::SoftmaxLossOf<B, double>;
/// Convolution and pooling over NCHW batches, planned by a Window2d.
template <class B>
concept ConvPoolFamily = contract::ConvPoolOf<B, float> && contract::ConvPoolOf<B, double>;
/// Normalisation: batch norm's per-channel statistics, normalisation and backward.
template <class B>
concept NormFamily = contract::NormOf<B, float> && contract::NormOf<B, double>;
/// Optimizer updates: the one multi-tensor step (every rule), and fill / scale / norm over tensor lists.
template <class B>
concept OptimFamily = contract::OptimOf<B, float> && contract::OptimOf<B, double>;
/// Random and data: dropout masks from the counter RNG, the device loader's batch gather.
template <class B>
concept RandomDataFamily = contract::RandomDataOf<B, float> && contract::RandomDataOf<B, double>;

/// Sequence models: strided batched products, layer norm over rows with its backward, the masked (and
/// causal) row softmax of attention scores.
template <class B>
concept AttentionFamily = contract::AttentionOf<B, float> && contract::AttentionOf<B, double>;

namespace contract {
template <class B, class T>
concept RnnOf = requires(int64_t n, T* p, const T* c, const int64_t* len, bool flag) {
    B::rnn_cell_forward(n, n, n, len, flag, c, p, p, p);
    B::rnn_cell_backward(n, n, n, len, flag, c, c, p, p);
    B::lstm_cell_forward(n, n, n, len, c, c, p, p, p, p);
    B::lstm_cell_backward(n, n, n, len, c, c, c, p, p, p);
    B::gru_cell_forward(n, n, n, len, c, p, c, p, p);
    B::gru_cell_backward(n, n, n, len, c, c, c, c, p, p, p);
};
}  // namespace contract

/// Recurrent cells: one time step's fused gate nonlinearities (Elman tanh/relu, LSTM, GRU) and their
/// backwards, with per-row lengths masking (ops/rnn.hpp runs the time loop and the products around them).
template <class B>
concept RnnFamily = contract::RnnOf<B, float> && contract::RnnOf<B, double>;

/// Index tensors and the index ops: memory, conversions, comparisons and arg-reductions for every element
/// type (float, double, int64, int32, uint8 masks); the range check of ids; embedding, index_select,
/// gather, where and masked_fill with their deterministic backwards, for float and double.
template <class B>
concept IndexFamily =
    contract::MemoryOf<B, int64_t> && contract::MemoryOf<B, int32_t> && contract::MemoryOf<B, uint8_t> &&
    contract::IndexOf<B, float> && contract::IndexOf<B, double> && contract::IndexOf<B, int64_t> &&
    contract::IndexOf<B, int32_t> && contract::IndexOf<B, uint8_t> && contract::IndexGradOf<B, float> &&
    contract::IndexGradOf<B, double> && requires(int64_t n, const int64_t* ci) {
        { B::find_out_of_range(n, ci, n, n) } -> std::same_as<int64_t>;
    };

/// A device whose `Ops<D>` provides every family: what `Tensor<T, D>` and everything above it need.
template <class D>
concept Backend = Device<D> && MemoryFamily<Ops<D>> && ElementwiseFamily<Ops<D>> && ReductionFamily<Ops<D>> &&
                  BlasFamily<Ops<D>> && SoftmaxLossFamily<Ops<D>> && ConvPoolFamily<Ops<D>> && NormFamily<Ops<D>> &&
                  OptimFamily<Ops<D>> && RandomDataFamily<Ops<D>> && AttentionFamily<Ops<D>> &&
                  RnnFamily<Ops<D>> && IndexFamily<Ops<D>>;

}  // namespace tapegrad::backend
