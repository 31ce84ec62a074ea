#pragma once
/// \file
/// The CPU backend's optimizer primitives (family `OptimFamily`, backend/contract.hpp): one multi-tensor
/// step that serves every optimizer through its update rule (common/optim_math.hpp), and the list
/// operations of zero_grad and gradient clipping (fill, scale, the total norm). Twin: backend/cuda/optim.hpp
/// (kernels in optim.cu), where each list is one kernel launch.

#include <tapegrad/backend/common/multi_tensor.hpp>
#include <tapegrad/backend/common/optim_math.hpp>
#include <tapegrad/backend/cpu/memory.hpp>
#include <tapegrad/backend/cpu/threads.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/// Before a loop whose iterations touch disjoint memory: lets g++ vectorise it without proving so. Not for
/// clang, whose vectoriser checks for overlap at run time by itself, and which turns an explicit request
/// it cannot honour (as in sanitizer builds) into a -Wpass-failed warning.
#if defined(__GNUC__) && !defined(__clang__) && defined(_OPENMP)
#define TAPEGRAD_INDEPENDENT_ITERATIONS _Pragma("omp simd")
#elif defined(__GNUC__) && !defined(__clang__)
#define TAPEGRAD_INDEPENDENT_ITERATIONS _Pragma("GCC ivdep")
#else
#define TAPEGRAD_INDEPENDENT_ITERATIONS
#endif

namespace tapegrad::backend {

namespace detail {

/// p[i] = sqrt(p[i]) for n values, correctly rounded as std::sqrt, in vectors where the target has them
/// (a loop over std::sqrt stays scalar: its errno path is a branch the vectoriser cannot take).
template <class T>
void sqrt_inplace(int64_t n, T* p) {
    int64_t i = 0;
#if defined(__AVX512F__)
    // the zero-masked forms with every lane on: GCC 12's _mm512_sqrt_ps trips -Wmaybe-uninitialized
    if constexpr (std::is_same_v<T, float>)
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(p + i, _mm512_maskz_sqrt_ps(0xffff, _mm512_loadu_ps(p + i)));
    else if constexpr (std::is_same_v<T, double>)
        for (; i + 8 <= n; i += 8) _mm512_storeu_pd(p + i, _mm512_maskz_sqrt_pd(0xff, _mm512_loadu_pd(p + i)));
#elif defined(__AVX__)
    if constexpr (std::is_same_v<T, float>)
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, _mm256_sqrt_ps(_mm256_loadu_ps(p + i)));
    else if constexpr (std::is_same_v<T, double>)
        for (; i + 4 <= n; i += 4) _mm256_storeu_pd(p + i, _mm256_sqrt_pd(_mm256_loadu_pd(p + i)));
#elif defined(__SSE2__)
    if constexpr (std::is_same_v<T, float>)
        for (; i + 4 <= n; i += 4) _mm_storeu_ps(p + i, _mm_sqrt_ps(_mm_loadu_ps(p + i)));
    else if constexpr (std::is_same_v<T, double>)
        for (; i + 2 <= n; i += 2) _mm_storeu_pd(p + i, _mm_sqrt_pd(_mm_loadu_pd(p + i)));
#endif
    for (; i < n; ++i) p[i] = std::sqrt(p[i]);
}

}  // namespace detail

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
        if constexpr (requires { rule.with_fixed_flags([](const auto&, const auto&) {}); }) {
            // In vectors: a chunk's moments, their square roots, then the chunk's update. Every element's update
            // reads and writes only its own slots (the compiler cannot prove on its own that the state arrays do
            // not overlap: `omp simd` tells it). Element by element it is the scalar rule's arithmetic (where
            // the compiler contracts a * b + c into fused multiply-adds, it may do so differently in the two).
            rule.with_fixed_flags([&](const auto& moments, const auto& apply) {
                for_each_element_range(count, params, [&](const StepParam<T>& q, int64_t b, int64_t e) {
                    constexpr int64_t chunk = 256;
                    alignas(64) T root[chunk];
                    for (int64_t i0 = b; i0 < e; i0 += chunk) {
                        const int64_t m = std::min(chunk, e - i0);
                        TAPEGRAD_INDEPENDENT_ITERATIONS
                        for (int64_t i = 0; i < m; ++i) root[i] = moments(q, i0 + i);
                        detail::sqrt_inplace(m, root);
                        TAPEGRAD_INDEPENDENT_ITERATIONS
                        for (int64_t i = 0; i < m; ++i) apply(q, i0 + i, root[i]);
                    }
                });
            });
        } else {
            for_each_element_range(count, params, [&](const StepParam<T>& q, int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) rule(q, i);
            });
        }
    }
private:
    /// f(params[t], b, e) for ranges [b, e) of the elements of every tensor, all of them once: the elements of
    /// the whole list split into contiguous parts, one per thread when there are enough of them
    /// (cpu::batch_parts, at about 16 flops an element). Every element's update is its own, so the split
    /// changes no result.
    template <class T, class F>
    static void for_each_element_range(int64_t count, const StepParam<T>* params, const F& f) {
        int64_t total = 0;
        for (int64_t t = 0; t < count; ++t) total += params[t].n;
        cpu::for_each_part(total, cpu::batch_parts(total, 16.0), [&](int64_t, int64_t e0, int64_t e1) {
            int64_t start = 0;  // the list-wide index of tensor t's first element
            for (int64_t t = 0; t < count && start < e1; start += params[t].n, ++t) {
                const int64_t b = std::max<int64_t>(e0 - start, 0), e = std::min<int64_t>(e1 - start, params[t].n);
                if (b < e) f(params[t], b, e);
            }
        });
    }

public:
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
            if (two) {  // the common case, in vectors with g++ (lanes of partial sums in double)
                double sum = 0;
#if defined(_OPENMP) && !defined(__clang__)
#pragma omp simd reduction(+ : sum)
#endif
                for (int64_t k = 0; k < list[t].n; ++k) {
                    const double a = static_cast<double>(g[k]);
                    sum += a * a;
                }
                acc += sum;
                continue;
            }
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
