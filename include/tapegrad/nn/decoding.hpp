#pragma once
/// \file
/// Decoding a sequence model token by token: greedy search, beam search and sampling (temperature, top-k),
/// over a step function the user writes.
///
/// **The step function.** A model that generates one token at a time (a decoder RNN, a language model, a
/// Transformer decoder with a cache) is called as
///
///     DecodeStep<T, D> step(const std::vector<int64_t>& tokens, const std::vector<Tensor<T, D>>& state);
///
/// - `tokens` holds R token ids, one per row: the token each row generated last (at the first call, the
///   start tokens).
/// - `state` is whatever the model carries from one step to the next (hidden states, the encoder's outputs
///   for attention, a position counter): any number of tensors, each with R rows as its FIRST dimension
///   ([R, ...]). It starts as the `state` the caller passes in.
/// - It returns `log_probs` [R, V], the log-probabilities of the next token for each row (a log_softmax of
///   the logits; beam search adds them up, so they must be normalised), and the new `state`, each tensor
///   again [R, ...] (shapes may change from step to step, the row count may not).
///
/// Row r of every call continues row r of the previous call, except that beam search reorders and
/// duplicates rows between calls (it copies the state's rows for you, so the step function never needs
/// to know). Greedy search and sampling call it with R = B rows, one per source, in order; beam search with
/// R = B x beam_width rows, source b owning rows [b * beam_width, (b + 1) * beam_width). Rows of sources
/// that have finished keep being passed, with their last token (the end token, once a row generated it), until
/// every source has finished; their outputs are ignored. Every decoder runs the step function under
/// `NoGradGuard`: nothing is recorded.
///
/// Tokens are `int64_t`; `end_token` -1 means the model has none (decoding then runs `max_length` steps).
/// `max_length` counts generated tokens, the end token included; the start token is not counted.
///
/// Errors (`ValueError`, `ShapeError`, `IndexError`, naming the function and the values) for bad options,
/// a state whose row count is not R, a step whose log-probabilities are not [R, V] or change V, a NaN
/// log-probability, and an end token outside [0, V).

#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/core/device.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/core/shape.hpp>
#include <tapegrad/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace tapegrad::nn {

/// What a step function returns: the next token's log-probabilities per row and the carried state.
template <Scalar T = float, Device D = Cpu>
struct DecodeStep {
    Tensor<T, D> log_probs;           ///< [R, V]
    std::vector<Tensor<T, D>> state;  ///< each [R, ...]
};

/// A callable `step(tokens, state) -> DecodeStep<T, D>` (see the file comment for the contract).
template <class F, class T, class D>
concept DecodeStepFunction =
    std::invocable<F&, const std::vector<int64_t>&, const std::vector<Tensor<T, D>>&> &&
    std::convertible_to<std::invoke_result_t<F&, const std::vector<int64_t>&, const std::vector<Tensor<T, D>>&>,
                        DecodeStep<T, D>>;

/// One decoded sequence.
struct Hypothesis {
    std::vector<int64_t> tokens;  ///< the generated tokens, without the start token and without the end token
    double log_prob = 0.0;        ///< sum of the log-probabilities of the generated tokens, the end token included
    /// What beam search ranks by: log_prob / length^length_penalty, length = tokens.size() (+ 1 for the end
    /// token when `ended`). Greedy search and sampling set it to log_prob.
    double score = 0.0;
    bool ended = false;  ///< stopped by the end token (false: stopped at max_length)
};

/// Options of `greedy_decode`.
struct GreedyOptions {
    int64_t end_token = -1;    ///< the token that ends a sequence; -1: none
    int64_t max_length = 100;  ///< at most this many tokens are generated per source (the end token included)
};

/// Options of `beam_search`.
struct BeamOptions {
    int64_t beam_width = 4;  ///< K: hypotheses kept per source at each step
    /// alpha in score = log_prob / length^alpha. 0 ranks by total log-probability (favouring short
    /// sequences, since every token costs probability); 1 by the mean log-probability per token.
    double length_penalty = 1.0;
    int64_t end_token = -1;    ///< the token that ends a sequence; -1: none
    int64_t max_length = 100;  ///< at most this many tokens per hypothesis (the end token included)
    int64_t num_return = 0;    ///< hypotheses returned per source, best first; 0: beam_width
};

