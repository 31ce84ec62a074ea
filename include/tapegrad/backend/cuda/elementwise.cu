/// \file
/// The CUDA backend's contiguous elementwise primitives: axpy, scale, and map / map_backward through
/// the unary functors (instantiated for every one of backend/common/functor_list.hpp). Kernels, then launchers, then the
/// explicit instantiations for float and double. Semantics are those of backend::Ops<Cpu> (backend/cpu/elementwise.hpp).

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/common/functor_list.hpp>
#include <tapegrad/backend/cuda/elementwise.cuh>

namespace tapegrad::cuda {
namespace detail {

/// y[i] += alpha * x[i]
template <class T>
__global__ void axpy_kernel(int64_t n, T alpha, const T* x, T* y) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] += alpha * x[i];
}

/// y[i] *= alpha
template <class T>
__global__ void scale_kernel(int64_t n, T alpha, T* y) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] *= alpha;
}

/// y[i] = f(x[i])
template <class T, class F>
__global__ void map_kernel(int64_t n, const T* x, T* y, F f) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] = f(x[i]);
}

/// dx[i] = f.backward(x[i], y[i], dy[i]) with `assign` (dx may be dy: each thread reads dy[i] before writing
/// dx[i]), else dx[i] += it
template <class T, class F>
__global__ void map_backward_kernel(int64_t n, const T* x, const T* y, const T* dy, T* dx, F f, bool assign) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const T v = f.backward(x[i], y[i], dy[i]);
        dx[i] = assign ? v : dx[i] + v;
    }
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y, cudaStream_t stream) {
    if (n <= 0) return;
    detail::axpy_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, alpha, x, y);
}

template <class T>
void scale(int64_t n, T alpha, T* y, cudaStream_t stream) {
    if (n <= 0) return;
    detail::scale_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, alpha, y);
}

template <class T, class F>
void map(int64_t n, const T* x, T* y, F f, cudaStream_t stream) {
    if (n <= 0) return;
    detail::map_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, x, y, f);
}

template <class T, class F>
void map_backward(int64_t n, const T* x, const T* y, const T* dy, T* dx, F f, bool assign, cudaStream_t stream) {
    if (n <= 0) return;
    detail::map_backward_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, x, y, dy, dx, f, assign);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_ELEMENTWISE(T)                                  \
    template void axpy<T>(int64_t, T, const T*, T*, cudaStream_t);    \
    template void scale<T>(int64_t, T, T*, cudaStream_t);
TAPEGRAD_CUDA_ELEMENTWISE(float)
TAPEGRAD_CUDA_ELEMENTWISE(double)
#undef TAPEGRAD_CUDA_ELEMENTWISE

// map and map_backward for every unary functor of the one list, backend/common/functor_list.hpp (a new functor is added in its own header, not here).
#define TAPEGRAD_CUDA_MAP(F)                                                                                    \
    template void map<float, fn::F>(int64_t, const float*, float*, fn::F, cudaStream_t);                       \
    template void map<double, fn::F>(int64_t, const double*, double*, fn::F, cudaStream_t);                    \
    template void map_backward<float, fn::F>(int64_t, const float*, const float*, const float*, float*, fn::F,  \
                                             bool, cudaStream_t);                                              \
    template void map_backward<double, fn::F>(int64_t, const double*, const double*, const double*, double*,    \
                                              fn::F, bool, cudaStream_t);
TAPEGRAD_UNARY_FUNCTORS(TAPEGRAD_CUDA_MAP)
#undef TAPEGRAD_CUDA_MAP

}  // namespace tapegrad::cuda
