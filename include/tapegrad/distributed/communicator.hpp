#pragma once
/// \file
/// The collectives data-parallel training needs, as an interface: MpiCommunicator (distributed/mpi.hpp)
/// implements it over MPI; a GPU backend (NCCL) would be a second implementation beside it, and
/// dist::DataParallel works with either. Buffers are host memory given as pointer, element count and
/// element type; every rank of the group must make the same calls in the same order (that is what a
/// collective is), or the ones that did wait for the others.

#include <tapegrad/core/error.hpp>

#include <cstdint>
#include <memory>
#include <type_traits>

namespace tapegrad {

/// A collective that failed, or ranks that disagree (on the model, on the number of steps...).
class DistributedError : public Error {
public:
    using Error::Error;
};

}  // namespace tapegrad

namespace tapegrad::dist {

/// Element types a communicator moves.
enum class DType { f32, f64, i64, u8 };

template <class T>
[[nodiscard]] constexpr DType dtype_of() {
    if constexpr (std::is_same_v<T, float>)
        return DType::f32;
    else if constexpr (std::is_same_v<T, double>)
        return DType::f64;
    else if constexpr (std::is_same_v<T, int64_t>)
        return DType::i64;
    else {
        static_assert(std::is_same_v<T, uint8_t>, "dist: a communicator moves float, double, int64_t or uint8_t.");
        return DType::u8;
    }
}

/// A collective started by a non-blocking call. wait() returns once its result is in the buffer; test()
/// lets the library make progress on it without waiting (MPI libraries without a progress thread only
/// advance a non-blocking collective inside MPI calls).
class Work {
public:
    Work() = default;
    Work(const Work&) = delete;
    Work& operator=(const Work&) = delete;
    virtual ~Work() = default;
    virtual void wait() = 0;
    /// True once complete (then wait() returns at once).
    virtual bool test() = 0;
};

/// A group of processes ("ranks") that reduce and broadcast together.
class Communicator {
public:
    Communicator() = default;
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;
    virtual ~Communicator() = default;

    /// This process's rank in [0, size()).
    [[nodiscard]] virtual int rank() const = 0;
    /// Number of ranks.
    [[nodiscard]] virtual int size() const = 0;
    /// "mpi", ...
    [[nodiscard]] virtual const char* backend() const = 0;

    /// Copies `count` elements at `data` from rank `root` to every other rank.
    virtual void broadcast(void* data, int64_t count, DType type, int root) = 0;
    /// Replaces `count` elements at `data` by their sum over the ranks, on every rank.
    virtual void allreduce_sum(void* data, int64_t count, DType type) = 0;
    /// Starts allreduce_sum and returns at once; the buffer must stay untouched until the Work completes.
    [[nodiscard]] virtual std::unique_ptr<Work> iallreduce_sum(void* data, int64_t count, DType type) = 0;
    /// Each rank contributes `bytes` bytes at `send`; `recv` (size() * bytes) receives them in rank order.
    virtual void allgather(const void* send, void* recv, int64_t bytes) = 0;
    virtual void barrier() = 0;
    /// Ends every process of the job with `code`. For a rank that failed: returning instead would leave the
    /// others waiting in their next collective forever. The library never calls it itself.
    [[noreturn]] virtual void abort(int code) noexcept = 0;

    // ---- typed conveniences -------------------------------------------------------------------------------

    template <class T>
    void broadcast(T* data, int64_t count, int root) {
        broadcast(static_cast<void*>(data), count, dtype_of<T>(), root);
    }
    template <class T>
    void allreduce_sum(T* data, int64_t count) {
        allreduce_sum(static_cast<void*>(data), count, dtype_of<T>());
    }
    /// The sum of `value` over the ranks (metrics: losses, correct counts, sample counts).
    template <class T>
    [[nodiscard]] T sum(T value) {
        allreduce_sum(&value, 1);
        return value;
    }
};

}  // namespace tapegrad::dist
