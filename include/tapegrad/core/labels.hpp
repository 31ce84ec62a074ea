#pragma once
/// \file
/// `Labels<Device>`: class indices (int64) that live on a device, for cross_entropy and nll_loss: a thin view
/// over a 1-D `Tensor<int64_t, D>` (`tensor()`), plus the bound described below. A `Tensor<int64_t, D>`
/// converts to Labels (checked once), and the losses and metrics take one directly.
///
/// The class losses also take labels as a host `std::span<const int64_t>`; on the CPU that is all anyone
/// needs. On a GPU a host span must be copied to the device at every step, and a step captured into a CUDA
/// graph (cuda::Graph) cannot copy from the host at all. `Labels<Cuda>` keeps the labels on the device, so a
/// step reads them where they are, and a device-resident loader (data::DeviceLoader) gathers them there.
///
/// Range checks without reading the device back: the labels are validated on the host when they are made
/// (`from`), and a Labels value remembers the largest label it may hold (`max_label()`, with the row where
/// it occurs when that is known). A loss checks that bound against the number of classes, so a bad label is
/// still reported as `cross_entropy: label 11 out of range [0, 10) at row 7`, and a captured step never has
/// to synchronise to check it.
///
/// Like Tensor, Labels is a handle: copies share the data.
///
/// Host labels may be of any integer type (`std::vector<int>`, `std::array<uint8_t, N>`...): the losses,
/// metrics and `Labels::from` convert them to int64 once (`LabelRange`). Anything else, a vector of float
/// for instance, stops the compiler with one sentence.

#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/device.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/tensor.hpp>

#include <cstdint>
#include <limits>
#include <memory>
#include <ranges>
#include <span>
#include <type_traits>
#include <vector>

namespace tapegrad {

/// A contiguous, sized host range that may hold class labels: `std::vector<int>`, `std::span<const long>`,
/// `std::array<uint8_t, N>`... Its elements must be integers (a static_assert says so where they are not).
template <class R>
concept LabelRange = std::ranges::contiguous_range<const R> && std::ranges::sized_range<const R>;

namespace detail {

/// Host labels as int64_t: a span over `labels` itself when its elements are int64_t, else over a copy in
/// `storage`. An unsigned label too large for int64 throws IndexError naming `op`, the value and the row.
template <LabelRange R>
std::span<const int64_t> labels_as_int64(const char* op, const R& labels, std::vector<int64_t>& storage) {
    using V = std::remove_cv_t<std::ranges::range_value_t<const R>>;
    static_assert(std::is_integral_v<V> && !std::is_same_v<V, bool>,
                  "tapegrad: class labels must be integers (std::vector<int64_t>, std::vector<int>, ...); "
                  "probability targets go in a Tensor of the scores' shape");
    const auto* p = std::ranges::data(labels);
    const size_t n = static_cast<size_t>(std::ranges::size(labels));
    if constexpr (std::is_same_v<V, int64_t>) {
        return {p, n};
    } else {
        storage.resize(n);
        for (size_t r = 0; r < n; ++r) {
            if constexpr (std::is_unsigned_v<V> && sizeof(V) >= sizeof(int64_t))
                TAPEGRAD_CHECK(p[r] <= static_cast<V>(std::numeric_limits<int64_t>::max()), IndexError, op,
                               ": label ", p[r], " out of range at row ", r);
            storage[r] = static_cast<int64_t>(p[r]);
        }
        return {storage.data(), n};
    }
}

}  // namespace detail

/// N class indices on device D, each >= 0, with a known upper bound (see the file comment).
template <Device D = Cpu>
class Labels {
public:
    using B = backend::Ops<D>;

    /// No labels (size 0).
    Labels() = default;