/// Options of `sample_decode` and `sample_token`.
struct SampleOptions {
    /// Divides the log-probabilities before the softmax: below 1 sharpens the distribution (towards
    /// greedy), above 1 flattens it. Must be > 0.
    double temperature = 1.0;
    int64_t top_k = 0;         ///< draw only among the k most likely tokens; 0: among all
    int64_t end_token = -1;    ///< the token that ends a sequence; -1: none
    int64_t max_length = 100;  ///< at most this many tokens per source (the end token included)
};

namespace detail {

/// Checks the options shared by every decoder.
inline void check_decode_args(const char* op, size_t batch, int64_t end_token, int64_t max_length) {
    TAPEGRAD_CHECK(batch > 0, ValueError, op, ": no start tokens (one per source is needed)");
    TAPEGRAD_CHECK(end_token >= -1, ValueError, op, ": end_token ", end_token, " is negative (use -1 for none)");
    TAPEGRAD_CHECK(max_length >= 1, ValueError, op, ": max_length ", max_length, " must be at least 1");
}

/// Checks that each state tensor has `rows` rows; `when` says where it came from.
template <Scalar T, Device D>
void check_state_rows(const char* op, const std::vector<Tensor<T, D>>& state, int64_t rows, const char* when) {
    for (size_t i = 0; i < state.size(); ++i) {
        const Tensor<T, D>& s = state[i];
        TAPEGRAD_CHECK(s.defined(), ValueError, op, ": ", when, " state tensor ", i, " is undefined");
        TAPEGRAD_CHECK(s.dim() >= 1 && s.size(0) == rows, ShapeError, op, ": ", when, " state tensor ", i,
                       " has shape ", s.shape(), ", expected ", rows, " rows as its first dimension");
    }
}

/// Calls the step function without recording and checks its result against R rows and (after the first
/// call) V tokens; returns the log-probabilities on the host, row-major [R, V].
template <Scalar T, Device D, class Step>
std::vector<T> run_step(const char* op, Step& step, const std::vector<int64_t>& tokens,
                        std::vector<Tensor<T, D>>& state, int64_t& vocab, int64_t end_token) {
    const auto rows = static_cast<int64_t>(tokens.size());
    DecodeStep<T, D> out = [&] {
        NoGradGuard no_grad;
        return DecodeStep<T, D>(step(tokens, std::as_const(state)));
    }();
    TAPEGRAD_CHECK(out.log_probs.defined(), ValueError, op, ": the step function returned undefined log_probs");
    const Shape& s = out.log_probs.shape();
    TAPEGRAD_CHECK(s.rank() == 2 && s[0] == rows && s[1] >= 1, ShapeError, op,
                   ": the step function returned log_probs of shape ", s, ", expected [", rows, ", V] (one row per token)");
    if (vocab < 0) {
        vocab = s[1];
        TAPEGRAD_CHECK(end_token < vocab, IndexError, op, ": end_token ", end_token, " is outside the vocabulary [0, ",
                       vocab, ")");
    }
    TAPEGRAD_CHECK(s[1] == vocab, ShapeError, op, ": the step function returned ", s[1],
                   " log-probabilities per row after ", vocab, " at the first step");
    check_state_rows(op, out.state, rows, "the step function's returned");
    std::vector<T> lp = out.log_probs.to_vector();
    for (size_t i = 0; i < lp.size(); ++i)
        TAPEGRAD_CHECK(!std::isnan(lp[i]), ValueError, op, ": the step function returned a NaN log-probability at row ",
                       static_cast<int64_t>(i) / vocab, ", token ", static_cast<int64_t>(i) % vocab);
    state = std::move(out.state);
    return lp;
}

/// Rows `rows` of `x` (each an index into its first dimension), stacked: [rows.size(), ...].
template <Scalar T, Device D>
Tensor<T, D> gather_rows(const Tensor<T, D>& x, const std::vector<int64_t>& rows) {
    const Shape out_shape = x.shape().with(0, static_cast<int64_t>(rows.size()));
    const int64_t row_size = x.size(0) > 0 ? x.numel() / x.size(0) : 0;
    const auto copy_rows = [&](const T* src, T* dst) {
        for (size_t i = 0; i < rows.size(); ++i)
            std::memcpy(dst + static_cast<int64_t>(i) * row_size, src + rows[i] * row_size,
                        static_cast<size_t>(row_size) * sizeof(T));
    };
    if constexpr (HostAccessible<D>) {
        Tensor<T, D> y = Tensor<T, D>::empty(out_shape);
        copy_rows(x.data_ptr(), y.data_ptr());
        return y;
    } else {  // through the host: beam search's state is small next to the model's own work
        const std::vector<T> src = x.to_vector();
        std::vector<T> dst(static_cast<size_t>(out_shape.numel()));
        copy_rows(src.data(), dst.data());
        return Tensor<T, D>::from(out_shape, dst);
    }
}

/// The largest entry of a row (the first of equals).
template <class T>
int64_t argmax_row(const T* row, int64_t n) {
    int64_t best = 0;
    for (int64_t v = 1; v < n; ++v)
        if (row[v] > row[best]) best = v;
    return best;
}

/// exp(lp / temperature), normalised over the top_k largest entries, then one draw.
template <class T>
int64_t sample_row(const T* row, int64_t n, double temperature, int64_t top_k, Generator& gen,
                   std::vector<int64_t>& order) {
    order.resize(static_cast<size_t>(n));
    for (int64_t v = 0; v < n; ++v) order[static_cast<size_t>(v)] = v;
    const int64_t k = top_k > 0 && top_k < n ? top_k : n;
    // The k most likely tokens first (ties: the smaller id), so a draw depends only on the values.
    const auto more_likely = [row](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
    if (k < n) std::partial_sort(order.begin(), order.begin() + k, order.end(), more_likely);
    double top = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < k; ++i) top = std::max(top, static_cast<double>(row[order[static_cast<size_t>(i)]]));
    TAPEGRAD_CHECK(top > -std::numeric_limits<double>::infinity(), ValueError,
                   "sample_token: every token has log-probability -inf; there is nothing to draw");
    double total = 0.0;
    for (int64_t i = 0; i < k; ++i) total += std::exp((static_cast<double>(row[order[static_cast<size_t>(i)]]) - top) / temperature);
    double u = gen.uniform01<double>() * total;
    for (int64_t i = 0; i < k; ++i) {
        const int64_t v = order[static_cast<size_t>(i)];
        const double w = std::exp((static_cast<double>(row[v]) - top) / temperature);
        if (u < w && w > 0.0) return v;
        u -= w;
    }
    // Rounding left u just above the last weight: the last token with a weight.
    for (int64_t i = k - 1; i >= 0; --i) {
        const int64_t v = order[static_cast<size_t>(i)];
        if (std::exp((static_cast<double>(row[v]) - top) / temperature) > 0.0) return v;
    }
    return order[0];
}

inline void check_sample_options(const char* op, const SampleOptions& opt) {
    TAPEGRAD_CHECK(opt.temperature > 0.0 && std::isfinite(opt.temperature), ValueError, op, ": temperature ",
                   opt.temperature, " must be a positive finite number");
    TAPEGRAD_CHECK(opt.top_k >= 0, ValueError, op, ": top_k ", opt.top_k, " is negative (0 means every token)");
}

/// The decoding loop shared by greedy search and sampling: `choose(row pointer, V)` picks each row's token.
template <Scalar T, Device D, class Step, class Choose>
std::vector<Hypothesis> decode_rows(const char* op, Step& step, const std::vector<int64_t>& start_tokens,
                                    std::vector<Tensor<T, D>> state, int64_t end_token, int64_t max_length,
                                    Choose&& choose) {
    check_decode_args(op, start_tokens.size(), end_token, max_length);
    const auto rows = static_cast<int64_t>(start_tokens.size());
    check_state_rows(op, state, rows, "the initial");
    std::vector<Hypothesis> out(start_tokens.size());
    std::vector<int64_t> tokens = start_tokens;
    int64_t vocab = -1;
    int64_t live = rows;
    for (int64_t t = 0; t < max_length && live > 0; ++t) {
        const std::vector<T> lp = run_step(op, step, tokens, state, vocab, end_token);
        for (int64_t r = 0; r < rows; ++r) {
            Hypothesis& h = out[static_cast<size_t>(r)];
            if (h.ended) continue;
            const T* row = lp.data() + r * vocab;
            const int64_t tok = choose(row, vocab);
            h.log_prob += static_cast<double>(row[tok]);
            if (tok == end_token) {
                h.ended = true;
                --live;
            } else {
                h.tokens.push_back(tok);
            }
            tokens[static_cast<size_t>(r)] = tok;
        }
    }
    for (Hypothesis& h : out) h.score = h.log_prob;
    return out;
}

}  // namespace detail

