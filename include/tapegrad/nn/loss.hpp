#pragma once
/// \file
/// Losses as modules: function objects with PyTorch's names, over the loss functions of ops/loss.hpp.
///     nn::CrossEntropyLoss criterion;
///     auto loss = criterion(model.forward(x), labels);
///     loss.backward();
/// The functions themselves are also reachable under their nn names (`nn::cross_entropy`, `nn::Reduction`),
/// as torch.nn.functional's are.

#include <tapegrad/core/labels.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/loss.hpp>

#include <cstdint>
#include <span>

namespace tapegrad::nn {

using tapegrad::Reduction;
using tapegrad::binary_cross_entropy_with_logits;
using tapegrad::bce_loss;
using tapegrad::cross_entropy;
using tapegrad::mse_loss;
using tapegrad::nll_loss;

// ---- modules: the same losses as function objects, with PyTorch's names ---------------------------------

/// `nn::MSELoss{}(input, target)`; see mse_loss.
struct MSELoss {
    Reduction reduction = Reduction::mean;
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& input, const Tensor<T, D>& target) const {
        return mse_loss(input, target, reduction);
    }
};

/// `nn::BCELoss{}(probs, target)`; see bce_loss.
struct BCELoss {
    Reduction reduction = Reduction::mean;
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& probs, const Tensor<T, D>& target) const {
        return bce_loss(probs, target, reduction);
    }
};

/// `nn::BCEWithLogitsLoss{}(logits, target)`; see binary_cross_entropy_with_logits.
struct BCEWithLogitsLoss {
    Reduction reduction = Reduction::mean;
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& logits, const Tensor<T, D>& target) const {
        return binary_cross_entropy_with_logits(logits, target, reduction);
    }
};

/// `nn::CrossEntropyLoss{}(logits, labels)` or `(logits, probability_targets)`; see cross_entropy.
struct CrossEntropyLoss {
    Reduction reduction = Reduction::mean;
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& logits, std::span<const int64_t> labels) const {
        return cross_entropy(logits, labels, reduction);
    }
    template <Scalar T, Device D, LabelRange R>
        requires(!std::convertible_to<const R&, std::span<const int64_t>>)
    Tensor<T, D> operator()(const Tensor<T, D>& logits, const R& labels) const {
        return cross_entropy(logits, labels, reduction);
    }
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& logits, const Labels<D>& labels) const {
        return cross_entropy(logits, labels, reduction);
    }
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& logits, const Tensor<int64_t, D>& labels) const {
        return cross_entropy(logits, labels, reduction);
    }
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& logits, const Tensor<T, D>& target) const {
        return cross_entropy(logits, target, reduction);
    }
};

/// `nn::NLLLoss{}(log_probs, labels)`; see nll_loss.
struct NLLLoss {
    Reduction reduction = Reduction::mean;
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& log_probs, std::span<const int64_t> labels) const {
        return nll_loss(log_probs, labels, reduction);
    }
    template <Scalar T, Device D, LabelRange R>
        requires(!std::convertible_to<const R&, std::span<const int64_t>>)
    Tensor<T, D> operator()(const Tensor<T, D>& log_probs, const R& labels) const {
        return nll_loss(log_probs, labels, reduction);
    }
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& log_probs, const Labels<D>& labels) const {
        return nll_loss(log_probs, labels, reduction);
    }
    template <Scalar T, Device D>
    Tensor<T, D> operator()(const Tensor<T, D>& log_probs, const Tensor<int64_t, D>& labels) const {
        return nll_loss(log_probs, labels, reduction);
    }
};

}  // namespace tapegrad::nn
