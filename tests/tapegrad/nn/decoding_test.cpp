// Tests for tapegrad/nn/decoding.hpp: greedy search, beam search and sampling over hand-built step functions
// whose best sequences are known (a table of next-token probabilities per prefix).

#include <tapegrad/nn/decoding.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace {

using tapegrad::Generator;
using tapegrad::IndexError;
using tapegrad::ShapeError;
using tapegrad::TensorD;
using tapegrad::TensorF;
using tapegrad::ValueError;
namespace nn = tapegrad::nn;

// Tokens of the toy models.
constexpr int64_t END = 0, A = 1, B = 2, X = 3, Y = 4, START = 5;
constexpr int64_t V = 6;

using Prefix = std::vector<int64_t>;
using Table = std::map<Prefix, std::vector<double>>;  // prefix -> probabilities of the next token (V of them)

/// A language model given as tables, one per source: the next-token probabilities after each prefix (a
/// prefix missing from its table ends: END with probability 1). Its state is [R, 2] = (source, prefix id)
/// plus a context tensor [R, 2, 3] filled with the source's id, which every call checks, so a decoder that
/// mixes up rows between calls is caught.
struct TableModel {
    explicit TableModel(std::vector<Table> t) : tables(std::move(t)) {}
    std::vector<Table> tables;
    std::vector<Prefix> prefixes;  // prefix id -> prefix
    int calls = 0;
    std::vector<int64_t> rows_seen;

    int64_t intern(const Prefix& p) {
        const auto it = std::find(prefixes.begin(), prefixes.end(), p);
        if (it != prefixes.end()) return it - prefixes.begin();
        prefixes.push_back(p);
        return static_cast<int64_t>(prefixes.size()) - 1;
    }

    /// The initial state of the given sources: prefix id -1 (the start token not yet read).
    static std::vector<TensorD> start(const std::vector<int64_t>& sources) {
        const auto n = static_cast<int64_t>(sources.size());
        TensorD s = TensorD::empty({n, 2}), ctx = TensorD::empty({n, 2, 3});
        for (int64_t i = 0; i < n; ++i) {
            s(i, 0) = static_cast<double>(sources[static_cast<size_t>(i)]);
            s(i, 1) = -1.0;
            for (int64_t j = 0; j < 6; ++j) ctx.data()[i * 6 + j] = static_cast<double>(sources[static_cast<size_t>(i)]);
        }
        return {s, ctx};
    }

    nn::DecodeStep<double> operator()(const std::vector<int64_t>& tokens, const std::vector<TensorD>& state) {
        ++calls;
        const auto rows = static_cast<int64_t>(tokens.size());
        rows_seen.push_back(rows);
        REQUIRE(state.size() == 2);
        TensorD lp = TensorD::empty({rows, V}), next = TensorD::empty({rows, 2});
        for (int64_t r = 0; r < rows; ++r) {
            const auto source = static_cast<size_t>(state[0](r, 0));
            for (int64_t j = 0; j < 6; ++j) REQUIRE(state[1].data()[r * 6 + j] == static_cast<double>(source));
            const auto id = static_cast<int64_t>(state[0](r, 1));
            Prefix p;
            if (id >= 0) {
                p = prefixes[static_cast<size_t>(id)];
                p.push_back(tokens[static_cast<size_t>(r)]);
            } else {
                REQUIRE(tokens[static_cast<size_t>(r)] == START);
            }
            const auto it = tables.at(source).find(p);
            std::vector<double> probs(V, 0.0);
            if (it == tables[source].end())
                probs[END] = 1.0;
            else
                probs = it->second;
            for (int64_t v = 0; v < V; ++v) lp(r, v) = std::log(probs[static_cast<size_t>(v)]);
            next(r, 0) = static_cast<double>(source);
            next(r, 1) = static_cast<double>(intern(p));
        }
        return {lp, {next, state[1]}};
    }
};

/// Probabilities over the V tokens from {token, p} pairs.
std::vector<double> dist(std::initializer_list<std::pair<int64_t, double>> ps) {
    std::vector<double> d(V, 0.0);
    for (const auto& [t, p] : ps) d[static_cast<size_t>(t)] = p;
    return d;
}

/// Greedy takes a (0.6) then x (0.5: the first of equals), 0.30 in all; b x has 0.4 x 0.95 = 0.38.
Table greedy_trap() {
    return {{{}, dist({{A, 0.6}, {B, 0.4}})},
            {{A}, dist({{X, 0.5}, {Y, 0.5}})},
            {{B}, dist({{X, 0.95}, {Y, 0.05}})}};
}