/// Draws one token from a row of log-probabilities (or logits: only differences matter) with the given
/// temperature and top-k (`opt.end_token` and `opt.max_length` are not used). Ties among the top k go
/// to the smaller token id. Throws ValueError for a bad temperature or top_k, an empty row, a NaN, or a
/// row that is -inf everywhere.
template <class T>
    requires std::floating_point<T>
int64_t sample_token(std::span<const T> log_probs, const SampleOptions& opt, Generator& gen) {
    detail::check_sample_options("sample_token", opt);
    TAPEGRAD_CHECK(!log_probs.empty(), ValueError, "sample_token: no log-probabilities given");
    for (size_t v = 0; v < log_probs.size(); ++v)
        TAPEGRAD_CHECK(!std::isnan(log_probs[v]), ValueError, "sample_token: log-probability of token ", v, " is NaN");
    std::vector<int64_t> order;
    return detail::sample_row(log_probs.data(), static_cast<int64_t>(log_probs.size()), opt.temperature, opt.top_k,
                              gen, order);
}
template <class T>
    requires std::floating_point<T>
int64_t sample_token(const std::vector<T>& log_probs, const SampleOptions& opt, Generator& gen) {
    return sample_token(std::span<const T>(log_probs), opt, gen);
}

/// Greedy search: at each step every row takes its most likely token (the first of equals), until it
/// generates `end_token` or `max_length` tokens. One source per start token; `state` holds that many rows.
/// Returns one hypothesis per source, in order.
template <Scalar T, Device D, class Step>
    requires DecodeStepFunction<Step, T, D>
