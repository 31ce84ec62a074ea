#pragma once
/// \file
/// Data-parallel training over MPI: link `tapegrad::mpi` (CMake option TAPEGRAD_MPI) and include this
/// header. Not part of the umbrella header, so programs that do not use MPI never need mpi.h.
///
///   int main(int argc, char** argv) {
///       tapegrad::dist::MpiEnvironment env(argc, argv);      // MPI_Init ... MPI_Finalize
///       tapegrad::dist::MpiCommunicator comm;                // MPI_COMM_WORLD (a private duplicate)
///       auto net = build_net();                              // the same seed or not: rank 0's weights win
///       tapegrad::dist::DataParallel<float> model(net, comm);
///       tapegrad::optim::SGD<float> opt(model.parameters(), {.lr = 0.1});
///       auto sampler = std::make_shared<tapegrad::data::DistributedSampler>(train.size(),
///           tapegrad::data::DistributedSamplerOptions{.num_replicas = comm.size(), .rank = comm.rank()});
///       tapegrad::data::DataLoader<float> loader(train, sampler, {.batch_size = 32});
///       for (const auto& b : loader) {                      // the lecture's loop, unchanged:
///           opt.zero_grad();
///           auto loss = tapegrad::nn::cross_entropy(model(b.x), b.y);
///           loss.backward();                                 // gradients averaged over the ranks
///           opt.step();
///       }
///   }
///
/// Run with `mpirun -np 2 ./program`. Works with any MPI-3 library (Open MPI and MPICH are tested).

#include <tapegrad/data/distributed_sampler.hpp>
#include <tapegrad/distributed/communicator.hpp>
#include <tapegrad/distributed/data_parallel.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <thread>

