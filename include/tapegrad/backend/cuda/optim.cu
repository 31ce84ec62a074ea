/// \file
/// The CUDA backend's optimizer primitives: step_many, one kernel launch per list of tensors for every
/// optimizer (as PyTorch's multi_tensor_apply), with the per-element arithmetic of the rule
/// (backend/common/optim_math.hpp) that the CPU runs too, so a step matches the CPU's bit for bit; and
/// fill_many, scale_many and norm_many over tensor lists (zero_grad, gradient clipping).
///
/// A list travels as a kernel parameter: a table of fixed capacity (the tensors and the block map of
/// backend/common/multi_tensor.hpp) passed by value, under the 4 KiB classic limit on kernel parameters.
/// Block b finds its tensor by binary search in the block map and works on one chunk of
/// `multi_tensor_chunk` elements of it, so large and small tensors share one grid.
/// Kernels, then launchers, then the explicit instantiations for float and double (and every rule).

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/optim.cuh>

#include <atomic>
#include <cmath>

namespace tapegrad::cuda {
namespace detail {

/// Bytes of kernel parameters a table and its shared scalars may take: the classic 4 KiB limit (CUDA 12.1
/// raised it to 32 KiB on new GPUs and drivers), less some room.
inline constexpr size_t max_param_bytes = 4096 - 96;

/// A step's list: tensor t of `map.count` is param[t], its pointers advanced to the launch's piece.
template <class T>
struct StepTable {
    static constexpr int capacity = step_table_capacity;
    backend::BlockMap<capacity> map;
    backend::StepParam<T> param[capacity];
};

/// A list of spans (fill, scale, norm).
template <class T>
struct SpanTable {
    static constexpr int capacity = span_table_capacity;
    backend::BlockMap<capacity> map;
    T* data[capacity];
};

#define TAPEGRAD_CUDA_TABLE_FITS(Rule)                                                                        \
    static_assert(sizeof(StepTable<double>) + sizeof(backend::Rule<double>) <= max_param_bytes,              \
                  "the step table must fit CUDA's 4 KiB of kernel parameters: lower step_table_capacity");
TAPEGRAD_OPTIM_RULES(TAPEGRAD_CUDA_TABLE_FITS)
#undef TAPEGRAD_CUDA_TABLE_FITS
static_assert(sizeof(SpanTable<double>) + sizeof(double) <= max_param_bytes,
              "the span table must fit CUDA's 4 KiB of kernel parameters: lower span_table_capacity");

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

/// One chunk of one tensor per block: rule(q, i) for its elements. The table is read in place from
/// parameter space (__grid_constant__), not copied per thread.
template <class T, class Rule>
__global__ void __launch_bounds__(block_size) step_many_kernel(const __grid_constant__ StepTable<T> tab,
                                                               const __grid_constant__ Rule rule) {
    int64_t begin = 0, end = 0;
    const int t = block_range(tab.map, begin, end);
    const backend::StepParam<T>& q = tab.param[t];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) rule(q, i);
}

/// One chunk of one span per block: data = value (Scale false) or data *= value (Scale true).
template <class T, bool Scale>
__global__ void __launch_bounds__(block_size) span_kernel(const __grid_constant__ SpanTable<T> tab, T value) {
    int64_t begin = 0, end = 0;
    const int t = block_range(tab.map, begin, end);
    T* out = tab.data[t];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) out[i] = Scale ? out[i] * value : value;
}

/// partial[first + block] = sum of |x|^p over the block's chunk (the largest |x|, NaN winning, when
/// `inf_norm`), in double, reduced by a fixed tree.
template <class T>
__global__ void __launch_bounds__(block_size) norm_partial_kernel(const __grid_constant__ SpanTable<const T> tab,
                                                                  double p, bool inf_norm, double* partial,
                                                                  int64_t first) {
    __shared__ double scratch[32];
    int64_t begin = 0, end = 0;
    const int t = block_range(tab.map, begin, end);
    const T* x = tab.data[t];
    double acc = inf_norm ? -static_cast<double>(INFINITY) : 0.0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const double a = fabs(static_cast<double>(x[i]));
        if (inf_norm)
            acc = MaxOp{}(acc, a);
        else
            acc += p == 2.0 ? a * a : pow(a, p);
    }
    const double r = inf_norm ? block_reduce(acc, MaxOp{}, scratch) : block_reduce(acc, SumOp{}, scratch);
    if (threadIdx.x == 0) partial[first + blockIdx.x] = r;
}

/// *result = the norm from `blocks` partials (one block; each thread combines a fixed stride of them).
__global__ void __launch_bounds__(block_size) norm_final_kernel(const double* partial, int64_t blocks, double p,
                                                                bool inf_norm, double* result) {
    __shared__ double scratch[32];
    double acc = 0.0;  // every partial is >= 0 (or NaN), so 0 is the identity of both
    for (int64_t i = threadIdx.x; i < blocks; i += blockDim.x)
        acc = inf_norm ? MaxOp{}(acc, partial[i]) : acc + partial[i];
    const double r = inf_norm ? block_reduce(acc, MaxOp{}, scratch) : block_reduce(acc, SumOp{}, scratch);
    if (threadIdx.x == 0) *result = inf_norm ? r : p == 2.0 ? sqrt(r) : pow(r, 1.0 / p);
}

