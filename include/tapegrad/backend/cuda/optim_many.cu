/// \file
/// The CUDA backend's multi-tensor updates: sgd_step_many, adam_step_many and fill_many update a whole list
/// of tensors in one kernel launch (as PyTorch's multi_tensor_apply), instead of one launch per tensor.
///
/// The list travels as a kernel parameter: a table of fixed capacity (pointers, sizes, per-tensor scalars
/// and the block map of backend/multi_tensor.hpp) passed by value, under the 4 KiB classic limit on kernel
/// parameters. No device memory, no upload, no synchronisation: a launch can be captured in a CUDA Graph,
/// whose nodes then hold the pointers (stable across steps: parameters, gradients and optimizer state keep
/// their buffers). Block b finds its tensor by binary search in the block map and updates one chunk of
/// `multi_tensor_chunk` elements of it, so large and small tensors share one grid. A list longer than a
/// table is cut into several launches.
///
/// The per-element arithmetic is that of the one-tensor kernels (optim_update.cuh), so the results are
/// the same, bit for bit. Kernels, then launchers, then the explicit instantiations for float and double.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/kernels.cuh>
#include <tapegrad/backend/cuda/optim_update.cuh>
#include <tapegrad/backend/multi_tensor.hpp>

#include <atomic>
#include <cmath>

