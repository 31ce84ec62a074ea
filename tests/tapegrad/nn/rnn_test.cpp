// RNN, LSTM, GRU and the cells: outputs and gradients equal PyTorch's for the same weights (reference values
// from tests/interop/make_rnn_reference.py, torch 1.13, double), parameter names and layouts, initialisation,
// dropout between layers, unbatched inputs, errors. Gradchecks: tests/support/rnn_tables.hpp.

#include <tapegrad/tapegrad.hpp>

#include "../../support/check_throws.hpp"
#include "rnn_reference_run.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("RNN, LSTM, GRU and the cells: outputs and gradients equal PyTorch's for the same weights") {
    for (const RnnReference& r : rnn_references()) {
        CAPTURE(r.name);
        auto m = make_module(r);
        set_parameters(*m, r);
        const RefRun run = run_case(*m, r);
        if (!r.out.empty()) {
            CHECK(run.out.shape() == Shape(r.out_shape));
            check_values(r.name + " output", run.out, r.out);
        }
        check_values(r.name + " h_n", run.h_n, r.h_n);
        if (!r.c_n.empty()) check_values(r.name + " c_n", run.c_n, r.c_n);
        check_values(r.name + " d input", run.x.grad(), r.dx);
        if (!r.dh0.empty()) check_values(r.name + " d h0", run.h0.grad(), r.dh0);
        if (!r.dc0.empty()) check_values(r.name + " d c0", run.c0.grad(), r.dc0);
        const auto named = m->named_parameters();
        for (size_t i = 0; i < named.size(); ++i) check_values(r.name + " d " + named[i].first, named[i].second.grad(), r.dparams[i]);
    }
}

