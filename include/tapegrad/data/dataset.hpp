#pragma once
/// \file
/// In-memory datasets and the loader that cuts them into shuffled mini-batches.
///
/// Mini-batch SGD estimates the gradient of the whole training set from a small random sample; shuffling
/// every epoch keeps consecutive batches from repeating the same mix, which would bias the steps.

#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/data/sampler.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

namespace tapegrad::data {

/// Samples stacked along the first axis of `features` ([N, ...]) with one integer label each.
template <Scalar T = float>
struct Dataset {
    Tensor<T> features;
    std::vector<int64_t> labels;

    [[nodiscard]] int64_t size() const { return features.defined() ? features.size(0) : 0; }
    /// The shape of one sample (features' shape without the first axis).
    [[nodiscard]] Shape sample_shape() const { return features.shape().without(0); }

    /// Checks that features and labels agree; names `who` in the message.
    void validate(const char* who) const {
        TAPEGRAD_CHECK(features.defined() && features.dim() >= 1, ShapeError, who,
                       ": features must be a tensor of rank >= 1 [N, ...]");
        TAPEGRAD_CHECK(static_cast<int64_t>(labels.size()) == features.size(0), ShapeError, who, ": ", features.size(0),
                       " samples but ", labels.size(), " labels");
    }

    /// The samples at `indices`, in that order (a copy).
    [[nodiscard]] Dataset subset(std::span<const int64_t> indices) const {
        validate("Dataset::subset");
        const int64_t per = sample_shape().numel();
        Dataset out{Tensor<T>::empty(features.shape().with(0, static_cast<int64_t>(indices.size()))), {}};
        out.labels.reserve(indices.size());
        for (size_t i = 0; i < indices.size(); ++i) {
            const int64_t k = indices[i];
            TAPEGRAD_CHECK(k >= 0 && k < size(), IndexError, "Dataset::subset: index ", k, " out of range [0, ", size(),
                           ")");
            std::copy_n(features.data() + k * per, per, out.features.data() + static_cast<int64_t>(i) * per);
            out.labels.push_back(labels[static_cast<size_t>(k)]);
        }
        return out;
    }
};

/// Splits off `val_count` random samples as a validation set (seeded); returns {train, validation}.
template <Scalar T>
std::pair<Dataset<T>, Dataset<T>> train_val_split(const Dataset<T>& ds, int64_t val_count, uint64_t seed) {
    TAPEGRAD_CHECK(val_count >= 0 && val_count <= ds.size(), ValueError, "train_val_split: validation size ", val_count,
                   " is not within [0, ", ds.size(), "]");
    std::vector<int64_t> idx(static_cast<size_t>(ds.size()));
    std::iota(idx.begin(), idx.end(), int64_t{0});
    Generator gen(seed);
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[gen.below(i)]);
    const auto cut = idx.begin() + (ds.size() - val_count);
    std::vector<int64_t> tr(idx.begin(), cut), va(cut, idx.end());
    std::sort(tr.begin(), tr.end());
    std::sort(va.begin(), va.end());
    return {ds.subset(tr), ds.subset(va)};
}

/// One mini-batch: features [B, ...] and the B labels.
template <Scalar T = float>
struct Batch {
    Tensor<T> x;
    std::vector<int64_t> y;
    int64_t index = 0;  ///< position of this batch within the epoch
};

struct LoaderOptions {
    int64_t batch_size = 64;
    bool shuffle = true;     ///< a new random order every epoch
    bool drop_last = false;  ///< skip the final, smaller batch
    uint64_t seed = 0;       ///< seed of the shuffling
};