std::vector<Hypothesis> greedy_decode(Step&& step, const std::vector<int64_t>& start_tokens,
                                      std::vector<Tensor<T, D>> state, const GreedyOptions& opt = {}) {
    return detail::decode_rows<T, D>("greedy_decode", step, start_tokens, std::move(state), opt.end_token,
                                     opt.max_length, [](const T* row, int64_t n) { return detail::argmax_row(row, n); });
}

/// Ancestral sampling: each row draws its next token from softmax(log_probs / temperature), restricted to
/// the top_k most likely tokens when top_k > 0, from `gen` (the same seed gives the same sequences), until
/// it draws `end_token` or has `max_length` tokens. Returns one hypothesis per source, in order; log_prob is
/// that of the model (before temperature and top-k).
template <Scalar T, Device D, class Step>
    requires DecodeStepFunction<Step, T, D>
std::vector<Hypothesis> sample_decode(Step&& step, const std::vector<int64_t>& start_tokens,
                                      std::vector<Tensor<T, D>> state, const SampleOptions& opt, Generator& gen) {
    detail::check_sample_options("sample_decode", opt);
    std::vector<int64_t> order;
    return detail::decode_rows<T, D>("sample_decode", step, start_tokens, std::move(state), opt.end_token,
                                     opt.max_length, [&](const T* row, int64_t n) {
                                         return detail::sample_row(row, n, opt.temperature, opt.top_k, gen, order);
                                     });
}

/// Beam search: keeps the K = beam_width most likely partial sequences per source. At each step every live
/// hypothesis is extended by every token; of the best K candidates of a source, those that end with
/// `end_token` are set aside as finished (scored log_prob / length^length_penalty) and the best K that do
/// not end become the next live hypotheses. A source is finished when it has K finished hypotheses and no
/// live one can still score above the worst of them (the bound assumes log-probabilities <= 0), or at
/// `max_length`, where its live hypotheses join the finished ones with `ended` false.
///
/// `state` holds one row per source; each row is copied K times before the first step (rows b*K ...
/// b*K + K - 1 belong to source b), and the rows are reordered after every step to follow the surviving
/// hypotheses. Returns per source its best `num_return` hypotheses (default K), best first.
template <Scalar T, Device D, class Step>
    requires DecodeStepFunction<Step, T, D>
