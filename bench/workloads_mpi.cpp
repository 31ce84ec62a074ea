// Data-parallel throughput of the mlp_l and cnn workloads (workloads_common.hpp): the same global batch
// (128 and 64) split over the ranks of an MPI job, gradients averaged by dist::DataParallel.
//
//   build/bench/workloads_mpi --workload cnn --threads 2                  # 1 process x 2 threads
//   mpirun -np 2 build/bench/workloads_mpi --workload cnn --threads 1     # 2 ranks x 1 thread
//
// Each repetition times `--steps` training steps after a warm-up and prints, on rank 0:
//   tapegrad-mpi WORKLOAD ranks=R threads=T rep=K samples_per_s=... step_ms=... wait_ms=... allreduce_ms=...
// wait_ms: per step, the time backward spent blocked in MPI_Wait once every bucket had started (the
// communication that was not hidden behind the rest of the backward, plus waiting for a slower rank);
// allreduce_ms: per step, the same buckets allreduced on their own, blocking, right after the run (what the
// communication costs when nothing overlaps it). hidden = 1 - wait_ms / allreduce_ms.

#include "workloads_common.hpp"

#include <tapegrad/distributed/mpi.hpp>
#include <tapegrad/tapegrad.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace nn = tapegrad::nn;

namespace {

std::shared_ptr<nn::Sequential<float>> build_mlp(const std::vector<int64_t>& sizes, tg::Generator& gen) {
    auto net = std::make_shared<nn::Sequential<float>>();
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
        net->push_back(nn::Linear<float>(sizes[i], sizes[i + 1], gen));
        if (i + 2 < sizes.size()) net->push_back(nn::ReLU<float>());
    }
    return net;
}

std::shared_ptr<nn::Sequential<float>> build_lenet(tg::Generator& gen) {
    auto net = std::make_shared<nn::Sequential<float>>();
    net->push_back(nn::Conv2d<float>(1, 6, 5, {.padding = 2}, gen));
    net->push_back(nn::ReLU<float>());
    net->push_back(nn::MaxPool2d<float>(2));
    net->push_back(nn::Conv2d<float>(6, 16, 5, {}, gen));
    net->push_back(nn::ReLU<float>());
    net->push_back(nn::MaxPool2d<float>(2));
    net->push_back(nn::Flatten<float>());
    const auto dense = build_mlp(workloads::mnist_spec("cnn").sizes, gen);
    for (size_t i = 0; i < dense->size(); ++i) net->push_back((*dense)[i]);
    return net;
}

struct Options {
    workloads::Config cfg;
    int64_t steps = 300;
    double bucket_kb = 0;  // 0: DataParallel's defaults (25 MB, first 1 MB)
};

void run(const Options& o, tg::dist::MpiCommunicator& comm) {
    const auto& w = o.cfg.workload;
    const workloads::MnistSpec spec = workloads::mnist_spec(w);
    const int p = comm.size();
    if (spec.batch % p != 0) throw tg::ValueError("batch does not divide among the ranks");
    auto mnist = workloads::load_mnist(o.cfg, /*flatten=*/w != "cnn");
    tg::dist::DataParallelOptions dpo;
    if (o.bucket_kb > 0) dpo.bucket_cap_mb = dpo.first_bucket_cap_mb = o.bucket_kb / 1024.0;

    for (int rep = -1; rep < o.cfg.reps; ++rep) {  // rep -1: warm-up
        tg::Generator gen(workloads::init_seed);
        auto net = w == "cnn" ? build_lenet(gen) : build_mlp(spec.sizes, gen);
        tg::dist::DataParallel<float> model(net, comm, dpo);
        tg::optim::SGD<float> opt(model.parameters(), {.lr = spec.lr, .momentum = spec.momentum});
        auto sampler = std::make_shared<tg::data::DistributedSampler>(
            mnist.train.size(),
            tg::data::DistributedSamplerOptions{.num_replicas = p, .rank = comm.rank(), .seed = workloads::shuffle_seed});
        tg::data::DataLoader<float> loader(mnist.train, sampler, {.batch_size = spec.batch / p});
        const int64_t steps = rep < 0 ? 30 : o.steps;
        comm.barrier();
        const auto t0 = workloads::Clock::now();
        int64_t done = 0;
        while (done < steps)
            for (const auto& batch : loader) {
                opt.zero_grad();
                nn::cross_entropy(model(batch.x), batch.y).backward();
                opt.step();
                if (++done == steps) break;
            }
        comm.barrier();
        const double secs = workloads::seconds_since(t0);
        const double wait = model.stats().wait_seconds;

        // The same buckets, allreduced alone and blocking: median of 21 rounds.
        std::vector<std::vector<float>> bufs;
        for (const auto& names : model.buckets()) {
            int64_t n = 0;
            for (const auto& [name, t] : net->named_parameters())
                if (std::find(names.begin(), names.end(), name) != names.end()) n += t.numel();
            bufs.emplace_back(static_cast<size_t>(n), 1.0f);
        }
        std::vector<double> rounds;
        for (int r = 0; r < 21; ++r) {
            comm.barrier();
            const auto a0 = workloads::Clock::now();
            for (auto& b : bufs) comm.allreduce_sum(b.data(), static_cast<int64_t>(b.size()));
            rounds.push_back(workloads::seconds_since(a0));
        }
        std::nth_element(rounds.begin(), rounds.begin() + 10, rounds.end());
        if (rep < 0 || comm.rank() != 0) continue;
        const double per_step = secs / static_cast<double>(steps);
        std::printf("tapegrad-mpi %s ranks=%d threads=%d rep=%d samples_per_s=%.0f step_ms=%.3f wait_ms=%.4f "
                    "allreduce_ms=%.4f buckets=%zu\n",
                    w.c_str(), p, o.cfg.threads, rep, static_cast<double>(spec.batch) / per_step, per_step * 1e3,
                    wait / static_cast<double>(steps) * 1e3, rounds[10] * 1e3, bufs.size());
        std::fflush(stdout);
    }
}

}  // namespace

int main(int argc, char** argv) {
    tg::dist::MpiEnvironment env(argc, argv);
    tg::dist::MpiCommunicator comm;
    Options o;
    o.cfg.reps = 3;
    CLI::App app{"tapegrad data-parallel workloads: mlp_l, cnn"};
    workloads::add_flags(app, o.cfg);
    app.add_option("--steps", o.steps, "Timed steps per repetition")->capture_default_str();
    app.add_option("--bucket-kb", o.bucket_kb, "Bucket cap in KiB for every bucket (default: 1 MB then 25 MB)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        workloads::set_threads(o.cfg.threads);
        run(o, comm);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: workloads_mpi: %s\n", comm.rank(), e.what());
        comm.abort(1);
    }
}
