#pragma once
/// \file
/// How the CPU primitives split work across threads: the thread count, the split of a batch into parts
/// (one per thread when the work pays for it) and the loop that runs the parts, plus the per-thread
/// scratch buffers that let steady-state steps reuse their memory. CPU-only: the generic layers never see
/// a thread count (a GPU runs a batch as one); the CPU primitives (cpu/conv_pool.hpp) decide it themselves.
///
/// The convolution and the pooling split the batch into contiguous parts, one per thread, when OpenMP is on
/// (-fopenmp) and the work is large enough to pay for it. The thread count is Eigen's (Eigen::setNbThreads,
/// which the programs' --threads sets), capped by OpenMP's (omp_get_max_threads): lowering either lowers
/// it. Without OpenMP everything runs on the calling thread. Sums across images (the weight and bias
/// gradients) are formed per part and added in part order, so a result depends on the number of parts but
/// never on the timing of the threads.

#include <tapegrad/backend/cpu/memory.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tapegrad::backend {


/// The threads that the CPU primitives may use: min(Eigen::nbThreads(), omp_get_max_threads()),
/// or 1 without OpenMP.
[[nodiscard]] inline int cpu_threads() noexcept {
#ifdef _OPENMP
    return std::max(1, std::min(Eigen::nbThreads(), omp_get_max_threads()));
#else
    return 1;
#endif
}

namespace cpu {


/// A per-thread scratch buffer that only grows, so that steady-state training steps do not allocate the
/// convolution's column matrices again; Slot tells independent buffers of one thread apart. Counted in
/// cpu_live_bytes like any CPU buffer.
template <class T, int Slot>
class Scratch {
public:
    Scratch() = default;
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() { release(); }
    /// At least n elements; the contents are unspecified.
    [[nodiscard]] T* get(int64_t n) {
        if (n > size_) {
            release();
            data_ = CpuMemory::allocate<T>(n);
            size_ = n;
        }
        return data_;
    }
    void release() noexcept {
        if (data_) CpuMemory::deallocate(data_, size_);
        data_ = nullptr;
        size_ = 0;
    }

private:
    T* data_ = nullptr;
    int64_t size_ = 0;
};
/// This thread's scratch buffer number Slot.
template <class T, int Slot>
[[nodiscard]] Scratch<T, Slot>& scratch() {
    thread_local Scratch<T, Slot> s;
    return s;
}


/// Into how many parts to split `items` independent items of about `work_per_item` flops each: one per
/// thread (cpu_threads), but no more than one per 256k flops, so small inputs stay on the calling
/// thread, where starting a thread would cost more than it saves.
[[nodiscard]] inline int64_t batch_parts(int64_t items, double work_per_item) noexcept {
    constexpr double min_work = 256.0 * 1024.0;
    const double by_work = static_cast<double>(items) * work_per_item / min_work;
    const int64_t cap = by_work < 1.0 ? 1 : by_work > 1e9 ? int64_t{1000000000} : static_cast<int64_t>(by_work);
    return std::clamp<int64_t>(std::min<int64_t>(cpu_threads(), cap), 1, std::max<int64_t>(items, 1));
}

/// Calls f(part, begin, end) for the `parts` contiguous ranges that split [0, items) as evenly as possible
/// (part p takes [items p / parts, items (p + 1) / parts)), on `parts` OpenMP threads where OpenMP is on,
/// else one after another. An exception thrown by f is rethrown here (the first one, if several parts throw).
template <class F>
void for_each_part(int64_t items, int64_t parts, F&& f) {
    if (parts <= 1) {
        f(int64_t{0}, int64_t{0}, items);
        return;
    }
    std::exception_ptr error;
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(parts))
#endif
    for (int64_t p = 0; p < parts; ++p) {
        try {
            f(p, items * p / parts, items * (p + 1) / parts);
        } catch (...) {
#ifdef _OPENMP
#pragma omp critical(tapegrad_for_each_part)
#endif
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace cpu

}  // namespace tapegrad::backend
