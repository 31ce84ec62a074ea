#pragma once
/// \file
/// Classification metrics: `accuracy` of a batch and a `ConfusionMatrix` accumulated over many batches.
///
/// The idea: a classifier outputs one score per class for each sample (logits or probabilities, [N, C]);
/// its prediction is the class with the highest score (the first one on ties, like torch.argmax). Accuracy
/// is the fraction of predictions that match the labels. It hides *which* classes get confused, so the
/// confusion matrix counts every (true class, predicted class) pair: the diagonal holds the hits, a large
/// off-diagonal cell names the mistake the model makes most. From it, per class, *precision* (of the samples
/// predicted as c, the fraction that really are c) and *recall* (of the samples that really are c, the
/// fraction found). Metrics are evaluation, not training: nothing here records onto the tape.

#include <tapegrad/core/error.hpp>
#include <tapegrad/core/labels.hpp>
#include <tapegrad/core/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace tapegrad::detail {

/// Index of the largest of `row[0..c)`, the first on ties; a NaN counts as the largest (as torch.argmax).
template <class T>
[[nodiscard]] int64_t argmax_row(const T* row, int64_t c) noexcept {
    int64_t best = 0;
    for (int64_t k = 1; k < c; ++k) {
        const T v = row[k], b = row[best];
        if (v > b || (v != v && b == b)) best = k;
    }
    return best;
}

/// Checks that `scores` is [N, C] with C >= 1 and N = labels.size(), and every label is in [0, C).
/// `op` names the caller in the messages.
template <class T, class D>
void check_scores_and_labels(const char* op, const Tensor<T, D>& scores, std::span<const int64_t> labels) {
    TAPEGRAD_CHECK(scores.defined(), ValueError, op, ": scores are an undefined tensor");
    TAPEGRAD_CHECK(scores.dim() == 2, ShapeError, op, ": scores must be [N, C], got shape ", scores.shape());
    TAPEGRAD_CHECK(scores.size(1) >= 1, ShapeError, op, ": scores of shape ", scores.shape(), " have no classes");
    TAPEGRAD_CHECK(scores.size(0) == static_cast<int64_t>(labels.size()), ShapeError, op, ": scores of shape ",
                   scores.shape(), " hold ", scores.size(0), " rows but ", labels.size(), " labels were given");
    const int64_t c = scores.size(1);
    for (size_t i = 0; i < labels.size(); ++i)
        TAPEGRAD_CHECK(labels[i] >= 0 && labels[i] < c, IndexError, op, ": label ", labels[i], " out of range [0, ",
                       c, ") at row ", i);
}

/// The elements of a 1-D int64 tensor on the host, as a span (no copy); ShapeError naming `op` otherwise.
template <Device D>
std::span<const int64_t> int64_span(const char* op, const Tensor<int64_t, D>& t)
    requires HostAccessible<D>
{
    TAPEGRAD_CHECK(t.dim() == 1, ShapeError, op, ": labels must be a 1-D tensor, got shape ", t.shape());
    return {t.data_ptr(), static_cast<size_t>(t.numel())};
}

}  // namespace tapegrad::detail

