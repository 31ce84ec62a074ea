#pragma once
/// \file
/// The embedding layer: a learned vector per token id, looked up by index.
///
/// A one-hot vector times a weight matrix picks one row of the matrix; an embedding does that pick
/// directly, without building the one-hot vector. Its gradient adds into the rows of the ids that were
/// seen (deterministically: ops/index.hpp), and the padding row, if any, stays zero and learns nothing.

#include <tapegrad/core/random.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/index.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace tapegrad::nn {

struct EmbeddingOptions {
    /// The id whose row is all zeros and gets no gradient (PyTorch's padding_idx; negative counts from the
    /// end). None by default.
    std::optional<int64_t> padding_idx = std::nullopt;
};

/// Lookup table. ids: any shape S (Tensor<int64_t, D>, each in [0, num_embeddings)) -> [S..., dim].
/// Parameter `weight` [num_embeddings, embedding_dim], named, laid out and initialised as
/// torch.nn.Embedding's: N(0, 1), the padding row zero, so a state_dict loads in PyTorch as it is.
template <Scalar T = float, Device D = Cpu>
class Embedding : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    using Ids = Tensor<int64_t, D>;

    Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen, EmbeddingOptions opt = {})
        : num_(num_embeddings), dim_(embedding_dim) {
        TAPEGRAD_CHECK(num_embeddings > 0 && embedding_dim > 0, ValueError, "Embedding: num_embeddings (",
                       num_embeddings, ") and embedding_dim (", embedding_dim, ") must be positive");
        if (opt.padding_idx) {
            const int64_t p = *opt.padding_idx;
            TAPEGRAD_CHECK(p >= -num_embeddings && p < num_embeddings, IndexError, "Embedding: padding_idx ", p,
                           " out of range for ", num_embeddings, " embeddings");
            padding_idx_ = p < 0 ? p + num_embeddings : p;
        }
        Tensor<T, Cpu> w = Tensor<T, Cpu>::normal({num_embeddings, embedding_dim}, T(0), T(1), gen);
        if (padding_idx_)
            for (int64_t c = 0; c < embedding_dim; ++c) w(*padding_idx_, c) = T(0);
        weight_ = this->register_parameter(
            "weight", TensorT::from(w.shape(), std::span<const T>(w.data(), static_cast<size_t>(w.numel()))));
    }
    /// Draws the initial weights from this thread's default generator (see manual_seed).
    Embedding(int64_t num_embeddings, int64_t embedding_dim, EmbeddingOptions opt = {})
        : Embedding(num_embeddings, embedding_dim, default_generator(), opt) {}

    /// The rows of `weight` for `ids`: [S...] -> [S..., embedding_dim].
    TensorT forward(const Ids& ids) { return embedding(weight_, ids, padding_idx_); }
    TensorT operator()(const Ids& ids) { return forward(ids); }
    /// Throws ValueError: an Embedding takes int64 ids (Tensor<int64_t, D>), not float values.
    TensorT forward(const TensorT& x) override {
        TAPEGRAD_CHECK(false, ValueError, "Embedding: forward takes int64 ids (Tensor<int64_t, D>), got a ",
                       TensorT::dtype_name(), " tensor of shape ", x.shape(), "; convert it with cast<int64_t>(x)");
        return x;
    }
    TensorT operator()(const TensorT& x) { return forward(x); }

    [[nodiscard]] std::string describe() const override {
        return "Embedding(" + std::to_string(num_) + ", " + std::to_string(dim_) +
               (padding_idx_ ? ", padding_idx=" + std::to_string(*padding_idx_) : std::string()) + ")";
    }
    [[nodiscard]] TensorT& weight() noexcept { return weight_; }
    [[nodiscard]] int64_t num_embeddings() const noexcept { return num_; }
    [[nodiscard]] int64_t embedding_dim() const noexcept { return dim_; }
    /// The padding row (non-negative), if any.
    [[nodiscard]] std::optional<int64_t> padding_idx() const noexcept { return padding_idx_; }

private:
    int64_t num_, dim_;
    std::optional<int64_t> padding_idx_;
    TensorT weight_;
};

}  // namespace tapegrad::nn