/// "END at once" has probability 0.45 (length 1); "a END" 0.55 x 0.8 = 0.44 (length 2).
Table short_or_long() {
    return {{{}, dist({{END, 0.45}, {A, 0.55}})}, {{A}, dist({{END, 0.8}, {B, 0.2}})}};
}

/// a b END, deterministically.
Table chain() { return {{{}, dist({{A, 1.0}})}, {{A}, dist({{B, 1.0}})}}; }

/// Never ends: a, b, x, y uniformly (every prefix up to length 2 listed; used with max_length 3).
Table endless() {
    Table t;
    std::vector<Prefix> level{{}};
    for (int depth = 0; depth < 3; ++depth) {
        std::vector<Prefix> next;
        for (const Prefix& p : level) {
            t[p] = dist({{A, 0.25}, {B, 0.25}, {X, 0.25}, {Y, 0.25}});
            for (int64_t tok : {A, B, X, Y}) {
                Prefix q = p;
                q.push_back(tok);
                next.push_back(q);
            }
        }
        level = next;
    }
    return t;
}

/// A random tree over END, a, b: every prefix shorter than 3 has random probabilities; length-3 prefixes end.
Table random_tree(Generator& gen) {
    Table t;
    std::vector<Prefix> level{{}};
    for (int depth = 0; depth < 3; ++depth) {
        std::vector<Prefix> next;
        for (const Prefix& p : level) {
            const double e = 0.05 + 0.9 * gen.uniform01<double>(), a = gen.uniform01<double>();
            t[p] = dist({{END, e}, {A, (1 - e) * a}, {B, (1 - e) * (1 - a)}});
            for (int64_t tok : {A, B}) {
                Prefix q = p;
                q.push_back(tok);
                next.push_back(q);
            }
        }
        level = next;
    }
    return t;
}

/// Every sequence the table can generate, with its log-probability (all end within 4 tokens).
void enumerate(const Table& t, const Prefix& p, double lp, std::vector<nn::Hypothesis>& out) {
    const auto it = t.find(p);
    const std::vector<double> d = it == t.end() ? dist({{END, 1.0}}) : it->second;
    for (int64_t v = 0; v < V; ++v) {
        if (d[static_cast<size_t>(v)] <= 0.0) continue;
        const double l = lp + std::log(d[static_cast<size_t>(v)]);
        if (v == END) {
            out.push_back({p, l, l, true});
        } else {
            Prefix q = p;
            q.push_back(v);
            enumerate(t, q, l, out);
        }
    }
}

std::vector<nn::Hypothesis> greedy(TableModel& m, const std::vector<int64_t>& sources, nn::GreedyOptions opt = {.end_token = END}) {
    return nn::greedy_decode(std::ref(m), std::vector<int64_t>(sources.size(), START), TableModel::start(sources), opt);
}
std::vector<std::vector<nn::Hypothesis>> beam(TableModel& m, const std::vector<int64_t>& sources, nn::BeamOptions opt) {
    return nn::beam_search(std::ref(m), std::vector<int64_t>(sources.size(), START), TableModel::start(sources), opt);
}

}  // namespace

TEST_CASE("greedy_decode: the most likely token at each step, until the end token") {
    TableModel m{{greedy_trap()}};
    const auto h = greedy(m, {0});
    REQUIRE(h.size() == 1);
    CHECK(h[0].tokens == Prefix{A, X});
    CHECK(h[0].ended);
    CHECK(h[0].log_prob == doctest::Approx(std::log(0.3)));
    CHECK(h[0].score == h[0].log_prob);
    CHECK(m.calls == 3);  // a, x, END
}

TEST_CASE("beam_search finds the sequence greedy search misses") {
    TableModel m{{greedy_trap()}};
    const auto h = beam(m, {0}, {.beam_width = 2, .length_penalty = 0.0, .end_token = END});
    REQUIRE(h.size() == 1);
    REQUIRE(h[0].size() == 2);
    CHECK(h[0][0].tokens == Prefix{B, X});
    CHECK(h[0][0].log_prob == doctest::Approx(std::log(0.38)));
    CHECK(h[0][0].ended);
    CHECK(h[0][1].tokens == Prefix{A, X});  // a x and a y tie at 0.30: the lower beam, then the lower token
    CHECK(h[0][1].log_prob == doctest::Approx(std::log(0.30)));
    // The decoder called the model with 2 rows per source.
    CHECK(std::all_of(m.rows_seen.begin(), m.rows_seen.end(), [](int64_t r) { return r == 2; }));
    // Width 1 is greedy search.
    TableModel m1{{greedy_trap()}};
    const auto h1 = beam(m1, {0}, {.beam_width = 1, .length_penalty = 0.0, .end_token = END});
    REQUIRE(h1[0].size() == 1);
    CHECK(h1[0][0].tokens == Prefix{A, X});
    CHECK(h1[0][0].log_prob == doctest::Approx(std::log(0.30)));
}

