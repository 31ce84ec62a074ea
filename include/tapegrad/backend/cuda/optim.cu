/// \file
/// The CUDA backend's fused optimizer updates, one kernel per parameter tensor: sgd_step and adam_step (Adam
/// and AdamW), as backend::Ops<Cpu>::sgd_step / adam_step. The per-element arithmetic (optim_update.cuh,
/// shared with the multi-tensor kernels of optim_many.cu) is that of the CPU loops, operation for
/// operation, with no contracted multiply-adds, so a step matches the CPU's bit for bit.
/// Kernels, then launchers, then the explicit instantiations for float and double.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/kernels.cuh>
#include <tapegrad/backend/cuda/optim_update.cuh>

#include <cmath>

namespace tapegrad::cuda {
namespace detail {

/// One SGD step over n elements (the arithmetic: sgd_element, optim_update.cuh).
template <class T>
__global__ void sgd_step_kernel(int64_t n, T* p, const T* grad, T* buf, SgdCoeffs<T> c, bool first_step) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) sgd_element(i, p, grad, buf, c, first_step);
}

/// One Adam step over n elements (the arithmetic: adam_element, optim_update.cuh).
template <class T>
__global__ void adam_step_kernel(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, AdamCoeffs<T> c, T step_size,
                                 T bc2_sqrt) {
    for (int64_t i = global_thread(); i < n; i += grid_threads())
        adam_element(i, p, grad, m, v, vmax, c, step_size, bc2_sqrt);
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

template <class T>
void sgd_step(int64_t n, T* p, const T* grad, T* momentum_buf, T lr, T momentum, T dampening, T weight_decay,
              bool nesterov, bool first_step, cudaStream_t stream) {
    if (n <= 0) return;
    const detail::SgdCoeffs<T> c = detail::sgd_coeffs(lr, momentum, dampening, weight_decay, nesterov);
    detail::sgd_step_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, p, grad, momentum_buf, c,
                                                                                     first_step);
}

/// step_size = lr / bc1 and sqrt(bc2) are computed once, in T, as backend::Ops<Cpu>::adam_step does.
template <class T>
void adam_step(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, T lr, T beta1, T beta2, T eps, T weight_decay,
               bool decoupled, bool amsgrad, T bc1, T bc2, cudaStream_t stream) {
    if (n <= 0) return;
    const detail::AdamCoeffs<T> c = detail::adam_coeffs(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad);
    const T step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
    detail::adam_step_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, p, grad, m, v, vmax, c,
                                                                                      step_size, bc2_sqrt);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_OPTIM(T)                                                                               \
    template void sgd_step<T>(int64_t, T*, const T*, T*, T, T, T, T, bool, bool, cudaStream_t);              \
    template void adam_step<T>(int64_t, T*, const T*, T*, T*, T*, T, T, T, T, T, bool, bool, T, T, cudaStream_t);
TAPEGRAD_CUDA_OPTIM(float)
TAPEGRAD_CUDA_OPTIM(double)
#undef TAPEGRAD_CUDA_OPTIM

}  // namespace tapegrad::cuda
