#pragma once
/// \file
/// Attention as functions (torch.nn.functional's softmax with a mask, scaled_dot_product_attention and
/// multi_head_attention_forward); the layers are nn::MultiheadAttention (nn/attention.hpp) and
/// nn::TransformerEncoderLayer (nn/transformer.hpp).
///
/// Attention lets each query position read from every key position: scores = q k^T * scale (one row of S
/// scores per query), weights = softmax(scores + mask) along the keys, output = weights v. Masks are
/// additive: 0 where a key may be seen, -inf (or a large negative number) where it may not, so the masked
/// keys get weight 0. A causal mask (query l sees keys 0..l) is applied by index, never materialised.
///
/// Boolean masks (Mask<D>, 1 = masked out, PyTorch's convention for attn_mask and key_padding_mask) are
/// taken by masked_softmax directly and by the other ops through `additive_mask<T>(mask)`.
///
/// Masked rows: a query whose every key is masked has no distribution to take. Here its weights are all
/// zero (so its output is 0 and no gradient flows through it), never NaN; PyTorch returns NaN there.
/// Masks are constants: no gradient flows into them.
///
/// Efficiency: scaled_dot_product_attention is one recorded op over batched primitives: two strided-
/// batched products forward (scores, output) with the masked softmax in place between them, and four
/// products and one softmax backward in the backward, for every (batch, head) pair at once.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/functors.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/index.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/stack.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace tapegrad {

namespace detail {

/// softmax along the last axis of z (rows of S), fully -inf rows giving zeros; backward as softmax's.
template <Scalar T, Device D>
Tensor<T, D> safe_softmax_last(const Tensor<T, D>& z, const char* op) {
    using B = backend::Ops<D>;
    const Shape& s = z.shape();
    const int64_t S = s.rank() == 0 ? 1 : s[s.rank() - 1];
    const int64_t rows = S == 0 ? 0 : z.numel() / S;
    Tensor<T, D> y = Tensor<T, D>::empty(s);
    B::masked_softmax(int64_t{1}, rows, S, z.data_ptr(), backend::SoftmaxMask<T>{}, backend::SoftmaxMask<T>{}, false,
                      y.data_ptr());
    if (needs_grad(z)) {
        record(y, op, {&z}, [z, rows, S](const Tensor<T, D>& dy, const TensorImpl<T, D>& out) {
            B::softmax_axis_backward(rows, S, int64_t{1}, out.data(), dy.data_ptr(), grad_buffer(z), false);
        });
    }
    return y;
}

}  // namespace detail

/// Softmax along `axis` (default: the last) after adding an additive mask: y = softmax(x + mask).
///  x: any shape (rank >= 1), mask: broadcastable to x's shape (0 = keep, -inf = drop), or undefined.
/// Stable for logits of any magnitude (max-shifted). A slice whose every entry is -inf after the mask
/// (fully masked) gives zeros, not NaN, and passes no gradient. Backward: dz = y (dy - sum(dy y)), into x
/// (and into the mask when it requires grad, summed over its broadcast dimensions).
/// Throws ShapeError when the mask does not broadcast to x's shape.
template <Scalar T, Device D>
Tensor<T, D> masked_softmax(const Tensor<T, D>& x, const Tensor<T, D>& mask, int axis = -1) {
    const Shape& s = x.shape();
    TAPEGRAD_CHECK(s.rank() >= 1, ShapeError, "masked_softmax: needs a tensor of rank 1 or more, got shape ", s);
    const int a = s.normalize_axis(axis, "masked_softmax");
    Tensor<T, D> z = x;
    if (mask.defined()) {
        TAPEGRAD_CHECK(broadcast_shapes(s, mask.shape(), "masked_softmax") == s, ShapeError, "masked_softmax: mask of shape ",
                       mask.shape(), " does not broadcast to the input's shape ", s);
        z = x + mask;
    }
    const int last = s.rank() - 1;
    if (a == last) return detail::safe_softmax_last(z, "masked_softmax");
    return transpose(detail::safe_softmax_last(transpose(z, a, last), "masked_softmax"), a, last);
}

