#pragma once
/// \file
/// What a DataLoader visits in an epoch, when the choice is not its own: the interface of
/// data::DistributedSampler (one rank's shard of the dataset), or of a sampler of your own.

#include <cstdint>
#include <vector>

namespace tapegrad::data {

/// Chooses the samples of each epoch and their order. A DataLoader built with a sampler asks it once per
/// epoch and cuts what it returns into batches.
class Sampler {
public:
    Sampler() = default;
    Sampler(const Sampler&) = default;
    Sampler& operator=(const Sampler&) = default;
    virtual ~Sampler() = default;

    /// Indices per epoch (the same every epoch).
    [[nodiscard]] virtual int64_t size() const = 0;
    /// Fills `out` with the next epoch's `size()` dataset indices, in the order to visit them.
    virtual void epoch_indices(std::vector<int64_t>& out) = 0;
};

}  // namespace tapegrad::data