TEST_CASE("beam_search: the length penalty changes the winner") {
    for (const double alpha : {0.0, 1.0}) {
        CAPTURE(alpha);
        TableModel m{{short_or_long()}};
        const auto h = beam(m, {0}, {.beam_width = 2, .length_penalty = alpha, .end_token = END});
        REQUIRE(h[0].size() == 2);
        const nn::Hypothesis& best = h[0][0];
        if (alpha == 0.0) {  // total log-probability: 0.45 beats 0.44
            CHECK(best.tokens.empty());
            CHECK(best.score == doctest::Approx(std::log(0.45)));
        } else {  // per token: log(0.45) / 1 = -0.80 loses to log(0.44) / 2 = -0.41
            CHECK(best.tokens == Prefix{A});
            CHECK(best.log_prob == doctest::Approx(std::log(0.44)));
            CHECK(best.score == doctest::Approx(std::log(0.44) / 2.0));
        }
        CHECK(h[0][0].score >= h[0][1].score);
    }
}

TEST_CASE("beam_search: with a beam wider than the tree it returns every sequence, exactly ranked") {
    Generator gen(11);
    for (int trial = 0; trial < 20; ++trial) {
        const Table t = random_tree(gen);
        std::vector<nn::Hypothesis> all;
        enumerate(t, {}, 0.0, all);
        REQUIRE(all.size() == 15);
        for (const double alpha : {0.0, 0.7, 1.0}) {
            CAPTURE(trial);
            CAPTURE(alpha);
            std::vector<nn::Hypothesis> want = all;
            for (nn::Hypothesis& h : want) h.score = h.log_prob / std::pow(static_cast<double>(h.tokens.size() + 1), alpha);
            std::stable_sort(want.begin(), want.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
            TableModel m{{t}};
            const auto got = beam(m, {0}, {.beam_width = 16, .length_penalty = alpha, .end_token = END, .max_length = 10});
            REQUIRE(got[0].size() == 15);
            for (size_t i = 0; i < want.size(); ++i) {
                CHECK(got[0][i].score == doctest::Approx(want[i].score));
                CHECK(got[0][i].ended);
            }
            CHECK(got[0][0].tokens == want[0].tokens);
            // A narrow beam still returns hypotheses best first, num_return of them.
            TableModel m2{{t}};
            const auto few = beam(m2, {0}, {.beam_width = 3, .length_penalty = alpha, .end_token = END, .num_return = 2});
            REQUIRE(few[0].size() == 2);
            CHECK(few[0][0].score >= few[0][1].score);
            CHECK(few[0][0].score <= want[0].score + 1e-12);
        }
    }
}

TEST_CASE("decoding stops at the end token, or at max_length with ended false") {
    TableModel m{{chain()}};
    auto h = greedy(m, {0});
    CHECK(h[0].tokens == Prefix{A, B});
    CHECK(h[0].ended);
    CHECK(h[0].log_prob == doctest::Approx(0.0));
    CHECK(m.calls == 3);

    TableModel cut{{chain()}};
    h = greedy(cut, {0}, {.end_token = END, .max_length = 2});
    CHECK(h[0].tokens == Prefix{A, B});
    CHECK_FALSE(h[0].ended);
    CHECK(cut.calls == 2);

    // Without an end token the END of the table is just another token (id 0), and decoding runs max_length steps.
    TableModel none{{chain()}};
    h = greedy(none, {0}, {.end_token = -1, .max_length = 3});
    CHECK(h[0].tokens == Prefix{A, B, END});
    CHECK_FALSE(h[0].ended);

    TableModel long_beam{{endless()}};
    const auto hb = beam(long_beam, {0}, {.beam_width = 3, .length_penalty = 1.0, .end_token = END, .max_length = 3});
    REQUIRE(hb[0].size() == 3);
    for (const nn::Hypothesis& x : hb[0]) {
        CHECK(x.tokens.size() == 3);
        CHECK_FALSE(x.ended);
        CHECK(x.log_prob == doctest::Approx(3.0 * std::log(0.25)));
        CHECK(x.score == doctest::Approx(std::log(0.25)));
    }
    CHECK(long_beam.calls == 3);
}

TEST_CASE("beam_search stops early once no live hypothesis can win") {
    // After "END" (0.45) and "a END" (0.44) are finished, the live "a b" (0.11) cannot beat them at alpha 0.
    TableModel m{{short_or_long()}};
    const auto h = beam(m, {0}, {.beam_width = 2, .length_penalty = 0.0, .end_token = END, .max_length = 50});
    CHECK(h[0].size() == 2);
    CHECK(m.calls == 2);
}

TEST_CASE("decoders: each source of a batch is decoded as if alone") {
    Generator gen(5);
    const std::vector<Table> tables{greedy_trap(), short_or_long(), random_tree(gen), chain(), random_tree(gen)};
    const std::vector<int64_t> sources{2, 0, 4, 1, 3, 0};
    TableModel batch{tables};
    const nn::BeamOptions opt{.beam_width = 3, .length_penalty = 0.6, .end_token = END, .max_length = 6};
    const auto together = beam(batch, sources, opt);
    const auto together_greedy = greedy(batch, sources);
    REQUIRE(together.size() == sources.size());
    for (size_t i = 0; i < sources.size(); ++i) {
        CAPTURE(i);
        TableModel alone{tables};
        const auto single = beam(alone, {sources[i]}, opt);
        REQUIRE(single[0].size() == together[i].size());
        for (size_t j = 0; j < single[0].size(); ++j) {
            CHECK(single[0][j].tokens == together[i][j].tokens);
            CHECK(single[0][j].score == together[i][j].score);
            CHECK(single[0][j].ended == together[i][j].ended);
        }
        const auto g = greedy(alone, {sources[i]});
        CHECK(g[0].tokens == together_greedy[i].tokens);
        CHECK(g[0].log_prob == together_greedy[i].log_prob);
    }
}

TEST_CASE("sample_token: draws follow softmax(log_probs / temperature) over the top k") {
    const std::vector<double> lp{std::log(0.2), std::log(0.3), std::log(0.5)};
    Generator gen(3);
    constexpr int n = 20000;
    std::vector<int> count(3, 0);
    for (int i = 0; i < n; ++i) ++count[static_cast<size_t>(nn::sample_token(lp, {}, gen))];
    CHECK(count[0] / double(n) == doctest::Approx(0.2).epsilon(0.05));
    CHECK(count[1] / double(n) == doctest::Approx(0.3).epsilon(0.05));
    CHECK(count[2] / double(n) == doctest::Approx(0.5).epsilon(0.05));

    // top_k 2: the least likely token never comes, the others in ratio 3:5.
    std::fill(count.begin(), count.end(), 0);
    for (int i = 0; i < n; ++i) ++count[static_cast<size_t>(nn::sample_token(lp, {.top_k = 2}, gen))];
    CHECK(count[0] == 0);
    CHECK(count[1] / double(n) == doctest::Approx(0.375).epsilon(0.05));

    // temperature 2: p ~ sqrt(p) -> 0.2^0.5 : 0.3^0.5 : 0.5^0.5; temperature 0.01: always the largest.
    std::fill(count.begin(), count.end(), 0);
    for (int i = 0; i < n; ++i) ++count[static_cast<size_t>(nn::sample_token(lp, {.temperature = 2.0}, gen))];
    const double z = std::sqrt(0.2) + std::sqrt(0.3) + std::sqrt(0.5);
    CHECK(count[0] / double(n) == doctest::Approx(std::sqrt(0.2) / z).epsilon(0.05));
    for (int i = 0; i < 1000; ++i) CHECK(nn::sample_token(lp, {.temperature = 0.01}, gen) == 2);

    // float rows, a -inf entry is never drawn
    const std::vector<float> f{-INFINITY, 0.0f};
    for (int i = 0; i < 100; ++i) CHECK(nn::sample_token(f, {}, gen) == 1);
}

TEST_CASE("sample_decode: seeded and reproducible; top_k 1 is greedy search") {
    Generator gen(9);
    const Table t = random_tree(gen);
    TableModel m{{t, greedy_trap()}};
    const std::vector<int64_t> sources{0, 1, 0, 1, 0};
    const auto want = greedy(m, sources);
    Generator g1(1);
    const auto top1 = nn::sample_decode(std::ref(m), std::vector<int64_t>(5, START), TableModel::start(sources),
                                        {.temperature = 3.0, .top_k = 1, .end_token = END}, g1);
    for (size_t i = 0; i < sources.size(); ++i) {
        CHECK(top1[i].tokens == want[i].tokens);
        CHECK(top1[i].log_prob == doctest::Approx(want[i].log_prob));
    }
    const auto draw = [&](uint64_t seed) {
        Generator g(seed);
        return nn::sample_decode(std::ref(m), std::vector<int64_t>(5, START), TableModel::start(sources),
                                 {.end_token = END}, g);
    };
    const auto a = draw(42), b = draw(42);
    bool differs = false;
    for (uint64_t seed = 43; seed < 60 && !differs; ++seed) {
        const auto c = draw(seed);
        for (size_t i = 0; i < sources.size(); ++i) differs |= c[i].tokens != a[i].tokens;
    }
    for (size_t i = 0; i < sources.size(); ++i) {
        CHECK(a[i].tokens == b[i].tokens);
        CHECK(a[i].ended);
        // log_prob is the model's log-probability of the drawn sequence
        double lp = 0.0;
        Prefix p;
        const Table& tab = m.tables[static_cast<size_t>(sources[i])];
        for (size_t j = 0; j <= a[i].tokens.size(); ++j) {
            const int64_t tok = j < a[i].tokens.size() ? a[i].tokens[j] : END;
            const auto it = tab.find(p);
            lp += std::log(it == tab.end() ? (tok == END ? 1.0 : 0.0) : it->second[static_cast<size_t>(tok)]);
            p.push_back(tok);
        }
        CHECK(a[i].log_prob == doctest::Approx(lp));
    }
    CHECK(differs);
}

TEST_CASE("decoders on float tensors and a model without state") {
    // A bigram model over 3 tokens: after token i, token (i + 1) % 3 with probability 0.7.
    const auto step = [](const std::vector<int64_t>& tokens, const std::vector<TensorF>&) {
        const auto rows = static_cast<int64_t>(tokens.size());
        TensorF lp = TensorF::full({rows, 3}, std::log(0.15f));
        for (int64_t r = 0; r < rows; ++r) lp(r, (tokens[static_cast<size_t>(r)] + 1) % 3) = std::log(0.7f);
        return nn::DecodeStep<float>{lp, {}};
    };
    const auto h = nn::greedy_decode(step, {0, 2}, std::vector<TensorF>{}, {.max_length = 4});
    CHECK(h[0].tokens == Prefix{1, 2, 0, 1});
    CHECK(h[1].tokens == Prefix{0, 1, 2, 0});
    const auto hb = nn::beam_search(step, {1}, std::vector<TensorF>{}, {.beam_width = 2, .max_length = 3});
    CHECK(hb[0][0].tokens == Prefix{2, 0, 1});
    CHECK(hb[0][0].log_prob == doctest::Approx(3.0 * std::log(0.7)).epsilon(1e-6));
}

TEST_CASE("decoders: bad arguments and a step function that breaks the contract give clear errors") {
    TableModel m{{greedy_trap()}};
    const auto start = TableModel::start({0});
    const std::vector<int64_t> s{START};
    CHECK_THROWS_WITH_AS(nn::beam_search(std::ref(m), s, start, {.beam_width = 0}),
                         "beam_search: beam_width 0 must be at least 1", ValueError);
    CHECK_THROWS_WITH_AS(nn::greedy_decode(std::ref(m), s, start, {.max_length = 0}),
                         "greedy_decode: max_length 0 must be at least 1", ValueError);
    CHECK_THROWS_WITH_AS(nn::greedy_decode(std::ref(m), {}, std::vector<TensorD>{}),
                         "greedy_decode: no start tokens (one per source is needed)", ValueError);
    CHECK_THROWS_WITH_AS(nn::greedy_decode(std::ref(m), s, start, {.end_token = -2}),
                         "greedy_decode: end_token -2 is negative (use -1 for none)", ValueError);
    CHECK_THROWS_WITH_AS(nn::greedy_decode(std::ref(m), s, start, {.end_token = 6}),
                         "greedy_decode: end_token 6 is outside the vocabulary [0, 6)", IndexError);
    CHECK_THROWS_WITH_AS(nn::beam_search(std::ref(m), s, start, {.beam_width = 2, .num_return = 3}),
                         "beam_search: num_return 3 is outside [0, beam_width = 2] (0 means beam_width)", ValueError);
    CHECK_THROWS_WITH_AS(nn::beam_search(std::ref(m), s, start, {.length_penalty = NAN}),
                         "beam_search: length_penalty nan is not finite", ValueError);
    CHECK_THROWS_WITH_AS(nn::greedy_decode(std::ref(m), {START, START}, start),
                         "greedy_decode: the initial state tensor 0 has shape [1, 2], expected 2 rows as its first "
                         "dimension", ShapeError);
    Generator gen(1);
    CHECK_THROWS_WITH_AS(nn::sample_decode(std::ref(m), s, start, {.temperature = 0.0}, gen),
                         "sample_decode: temperature 0 must be a positive finite number", ValueError);
    CHECK_THROWS_WITH_AS(nn::sample_decode(std::ref(m), s, start, {.top_k = -1}, gen),
                         "sample_decode: top_k -1 is negative (0 means every token)", ValueError);
    CHECK_THROWS_WITH_AS(nn::sample_token(std::vector<double>{}, {}, gen), "sample_token: no log-probabilities given",
                         ValueError);
    CHECK_THROWS_WITH_AS(nn::sample_token(std::vector<double>{-INFINITY, -INFINITY}, {}, gen),
                         "sample_token: every token has log-probability -inf; there is nothing to draw", ValueError);
    CHECK_THROWS_WITH_AS(nn::sample_token(std::vector<double>{0.0, NAN}, {}, gen),
                         "sample_token: log-probability of token 1 is NaN", ValueError);

    // Step functions that break the contract.
    const auto wrong_rows = [](const std::vector<int64_t>&, const std::vector<TensorD>&) {
        return nn::DecodeStep<double>{TensorD::zeros({3, 4}), {}};
    };
    CHECK_THROWS_WITH_AS(nn::beam_search(wrong_rows, {0}, std::vector<TensorD>{}, {.beam_width = 2}),
                         "beam_search: the step function returned log_probs of shape [3, 4], expected [2, V] (one row per "
                         "token)", ShapeError);
    int calls = 0;
    const auto shrinking = [&calls](const std::vector<int64_t>& t, const std::vector<TensorD>&) {
        return nn::DecodeStep<double>{TensorD::full({static_cast<int64_t>(t.size()), 5 - calls++}, -1.0), {}};
    };
    CHECK_THROWS_WITH_AS(nn::greedy_decode(shrinking, {0}, std::vector<TensorD>{}),
                         "greedy_decode: the step function returned 4 log-probabilities per row after 5 at the first "
                         "step", ShapeError);
    const auto nan = [](const std::vector<int64_t>& t, const std::vector<TensorD>&) {
        TensorD lp = TensorD::zeros({static_cast<int64_t>(t.size()), 3});
        lp(0, 1) = NAN;
        return nn::DecodeStep<double>{lp, {}};
    };
    CHECK_THROWS_WITH_AS(nn::greedy_decode(nan, {0}, std::vector<TensorD>{}),
                         "greedy_decode: the step function returned a NaN log-probability at row 0, token 1", ValueError);
    const auto drops_rows = [](const std::vector<int64_t>& t, const std::vector<TensorD>&) {
        return nn::DecodeStep<double>{TensorD::zeros({static_cast<int64_t>(t.size()), 3}), {TensorD::zeros({1, 7})}};
    };
    CHECK_THROWS_WITH_AS(nn::beam_search(drops_rows, {0}, std::vector<TensorD>{}, {.beam_width = 2}),
                         "beam_search: the step function's returned state tensor 0 has shape [1, 7], expected 2 rows as "
                         "its first dimension", ShapeError);
}

TEST_CASE("decoders record nothing on the tape") {
    TensorD w = TensorD::full({1, 3}, -1.0).requires_grad_();
    bool recording = true;
    const auto step = [&](const std::vector<int64_t>& t, const std::vector<TensorD>&) {
        recording = tapegrad::is_grad_enabled();
        TensorD lp = TensorD::empty({static_cast<int64_t>(t.size()), 3});
        for (int64_t r = 0; r < lp.size(0); ++r)
            for (int64_t v = 0; v < 3; ++v) lp(r, v) = w(0, v);
        return nn::DecodeStep<double>{lp, {}};
    };
    static_cast<void>(nn::greedy_decode(step, {0}, std::vector<TensorD>{}, {.max_length = 2}));
    CHECK_FALSE(recording);
    CHECK(tapegrad::is_grad_enabled());
}
