#pragma once
/// \file
/// The CPU backend's optimizer primitives (family `OptimFamily`, backend/contract.hpp): one multi-tensor
/// step that serves every optimizer through its update rule (common/optim_math.hpp), and the list
/// operations of zero_grad and gradient clipping (fill, scale, the total norm). Twin: backend/cuda/optim.hpp
/// (kernels in optim.cu), where each list is one kernel launch.

#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/backend/common/optim_math.hpp>
#include <tapegrad/backend/cpu/memory.hpp>

#include <cmath>
#include <cstdint>

namespace tapegrad::backend {

/// Optimizer updates and tensor-list operations on the host.
struct CpuOptim {
    /// rule(params[t], i) for every element i of every tensor t of params[0, count): one optimizer step over
    /// all its parameters (the rule holds the hyper-parameters; each StepParam its tensor, state and
    /// per-tensor scalars). Rule: one of TAPEGRAD_OPTIM_RULES.
    template <class T, class Rule>
    static void step_many(int64_t count, const StepParam<T>* params, const Rule& rule) {
        static_assert(listed_rule<Rule, T>,
                      "step_many: this update rule is not in TAPEGRAD_OPTIM_RULES (backend/common/optim_math.hpp); "
                      "add it there so that the CUDA backend instantiates it too.");
        for (int64_t t = 0; t < count; ++t) {
            const StepParam<T>& q = params[t];
            for (int64_t i = 0; i < q.n; ++i) rule(q, i);
        }
    }
    /// list[t].data[0, n) = value for every t < count.
    template <class T>
    static void fill_many(int64_t count, const TensorSpan<T>* list, T value) {
        for (int64_t t = 0; t < count; ++t) CpuMemory::fill(list[t].n, value, list[t].data);
    }
    /// list[t].data[0, n) *= alpha for every t < count.
    template <class T>
    static void scale_many(int64_t count, const TensorSpan<T>* list, T alpha) {
        for (int64_t t = 0; t < count; ++t) {
            T* g = list[t].data;
            for (int64_t k = 0; k < list[t].n; ++k) g[k] *= alpha;
        }
    }
    /// The norm_type-norm of all elements of list[0, count) taken as one vector, in double: (sum |x|^p)^(1/p),
    /// the largest |x| for an infinite norm_type (a NaN anywhere wins). norm_type > 0.
    template <class T>
    static double norm_many(int64_t count, const TensorSpan<const T>* list, double norm_type) {
        const bool inf_norm = std::isinf(norm_type), two = norm_type == 2.0;
        double acc = 0;  // sum of |g|^p, or max |g| for the infinity norm
        for (int64_t t = 0; t < count; ++t) {
            const T* g = list[t].data;
            for (int64_t k = 0; k < list[t].n; ++k) {
                const double a = std::abs(static_cast<double>(g[k]));
                if (inf_norm)
                    acc = (a > acc || std::isnan(a)) ? a : acc;
                else
                    acc += two ? a * a : std::pow(a, norm_type);
            }
        }
        return inf_norm ? acc : two ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type);
    }
};

}  // namespace tapegrad::backend