namespace tapegrad::cuda {
namespace detail {

/// Bytes of kernel parameters a table and its shared scalars may take: the classic 4 KiB limit (CUDA 12.1
/// raised it to 32 KiB on new GPUs and drivers), less some room.
inline constexpr size_t max_param_bytes = 4096 - 96;

/// An SGD launch's list: parameter t of `map.count` is n = map.n[t] elements at p[t], with grad[t], buf[t]
/// (null without momentum) and its own first-step flag.
template <class T>
struct SgdTable {
    static constexpr int capacity = 80;
    backend::BlockMap<capacity> map;
    T* p[capacity];
    const T* grad[capacity];
    T* buf[capacity];
    bool first_step[capacity];
};

/// An Adam launch's list: parameter t with its state m, v, vmax (null without amsgrad) and the two scalars
/// that depend on its step count.
template <class T>
struct AdamTable {
    static constexpr int capacity = 48;
    backend::BlockMap<capacity> map;
    T* p[capacity];
    const T* grad[capacity];
    T* m[capacity];
    T* v[capacity];
    T* vmax[capacity];
    T step_size[capacity];  ///< lr / bc1
    T bc2_sqrt[capacity];   ///< sqrt(bc2)
};

/// A fill launch's list of buffers.
template <class T>
struct FillTable {
    static constexpr int capacity = 160;
    backend::BlockMap<capacity> map;
    T* out[capacity];
};

static_assert(sizeof(SgdTable<double>) + sizeof(SgdCoeffs<double>) <= max_param_bytes,
              "the SGD table must fit CUDA's 4 KiB of kernel parameters: lower its capacity");
static_assert(sizeof(AdamTable<double>) + sizeof(AdamCoeffs<double>) <= max_param_bytes,
              "the Adam table must fit CUDA's 4 KiB of kernel parameters: lower its capacity");
static_assert(sizeof(FillTable<double>) + sizeof(double) <= max_param_bytes,
              "the fill table must fit CUDA's 4 KiB of kernel parameters: lower its capacity");

/// Kernel launches made by the multi-tensor launchers so far.
inline std::atomic<int64_t> multi_tensor_launch_count{0};

/// The tensor (t) and element range [begin, end) of this block.
template <int Capacity>
__device__ inline int block_range(const backend::BlockMap<Capacity>& map, int64_t& begin, int64_t& end) {
    const uint32_t b = blockIdx.x;
    const int t = map.tensor_of(b);
    map.range_of(b, t, begin, end);
    return t;
}

/// One chunk of one parameter per block (the arithmetic: sgd_element, optim_update.cuh). The table is
/// read in place from parameter space (__grid_constant__), not copied per thread.
template <class T>
__global__ void __launch_bounds__(block_size) sgd_step_many_kernel(const __grid_constant__ SgdTable<T> tab,
                                                                   const __grid_constant__ SgdCoeffs<T> c) {
    int64_t begin = 0, end = 0;
    const int t = block_range(tab.map, begin, end);
    T* p = tab.p[t];
    const T* grad = tab.grad[t];
    T* buf = tab.buf[t];
    const bool first = tab.first_step[t];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) sgd_element(i, p, grad, buf, c, first);
}

/// One chunk of one parameter per block (the arithmetic: adam_element, optim_update.cuh).
template <class T>
__global__ void __launch_bounds__(block_size) adam_step_many_kernel(const __grid_constant__ AdamTable<T> tab,
                                                                    const __grid_constant__ AdamCoeffs<T> c) {
    int64_t begin = 0, end = 0;
    const int t = block_range(tab.map, begin, end);
    T* p = tab.p[t];
    const T* grad = tab.grad[t];
    T *m = tab.m[t], *v = tab.v[t], *vmax = tab.vmax[t];
    const T step_size = tab.step_size[t], bc2_sqrt = tab.bc2_sqrt[t];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
        adam_element(i, p, grad, m, v, vmax, c, step_size, bc2_sqrt);
}

/// One chunk of one buffer per block: out = value.
template <class T>
__global__ void __launch_bounds__(block_size) fill_many_kernel(const __grid_constant__ FillTable<T> tab, T value) {
    int64_t begin = 0, end = 0;
    const int t = block_range(tab.map, begin, end);
    T* out = tab.out[t];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) out[i] = value;
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

int64_t multi_tensor_launches() noexcept { return detail::multi_tensor_launch_count.load(std::memory_order_relaxed); }

/// The shared scalars are computed once, as sgd_step's; each launch takes up to SgdTable::capacity pieces.
template <class T>
void sgd_step_many(int64_t count, const backend::SgdParam<T>* params, T lr, T momentum, T dampening, T weight_decay,
                   bool nesterov, cudaStream_t stream) {
    const detail::SgdCoeffs<T> c = detail::sgd_coeffs(lr, momentum, dampening, weight_decay, nesterov);
    detail::SgdTable<T> tab{};
    const int64_t launches = backend::plan_launches(
        count, tab.map, [&](int64_t i) { return params[i].n; },
        [&](int slot, int64_t i, int64_t offset) {
            const backend::SgdParam<T>& q = params[i];
            tab.p[slot] = q.p + offset;
            tab.grad[slot] = q.grad + offset;
            tab.buf[slot] = q.momentum_buf ? q.momentum_buf + offset : nullptr;
            tab.first_step[slot] = q.first_step;
        },
        [&] { detail::sgd_step_many_kernel<<<tab.map.blocks(), detail::block_size, 0, stream>>>(tab, c); });
    detail::multi_tensor_launch_count.fetch_add(launches, std::memory_order_relaxed);
}

/// The shared scalars are computed once, as adam_step's; step_size = lr / bc1 and sqrt(bc2) once per
/// parameter, in T, as adam_step does.
template <class T>
void adam_step_many(int64_t count, const backend::AdamParam<T>* params, T lr, T beta1, T beta2, T eps,
                    T weight_decay, bool decoupled, bool amsgrad, cudaStream_t stream) {
    const detail::AdamCoeffs<T> c = detail::adam_coeffs(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad);
    detail::AdamTable<T> tab{};
    const int64_t launches = backend::plan_launches(
        count, tab.map, [&](int64_t i) { return params[i].n; },
        [&](int slot, int64_t i, int64_t offset) {
            const backend::AdamParam<T>& q = params[i];
            tab.p[slot] = q.p + offset;
            tab.grad[slot] = q.grad + offset;
            tab.m[slot] = q.m + offset;
            tab.v[slot] = q.v + offset;
            tab.vmax[slot] = q.vmax ? q.vmax + offset : nullptr;
            tab.step_size[slot] = lr / q.bc1;
            tab.bc2_sqrt[slot] = std::sqrt(q.bc2);
        },
        [&] { detail::adam_step_many_kernel<<<tab.map.blocks(), detail::block_size, 0, stream>>>(tab, c); });
    detail::multi_tensor_launch_count.fetch_add(launches, std::memory_order_relaxed);
}

template <class T>
void fill_many(int64_t count, const backend::Buffer<T>* buffers, T value, cudaStream_t stream) {
    detail::FillTable<T> tab{};
    const int64_t launches = backend::plan_launches(
        count, tab.map, [&](int64_t i) { return buffers[i].n; },
        [&](int slot, int64_t i, int64_t offset) { tab.out[slot] = buffers[i].data + offset; },
        [&] { detail::fill_many_kernel<<<tab.map.blocks(), detail::block_size, 0, stream>>>(tab, value); });
    detail::multi_tensor_launch_count.fetch_add(launches, std::memory_order_relaxed);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_OPTIM_MANY(T)                                                                            \
    template void sgd_step_many<T>(int64_t, const backend::SgdParam<T>*, T, T, T, T, bool, cudaStream_t);      \
    template void adam_step_many<T>(int64_t, const backend::AdamParam<T>*, T, T, T, T, T, bool, bool,          \
                                    cudaStream_t);                                                             \
    template void fill_many<T>(int64_t, const backend::Buffer<T>*, T, cudaStream_t);
TAPEGRAD_CUDA_OPTIM_MANY(float)
TAPEGRAD_CUDA_OPTIM_MANY(double)
#undef TAPEGRAD_CUDA_OPTIM_MANY

}  // namespace tapegrad::cuda
