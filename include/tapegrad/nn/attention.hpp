#pragma once
/// \file
/// The multi-head attention layer, torch.nn.MultiheadAttention's names, layout and semantics, over
/// `tapegrad::multi_head_attention` (ops/attention.hpp, which tells what attention computes and how masks
/// work).

#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/attention.hpp>

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace tapegrad::nn {

/// Options of MultiheadAttention, as torch.nn.MultiheadAttention's keyword arguments.
struct MultiheadAttentionOptions {
    double dropout = 0.0;      ///< dropout on the attention weights in training, in [0, 1)
    bool bias = true;          ///< in_proj_bias and out_proj.bias
    bool batch_first = false;  ///< inputs and outputs [N, L, E] instead of [L, N, E]
};

/// The arguments of MultiheadAttention::forward after (query, key, value), as PyTorch's keywords.
template <Scalar T = float, Device D = Cpu>
struct MultiheadAttentionArgs {
    Tensor<T, D> key_padding_mask{};     ///< [N, S] additive (0 keep, -inf padding), or undefined
    bool need_weights = true;          ///< also return the attention weights
    Tensor<T, D> attn_mask{};            ///< [L, S] or [N * num_heads, L, S] additive, or undefined
    bool average_attn_weights = true;  ///< weights [N, L, S] averaged over heads, else [N, H, L, S]
    bool is_causal = false;            ///< query l sees keys 0..l (no mask is materialised)
    std::vector<int64_t> lengths{};      ///< instead of key_padding_mask: the valid keys of each sequence
};

/// Multi-head attention (torch.nn.MultiheadAttention with kdim = vdim = embed_dim).
///  query: [L, N, E], key, value: [S, N, E] ([N, L, E] / [N, S, E] with batch_first; [L, E] / [S, E]
///  unbatched) -> output query's shape, weights [N, L, S] (or [N, H, L, S], see MultiheadAttentionArgs).
/// Parameters, named and laid out as PyTorch's state_dict: `in_proj_weight` [3E, E] (the q, k, v
/// projections stacked, xavier-uniform), `in_proj_bias` [3E] (zeros), `out_proj.weight` [E, E]
/// (nn::Linear's init) and `out_proj.bias` [E] (zeros). Dropout on the weights in training mode only.
template <Scalar T = float, Device D = Cpu>
class MultiheadAttention : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;
    /// Throws ValueError unless embed_dim > 0, num_heads > 0 divides it, and 0 <= dropout < 1.
    MultiheadAttention(int64_t embed_dim, int64_t num_heads, Generator& gen, MultiheadAttentionOptions opt = {})
        : embed_dim_(embed_dim), num_heads_(num_heads), opt_(opt), dropout_gen_(gen.next_u64()) {
        TAPEGRAD_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, ValueError,
                       "MultiheadAttention: embed_dim (", embed_dim, ") must be a positive multiple of num_heads (",
                       num_heads, ")");
        TAPEGRAD_CHECK(opt.dropout >= 0.0 && opt.dropout < 1.0, ValueError,
                       "MultiheadAttention: dropout must be in [0, 1), got ", opt.dropout);
        TensorT w = TensorT::empty({3 * embed_dim, embed_dim});
        init::xavier_uniform_(w, gen);
        in_proj_weight_ = this->register_parameter("in_proj_weight", w);
        if (opt.bias) in_proj_bias_ = this->register_parameter("in_proj_bias", TensorT::zeros({3 * embed_dim}));
        out_proj_ = this->register_module("out_proj",
                                          std::make_shared<Linear<T, D>>(embed_dim, embed_dim, gen, LinearOptions{opt.bias}));
        if (opt.bias) init::zeros_(out_proj_->bias());
    }
    /// Draws the initial weights from this thread's default generator (see manual_seed).
    MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions opt = {})
        : MultiheadAttention(embed_dim, num_heads, default_generator(), opt) {}

    /// Self-attention without masks: forward(x, x, x).output.
    TensorT forward(const TensorT& x) override { return forward(x, x, x, {.need_weights = false}).output; }
    /// Attention of query over key and value (PyTorch's forward(query, key, value, key_padding_mask,
    /// need_weights, attn_mask, average_attn_weights)); shapes in the class comment.
    AttentionOutput<T, D> forward(const TensorT& query, const TensorT& key, const TensorT& value,
                                  const MultiheadAttentionArgs<T, D>& args = {}) {
        MultiheadAttentionForward<T, D> f;
        f.key_padding_mask = args.key_padding_mask;
        f.attn_mask = args.attn_mask;
        f.lengths = args.lengths;
        f.is_causal = args.is_causal;
        f.need_weights = args.need_weights;
        f.average_attn_weights = args.average_attn_weights;
        f.batch_first = opt_.batch_first;
        f.dropout_p = this->is_training() ? opt_.dropout : 0.0;
        f.generator = &dropout_gen_;
        return multi_head_attention(query, key, value, num_heads_, in_proj_weight_, in_proj_bias_, out_proj_->weight(),
                                    out_proj_->bias(), f);
    }
    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "MultiheadAttention(embed_dim=" << embed_dim_ << ", num_heads=" << num_heads_
           << ", dropout=" << opt_.dropout << ", bias=" << (opt_.bias ? "true" : "false")
           << ", batch_first=" << (opt_.batch_first ? "true" : "false") << ')';
        return os.str();
    }
    /// [3E, E]
    [[nodiscard]] TensorT& in_proj_weight() noexcept { return in_proj_weight_; }
    /// [3E] (undefined without bias)
    [[nodiscard]] TensorT& in_proj_bias() noexcept { return in_proj_bias_; }
    /// the output projection, E -> E
    [[nodiscard]] Linear<T, D>& out_proj() noexcept { return *out_proj_; }
    [[nodiscard]] int64_t embed_dim() const noexcept { return embed_dim_; }
    [[nodiscard]] int64_t num_heads() const noexcept { return num_heads_; }
    [[nodiscard]] const MultiheadAttentionOptions& options() const noexcept { return opt_; }
    /// The generator of the attention dropout's masks (to re-seed it).
    [[nodiscard]] Generator& generator() noexcept { return dropout_gen_; }

private:
    int64_t embed_dim_, num_heads_;
    MultiheadAttentionOptions opt_;
    Generator dropout_gen_;
    TensorT in_proj_weight_, in_proj_bias_;
    std::shared_ptr<Linear<T, D>> out_proj_;
};

}  // namespace tapegrad::nn