TEST_CASE("LSTM: PyTorch's parameter names, shapes and initialisation bound") {
    Generator gen(3);
    nn::LSTM<float> lstm(10, 20, gen, {.num_layers = 2, .bidirectional = true});
    const std::vector<std::string> want{
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
        "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
    const auto named = lstm.named_parameters();
    REQUIRE(named.size() == want.size());
    const float bound = 1.0f / std::sqrt(20.0f);
    float largest = 0.0f;
    for (size_t i = 0; i < want.size(); ++i) {
        CHECK(named[i].first == want[i]);
        for (const float v : named[i].second.span()) largest = std::max(largest, std::abs(v));
    }
    CHECK(largest <= bound);
    CHECK(largest > 0.9f * bound);
    CHECK(lstm.weight_ih(1).shape() == Shape{80, 40});  // the second layer reads both directions
    CHECK(lstm.weight_hh(0, true).shape() == Shape{80, 20});
    CHECK(lstm.describe() == "LSTM(10, 20, num_layers=2, bidirectional=true)");
    nn::GRU<double> gru(4, 5, gen, {.bias = false});
    CHECK(gru.named_parameters().size() == 2);
    CHECK(gru.weight_ih(0).shape() == Shape{15, 4});
    nn::RNNCell<float> cell(3, 6, gen);
    CHECK(cell.named_parameters()[0].first == "weight_ih");
    CHECK(cell.named_parameters()[3].first == "bias_hh");
}

TEST_CASE("RecurrentBase: dropout between layers only in training, unbatched inputs, default states") {
    Generator gen(8);
    nn::GRU<double> gru(3, 4, gen, {.num_layers = 2, .dropout = 0.5});
    const TensorD x = TensorD::uniform({5, 2, 3}, -1.0, 1.0, gen);
    const TensorD a = gru(x), b = gru(x);
    CHECK(a.shape() == Shape{5, 2, 4});
    CHECK(a.to_vector() != b.to_vector());  // fresh masks on each call
    gru.eval();
    const TensorD c = gru(x), d = gru(x);
    CHECK(c.to_vector() == d.to_vector());

    // unbatched [T, in] is batch 1 without the batch dimension
    nn::LSTM<double> lstm(3, 4, gen, {.bidirectional = true});
    const TensorD x1 = slice(x, 1, 0, 1);
    const auto batched = lstm.forward(x1, {});
    const auto single = lstm.forward(reshape(x1, {5, 3}), {});
    CHECK(single.output.shape() == Shape{5, 8});
    CHECK(single.h_n.shape() == Shape{2, 4});
    CHECK(single.c_n.shape() == Shape{2, 4});
    CHECK(single.output.to_vector() == batched.output.to_vector());
    CHECK(single.h_n.to_vector() == batched.h_n.to_vector());
    // an explicit zero state is the default state
    const auto zero = lstm.forward(x1, {TensorD::zeros({2, 1, 4}), TensorD::zeros({2, 1, 4})});
    CHECK(zero.output.to_vector() == batched.output.to_vector());
    // GRU and RNN have no cell state
    CHECK_FALSE(gru.forward(x, {}).c_n.defined());
}

TEST_CASE("LSTM with batch_first equals the time-major LSTM on the transposed input") {
    Generator gen(12);
    nn::LSTM<double> tm(3, 4, gen, {.num_layers = 2});
    nn::LSTM<double> bf(3, 4, gen, {.num_layers = 2, .batch_first = true});
    const auto src = tm.named_parameters();
    const auto dst = bf.named_parameters();
    for (size_t i = 0; i < src.size(); ++i) std::copy(src[i].second.span().begin(), src[i].second.span().end(), dst[i].second.data());
    const TensorD x = TensorD::uniform({2, 5, 3}, -1.0, 1.0, gen);
    const SequenceLengths<> lengths{3, 5};
    const auto a = bf.forward(x, {}, lengths);
    const auto b = tm.forward(transpose(x, 0, 1), {}, lengths);
    CHECK(a.output.shape() == Shape{2, 5, 4});
    CHECK(a.output.to_vector() == transpose(b.output, 0, 1).to_vector());
    CHECK(a.h_n.to_vector() == b.h_n.to_vector());
}

TEST_CASE("recurrent modules: bad inputs name the module and the shapes") {
    Generator gen(2);
    nn::LSTM<float> lstm(3, 4, gen, {.num_layers = 2});
    check_throws<ShapeError>([&] { (void)lstm(TensorF::zeros({5, 2, 7})); }, "LSTM: input shape [5, 2, 7] does not end in input_size 3");
    check_throws<ShapeError>([&] { (void)lstm(TensorF::zeros({5})); }, "LSTM: input must be [T, B, 3]");
    check_throws<ShapeError>([&] { (void)lstm.forward(TensorF::zeros({5, 2, 3}), {TensorF::zeros({1, 2, 4}), {}}); },
                             "LSTM: initial hidden state shape [1, 2, 4] should be [2, 2, 4]");
    nn::GRU<float> gru(3, 4, gen);
    check_throws<ValueError>([&] { (void)gru.forward(TensorF::zeros({5, 2, 3}), {{}, TensorF::zeros({1, 2, 4})}); },
                             "GRU: only an LSTM takes an initial cell state");
    check_throws<ValueError>([&] { nn::RNN<float> bad(3, 4, gen, {.num_layers = 0}); }, "RNN: num_layers must be at least 1, got 0");
    check_throws<ValueError>([&] { nn::GRU<float> bad(3, 4, gen, {.dropout = 1.0}); }, "GRU: dropout must be in [0, 1), got 1");
    check_throws<IndexError>([&] { (void)lstm.weight_ih(0, true); }, "LSTM: no layer 0 (reverse)");
    nn::LSTMCell<float> cell(3, 4, gen);
    check_throws<ShapeError>([&] { (void)cell(TensorF::zeros({2, 5})); }, "LSTMCell: input must be [B, 3] or [3], got shape [2, 5]");
    check_throws<ShapeError>([&] { (void)cell.forward(TensorF::zeros({2, 3}), {TensorF::zeros({3, 4}), {}}); },
                             "LSTMCell: hidden state shape [3, 4] should be [2, 4]");
}