std::vector<std::vector<Hypothesis>> beam_search(Step&& step, const std::vector<int64_t>& start_tokens,
                                                 std::vector<Tensor<T, D>> state, const BeamOptions& opt = {}) {
    constexpr const char* op = "beam_search";
    detail::check_decode_args(op, start_tokens.size(), opt.end_token, opt.max_length);
    TAPEGRAD_CHECK(opt.beam_width >= 1, ValueError, op, ": beam_width ", opt.beam_width, " must be at least 1");
    TAPEGRAD_CHECK(std::isfinite(opt.length_penalty), ValueError, op, ": length_penalty ", opt.length_penalty,
                   " is not finite");
    TAPEGRAD_CHECK(opt.num_return >= 0 && opt.num_return <= opt.beam_width, ValueError, op, ": num_return ",
                   opt.num_return, " is outside [0, beam_width = ", opt.beam_width, "] (0 means beam_width)");
    const auto batch = static_cast<int64_t>(start_tokens.size());
    const int64_t K = opt.beam_width;
    const int64_t rows = batch * K;
    const double alpha = opt.length_penalty;
    const double neg_inf = -std::numeric_limits<double>::infinity();
    detail::check_state_rows(op, state, batch, "the initial");

    // Row b*K + k starts as a copy of source b; only beam 0 is live at first (the others would repeat it).
    std::vector<int64_t> parents(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) parents[static_cast<size_t>(r)] = r / K;
    for (Tensor<T, D>& s : state) s = detail::gather_rows(s, parents);
    std::vector<int64_t> tokens(static_cast<size_t>(rows));
    std::vector<double> beam_lp(static_cast<size_t>(rows), neg_inf);
    std::vector<std::vector<int64_t>> beam_tokens(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        tokens[static_cast<size_t>(r)] = start_tokens[static_cast<size_t>(r / K)];
        if (r % K == 0) beam_lp[static_cast<size_t>(r)] = 0.0;
    }

    const auto score_of = [alpha](double lp, int64_t length) {
        return alpha == 0.0 ? lp : lp / std::pow(static_cast<double>(length), alpha);
    };
    std::vector<std::vector<Hypothesis>> finished(static_cast<size_t>(batch));
    // Keeps a source's finished list sorted best first and at most K long.
    const auto add_finished = [K](std::vector<Hypothesis>& list, Hypothesis h) {
        if (static_cast<int64_t>(list.size()) == K && !(h.score > list.back().score)) return;
        const auto at = std::upper_bound(list.begin(), list.end(), h.score,
                                         [](double s, const Hypothesis& x) { return s > x.score; });
        list.insert(at, std::move(h));
        if (static_cast<int64_t>(list.size()) > K) list.pop_back();
    };
    std::vector<char> done(static_cast<size_t>(batch), 0);
    int64_t vocab = -1;

    struct Candidate {
        double lp;
        int64_t beam, token;
    };
    std::vector<Candidate> cands;
    std::vector<int64_t> next_tokens(static_cast<size_t>(rows));
    std::vector<double> next_lp(static_cast<size_t>(rows));
    std::vector<std::vector<int64_t>> next_beam_tokens(static_cast<size_t>(rows));

    for (int64_t t = 1; t <= opt.max_length; ++t) {  // t: the hypotheses' length after this step
        const std::vector<T> lp = detail::run_step(op, step, tokens, state, vocab, opt.end_token);
        bool reordered = false;
        for (int64_t b = 0; b < batch; ++b) {
            const int64_t base = b * K;
            if (done[static_cast<size_t>(b)]) {  // idle rows: keep them as they are
                for (int64_t k = 0; k < K; ++k) {
                    const auto r = static_cast<size_t>(base + k);
                    parents[r] = base + k;
                    next_tokens[r] = tokens[r];
                    next_lp[r] = neg_inf;
                    next_beam_tokens[r].clear();
                }
                continue;
            }
            // The 2K best extensions of the live hypotheses (ties: the lower beam, then the lower token).
            cands.clear();
            for (int64_t k = 0; k < K; ++k) {
                const double blp = beam_lp[static_cast<size_t>(base + k)];
                if (blp == neg_inf) continue;
                const T* row = lp.data() + (base + k) * vocab;
                for (int64_t v = 0; v < vocab; ++v) {
                    const double c = blp + static_cast<double>(row[v]);
                    if (c > neg_inf) cands.push_back({c, k, v});
                }
            }
            const auto better = [](const Candidate& a, const Candidate& x) {
                return a.lp > x.lp || (a.lp == x.lp && (a.beam < x.beam || (a.beam == x.beam && a.token < x.token)));
            };
            const size_t n_top = std::min(cands.size(), static_cast<size_t>(2 * K));
            std::partial_sort(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(n_top), cands.end(), better);
            int64_t filled = 0;
            for (size_t i = 0; i < n_top && filled < K; ++i) {
                const Candidate& c = cands[i];
                const auto parent = static_cast<size_t>(base + c.beam);
                if (c.token == opt.end_token) {
                    // Only an ending among the best K counts: further down it would not have been in the beam.
                    if (static_cast<int64_t>(i) < K)
                        add_finished(finished[static_cast<size_t>(b)],
                                     Hypothesis{beam_tokens[parent], c.lp, score_of(c.lp, t), true});
                    continue;
                }
                const auto r = static_cast<size_t>(base + filled);
                parents[r] = static_cast<int64_t>(parent);
                next_tokens[r] = c.token;
                next_lp[r] = c.lp;
                next_beam_tokens[r] = beam_tokens[parent];
                next_beam_tokens[r].push_back(c.token);
                ++filled;
            }
            for (int64_t k = filled; k < K; ++k) {  // fewer than K live extensions: the rest stay dead
                const auto r = static_cast<size_t>(base + k);
                parents[r] = base;
                next_tokens[r] = tokens[static_cast<size_t>(base)];
                next_lp[r] = neg_inf;
                next_beam_tokens[r].clear();
            }
            // Finished when no live hypothesis can still beat the worst of K finished ones. Later
            // log-probabilities only fall; the length lies in [t + 1, max_length], so the best reachable score
            // of a live one is lp / max_length^alpha for alpha > 0 and lp / (t + 1)^alpha for alpha < 0.
            const std::vector<Hypothesis>& fin = finished[static_cast<size_t>(b)];
            double best_live = neg_inf;
            for (int64_t k = 0; k < filled; ++k) best_live = std::max(best_live, next_lp[static_cast<size_t>(base + k)]);
            const double bound = best_live == neg_inf ? neg_inf
                                 : alpha > 0.0        ? score_of(best_live, opt.max_length)
                                 : alpha < 0.0        ? score_of(best_live, t + 1)
                                                      : best_live;
            if (filled == 0 || (static_cast<int64_t>(fin.size()) == K && fin.back().score >= bound) || t == opt.max_length) {
                if (t == opt.max_length)  // out of length: the live hypotheses are candidates too
                    for (int64_t k = 0; k < filled; ++k) {
                        const auto r = static_cast<size_t>(base + k);
                        add_finished(finished[static_cast<size_t>(b)],
                                     Hypothesis{next_beam_tokens[r], next_lp[r], score_of(next_lp[r], t), false});
                    }
                done[static_cast<size_t>(b)] = 1;
            }
            for (int64_t k = 0; k < K; ++k) reordered |= parents[static_cast<size_t>(base + k)] != base + k;
        }
        if (std::all_of(done.begin(), done.end(), [](char d) { return d != 0; })) break;
        if (reordered)
            for (Tensor<T, D>& s : state) s = detail::gather_rows(s, parents);
        tokens.swap(next_tokens);
        beam_lp.swap(next_lp);
        beam_tokens.swap(next_beam_tokens);
    }
    const auto keep = static_cast<size_t>(opt.num_return > 0 ? opt.num_return : K);
    for (std::vector<Hypothesis>& list : finished)
        if (list.size() > keep) list.resize(keep);
    return finished;
}

}  // namespace tapegrad::nn