    /// A view of a 1-D int64 tensor as labels (no copy): checks that none is negative and finds the largest,
    /// naming the row of a negative one (on a GPU this reads them back once).
    Labels(const Tensor<int64_t, D>& t) {  // NOLINT(google-explicit-constructor): ids convert to labels
        TAPEGRAD_CHECK(t.dim() == 1, ShapeError, "Labels: class labels must be a 1-D tensor, got shape ", t.shape());
        std::vector<int64_t> copy;  // only off the host: CPU labels are read in place (no allocation)
        const int64_t* host = nullptr;
        if constexpr (HostAccessible<D>) {
            host = t.data_ptr();
        } else {
            copy = t.to_vector();
            host = copy.data();
        }
        int64_t max = -1, max_row = -1;
        for (int64_t r = 0; r < t.numel(); ++r) {
            TAPEGRAD_CHECK(host[r] >= 0, IndexError, "Labels: label ", host[r], " at row ", r, " is negative");
            if (host[r] > max) {
                max = host[r];
                max_row = r;
            }
        }
        buf_ = t.impl()->storage;
        offset_ = t.impl()->offset;
        n_ = t.numel();
        max_ = max;
        max_row_ = max_row;
    }

    /// Copies host labels to device D. Throws IndexError naming the row of a negative label.
    static Labels from(std::span<const int64_t> host) {
        const int64_t n = static_cast<int64_t>(host.size());
        int64_t max = -1, max_row = -1;
        for (int64_t r = 0; r < n; ++r) {
            const int64_t v = host[static_cast<size_t>(r)];
            TAPEGRAD_CHECK(v >= 0, IndexError, "Labels::from: label ", v, " at row ", r, " is negative");
            if (v > max) {
                max = v;
                max_row = r;
            }
        }
        return from_checked(host, max, max_row);
    }
    static Labels from(const std::vector<int64_t>& host) { return from(std::span<const int64_t>(host)); }
    /// Host labels of another integer type (`std::vector<int>`...), converted to int64.
    template <LabelRange R>
        requires(!std::convertible_to<const R&, std::span<const int64_t>>)
    static Labels from(const R& host) {
        std::vector<int64_t> storage;
        return from(detail::labels_as_int64("Labels::from", host, storage));
    }

    /// As `from`, for labels the caller has already checked (none negative) and whose largest value and its
    /// first row it knows (a loss's own argument check finds them): copies without a second pass.
    static Labels from_checked(std::span<const int64_t> host, int64_t max_label, int64_t max_row) {
        Labels l = uninitialized(static_cast<int64_t>(host.size()), max_label);
        l.max_row_ = max_row;
        B::upload(l.n_, host.data(), l.data());
        return l;
    }

    /// Storage for `n` labels whose values the caller will write on the device (a gather), none of them
    /// larger than `max_label` (the caller's promise; losses check it against the class count).
    static Labels uninitialized(int64_t n, int64_t max_label) {
        TAPEGRAD_CHECK(n >= 0, ValueError, "Labels: count must be >= 0, got ", n);
        Labels l;
        l.buf_ = detail::make_buffer<int64_t, D>(B::template allocate<int64_t>(n), n, true);
        l.n_ = n;
        l.max_ = max_label;
        return l;
    }

    [[nodiscard]] int64_t size() const noexcept { return n_; }
    /// The largest label these may hold (-1 when empty).
    [[nodiscard]] int64_t max_label() const noexcept { return max_; }
    /// The row holding max_label(), or -1 when unknown (labels gathered on the device).
    [[nodiscard]] int64_t max_row() const noexcept { return max_row_; }
    /// Device pointer to the labels (null when empty).
    [[nodiscard]] int64_t* data() const noexcept { return buf_ ? buf_->data + offset_ : nullptr; }
    /// The labels as a 1-D int64 tensor [size()], sharing their storage (undefined for default-constructed
    /// Labels). Made on demand, so the losses' per-step Labels of host labels cost what they did before.
    [[nodiscard]] Tensor<int64_t, D> tensor() const {
        if (!buf_) return {};
        auto impl = detail::make_impl<int64_t, D>();
        impl->storage = buf_;
        impl->offset = offset_;
        impl->shape = Shape{n_};
        return Tensor<int64_t, D>(std::move(impl));
    }
    /// A host copy (downloads, which waits for the device).
    [[nodiscard]] std::vector<int64_t> to_vector() const {
        std::vector<int64_t> v(static_cast<size_t>(n_));
        B::download(n_, data(), v.data());
        return v;
    }

private:
    std::shared_ptr<detail::Buffer<int64_t, D>> buf_;  ///< shared with the Tensor<int64_t> it was made from, if any
    int64_t offset_ = 0;
    int64_t n_ = 0;
    int64_t max_ = -1;
    int64_t max_row_ = -1;
};

}  // namespace tapegrad