namespace tapegrad::nn {

/// Fraction of rows of `scores` ([N, C] logits or probabilities) whose largest entry (the first on ties)
/// is at the column `labels[row]`. Throws ShapeError unless scores is [N, C] with C >= 1 and N labels,
/// IndexError naming the row and value of a label outside [0, C), ValueError for an empty batch.
template <Scalar T, Device D>
[[nodiscard]] double accuracy(const Tensor<T, D>& scores, std::span<const int64_t> labels)
    requires HostAccessible<D>
{
    tapegrad::detail::check_scores_and_labels("accuracy", scores, labels);
    TAPEGRAD_CHECK(!labels.empty(), ValueError, "accuracy: empty batch (shape ", scores.shape(), ")");
    const int64_t n = scores.size(0), c = scores.size(1);
    const T* s = scores.data_ptr();
    int64_t hits = 0;
    for (int64_t i = 0; i < n; ++i) hits += tapegrad::detail::argmax_row(s + i * c, c) == labels[static_cast<size_t>(i)];
    return static_cast<double>(hits) / static_cast<double>(n);
}
/// accuracy against host labels of another integer type (`std::vector<int>`...).
template <Scalar T, Device D, LabelRange R>
    requires(std::same_as<D, Cpu> && !std::convertible_to<const R&, std::span<const int64_t>>)
[[nodiscard]] double accuracy(const Tensor<T, D>& scores, const R& labels) {
    std::vector<int64_t> storage;
    return accuracy(scores, tapegrad::detail::labels_as_int64("accuracy", labels, storage));
}

/// accuracy against labels in a 1-D int64 tensor (read in place).
template <Scalar T, Device D>
[[nodiscard]] double accuracy(const Tensor<T, D>& scores, const Tensor<int64_t, D>& labels)
    requires HostAccessible<D>
{
    return accuracy(scores, tapegrad::detail::int64_span("accuracy", labels));
}

/// Counts (true class, predicted class) pairs over any number of batches: `at(t, p)` is how many samples
/// of class t were predicted as p. Rows are true classes, columns predictions.
///
///     nn::ConfusionMatrix cm(10);
///     for (auto [x, y] : test_batches) cm.update(model.forward(x), y);
///     std::cout << cm.str() << "accuracy " << cm.accuracy() << '\n';
class ConfusionMatrix {
public:
    /// An all-zero matrix for `classes` classes. Throws ValueError unless classes >= 1.
    explicit ConfusionMatrix(int classes) : classes_(classes) {
        TAPEGRAD_CHECK(classes >= 1, ValueError, "ConfusionMatrix: invalid number of classes ", classes,
                       " (must be >= 1)");
        counts_.assign(static_cast<size_t>(classes) * static_cast<size_t>(classes), 0);
    }

    /// Adds a batch: the prediction for each row of `scores` ([N, classes]) is its argmax (the first on
    /// ties). Checks everything before counting anything: ShapeError unless scores is [N, classes] with N
    /// labels, IndexError naming the row and value of a label outside [0, classes).
    template <Scalar T, Device D>
    void update(const Tensor<T, D>& scores, std::span<const int64_t> labels)
        requires HostAccessible<D>
    {
        tapegrad::detail::check_scores_and_labels("ConfusionMatrix::update", scores, labels);
        TAPEGRAD_CHECK(scores.size(1) == classes_, ShapeError, "ConfusionMatrix::update: scores of shape ",
                       scores.shape(), " have ", scores.size(1), " classes, the matrix has ", classes_);
        const int64_t c = classes_;
        const T* s = scores.data_ptr();
        for (size_t i = 0; i < labels.size(); ++i)
            ++cell(labels[i], tapegrad::detail::argmax_row(s + static_cast<int64_t>(i) * c, c));
    }
    /// update with host labels of another integer type (`std::vector<int>`...).
    template <Scalar T, Device D, LabelRange R>
        requires(std::same_as<D, Cpu> && !std::convertible_to<const R&, std::span<const int64_t>>)
    void update(const Tensor<T, D>& scores, const R& labels) {
        std::vector<int64_t> storage;
        update(scores, tapegrad::detail::labels_as_int64("ConfusionMatrix::update", labels, storage));
    }

    /// update with labels in a 1-D int64 tensor (read in place).
    template <Scalar T, Device D>
    void update(const Tensor<T, D>& scores, const Tensor<int64_t, D>& labels)
        requires HostAccessible<D>
    {
        update(scores, tapegrad::detail::int64_span("ConfusionMatrix::update", labels));
    }
    /// update with predicted classes (argmax's result) and labels in 1-D int64 tensors.
    template <Device D>
    void update(const Tensor<int64_t, D>& predictions, const Tensor<int64_t, D>& labels)
        requires HostAccessible<D>
    {
        update(tapegrad::detail::int64_span("ConfusionMatrix::update", predictions),
               tapegrad::detail::int64_span("ConfusionMatrix::update", labels));
    }

    /// Adds a batch of predicted classes. Throws ShapeError when the counts differ, IndexError naming the
    /// row and value of a label or prediction outside [0, classes).
    void update(std::span<const int64_t> predictions, std::span<const int64_t> labels) {
        TAPEGRAD_CHECK(predictions.size() == labels.size(), ShapeError, "ConfusionMatrix::update: ",
                       predictions.size(), " predictions but ", labels.size(), " labels");
        for (size_t i = 0; i < labels.size(); ++i) {
            TAPEGRAD_CHECK(labels[i] >= 0 && labels[i] < classes_, IndexError, "ConfusionMatrix::update: label ",
                           labels[i], " out of range [0, ", classes_, ") at row ", i);
            TAPEGRAD_CHECK(predictions[i] >= 0 && predictions[i] < classes_, IndexError,
                           "ConfusionMatrix::update: prediction ", predictions[i], " out of range [0, ", classes_,
                           ") at row ", i);
        }
        for (size_t i = 0; i < labels.size(); ++i) ++cell(labels[i], predictions[i]);
    }

