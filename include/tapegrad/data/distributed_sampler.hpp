#pragma once
/// \file
/// One rank's share of a dataset in data-parallel training, as PyTorch's DistributedSampler.
///
/// Every rank draws the same permutation of the whole dataset for an epoch (the seed and the epoch decide
/// it, nothing else), pads it by repeating its first indices until it divides evenly by the number of
/// ranks, and takes every `num_replicas`-th index starting at its rank. So the shards of one epoch are
/// disjoint (apart from the padding), together they cover the dataset, and every rank has the same number
/// of samples, hence the same number of steps: no rank waits in a collective that another never enters.
///
///   auto sampler = std::make_shared<data::DistributedSampler>(train.size(),
///       data::DistributedSamplerOptions{.num_replicas = comm.size(), .rank = comm.rank(), .seed = 1});
///   data::DataLoader<float> loader(train, sampler, {.batch_size = 32});   // 32 per rank
///   for (int epoch = 0; epoch < epochs; ++epoch)
///       for (const auto& batch : loader) ...        // each epoch a new, common shuffle
///
/// It needs no MPI: the rank and the number of ranks are plain numbers.

#include <tapegrad/core/error.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/data/sampler.hpp>

#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace tapegrad::data {

struct DistributedSamplerOptions {
    int num_replicas = 1;  ///< ranks taking part (the communicator's size)
    int rank = 0;          ///< this process's rank in [0, num_replicas)
    bool shuffle = true;   ///< a new common permutation every epoch; false: the dataset's order
    uint64_t seed = 0;     ///< with the epoch, decides the permutation; must be the same on every rank
    /// false: pad the dataset (repeating its first indices) to a multiple of num_replicas, as PyTorch does;
    /// true: drop its last samples instead. Either way every rank gets the same number of samples.
    bool drop_last = false;
    /// false: no padding and no dropping -- the shards are exactly disjoint but their sizes may differ by
    /// one. For evaluation, where the ranks only meet once to add up their counts, not for training.
    bool even = true;
};

class DistributedSampler final : public Sampler {
public:
    /// Shards `dataset_size` samples; throws ValueError when the rank or the number of ranks is invalid.
    DistributedSampler(int64_t dataset_size, DistributedSamplerOptions opt = {}) : n_(dataset_size), opt_(opt) {
        TAPEGRAD_CHECK(opt.num_replicas >= 1, ValueError, "DistributedSampler: num_replicas must be at least 1, got ",
                       opt.num_replicas);
        TAPEGRAD_CHECK(opt.rank >= 0 && opt.rank < opt.num_replicas, ValueError, "DistributedSampler: rank ", opt.rank,
                       " out of range [0, ", opt.num_replicas, ")");
        TAPEGRAD_CHECK(dataset_size >= 0, ValueError, "DistributedSampler: dataset size ", dataset_size, " is negative");
        const int64_t p = opt.num_replicas;
        if (!opt.even)
            per_rank_ = (n_ - opt.rank + p - 1) / p;  // indices rank, rank + p, ... below n
        else if (opt.drop_last)
            per_rank_ = n_ / p;
        else
            per_rank_ = (n_ + p - 1) / p;
    }

    /// Samples per epoch on this rank.
    [[nodiscard]] int64_t size() const override { return per_rank_; }
    /// Samples per epoch over all ranks, padding included.
    [[nodiscard]] int64_t total_size() const noexcept { return opt_.even ? per_rank_ * opt_.num_replicas : n_; }
    [[nodiscard]] const DistributedSamplerOptions& options() const noexcept { return opt_; }

    /// The epoch whose order the next epoch_indices() call draws. Each call moves on to the next epoch by
    /// itself; call set_epoch(e) to choose (after resuming from a checkpoint, say). Every rank must see the
    /// same sequence of epochs.
    void set_epoch(int64_t epoch) noexcept { epoch_ = epoch; }
    [[nodiscard]] int64_t epoch() const noexcept { return epoch_; }

    /// This rank's indices for the current epoch, then advances the epoch.
    void epoch_indices(std::vector<int64_t>& out) override {
        std::vector<int64_t>& all = scratch_;
        all.resize(static_cast<size_t>(n_));
        std::iota(all.begin(), all.end(), int64_t{0});
        if (opt_.shuffle) {
            // The same Fisher-Yates shuffle as DataLoader's, from a generator that depends only on
            // (seed, epoch): every rank draws the same permutation without talking to the others.
            Generator gen(opt_.seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(epoch_ + 1)));
            for (size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[gen.below(i)]);
        }
        const int64_t p = opt_.num_replicas;
        out.resize(static_cast<size_t>(per_rank_));
        for (int64_t i = 0; i < per_rank_; ++i) {
            const int64_t k = opt_.rank + i * p;  // position in the padded permutation
            out[static_cast<size_t>(i)] = all[static_cast<size_t>(k % n_)];  // k >= n: padding from the front
        }
        ++epoch_;
    }

private:
    int64_t n_;
    DistributedSamplerOptions opt_;
    int64_t per_rank_ = 0;
    int64_t epoch_ = 0;
    std::vector<int64_t> scratch_;
};

}  // namespace tapegrad::data
