#pragma once
/// \file
/// The transformer encoder layer, torch.nn.TransformerEncoderLayer's names, layout and semantics: self-
/// attention and a two-layer feed-forward network, each wrapped in a residual connection with layer
/// normalisation, after it (post-norm, the original transformer) or before it (pre-norm, `norm_first`,
/// which trains deep stacks more stably).

#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/attention.hpp>
#include <tapegrad/nn/dropout.hpp>
#include <tapegrad/nn/layer_norm.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/activation.hpp>

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace tapegrad::nn {

/// Options of TransformerEncoderLayer, as torch.nn.TransformerEncoderLayer's keyword arguments.
struct TransformerEncoderLayerOptions {
    int64_t dim_feedforward = 2048;  ///< hidden width of the feed-forward network
    double dropout = 0.1;            ///< after attention, inside and after the feed-forward network, and on the
                                     ///< attention weights (training mode only)
    std::string activation = "relu";  ///< "relu" or "gelu" (exact, erf-based)
    double layer_norm_eps = 1e-5;
    bool batch_first = false;  ///< inputs [N, L, E] instead of [L, N, E]
    bool norm_first = false;   ///< pre-norm: x + sa(norm1(x)), then x + ff(norm2(x))
};

/// The masks of TransformerEncoderLayer::forward (PyTorch's src_mask and src_key_padding_mask).
template <Scalar T = float, Device D = Cpu>
struct EncoderMasks {
    Tensor<T, D> src_mask{};              ///< [L, L] or [N * nhead, L, L] additive, or undefined
    Tensor<T, D> src_key_padding_mask{};  ///< [N, L] additive (0 keep, -inf padding), or undefined
    bool is_causal = false;             ///< position l attends to 0..l (no mask is materialised)
    std::vector<int64_t> lengths{};       ///< instead of src_key_padding_mask: each sequence's valid length
};

/// One transformer encoder layer (torch.nn.TransformerEncoderLayer).
///  src: [L, N, E] ([N, L, E] with batch_first; [L, E] unbatched) -> same shape.
///  post-norm: x = norm1(x + dropout1(self_attn(x))); x = norm2(x + dropout2(ff(x)))
///  pre-norm:  x = x + dropout1(self_attn(norm1(x))); x = x + dropout2(ff(norm2(x)))
///  with ff(x) = linear2(dropout(activation(linear1(x)))).
/// Children and parameters with PyTorch's names: `self_attn.in_proj_weight`, `self_attn.in_proj_bias`,
/// `self_attn.out_proj.weight`, `self_attn.out_proj.bias`, `linear1.weight` [F, E], `linear1.bias`,
/// `linear2.weight` [E, F], `linear2.bias`, `norm1.weight`, `norm1.bias`, `norm2.weight`, `norm2.bias`.
template <Scalar T = float, Device D = Cpu>
class TransformerEncoderLayer : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// Throws ValueError for a bad size, dropout or activation name (or nhead not dividing d_model).
    TransformerEncoderLayer(int64_t d_model, int64_t nhead, Generator& gen, TransformerEncoderLayerOptions opt = {})
        : opt_(opt) {
        TAPEGRAD_CHECK(opt.activation == "relu" || opt.activation == "gelu", ValueError,
                       "TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", got \"", opt.activation, "\"");
        TAPEGRAD_CHECK(opt.dim_feedforward > 0, ValueError, "TransformerEncoderLayer: dim_feedforward must be positive, got ",
                       opt.dim_feedforward);
        gelu_ = opt.activation == "gelu";
        self_attn_ = this->register_module(
            "self_attn", std::make_shared<MultiheadAttention<T, D>>(
                             d_model, nhead, gen,
                             MultiheadAttentionOptions{.dropout = opt.dropout, .bias = true, .batch_first = opt.batch_first}));
        linear1_ = this->register_module("linear1", std::make_shared<Linear<T, D>>(d_model, opt.dim_feedforward, gen));
        dropout_ = this->register_module("dropout", std::make_shared<Dropout<T, D>>(opt.dropout, gen));
        linear2_ = this->register_module("linear2", std::make_shared<Linear<T, D>>(opt.dim_feedforward, d_model, gen));
        const LayerNormOptions ln{.eps = opt.layer_norm_eps, .elementwise_affine = true};
        norm1_ = this->register_module("norm1", std::make_shared<LayerNorm<T, D>>(d_model, ln));
        norm2_ = this->register_module("norm2", std::make_shared<LayerNorm<T, D>>(d_model, ln));
        dropout1_ = this->register_module("dropout1", std::make_shared<Dropout<T, D>>(opt.dropout, gen));
        dropout2_ = this->register_module("dropout2", std::make_shared<Dropout<T, D>>(opt.dropout, gen));
    }
    /// Draws the initial weights from this thread's default generator (see manual_seed).
    TransformerEncoderLayer(int64_t d_model, int64_t nhead, TransformerEncoderLayerOptions opt = {})
        : TransformerEncoderLayer(d_model, nhead, default_generator(), opt) {}

    /// Without masks.
    TensorT forward(const TensorT& src) override { return forward(src, EncoderMasks<T, D>{}); }
    /// With masks (PyTorch's forward(src, src_mask, src_key_padding_mask)).
    TensorT forward(const TensorT& src, const EncoderMasks<T, D>& masks) {
        TensorT x = src;
        if (opt_.norm_first) {
            x = x + self_attention(norm1_->forward(x), masks);
            x = x + feed_forward(norm2_->forward(x));
        } else {
            x = norm1_->forward(x + self_attention(x, masks));
            x = norm2_->forward(x + feed_forward(x));
        }
        return x;
    }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "TransformerEncoderLayer(d_model=" << self_attn_->embed_dim() << ", nhead=" << self_attn_->num_heads()
           << ", dim_feedforward=" << opt_.dim_feedforward << ", dropout=" << opt_.dropout
           << ", activation=" << opt_.activation << ", norm_first=" << (opt_.norm_first ? "true" : "false") << ')';
        return os.str();
    }
    [[nodiscard]] MultiheadAttention<T, D>& self_attn() noexcept { return *self_attn_; }
    [[nodiscard]] Linear<T, D>& linear1() noexcept { return *linear1_; }
    [[nodiscard]] Linear<T, D>& linear2() noexcept { return *linear2_; }
    [[nodiscard]] LayerNorm<T, D>& norm1() noexcept { return *norm1_; }
    [[nodiscard]] LayerNorm<T, D>& norm2() noexcept { return *norm2_; }
    [[nodiscard]] const TransformerEncoderLayerOptions& options() const noexcept { return opt_; }

private:
    TensorT self_attention(const TensorT& x, const EncoderMasks<T, D>& m) {
        MultiheadAttentionArgs<T, D> a;
        a.key_padding_mask = m.src_key_padding_mask;
        a.attn_mask = m.src_mask;
        a.is_causal = m.is_causal;
        a.lengths = m.lengths;
        a.need_weights = false;
        return dropout1_->forward(self_attn_->forward(x, x, x, a).output);
    }
    TensorT feed_forward(const TensorT& x) {
        const TensorT h = linear1_->forward(x);
        return dropout2_->forward(linear2_->forward(dropout_->forward(gelu_ ? gelu(h) : relu(h))));
    }

    TransformerEncoderLayerOptions opt_;
    bool gelu_ = false;
    std::shared_ptr<MultiheadAttention<T, D>> self_attn_;
    std::shared_ptr<Linear<T, D>> linear1_, linear2_;
    std::shared_ptr<Dropout<T, D>> dropout_, dropout1_, dropout2_;
    std::shared_ptr<LayerNorm<T, D>> norm1_, norm2_;
};

}  // namespace tapegrad::nn