/// The additive form of a boolean mask, for every mask argument of the attention ops and modules: 0 where
/// `mask` is 0 and -inf where it is 1 (1 = masked out, as PyTorch's boolean attn_mask and key_padding_mask).
///  mask: any shape (Mask<D>, uint8 0/1) -> the same shape, element type T (not differentiable)
///  e.g. `.key_padding_mask = additive_mask<float>(eq(ids, pad_id))`
template <Scalar T, Device D>
Tensor<T, D> additive_mask(const Mask<D>& mask) {
    NoGradGuard no_grad;
    return masked_fill(Tensor<T, D>::zeros(mask.shape()), mask, -std::numeric_limits<T>::infinity());
}

/// masked_softmax with a boolean mask (1 = masked out, broadcastable to x's shape): softmax along `axis`
/// over the entries whose mask is 0; a slice with every entry masked gives zeros. Same as
/// masked_softmax(x, additive_mask<T>(mask), axis).
template <Scalar T, Device D>
Tensor<T, D> masked_softmax(const Tensor<T, D>& x, const Mask<D>& mask, int axis = -1) {
    return masked_softmax(x, additive_mask<T>(mask), axis);
}

/// The masks and switches of scaled_dot_product_attention (designated initializers:
/// `{.is_causal = true, .need_weights = true}`).
template <Scalar T, Device D>
struct AttentionOptions {
    /// Additive mask broadcastable to the scores [..., L, S] (q's leading dimensions, L queries, S keys):
    /// [L, S], [..., L, S], [N, 1, L, S], [N, 1, 1, S], ... Undefined: none.
    Tensor<T, D> attn_mask{};
    /// Additive mask per sequence and key, [N, S] (N = q's first dimension; [S] for a 2-D q): padding.
    Tensor<T, D> key_padding_mask{};
    /// Instead of key_padding_mask: the valid key count of each of the N sequences; keys at positions >=
    /// lengths[n] are masked (pack_padded_sequence's lengths).
    std::vector<int64_t> lengths{};
    bool is_causal = false;       ///< query l sees keys 0..l only (upper-left aligned, as PyTorch)
    double dropout_p = 0.0;       ///< dropout on the attention weights, applied whenever > 0 (pass 0 in eval)
    std::optional<double> scale{};  ///< scores' factor; default 1 / sqrt(E)
    bool need_weights = false;    ///< also return the attention weights
    Generator* generator = nullptr;  ///< dropout's generator; null: default_generator()
};

/// What scaled_dot_product_attention and multi_head_attention return.
template <Scalar T, Device D>
struct AttentionOutput {
    Tensor<T, D> output{};   ///< the attended values (differentiable)
    Tensor<T, D> weights{};  ///< the attention weights, when asked for (after dropout; not differentiable)
};

namespace detail {

/// The SoftmaxMask reading `m` in place as a mask of the scores [lead..., L, S] (Bt = numel(lead)), or an
/// empty optional when its layout needs materialising: its key axis must be S, its query axis L or 1, and
/// its batch axes a run of full sizes followed by a run of 1s (so mask block = bt / group).
template <Scalar T, Device D>
std::optional<backend::SoftmaxMask<T>> mask_view(const Tensor<T, D>& m, const Shape& lead, int64_t L, int64_t S) {
    const Shape& sm = m.shape();
    if (sm.rank() < 1 || sm.rank() > lead.rank() + 2 || sm[sm.rank() - 1] != S) return std::nullopt;
    const int64_t ml = sm.rank() >= 2 ? sm[sm.rank() - 2] : 1;
    if (ml != L && ml != 1) return std::nullopt;
    const int mb = sm.rank() >= 2 ? sm.rank() - 2 : 0;  // the mask's batch axes, aligned right on lead's
    const int pad = lead.rank() - mb;
    int i = 0;
    for (; i < lead.rank(); ++i) {  // the full-size prefix
        const int j = i - pad;
        if (j < 0 || sm[j] != lead[i] || lead[i] == 1) break;
    }
    int64_t group = 1;
    for (int k = i; k < lead.rank(); ++k) {  // then broadcast (1 or absent) to the end
        const int j = k - pad;
        if (j >= 0 && sm[j] != 1) return std::nullopt;
        group *= lead[k];
    }
    return backend::SoftmaxMask<T>{m.data_ptr(), group, ml * S, ml == L ? S : 0};
}

}  // namespace detail