    /// How many samples of class `true_class` were predicted as `predicted_class`. Throws IndexError for
    /// a class outside [0, classes).
    [[nodiscard]] int64_t at(int64_t true_class, int64_t predicted_class) const {
        check_class("at", true_class);
        check_class("at", predicted_class);
        return counts_[index(true_class, predicted_class)];
    }
    /// Number of classes.
    [[nodiscard]] int classes() const noexcept { return classes_; }
    /// Number of samples counted so far.
    [[nodiscard]] int64_t total() const noexcept {
        int64_t t = 0;
        for (const int64_t v : counts_) t += v;
        return t;
    }
    /// Fraction of samples on the diagonal. Throws ValueError while no sample has been counted.
    [[nodiscard]] double accuracy() const {
        const int64_t t = total();
        TAPEGRAD_CHECK(t > 0, ValueError, "ConfusionMatrix::accuracy: no samples counted yet");
        int64_t hits = 0;
        for (int64_t c = 0; c < classes_; ++c) hits += counts_[index(c, c)];
        return static_cast<double>(hits) / static_cast<double>(t);
    }
    /// Of the samples predicted as class `c`, the fraction that are c: at(c, c) / column sum. 0 when
    /// nothing was predicted as c (scikit-learn's zero_division = 0). Throws IndexError for a bad class.
    [[nodiscard]] double precision(int64_t c) const {
        check_class("precision", c);
        int64_t col = 0;
        for (int64_t t = 0; t < classes_; ++t) col += counts_[index(t, c)];
        return col == 0 ? 0.0 : static_cast<double>(counts_[index(c, c)]) / static_cast<double>(col);
    }
    /// Of the samples of class `c`, the fraction predicted as c: at(c, c) / row sum. 0 when no sample of
    /// class c was counted. Throws IndexError for a bad class.
    [[nodiscard]] double recall(int64_t c) const {
        check_class("recall", c);
        int64_t row = 0;
        for (int64_t p = 0; p < classes_; ++p) row += counts_[index(c, p)];
        return row == 0 ? 0.0 : static_cast<double>(counts_[index(c, c)]) / static_cast<double>(row);
    }
    /// Sets every count back to zero.
    void reset() noexcept { std::fill(counts_.begin(), counts_.end(), 0); }

    /// The matrix as text, one row per true class, then recall per row and precision per column:
    ///
    ///     true\pred      0      1 | recall
    ///             0      3      1 |  0.750
    ///             1      0      2 |  1.000
    ///     precision  1.000  0.667 | accuracy 0.833
    [[nodiscard]] std::string str() const {
        int width = 7;  // room for "  0.750" and for every count
        for (const int64_t v : counts_) width = std::max(width, static_cast<int>(std::to_string(v).size()) + 2);
        width = std::max(width, static_cast<int>(std::to_string(classes_ - 1).size()) + 2);
        std::ostringstream os;
        os << std::fixed << std::setprecision(3) << "true\\pred";
        for (int64_t p = 0; p < classes_; ++p) os << std::setw(width) << p;
        os << " | recall\n";
        for (int64_t t = 0; t < classes_; ++t) {
            os << std::setw(9) << t;
            for (int64_t p = 0; p < classes_; ++p) os << std::setw(width) << counts_[index(t, p)];
            os << " | " << std::setw(6) << recall(t) << '\n';
        }
        os << "precision";
        for (int64_t p = 0; p < classes_; ++p) os << std::setw(width) << precision(p);
        os << " | accuracy ";
        if (total() > 0)
            os << accuracy() << '\n';
        else
            os << "-\n";
        return os.str();
    }

private:
    [[nodiscard]] size_t index(int64_t t, int64_t p) const noexcept {
        return static_cast<size_t>(t * classes_ + p);
    }
    int64_t& cell(int64_t t, int64_t p) noexcept { return counts_[index(t, p)]; }
    void check_class(const char* op, int64_t c) const {
        TAPEGRAD_CHECK(c >= 0 && c < classes_, IndexError, "ConfusionMatrix::", op, ": class ", c,
                       " out of range [0, ", classes_, ")");
    }

    int classes_;
    std::vector<int64_t> counts_;  ///< row-major [true class, predicted class]
};

}  // namespace tapegrad::nn
