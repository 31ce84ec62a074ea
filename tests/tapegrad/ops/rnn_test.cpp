// rnn_layer: the recurrent table (every mode, both directions, lengths, cells, whole modules) gradchecked in
// double on the CPU; the lengths semantics against running each sequence alone; float against double; errors.

#include <tapegrad/tapegrad.hpp>

#include "../../support/check_throws.hpp"
#include "../../support/rnn_tables.hpp"
#include "../test_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

namespace {

/// Row b of a [T, B, H] (or [R, B, H]) tensor's row r.
std::vector<double> row(const TensorD& y, int64_t r, int64_t b) {
    const int64_t B = y.size(1), H = y.size(2);
    const double* p = y.data() + (r * B + b) * H;
    return {p, p + H};
}

void check_same(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK_MESSAGE(std::abs(a[i] - b[i]) < 1e-12, what, " element ", i);
}

}  // namespace

TEST_CASE("rnn table: every mode, direction, lengths, the cells and whole modules pass gradcheck") {
    CHECK(check_table<RnnTable, Cpu>(14000, 3) > 0);
}

TEST_CASE("rnn_layer with lengths: each sequence as if run alone, zero outputs past its length") {
    Generator g(5);
    for (const RnnMode mode : {RnnMode::rnn_tanh, RnnMode::lstm, RnnMode::gru}) {
        for (const bool reverse : {false, true}) {
            CAPTURE(rnn_mode_name(mode));
            CAPTURE(reverse);
            const Inputs in = rnn_layer_inputs(mode, 5, 3, 2, 3)(g);
            const TensorD c0 = mode == RnnMode::lstm ? in[6] : TensorD{};
            const std::vector<int64_t> lens{5, 2, 0};
            const TensorD y = rnn_layer(mode, in[0], in[1], in[2], in[3], in[4], in[5], c0, SequenceLengths<>(lens),
                                        reverse);
            const int64_t S = mode == RnnMode::lstm ? 2 : 1;
            for (int64_t b = 0; b < 3; ++b) {
                const int64_t L = lens[static_cast<size_t>(b)];
                // sequence b alone, cut to its length
                const TensorD xb = slice(slice(in[0], 1, b, b + 1), 0, 0, L);
                const TensorD hb = slice(in[5], 0, b, b + 1);
                const TensorD cb = c0.defined() ? slice(c0, 0, b, b + 1) : TensorD{};
                const TensorD yb = rnn_layer(mode, xb, in[1], in[2], in[3], in[4], hb, cb, {}, reverse);
                for (int64_t t = 0; t < 5; ++t) {
                    if (t < L)
                        check_same(row(y, t, b), row(yb, t, 0), "output");
                    else
                        check_same(row(y, t, b), std::vector<double>(3, 0.0), "padded output");
                }
                for (int64_t s = 0; s < S; ++s) check_same(row(y, 5 + s, b), row(yb, L + s, 0), "final state");
            }
        }
    }
}

TEST_CASE("rnn_layer in float agrees with double (the vectorised gate functions)") {
    Generator g(9);
    for (const RnnMode mode : {RnnMode::rnn_tanh, RnnMode::lstm, RnnMode::gru}) {
        const Inputs in = rnn_layer_inputs(mode, 6, 4, 5, 7)(g);
        std::vector<TensorF> f;
        for (const TensorD& x : in) f.push_back(to_float(x).requires_grad_());
        std::vector<TensorD> d;
        for (const TensorD& x : in) d.push_back(x.clone().detach().requires_grad_());
        const auto run = [mode](const auto& x) {
            using TT = std::decay_t<decltype(x[0])>;
            return rnn_layer(mode, x[0], x[1], x[2], x[3], x[4], x[5], mode == RnnMode::lstm ? x[6] : TT{});
        };
        const TensorF yf = run(f);
        const TensorD yd = run(d);
        const std::vector<float> vf = yf.to_vector();
        const std::vector<double> vd = yd.to_vector();
        for (size_t i = 0; i < vd.size(); ++i) CHECK(std::abs(vf[i] - vd[i]) < 1e-5);
        sum(yf * yf).backward();
        sum(yd * yd).backward();
        for (size_t k = 0; k < in.size(); ++k) {
            const std::vector<float> gf = f[k].grad().to_vector();
            const std::vector<double> gd = d[k].grad().to_vector();
            for (size_t i = 0; i < gd.size(); ++i) CHECK(std::abs(gf[i] - gd[i]) < 1e-4 * (1 + std::abs(gd[i])));
        }
    }
}

TEST_CASE("rnn_layer records one node for a whole sequence") {
    Generator g(3);
    const Inputs in = rnn_layer_inputs(RnnMode::lstm, 50, 2, 3, 4)(g);
    std::vector<TensorD> p;
    for (const TensorD& x : in) p.push_back(x.clone().detach().requires_grad_());
    const int64_t before = live_nodes();
    TensorD y = rnn_layer(RnnMode::lstm, p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
    CHECK(live_nodes() - before == 1);
    CHECK(std::string(y.grad_fn_name()) == "lstm");
}

TEST_CASE("rnn_layer: bad shapes and lengths name the op and the values") {
    Generator g(4);
    const Inputs in = rnn_layer_inputs(RnnMode::lstm, 3, 2, 3, 4)(g);
    check_throws<ShapeError>([&] { (void)rnn_layer(RnnMode::lstm, reshape(in[0], {6, 3}), in[1], in[2], in[3], in[4]); },
                             "lstm: input must be [T, B, input_size], got shape [6, 3]");
    check_throws<ShapeError>([&] { (void)rnn_layer(RnnMode::gru, in[0], in[1], in[2], in[3], in[4]); },
                             "gru: weight_hh must be [3*hidden, hidden], got shape [16, 4]");
    check_throws<ValueError>(
        [&] { (void)rnn_layer(RnnMode::lstm, in[0], in[1], in[2], in[3], in[4], in[5], in[6], SequenceLengths<>{3, 4}); },
        "lstm: length 4 of sequence 1 exceeds the 3 time steps");
    check_throws<ShapeError>(
        [&] { (void)rnn_layer(RnnMode::lstm, in[0], in[1], in[2], in[3], in[4], in[5], in[6], SequenceLengths<>{3}); },
        "lstm: 1 lengths given for a batch of 2 sequences");
    check_throws<ValueError>([&] { (void)SequenceLengths<>({2, -1}); }, "length -1 of sequence 1 is negative");
    check_throws<ShapeError>(
        [&] { (void)rnn_layer(RnnMode::lstm, in[0], in[1], in[2], in[3], in[4], reshape(in[5], {1, 8})); },
        "lstm: initial hidden state shape [1, 8] should be [2, 4]");
    check_throws<ShapeError>([&] { (void)rnn_layer(RnnMode::lstm, in[0], in[2], in[2], in[3], in[4]); },
                             "lstm: weight_ih shape [16, 4] should be [16, 3]");
}
