/// \file
/// The CUDA backend's fused optimizer updates, one kernel per parameter tensor: sgd_step and adam_step (Adam
/// and AdamW), as backend::Ops<Cpu>::sgd_step / adam_step. The arithmetic is that of the CPU loops,
/// operation for operation, with every product rounded on its own (__fmul_rn / __dmul_rn) so that nvcc
/// does not fuse it into a multiply-add the CPU build does not do: with IEEE division and square root
/// (nvcc's defaults, lost under --use_fast_math) a step then matches the CPU's bit for bit, in float and
/// double, as long as the CPU build does not contract either (-march=native lets GCC use FMA).
/// Kernels, then launchers, then the explicit instantiations for float and double.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/kernels.cuh>

#include <cmath>

namespace tapegrad::cuda {
namespace detail {

/// a * b, rounded, never contracted with a neighbouring add into a fused multiply-add
__device__ inline float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul(double a, double b) { return __dmul_rn(a, b); }

/// start + weight (end - start), in the two forms torch.lerp (and optim::detail::lerp) picks between
template <class T>
__device__ T lerp(T start, T end, T weight) {
    return std::abs(weight) < T(0.5) ? start + mul(weight, end - start) : end - mul(end - start, T(1) - weight);
}

/// g = grad + wd p (with decay); with momentum buf = g (first step) or mu buf + keep g, and
/// p -= lr (nesterov ? g + mu buf : buf); without, p -= lr g
template <class T>
__global__ void sgd_step_kernel(int64_t n, T* p, const T* grad, T* buf, T lr, T mu, T keep, T wd, bool decay,
                                bool momentum, bool nesterov, bool first_step) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const T g = decay ? grad[i] + mul(wd, p[i]) : grad[i];
        if (!momentum) {
            p[i] -= mul(lr, g);
            continue;
        }
        const T b = first_step ? g : mul(mu, buf[i]) + mul(keep, g);
        buf[i] = b;
        p[i] -= mul(lr, nesterov ? g + mul(mu, b) : b);
    }
}

/// p *= shrink (decoupled); g = grad + wd p (l2); m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
/// vmax = max(vmax, v), NaN winning (amsgrad, then used for v); p -= step_size (m / (sqrt(v) / bc2_sqrt + eps))
template <class T>
__global__ void adam_step_kernel(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, T beta2, T w1, T w2, T eps,
                                 T wd, T shrink, T step_size, T bc2_sqrt, bool l2, bool decoupled, bool amsgrad) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        T pi = p[i];
        if (decoupled) pi = mul(pi, shrink);
        const T g = l2 ? grad[i] + mul(wd, pi) : grad[i];
        const T mi = lerp(m[i], g, w1);
        const T vi = mul(beta2, v[i]) + mul(mul(w2, g), g);
        m[i] = mi;
        v[i] = vi;
        T vk = vi;
        if (amsgrad) {
            const T prev = vmax[i];
            vk = (vi > prev || vi != vi) ? vi : prev;  // NaN propagates, as torch.maximum
            vmax[i] = vk;
        }
        const T denom = std::sqrt(vk) / bc2_sqrt + eps;
        p[i] = pi - mul(step_size, mi / denom);
    }
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

/// 1 - dampening is computed once, in T, as backend::Ops<Cpu>::sgd_step does.
template <class T>
void sgd_step(int64_t n, T* p, const T* grad, T* momentum_buf, T lr, T momentum, T dampening, T weight_decay,
              bool nesterov, bool first_step, cudaStream_t stream) {
    if (n <= 0) return;
    const T keep = T(1) - dampening;
    detail::sgd_step_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(
        n, p, grad, momentum_buf, lr, momentum, keep, weight_decay, weight_decay != T(0), momentum != T(0), nesterov,
        first_step);
}

/// Computes once, in T, as backend::Ops<Cpu>::adam_step does: step_size = lr / bc1, sqrt(bc2), 1 - beta1,
/// 1 - beta2 and the AdamW shrink 1 - lr wd; then runs the CPU loop's arrangement
/// p -= step_size * (m / (sqrt(v) / sqrt(bc2) + eps)) (kernels.cuh's formula, rearranged as PyTorch does).
template <class T>
void adam_step(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, T lr, T beta1, T beta2, T eps, T weight_decay,
               bool decoupled, bool amsgrad, T bc1, T bc2, cudaStream_t stream) {
    if (n <= 0) return;
    const T w1 = T(1) - beta1, w2 = T(1) - beta2, shrink = T(1) - lr * weight_decay;
    const bool l2 = !decoupled && weight_decay != T(0);
    const T step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
    detail::adam_step_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(
        n, p, grad, m, v, vmax, beta2, w1, w2, eps, weight_decay, shrink, step_size, bc2_sqrt, l2, decoupled, amsgrad);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_OPTIM(T)                                                                               \
    template void sgd_step<T>(int64_t, T*, const T*, T*, T, T, T, T, bool, bool, cudaStream_t);              \
    template void adam_step<T>(int64_t, T*, const T*, T*, T*, T*, T, T, T, T, T, bool, bool, T, T, cudaStream_t);
TAPEGRAD_CUDA_OPTIM(float)
TAPEGRAD_CUDA_OPTIM(double)
#undef TAPEGRAD_CUDA_OPTIM

}  // namespace tapegrad::cuda