namespace tapegrad::dist {

namespace detail {

[[nodiscard]] inline MPI_Datatype mpi_type(DType t) {
    switch (t) {
        case DType::f32: return MPI_FLOAT;
        case DType::f64: return MPI_DOUBLE;
        case DType::i64: return MPI_INT64_T;
        case DType::u8: return MPI_UINT8_T;
    }
    return MPI_BYTE;
}

/// MPI_ERR_... code -> MPI's own sentence.
[[nodiscard]] inline std::string mpi_error_string(int code) {
    char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
    return std::string(buf, static_cast<size_t>(len));
}

inline void check_mpi(int rc, const char* call) {
    TAPEGRAD_CHECK(rc == MPI_SUCCESS, DistributedError, call, " failed: ", mpi_error_string(rc));
}

/// MPI counts are int: a larger buffer goes in pieces.
inline constexpr int64_t max_mpi_count = int64_t{1} << 30;

[[nodiscard]] inline size_t dtype_size(DType t) {
    switch (t) {
        case DType::f32: return 4;
        case DType::f64: return 8;
        case DType::i64: return 8;
        case DType::u8: return 1;
    }
    return 1;
}

class MpiWork final : public Work {
public:
    MpiWork() = default;
    ~MpiWork() override {
        // A request still in flight when its owner goes away (an exception unwound the step): wait for it,
        // since the buffer is about to be freed. Errors cannot be reported from here.
        if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
    }
    /// Polls for ~100 us, then sleeps 20 us between polls instead of spinning in MPI_Wait: with more
    /// processes than cores (ranks sharing a machine with other work), a rank spinning for a partner
    /// that is not running takes the core the partner needs, and steps slowed by 10x in a test.
    void wait() override {
        using clock = std::chrono::steady_clock;
        const auto t0 = clock::now();
        while (!test())
            if (clock::now() - t0 > std::chrono::microseconds(100))
                std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    bool test() override {
        if (request_ == MPI_REQUEST_NULL) return true;
        int done = 0;
        check_mpi(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test (allreduce)");
        return done != 0;
    }
    MPI_Request* request() noexcept { return &request_; }

private:
    MPI_Request request_ = MPI_REQUEST_NULL;
};

}  // namespace detail

/// Whether this process was started by an MPI launcher (mpirun/mpiexec of Open MPI or MPICH's Hydra),
/// judged from the environment the launcher sets, without initialising MPI.
[[nodiscard]] inline bool launched_by_mpi() noexcept {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (std::getenv(var) != nullptr) return true;
    return false;
}

/// Initialises MPI for its lifetime (MPI_Init_thread, MPI_THREAD_FUNNELED: only the thread that made it
/// calls MPI; OpenMP threads inside the math are fine) and finalises it at the end, unless MPI was
/// already initialised by someone else. Destroyed while an exception propagates, it does not finalise
/// (that would wait for ranks that may be stuck in a collective): the process then exits without
/// finalising, which the launchers treat as a failed job and end the other ranks.
class MpiEnvironment {
public:
    MpiEnvironment() : MpiEnvironment(nullptr, nullptr) {}
    MpiEnvironment(int& argc, char**& argv) : MpiEnvironment(&argc, &argv) {}
    MpiEnvironment(const MpiEnvironment&) = delete;
    MpiEnvironment& operator=(const MpiEnvironment&) = delete;
    ~MpiEnvironment() {
        if (!owner_ || std::uncaught_exceptions() > uncaught_) return;
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }

private:
    MpiEnvironment(int* argc, char*** argv) : uncaught_(std::uncaught_exceptions()) {
        int initialized = 0;
        detail::check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
        if (initialized) return;
        int provided = 0;
        detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        owner_ = true;
    }
    bool owner_ = false;
    int uncaught_ = 0;
};

/// A Communicator over an MPI communicator (MPI_COMM_WORLD by default). It works on a duplicate of it, so
/// its collectives never match the program's own MPI calls, and errors come back as DistributedError
/// instead of MPI's default of ending the job. MPI must be initialised (MpiEnvironment) before and
/// finalised after its lifetime.
class MpiCommunicator final : public Communicator {
public:
    explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD) {
        int initialized = 0;
        MPI_Initialized(&initialized);
        TAPEGRAD_CHECK(initialized, DistributedError,
                       "MpiCommunicator: MPI is not initialised (create a dist::MpiEnvironment first)");
        detail::check_mpi(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        detail::check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        detail::check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }
    ~MpiCommunicator() override {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    }

    [[nodiscard]] int rank() const override { return rank_; }
    [[nodiscard]] int size() const override { return size_; }
    [[nodiscard]] const char* backend() const override { return "mpi"; }
    /// The MPI communicator the collectives run on.
    [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }

    using Communicator::allreduce_sum;
    using Communicator::broadcast;

    void broadcast(void* data, int64_t count, DType type, int root) override {
        TAPEGRAD_CHECK(root >= 0 && root < size_, ValueError, "broadcast: root ", root, " out of range [0, ", size_,
                       ")");
        chunked(data, count, type, [&](void* p, int n) {
            detail::check_mpi(MPI_Bcast(p, n, detail::mpi_type(type), root, comm_), "MPI_Bcast");
        });
    }
    void allreduce_sum(void* data, int64_t count, DType type) override {
        chunked(data, count, type, [&](void* p, int n) {
            detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, p, n, detail::mpi_type(type), MPI_SUM, comm_),
                              "MPI_Allreduce");
        });
    }
    [[nodiscard]] std::unique_ptr<Work> iallreduce_sum(void* data, int64_t count, DType type) override {
        TAPEGRAD_CHECK(count >= 0 && count <= detail::max_mpi_count, ValueError, "iallreduce_sum: ", count,
                       " elements; at most ", detail::max_mpi_count, " in one call");
        auto work = std::make_unique<detail::MpiWork>();
        detail::check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), detail::mpi_type(type), MPI_SUM,
                                         comm_, work->request()),
                          "MPI_Iallreduce");
        return work;
    }
    void allgather(const void* send, void* recv, int64_t bytes) override {
        TAPEGRAD_CHECK(bytes >= 0 && bytes <= detail::max_mpi_count, ValueError, "allgather: ", bytes,
                       " bytes per rank; at most ", detail::max_mpi_count);
        detail::check_mpi(MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes),
                                        MPI_BYTE, comm_),
                          "MPI_Allgather");
    }
    void barrier() override { detail::check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }
    [[noreturn]] void abort(int code) noexcept override {
        MPI_Abort(MPI_COMM_WORLD, code);
        std::abort();  // MPI_Abort does not return; should an implementation do so, end this process anyway
    }

private:
    template <class F>
    static void chunked(void* data, int64_t count, DType type, F&& f) {
        TAPEGRAD_CHECK(count >= 0, ValueError, "collective: negative element count ", count);
        auto* p = static_cast<unsigned char*>(data);
        const size_t es = detail::dtype_size(type);
        for (int64_t done = 0; done < count;) {
            const int64_t n = std::min(count - done, detail::max_mpi_count);
            f(p + static_cast<size_t>(done) * es, static_cast<int>(n));
            done += n;
        }
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0;
    int size_ = 1;
};

}  // namespace tapegrad::dist