/// Scaled dot-product attention, one recorded op (torch.nn.functional.scaled_dot_product_attention).
///  q: [..., L, E], k: [..., S, E], v: [..., S, Ev] (the same leading dimensions, e.g. [N, H]) ->
///  output [..., L, Ev] and, with need_weights, weights [..., L, S]:
///    weights = softmax(q k^T scale + attn_mask + key padding, causal), dropped out with dropout_p,
///    output = weights v.
/// Backward (P the weights, Pd after dropout's mask M, dS the scores' gradient):
///   dv = Pd^T dO,  dP = (dO v^T) M,  dS = P (dP - rowsum(dP P)),  dq = scale dS k,  dk = scale dS^T q.
/// Throws ShapeError for shapes that do not fit, ValueError for a bad dropout_p, both key_padding_mask
/// and lengths, or a length out of [0, S].
template <Scalar T, Device D>
AttentionOutput<T, D> scaled_dot_product_attention(const Tensor<T, D>& q, const Tensor<T, D>& k, const Tensor<T, D>& v,
                                                   const AttentionOptions<T, D>& opt = {}) {
    using B = backend::Ops<D>;
    const Shape &sq = q.shape(), &sk = k.shape(), &sv = v.shape();
    TAPEGRAD_CHECK(sq.rank() >= 2 && sk.rank() == sq.rank() && sv.rank() == sq.rank(), ShapeError,
                   "scaled_dot_product_attention: q, k, v must have one rank >= 2 ([..., L, E], [..., S, E], [..., S, "
                   "Ev]), got shapes ", sq, ", ", sk, ", ", sv);
    const int r = sq.rank();
    const Shape lead = sq.rank() > 2 ? Shape(std::span<const int64_t>(sq.begin(), static_cast<size_t>(r - 2))) : Shape{};
    const int64_t L = sq[r - 2], E = sq[r - 1], S = sk[r - 2], Ev = sv[r - 1];
    bool same_lead = true;
    for (int i = 0; i < r - 2; ++i) same_lead = same_lead && sk[i] == sq[i] && sv[i] == sq[i];
    TAPEGRAD_CHECK(same_lead && sk[r - 1] == E && sv[r - 2] == S, ShapeError,
                   "scaled_dot_product_attention: shapes do not fit: q ", sq, ", k ", sk, ", v ", sv,
                   " (expected [..., L, E], [..., S, E], [..., S, Ev] with the same leading dimensions)");
    TAPEGRAD_CHECK(opt.dropout_p >= 0.0 && opt.dropout_p < 1.0, ValueError,
                   "scaled_dot_product_attention: dropout_p must be in [0, 1), got ", opt.dropout_p);
    const int64_t Bt = lead.numel();
    const int64_t N = lead.rank() >= 1 ? lead[0] : 1;
    const T scale = static_cast<T>(opt.scale ? *opt.scale : 1.0 / std::sqrt(static_cast<double>(E > 0 ? E : 1)));

    // masks: read in place where their layout allows, else broadcast once to the scores' shape
    Shape scores_shape = lead;
    scores_shape.push_back(L);
    scores_shape.push_back(S);
    backend::SoftmaxMask<T> m1{}, m2{};
    Tensor<T, D> m1_hold, m2_hold;
    if (opt.attn_mask.defined()) {
        const Tensor<T, D> m = opt.attn_mask.detach();
        TAPEGRAD_CHECK(broadcast_shapes(scores_shape, m.shape(), "scaled_dot_product_attention") == scores_shape,
                       ShapeError, "scaled_dot_product_attention: attn_mask of shape ", m.shape(),
                       " does not broadcast to the scores' shape ", scores_shape);
        if (auto view = detail::mask_view(m, lead, L, S)) {
            m1 = *view;
            m1_hold = m;
        } else {
            NoGradGuard no_grad;
            m1_hold = m + Tensor<T, D>::zeros(scores_shape);
            m1 = {m1_hold.data_ptr(), 1, L * S, S};
        }
    }
    TAPEGRAD_CHECK(!(opt.key_padding_mask.defined() && !opt.lengths.empty()), ValueError,
                   "scaled_dot_product_attention: give key_padding_mask or lengths, not both");
    const Shape pad_shape = lead.rank() >= 1 ? Shape{N, S} : Shape{S};
    if (opt.key_padding_mask.defined()) {
        TAPEGRAD_CHECK(opt.key_padding_mask.shape() == pad_shape, ShapeError,
                       "scaled_dot_product_attention: key_padding_mask of shape ", opt.key_padding_mask.shape(),
                       " should be ", pad_shape, " for q of shape ", sq);
        m2_hold = opt.key_padding_mask.detach();
    } else if (!opt.lengths.empty()) {
        TAPEGRAD_CHECK(static_cast<int64_t>(opt.lengths.size()) == N, ShapeError, "scaled_dot_product_attention: ",
                       opt.lengths.size(), " lengths given for ", N, " sequences (q of shape ", sq, ")");
        std::vector<T> host(static_cast<size_t>(N * S), T(0));
        for (int64_t n = 0; n < N; ++n) {
            const int64_t len = opt.lengths[static_cast<size_t>(n)];
            TAPEGRAD_CHECK(len >= 0 && len <= S, ValueError, "scaled_dot_product_attention: length ", len,
                           " of sequence ", n, " is outside [0, ", S, "]");
            for (int64_t s = len; s < S; ++s) host[static_cast<size_t>(n * S + s)] = -std::numeric_limits<T>::infinity();
        }
        m2_hold = Tensor<T, D>::empty(pad_shape);
        B::upload(N * S, host.data(), m2_hold.data_ptr());
    }
    if (m2_hold.defined()) m2 = {m2_hold.data_ptr(), N > 0 ? Bt / N : 1, S, 0};

    // forward: P = masked_softmax(scale q k^T), Pd = P M, O = Pd v
    Tensor<T, D> P = Tensor<T, D>::empty(scores_shape);
    B::gemm_batched(false, true, Bt, L, S, E, scale, q.data_ptr(), L * E, k.data_ptr(), S * E, T(0), P.data_ptr(), L * S);
    B::masked_softmax(Bt, L, S, P.data_ptr(), m1, m2, opt.is_causal, P.data_ptr());
    Tensor<T, D> M, Pd = P;
    const bool drop = opt.dropout_p > 0.0;
    backend::Strided plan{};
    if (drop) {
        TAPEGRAD_CHECK(!B::capturing(), DeviceError,
                       "scaled_dot_product_attention: dropout cannot be captured into a CUDA graph (its seed is drawn "
                       "on the host at each call)");
        Generator& gen = opt.generator ? *opt.generator : default_generator();
        M = Tensor<T, D>::empty(scores_shape);
        B::dropout_mask(M.numel(), opt.dropout_p, gen.next_u64(), 0, M.data_ptr());
        plan = detail::broadcast_plan(scores_shape, scores_shape, scores_shape);
        Pd = Tensor<T, D>::empty(scores_shape);
        B::zip(plan, P.data_ptr(), M.data_ptr(), Pd.data_ptr(), fn::Mul{});
    }
    Shape out_shape = lead;
    out_shape.push_back(L);
    out_shape.push_back(Ev);
    Tensor<T, D> out = Tensor<T, D>::empty(out_shape);
    B::gemm_batched(false, false, Bt, L, Ev, S, T(1), Pd.data_ptr(), L * S, v.data_ptr(), S * Ev, T(0), out.data_ptr(),
                    L * Ev);
    if (detail::needs_grad(q, k, v)) {
        detail::record(out, "scaled_dot_product_attention", {&q, &k, &v},
                       [q, k, v, P, M, Pd, plan, scale, Bt, L, S, E, Ev](const Tensor<T, D>& dO) {
                           const T* g = dO.data_ptr();
                           bool fresh = false;
                           if (v.requires_grad()) {  // dv = Pd^T dO
                               T* dv = detail::grad_buffer_for_overwrite(v, fresh);
                               B::gemm_batched(true, false, Bt, S, Ev, L, T(1), Pd.data_ptr(), L * S, g, L * Ev,
                                               fresh ? T(0) : T(1), dv, S * Ev);
                           }
                           if (!q.requires_grad() && !k.requires_grad()) return;
                           // dP = dO v^T (times the dropout mask), then dS = P (dP - rowsum(dP P))
                           Tensor<T, D> dP = Tensor<T, D>::empty(P.shape());
                           B::gemm_batched(false, true, Bt, L, S, Ev, T(1), g, L * Ev, v.data_ptr(), S * Ev, T(0),
                                           dP.data_ptr(), L * S);
                           if (M.defined()) B::zip(plan, dP.data_ptr(), M.data_ptr(), dP.data_ptr(), fn::Mul{});
                           Tensor<T, D> dS = Tensor<T, D>::zeros(P.shape());
                           B::softmax_axis_backward(Bt * L, S, int64_t{1}, P.data_ptr(), dP.data_ptr(), dS.data_ptr(),
                                                    false);
                           if (q.requires_grad()) {  // dq = scale dS k
                               T* dq = detail::grad_buffer_for_overwrite(q, fresh);
                               B::gemm_batched(false, false, Bt, L, E, S, scale, dS.data_ptr(), L * S, k.data_ptr(),
                                               S * E, fresh ? T(0) : T(1), dq, L * E);
                           }
                           if (k.requires_grad()) {  // dk = scale dS^T q
                               T* dk = detail::grad_buffer_for_overwrite(k, fresh);
                               B::gemm_batched(true, false, Bt, S, E, L, scale, dS.data_ptr(), L * S, q.data_ptr(),
                                               L * E, fresh ? T(0) : T(1), dk, S * E);
                           }
                       });
    }
    AttentionOutput<T, D> result{out, {}};
    if (opt.need_weights) result.weights = drop ? Pd : P.detach();
    return result;
}

