#pragma once
// Data-parallel training for the MNIST programs (not part of the library). Started by an MPI launcher
// (`mpirun -np 2 build/examples/mnist_cnn`; detected from the environment the launcher sets, so no flag
// is needed), each process becomes one rank: it trains the same network on its shard of every epoch
// (data::DistributedSampler), gradients are averaged during backward (dist::DataParallel), metrics are
// summed over the ranks, and only rank 0 prints and saves. Started normally -- or built without MPI
// (TAPEGRAD_MPI off or no MPI library) -- everything here is a no-op and the programs behave as before.
//
// --batch stays the global batch: with N ranks each takes batch / N samples per step, so the same command
// line trains the same model (same learning rate, same number of steps) on any number of ranks.

#include <tapegrad/core/error.hpp>
#include <tapegrad/data/dataset.hpp>
#include <tapegrad/data/distributed_sampler.hpp>
#include <tapegrad/nn/module.hpp>

#if defined(TAPEGRAD_WITH_MPI)
#include <tapegrad/distributed/mpi.hpp>
#endif

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>

namespace examples {

namespace tg = tapegrad;

class Distributed {
public:
    /// The process's place in the job; the first call initialises MPI when an MPI launcher started us.
    static Distributed& get() {
        static Distributed d;
        return d;
    }

    [[nodiscard]] int rank() const noexcept { return rank_; }
    [[nodiscard]] int size() const noexcept { return size_; }
    [[nodiscard]] bool active() const noexcept { return size_ > 1; }
    [[nodiscard]] bool is_main() const noexcept { return rank_ == 0; }

    /// Whether to draw the live progress bar: on rank 0 only, when its stderr is a terminal. Under mpirun
    /// the ranks' stderr is a pipe to the launcher, so there it is the launcher's (our parent's) stderr
    /// that decides, looked up in /proc on Linux.
    [[nodiscard]] bool show_progress() const {
        if (!is_main()) return false;
        if (isatty(2) != 0) return true;
        if (!active()) return false;
        const std::string parent = "/proc/" + std::to_string(getppid()) + "/fd/2";
        const int fd = open(parent.c_str(), O_WRONLY | O_NOCTTY);
        if (fd < 0) return false;
        const bool tty = isatty(fd) != 0;
        close(fd);
        return tty;
    }

    /// The sum of `v` over the ranks.
    [[nodiscard]] double sum(double v) {
#if defined(TAPEGRAD_WITH_MPI)
        if (active()) return comm_->sum(v);
#endif
        return v;
    }

    /// What the training loop calls: `net` wrapped in dist::DataParallel (rank 0's initial weights on every
    /// rank, gradients averaged in backward) when running on several ranks, `net` itself otherwise.
    template <class D>
    std::shared_ptr<tg::nn::Module<float, D>> wrap(std::shared_ptr<tg::nn::Module<float, D>> net) {
        if (!active()) return net;
        if constexpr (std::is_same_v<D, tg::Cpu>) {
#if defined(TAPEGRAD_WITH_MPI)
            return std::make_shared<tg::dist::DataParallel<float>>(std::move(net), *comm_);
#endif
        }
        throw tg::ValueError("data-parallel training runs on the CPU (--device cpu)");
    }

    /// The training batches of this rank: its shard of each epoch's common shuffle, global_batch / size()
    /// per step. On one process: the usual shuffling loader.
    [[nodiscard]] tg::data::DataLoader<float> train_loader(const tg::data::Dataset<float>& ds, int64_t global_batch,
                                                          uint64_t seed) const {
        if (!active()) return tg::data::DataLoader<float>(ds, {.batch_size = global_batch, .shuffle = true, .seed = seed});
        if (global_batch % size_ != 0)
            throw tg::ValueError("--batch " + std::to_string(global_batch) + " does not divide evenly among " +
                                 std::to_string(size_) + " ranks");
        auto sampler = std::make_shared<tg::data::DistributedSampler>(
            ds.size(), tg::data::DistributedSamplerOptions{.num_replicas = size_, .rank = rank_, .seed = seed});
        return tg::data::DataLoader<float>(ds, sampler, {.batch_size = global_batch / size_});
    }

    /// Evaluation batches: each rank takes a disjoint part of `ds` (no padding); add the counts with sum().
    [[nodiscard]] tg::data::DataLoader<float> eval_loader(const tg::data::Dataset<float>& ds, int64_t batch) const {
        if (!active()) return tg::data::DataLoader<float>(ds, {.batch_size = batch, .shuffle = false});
        auto sampler = std::make_shared<tg::data::DistributedSampler>(
            ds.size(),
            tg::data::DistributedSamplerOptions{.num_replicas = size_, .rank = rank_, .shuffle = false, .even = false});
        return tg::data::DataLoader<float>(ds, sampler, {.batch_size = batch});
    }

    /// For main's error path, after printing the error: on several ranks, shows what this rank wrote on
    /// stderr and ends the whole job (returning would leave the other ranks waiting forever in their next
    /// collective); otherwise returns `code`.
    int fail(int code) {
#if defined(TAPEGRAD_WITH_MPI)
        if (active()) {
            flush_captured_stderr();
            comm_->abort(code);
        }
#endif
        return code;
    }

    Distributed(const Distributed&) = delete;
    Distributed& operator=(const Distributed&) = delete;
    ~Distributed() {
#if defined(TAPEGRAD_WITH_MPI)
        comm_.reset();  // before MPI_Finalize (env_'s destructor)
#endif
    }

private:
    Distributed() {
#if defined(TAPEGRAD_WITH_MPI)
        if (!tg::dist::launched_by_mpi()) return;
        env_ = std::make_unique<tg::dist::MpiEnvironment>();
        comm_ = std::make_unique<tg::dist::MpiCommunicator>();
        rank_ = comm_->rank();
        size_ = comm_->size();
        if (rank_ != 0) {
            // One voice: rank 0 prints the epochs and the result. The others' stdout is dropped and their
            // stderr kept aside, to be shown if they fail (fail()).
            if (std::freopen("/dev/null", "w", stdout) == nullptr) return;
            real_stderr_ = dup(2);
            captured_ = std::tmpfile();
            if (real_stderr_ >= 0 && captured_ != nullptr) {
                std::fflush(stderr);
                dup2(fileno(captured_), 2);
            }
        }
#else
        for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
            if (const char* n = std::getenv(var); n != nullptr && std::string(n) != "1")
                throw tg::ValueError("started by an MPI launcher, but this build has no MPI support (install "
                                     "libopenmpi-dev and configure with -DTAPEGRAD_MPI=ON): each rank would train "
                                     "alone");
#endif
    }

#if defined(TAPEGRAD_WITH_MPI)
    void flush_captured_stderr() {
        if (captured_ == nullptr || real_stderr_ < 0) return;
        std::fflush(stderr);
        dup2(real_stderr_, 2);
        std::rewind(captured_);
        char buf[4096];
        for (size_t n; (n = std::fread(buf, 1, sizeof buf, captured_)) > 0;) std::fwrite(buf, 1, n, stderr);
        std::fflush(stderr);
    }

    std::unique_ptr<tg::dist::MpiEnvironment> env_;
    std::unique_ptr<tg::dist::MpiCommunicator> comm_;
    int real_stderr_ = -1;
    std::FILE* captured_ = nullptr;
#endif
    int rank_ = 0;
    int size_ = 1;
};

}  // namespace examples