/// Cuts a dataset into mini-batches. Each `for (const auto& batch : loader)` is one epoch; with shuffling on
/// (the default), every epoch draws a new order from the seeded generator, so runs are reproducible.
/// A batch's buffer is reused for the next batch when nothing else still holds it, so a training loop does
/// not allocate per batch.
template <Scalar T = float>
class DataLoader {
public:
    DataLoader(const Dataset<T>& ds, LoaderOptions opt = {}) : ds_(&ds), opt_(opt), gen_(opt.seed) {
        ds.validate("DataLoader");
        TAPEGRAD_CHECK(opt.batch_size > 0, ValueError, "DataLoader: batch_size must be positive, got ", opt.batch_size);
        order_.resize(static_cast<size_t>(ds.size()));
        std::iota(order_.begin(), order_.end(), int64_t{0});
    }
    /// Visits, each epoch, the samples `sampler` chooses in its order (a DistributedSampler: this rank's
    /// shard) instead of the whole dataset; `opt.shuffle` and `opt.seed` are then not used.
    DataLoader(const Dataset<T>& ds, std::shared_ptr<Sampler> sampler, LoaderOptions opt) : DataLoader(ds, opt) {
        TAPEGRAD_CHECK(sampler != nullptr, ValueError, "DataLoader: the sampler is null");
        sampler_ = std::move(sampler);
        order_.resize(static_cast<size_t>(sampler_->size()));
    }

    /// Batches per epoch.
    [[nodiscard]] int64_t num_batches() const {
        const int64_t n = static_cast<int64_t>(order_.size()), b = opt_.batch_size;
        return opt_.drop_last ? n / b : (n + b - 1) / b;
    }
    [[nodiscard]] const LoaderOptions& options() const noexcept { return opt_; }

    /// Starts a new epoch: reshuffles (if enabled) and rewinds.
    void start_epoch() {
        if (sampler_) {
            sampler_->epoch_indices(order_);
            for (const int64_t k : order_)
                TAPEGRAD_CHECK(k >= 0 && k < ds_->size(), IndexError, "DataLoader: the sampler chose index ", k,
                               ", out of range [0, ", ds_->size(), ")");
        } else if (opt_.shuffle)
            for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[gen_.below(i)]);
        next_ = 0;
    }
    /// Fills `batch` with the next batch of the epoch; false when the epoch is over.
    bool next(Batch<T>& batch) {
        if (next_ >= num_batches()) return false;
        const int64_t start = next_ * opt_.batch_size;
        const int64_t count = std::min(opt_.batch_size, static_cast<int64_t>(order_.size()) - start);
        const Shape shape = ds_->features.shape().with(0, count);
        const auto& impl = batch.x.impl_ptr();
        if (!batch.x.defined() || !(batch.x.shape() == shape) || impl.use_count() > 1 ||
            impl->storage.use_count() > 1)
            batch.x = Tensor<T>::empty(shape);
        const int64_t per = ds_->sample_shape().numel();
        batch.y.resize(static_cast<size_t>(count));
        const T* src = ds_->features.data();
        T* dst = batch.x.data();
        for (int64_t i = 0; i < count; ++i) {
            const int64_t k = order_[static_cast<size_t>(start + i)];
            std::copy_n(src + k * per, per, dst + i * per);
            batch.y[static_cast<size_t>(i)] = ds_->labels[static_cast<size_t>(k)];
        }
        batch.index = next_++;
        return true;
    }

    class iterator {
    public:
        iterator(DataLoader* l, bool end) : l_(l), end_(end) {
            if (!end_) end_ = !l_->next(batch_);
        }
        const Batch<T>& operator*() const noexcept { return batch_; }
        const Batch<T>* operator->() const noexcept { return &batch_; }
        iterator& operator++() {
            end_ = !l_->next(batch_);
            return *this;
        }
        bool operator!=(const iterator& o) const noexcept { return end_ != o.end_; }

    private:
        DataLoader* l_;
        bool end_;
        Batch<T> batch_;
    };
    /// Begins an epoch (reshuffling).
    iterator begin() {
        start_epoch();
        return iterator(this, false);
    }
    iterator end() { return iterator(this, true); }

private:
    const Dataset<T>* ds_;
    std::shared_ptr<Sampler> sampler_;  ///< null: the whole dataset, shuffled by the loader itself
    LoaderOptions opt_;
    Generator gen_;
    std::vector<int64_t> order_;
    int64_t next_ = 0;
};

}  // namespace tapegrad::data