/// Options of multi_head_attention (the keyword arguments of torch.nn.MultiheadAttention.forward and its
/// constructor's batch_first and dropout).
template <Scalar T, Device D>
struct MultiheadAttentionForward {
    /// [N, S] additive (0 keep, -inf padding), as PyTorch's float key_padding_mask; or undefined.
    Tensor<T, D> key_padding_mask{};
    /// [L, S] or [N * num_heads, L, S] additive, as PyTorch's float attn_mask; or undefined.
    Tensor<T, D> attn_mask{};
    std::vector<int64_t> lengths{};        ///< instead of key_padding_mask: valid keys per sequence
    bool is_causal = false;              ///< query l sees keys 0..l (no mask materialised)
    bool need_weights = true;            ///< return the attention weights
    bool average_attn_weights = true;    ///< weights averaged over heads [N, L, S], else [N, H, L, S]
    bool batch_first = false;            ///< inputs [N, L, E] instead of [L, N, E]
    double dropout_p = 0.0;              ///< on the attention weights (pass 0 in eval)
    Generator* generator = nullptr;      ///< dropout's generator; null: default_generator()
};

/// Multi-head attention with packed input projections, as torch.nn.functional.multi_head_attention_forward
/// (the computation of nn::MultiheadAttention, with its weights passed in).
///  query: [L, N, E] ([N, L, E] with batch_first; [L, E] unbatched), key, value: [S, N, E] likewise;
///  in_proj_weight [3E, E] (q, k, v rows stacked), in_proj_bias [3E] or undefined, out_proj_weight [E, E],
///  out_proj_bias [E] or undefined -> output query's shape; weights [N, L, S] (averaged over heads) or
///  [N, H, L, S] when need_weights ([L, S] / [H, L, S] unbatched), after dropout.
/// Each input is projected (one product for q, k, v together when they are the same tensor), split into
/// num_heads heads of E / num_heads, attended by scaled_dot_product_attention for all heads at once,
/// joined, and projected by out_proj. Throws ShapeError / ValueError naming what does not fit.
template <Scalar T, Device D>
AttentionOutput<T, D> multi_head_attention(const Tensor<T, D>& query, const Tensor<T, D>& key, const Tensor<T, D>& value,
                                           int64_t num_heads, const Tensor<T, D>& in_proj_weight,
                                           const Tensor<T, D>& in_proj_bias, const Tensor<T, D>& out_proj_weight,
                                           const Tensor<T, D>& out_proj_bias,
                                           const MultiheadAttentionForward<T, D>& opt = {}) {
    const Shape& sq = query.shape();
    const bool batched = sq.rank() == 3;
    TAPEGRAD_CHECK((sq.rank() == 2 || sq.rank() == 3) && key.shape().rank() == sq.rank() &&
                       value.shape().rank() == sq.rank(),
                   ShapeError, "multi_head_attention: query, key, value must all be 3-D (batched) or 2-D, got shapes ",
                   sq, ", ", key.shape(), ", ", value.shape());
    const int64_t E = sq[sq.rank() - 1];
    TAPEGRAD_CHECK(num_heads >= 1 && E % num_heads == 0, ValueError, "multi_head_attention: embed_dim ", E,
                   " is not divisible by num_heads ", num_heads);
    TAPEGRAD_CHECK(in_proj_weight.shape() == (Shape{3 * E, E}), ShapeError, "multi_head_attention: in_proj_weight shape ",
                   in_proj_weight.shape(), " should be [", 3 * E, ", ", E, "] for embed_dim ", E);
    TAPEGRAD_CHECK(key.shape()[key.shape().rank() - 1] == E && value.shape()[value.shape().rank() - 1] == E, ShapeError,
                   "multi_head_attention: key ", key.shape(), " and value ", value.shape(),
                   " must end in embed_dim ", E, " (query ", sq, ")");
    const bool same_qkv = query.impl() == key.impl() && key.impl() == value.impl();
    const bool same_kv = key.impl() == value.impl();
    // to [N, L, E]
    auto to_batch_first = [&](const Tensor<T, D>& x) {
        if (!batched) return reshape(x, Shape{1, x.shape()[0], E});
        return opt.batch_first ? x : transpose(x, 0, 1);
    };
    const Tensor<T, D> q_in = to_batch_first(query);
    const int64_t N = q_in.shape()[0], L = q_in.shape()[1], H = num_heads, hd = E / num_heads;
    const Tensor<T, D> k_in = same_qkv ? q_in : to_batch_first(key);
    const Tensor<T, D> v_in = same_kv ? k_in : to_batch_first(value);
    TAPEGRAD_CHECK(k_in.shape()[0] == N && v_in.shape()[0] == N && v_in.shape()[1] == k_in.shape()[1], ShapeError,
                   "multi_head_attention: batch or source lengths differ: query ", sq, ", key ", key.shape(),
                   ", value ", value.shape());
    const int64_t S = k_in.shape()[1];
    // projections, heads split: x [N, T, c*E] -> [c, N, H, T, hd]
    auto heads = [&](const Tensor<T, D>& x, int64_t c, int64_t len) {
        return permute(reshape(x, Shape{N, len, c, H, hd}), {2, 0, 3, 1, 4});
    };
    auto rows = [&](int64_t from, int64_t to) { return slice(in_proj_weight, 0, from, to); };
    auto bias_rows = [&](int64_t from, int64_t to) {
        return in_proj_bias.defined() ? slice(in_proj_bias, 0, from, to) : Tensor<T, D>{};
    };
    Tensor<T, D> q, k, v;
    if (same_qkv) {
        const Tensor<T, D> qkv = heads(linear(q_in, in_proj_weight, in_proj_bias), 3, L);
        q = select(qkv, 0, 0);
        k = select(qkv, 0, 1);
        v = select(qkv, 0, 2);
    } else {
        q = select(heads(linear(q_in, rows(0, E), bias_rows(0, E)), 1, L), 0, 0);
        if (same_kv) {
            const Tensor<T, D> kv = heads(linear(k_in, rows(E, 3 * E), bias_rows(E, 3 * E)), 2, S);
            k = select(kv, 0, 0);
            v = select(kv, 0, 1);
        } else {
            k = select(heads(linear(k_in, rows(E, 2 * E), bias_rows(E, 2 * E)), 1, S), 0, 0);
            v = select(heads(linear(v_in, rows(2 * E, 3 * E), bias_rows(2 * E, 3 * E)), 1, S), 0, 0);
        }
    }
    AttentionOptions<T, D> ao;
    if (opt.attn_mask.defined()) {
        const Shape& sm = opt.attn_mask.shape();
        TAPEGRAD_CHECK(sm == (Shape{L, S}) || sm == (Shape{N * H, L, S}), ShapeError, "multi_head_attention: attn_mask shape ",
                       sm, " should be [", L, ", ", S, "] or [", N * H, ", ", L, ", ", S, "] (N * num_heads, L, S)");
        ao.attn_mask = sm.rank() == 3 ? reshape(opt.attn_mask.detach(), Shape{N, H, L, S}) : opt.attn_mask;
    }
    if (opt.key_padding_mask.defined()) {
        const Shape want = batched ? Shape{N, S} : Shape{S};
        TAPEGRAD_CHECK(opt.key_padding_mask.shape() == want, ShapeError, "multi_head_attention: key_padding_mask shape ",
                       opt.key_padding_mask.shape(), " should be ", want);
        ao.key_padding_mask = reshape(opt.key_padding_mask.detach(), Shape{N, S});
    }
    ao.lengths = opt.lengths;
    ao.is_causal = opt.is_causal;
    ao.dropout_p = opt.dropout_p;
    ao.need_weights = opt.need_weights;
    ao.generator = opt.generator;
    AttentionOutput<T, D> att = scaled_dot_product_attention(q, k, v, ao);  // [N, H, L, hd]
    Tensor<T, D> o = reshape(permute(att.output, {0, 2, 1, 3}), Shape{N, L, E});
    o = linear(o, out_proj_weight, out_proj_bias);
    if (!batched)
        o = reshape(o, Shape{L, E});
    else if (!opt.batch_first)
        o = transpose(o, 0, 1);
    AttentionOutput<T, D> result{o, {}};
    if (opt.need_weights) {
        NoGradGuard no_grad;
        Tensor<T, D> w = att.weights;  // [N, H, L, S]
        if (opt.average_attn_weights) w = mean(w, 1);
        if (!batched) w = select(w, 0, 0);
        result.weights = w;
    }
    return result;
}

}  // namespace tapegrad