/// Plans and launches a span kernel over list[0, count); returns the number of launches.
template <class T, class U, class Launch>
int64_t for_span_launches(int64_t count, const backend::TensorSpan<U>* list, SpanTable<T>& tab, Launch&& launch) {
    return backend::plan_launches(
        count, tab.map, [&](int64_t i) { return list[i].n; },
        [&](int slot, int64_t i, int64_t offset) { tab.data[slot] = list[i].data + offset; }, launch);
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

int64_t multi_tensor_launches() noexcept { return detail::multi_tensor_launch_count.load(std::memory_order_relaxed); }

template <class T, class Rule>
void step_many(int64_t count, const backend::StepParam<T>* params, const Rule& rule, cudaStream_t stream) {
    detail::StepTable<T> tab{};
    const int64_t launches = backend::plan_launches(
        count, tab.map, [&](int64_t i) { return params[i].n; },
        [&](int slot, int64_t i, int64_t offset) {
            backend::StepParam<T> q = params[i];
            q.p += offset;
            q.grad += offset;
            if (q.s0) q.s0 += offset;
            if (q.s1) q.s1 += offset;
            if (q.s2) q.s2 += offset;
            tab.param[slot] = q;
        },
        [&] { detail::step_many_kernel<<<tab.map.blocks(), detail::block_size, 0, stream>>>(tab, rule); });
    detail::multi_tensor_launch_count.fetch_add(launches, std::memory_order_relaxed);
}

template <class T>
void fill_many(int64_t count, const backend::TensorSpan<T>* list, T value, cudaStream_t stream) {
    detail::SpanTable<T> tab{};
    const int64_t launches = detail::for_span_launches(count, list, tab, [&] {
        detail::span_kernel<T, false><<<tab.map.blocks(), detail::block_size, 0, stream>>>(tab, value);
    });
    detail::multi_tensor_launch_count.fetch_add(launches, std::memory_order_relaxed);
}

template <class T>
void scale_many(int64_t count, const backend::TensorSpan<T>* list, T alpha, cudaStream_t stream) {
    detail::SpanTable<T> tab{};
    const int64_t launches = detail::for_span_launches(count, list, tab, [&] {
        detail::span_kernel<T, true><<<tab.map.blocks(), detail::block_size, 0, stream>>>(tab, alpha);
    });
    detail::multi_tensor_launch_count.fetch_add(launches, std::memory_order_relaxed);
}

template <class T>
int64_t norm_blocks(int64_t count, const backend::TensorSpan<const T>* list) noexcept {
    int64_t blocks = 0;
    for (int64_t i = 0; i < count; ++i)
        blocks += (list[i].n + backend::multi_tensor_chunk - 1) / backend::multi_tensor_chunk;
    return blocks;
}

template <class T>
void norm_many(int64_t count, const backend::TensorSpan<const T>* list, double norm_type, double* partial,
               double* result, cudaStream_t stream) {
    const bool inf_norm = std::isinf(norm_type);
    detail::SpanTable<const T> tab{};
    int64_t first = 0;
    detail::for_span_launches(count, list, tab, [&] {
        detail::norm_partial_kernel<T><<<tab.map.blocks(), detail::block_size, 0, stream>>>(tab, norm_type, inf_norm,
                                                                                           partial, first);
        first += tab.map.blocks();
    });
    detail::norm_final_kernel<<<1, detail::block_size, 0, stream>>>(partial, first, norm_type, inf_norm, result);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_STEP_T(T, Rule) \
    template void step_many<T, backend::Rule<T>>(int64_t, const backend::StepParam<T>*, const backend::Rule<T>&, cudaStream_t);
#define TAPEGRAD_CUDA_STEP(Rule) TAPEGRAD_CUDA_STEP_T(float, Rule) TAPEGRAD_CUDA_STEP_T(double, Rule)
TAPEGRAD_OPTIM_RULES(TAPEGRAD_CUDA_STEP)
#undef TAPEGRAD_CUDA_STEP
#undef TAPEGRAD_CUDA_STEP_T

#define TAPEGRAD_CUDA_SPANS(T)                                                                            \
    template void fill_many<T>(int64_t, const backend::TensorSpan<T>*, T, cudaStream_t);                  \
    template void scale_many<T>(int64_t, const backend::TensorSpan<T>*, T, cudaStream_t);                 \
    template int64_t norm_blocks<T>(int64_t, const backend::TensorSpan<const T>*) noexcept;               \
    template void norm_many<T>(int64_t, const backend::TensorSpan<const T>*, double, double*, double*,     \
                               cudaStream_t);
TAPEGRAD_CUDA_SPANS(float)
TAPEGRAD_CUDA_SPANS(double)
#undef TAPEGRAD_CUDA_SPANS

}  // namespace tapegrad::cuda
