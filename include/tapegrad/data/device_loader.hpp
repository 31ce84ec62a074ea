#pragma once
/// \file
/// `data::DeviceLoader<T, D>`: a dataset kept on device D, cut into shuffled mini-batches there.
///
/// DataLoader (data/dataset.hpp) assembles each batch on the host; for a GPU every batch must then be
/// copied over. When the whole training set fits in device memory (MNIST's 60,000 images take 188 MB),
/// it is faster to copy it once and gather each batch on the device: the host only uploads a new order
/// per epoch. The gather reads its position from device memory, so `next()` can be part of a step captured
/// into a CUDA graph (cuda::Graph), and a replay fetches a new batch by itself.
///
///     data::DeviceLoader<float, Cuda> loader(mnist.train, {.batch_size = 64, .seed = 1});
///     for (int epoch = 0; epoch < epochs; ++epoch) {
///         loader.start_epoch();
///         for (int64_t b = 0; b < loader.num_batches(); ++b) {
///             loader.next();
///             opt.zero_grad();
///             auto loss = nn::cross_entropy(net(loader.x()), loader.y());
///             loss.backward();
///             opt.step();
///         }
///     }
///
/// Batches have a fixed size: the final partial batch of an epoch is always dropped (LoaderOptions's
/// drop_last is implied). With the same options the batches are those of a DataLoader over the same
/// dataset, in the same order, on any device. It works on the CPU too (where it is a DataLoader whose
/// batches live in fixed buffers).
///
/// `x()` and `y()` are fixed buffers, overwritten by each `next()`: a batch is only valid until the next.
/// (Before the first next() they hold the first batch of the unshuffled order.)
/// Calling next() more often than num_batches() in an epoch starts that epoch's order again from the
/// first batch (it never reads past the order).

#include <tapegrad/core/device.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/labels.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/data/dataset.hpp>

#include <cstdint>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

namespace tapegrad::data {

/// A dataset resident on device D with its batch buffers; see the file comment.
template <Scalar T = float, Device D = Cpu>
class DeviceLoader {
public:
    using B = backend::Ops<D>;

    /// Copies `ds` to device D (features, labels) and allocates the batch buffers. Throws ValueError for a
    /// batch size below 1 or above the dataset's size, and IndexError for a negative label.
    DeviceLoader(const Dataset<T>& ds, LoaderOptions opt = {}) : opt_(opt), gen_(opt.seed) {
        ds.validate("DeviceLoader");
        TAPEGRAD_CHECK(opt.batch_size > 0 && opt.batch_size <= ds.size(), ValueError, "DeviceLoader: batch_size ",
                       opt.batch_size, " must be in [1, ", ds.size(), "] (batches have a fixed size; the dataset holds ",
                       ds.size(), " samples)");
        n_ = ds.size();
        cols_ = ds.sample_shape().numel();
        features_ = Tensor<T, D>::from(ds.features.shape(), std::span<const T>(ds.features.data(),
                                                                               static_cast<size_t>(ds.features.numel())));
        labels_ = Labels<D>::from(ds.labels);
        x_ = Tensor<T, D>::empty(ds.features.shape().with(0, opt.batch_size));
        y_ = Labels<D>::uninitialized(opt.batch_size, labels_.max_label());
        order_.resize(static_cast<size_t>(n_));
        std::iota(order_.begin(), order_.end(), int64_t{0});
        perm_ = tapegrad::detail::make_buffer<int64_t, D>(B::template allocate<int64_t>(n_), n_, true);
        cursor_ = tapegrad::detail::make_buffer<int64_t, D>(B::template allocate<int64_t>(1), 1, true);
        B::upload(n_, order_.data(), perm_->data);
        const int64_t zero = 0;
        B::upload(int64_t{1}, &zero, cursor_->data);
        next();  // x() and y() hold the first batch, never garbage a loss could index with
        B::upload(int64_t{1}, &zero, cursor_->data);
    }

    /// Batches per epoch (the final partial batch is dropped).
    [[nodiscard]] int64_t num_batches() const noexcept { return n_ / opt_.batch_size; }
    [[nodiscard]] int64_t batch_size() const noexcept { return opt_.batch_size; }
    [[nodiscard]] int64_t size() const noexcept { return n_; }
    [[nodiscard]] const LoaderOptions& options() const noexcept { return opt_; }

    /// Starts a new epoch: draws a new order (if shuffling; the same draws as DataLoader's) and rewinds.
    /// Uploads the order, so it cannot be part of a captured graph.
    void start_epoch() {
        if (opt_.shuffle) {
            for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[gen_.below(i)]);
            B::upload(n_, order_.data(), perm_->data);
        }
        const int64_t zero = 0;
        B::upload(int64_t{1}, &zero, cursor_->data);
    }

    /// Gathers the next batch of the epoch into x() and y() on the device (enqueued; capturable).
    void next() {
        B::gather_batch(opt_.batch_size, cols_, features_.data_ptr(), labels_.data(), perm_->data, n_,
                        cursor_->data, x_.data_ptr(), y_.data());
    }

    /// The current batch's features [batch_size, ...] (a fixed buffer; see the file comment).
    [[nodiscard]] const Tensor<T, D>& x() const noexcept { return x_; }
    /// The current batch's labels (a fixed buffer, bounded by the dataset's largest label).
    [[nodiscard]] const Labels<D>& y() const noexcept { return y_; }

private:
    LoaderOptions opt_;
    Generator gen_;
    int64_t n_ = 0, cols_ = 0;
    Tensor<T, D> features_, x_;
    Labels<D> labels_, y_;
    std::vector<int64_t> order_;
    std::shared_ptr<tapegrad::detail::Buffer<int64_t, D>> perm_, cursor_;
};

}  // namespace tapegrad::data
