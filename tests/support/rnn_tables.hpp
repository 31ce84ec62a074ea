#pragma once
/// \file
/// The recurrent ops and modules as a device-generic table (see tests/support/device_ops.hpp): run on the CPU
/// by tests/tapegrad/ops/rnn_test.cpp and on CUDA by tests/cuda/rnn_test.cpp. Every row is gradchecked in
/// double with respect to all of its inputs -- the sequence, the initial states and every weight and bias --
/// and, on another device, compared with the CPU in float.
///
/// Module rows build the module with fixed options and put the row's inputs in place of its parameters
/// (the accessors return the handles the forward uses), so the whole module -- layers, directions,
/// batch_first, lengths, the final states -- is what the finite difference checks.

#include "device_ops.hpp"

#include <tapegrad/tapegrad.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tapegrad::testing {

/// Uniform in [-1, 1], as the other rows, scaled so the gates stay away from saturation.
inline double rnn_value(Generator& g) { return -0.8 + 1.6 * g.uniform01<double>(); }

/// Inputs of one rnn_layer row: x [T, B, I], w_ih [G*H, I], w_hh [G*H, H], b_ih, b_hh [G*H], h0 [B, H]
/// and, for an LSTM, c0 [B, H].
inline std::function<Inputs(Generator&)> rnn_layer_inputs(RnnMode mode, int64_t T, int64_t B, int64_t I, int64_t H) {
    return [=](Generator& g) {
        const int64_t G = rnn_gate_count(mode);
        Inputs xs{random_tensor({T, B, I}, g, rnn_value), random_tensor({G * H, I}, g, rnn_value),
                  random_tensor({G * H, H}, g, rnn_value), random_tensor({G * H}, g, rnn_value),
                  random_tensor({G * H}, g, rnn_value), random_tensor({B, H}, g, rnn_value)};
        if (mode == RnnMode::lstm) xs.push_back(random_tensor({B, H}, g, rnn_value));
        return xs;
    };
}

/// The options of a module row.
struct RnnModuleSpec {
    RnnMode mode;
    int64_t input, hidden, layers;
    bool bidirectional, batch_first;
    std::vector<int64_t> lengths;  ///< empty: full length
    int64_t T, B;
};

/// Inputs of a module row: x, h0 (and c0), then every parameter in state_dict order.
inline std::function<Inputs(Generator&)> rnn_module_inputs(RnnModuleSpec s) {
    return [s](Generator& g) {
        const int64_t G = rnn_gate_count(s.mode), dirs = s.bidirectional ? 2 : 1;
        Inputs xs{random_tensor(s.batch_first ? Shape{s.B, s.T, s.input} : Shape{s.T, s.B, s.input}, g, rnn_value),
                  random_tensor({s.layers * dirs, s.B, s.hidden}, g, rnn_value)};
        if (s.mode == RnnMode::lstm) xs.push_back(random_tensor({s.layers * dirs, s.B, s.hidden}, g, rnn_value));
        for (int64_t l = 0; l < s.layers; ++l)
            for (int64_t d = 0; d < dirs; ++d) {
                const int64_t in = l == 0 ? s.input : s.hidden * dirs;
                xs.push_back(random_tensor({G * s.hidden, in}, g, rnn_value));
                xs.push_back(random_tensor({G * s.hidden, s.hidden}, g, rnn_value));
                xs.push_back(random_tensor({G * s.hidden}, g, rnn_value));
                xs.push_back(random_tensor({G * s.hidden}, g, rnn_value));
            }
        return xs;
    };
}

/// Runs the module of `s` with the row's inputs as its parameters; returns output, h_n (and c_n) flattened
/// and joined.
template <class T, class D>
Tensor<T, D> run_rnn_module(const RnnModuleSpec& s, const std::vector<Tensor<T, D>>& x) {
    Generator gen(1);
    const nn::RecurrentOptions opt{.num_layers = s.layers, .batch_first = s.batch_first, .bidirectional = s.bidirectional};
    std::unique_ptr<nn::RecurrentBase<T, D>> m;
    if (s.mode == RnnMode::lstm)
        m = std::make_unique<nn::LSTM<T, D>>(s.input, s.hidden, gen, opt);
    else if (s.mode == RnnMode::gru)
        m = std::make_unique<nn::GRU<T, D>>(s.input, s.hidden, gen, opt);
    else
        m = std::make_unique<nn::RNN<T, D>>(
            s.input, s.hidden, gen,
            nn::RNNOptions{.num_layers = s.layers,
                           .nonlinearity = s.mode == RnnMode::rnn_relu ? nn::RNNNonlinearity::relu
                                                                       : nn::RNNNonlinearity::tanh,
                           .batch_first = s.batch_first,
                           .bidirectional = s.bidirectional});
    const bool lstm = s.mode == RnnMode::lstm;
    size_t k = lstm ? 3 : 2;
    for (int64_t l = 0; l < s.layers; ++l)
        for (int64_t d = 0; d < (s.bidirectional ? 2 : 1); ++d) {
            m->weight_ih(l, d == 1) = x[k++];
            m->weight_hh(l, d == 1) = x[k++];
            m->bias_ih(l, d == 1) = x[k++];
            m->bias_hh(l, d == 1) = x[k++];
        }
    const SequenceLengths<D> lengths = s.lengths.empty() ? SequenceLengths<D>{} : SequenceLengths<D>(s.lengths);
    const nn::RecurrentOutput<T, D> r = m->forward(x[0], {x[1], lstm ? x[2] : Tensor<T, D>{}}, lengths);
    std::vector<Tensor<T, D>> parts{flatten(r.output), flatten(r.h_n)};
    if (lstm) parts.push_back(flatten(r.c_n));
    return concat(parts, 0);
}

/// rnn_layer in every mode, both directions, with and without lengths; the cells; and whole modules.
struct RnnTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        DeviceTable<T, D> table;
        const RnnMode modes[] = {RnnMode::rnn_tanh, RnnMode::rnn_relu, RnnMode::lstm, RnnMode::gru};
        for (const RnnMode mode : modes) {
            for (const bool reverse : {false, true}) {
                for (const bool with_lengths : {false, true}) {
                    std::string name = std::string("rnn_layer ") + rnn_mode_name(mode) + (reverse ? " reverse" : "") +
                                       (with_lengths ? " with lengths" : "");
                    const int64_t G = rnn_gate_count(mode);
                    table.push_back(
                        {name, rnn_layer_inputs(mode, 4, 3, 3, 2),
                         [mode, reverse, with_lengths](const std::vector<Tensor<T, D>>& x) {
                             const SequenceLengths<D> lengths =
                                 with_lengths ? SequenceLengths<D>({4, 2, 0}) : SequenceLengths<D>{};
                             return rnn_layer(mode, x[0], x[1], x[2], x[3], x[4], x[5],
                                              mode == RnnMode::lstm ? x[6] : Tensor<T, D>{}, lengths, reverse);
                         },
                         static_cast<double>(3 + 2 * G)});
                }
            }
        }
        // A cell is a one-step layer; the modules' cells call it so.
        table.push_back({"LSTMCell step", rnn_layer_inputs(RnnMode::lstm, 1, 3, 4, 3),
                         [](const std::vector<Tensor<T, D>>& x) {
                             Generator gen(1);
                             nn::LSTMCell<T, D> cell(4, 3, gen);
                             cell.weight_ih() = x[1], cell.weight_hh() = x[2], cell.bias_ih() = x[3],
                             cell.bias_hh() = x[4];
                             const nn::RecurrentState<T, D> s =
                                 cell.forward(reshape(x[0], {3, 4}), nn::RecurrentState<T, D>{x[5], x[6]});
                             return concat({s.h, s.c}, 0);
                         },
                         16});
        table.push_back({"GRUCell step", rnn_layer_inputs(RnnMode::gru, 1, 3, 4, 3),
                         [](const std::vector<Tensor<T, D>>& x) {
                             Generator gen(1);
                             nn::GRUCell<T, D> cell(4, 3, gen);
                             cell.weight_ih() = x[1], cell.weight_hh() = x[2], cell.bias_ih() = x[3],
                             cell.bias_hh() = x[4];
                             return cell.forward(reshape(x[0], {3, 4}), x[5]);
                         },
                         16});
        table.push_back({"RNNCell step (relu)", rnn_layer_inputs(RnnMode::rnn_relu, 1, 3, 4, 3),
                         [](const std::vector<Tensor<T, D>>& x) {
                             Generator gen(1);
                             nn::RNNCell<T, D> cell(4, 3, gen, {.nonlinearity = nn::RNNNonlinearity::relu});
                             cell.weight_ih() = x[1], cell.weight_hh() = x[2], cell.bias_ih() = x[3],
                             cell.bias_hh() = x[4];
                             return cell.forward(reshape(x[0], {3, 4}), x[5]);
                         },
                         16});
        const RnnModuleSpec specs[] = {
            {RnnMode::lstm, 3, 2, 2, true, false, {4, 1, 3}, 4, 3},
            {RnnMode::lstm, 2, 3, 1, false, true, {}, 3, 2},
            {RnnMode::gru, 3, 2, 2, true, true, {2, 4, 3}, 4, 3},
            {RnnMode::rnn_tanh, 2, 3, 2, true, false, {3, 1}, 3, 2},
        };
        for (const RnnModuleSpec& s : specs) {
            std::string name = std::string("module ") + rnn_mode_name(s.mode) + ", " + std::to_string(s.layers) +
                               " layers" + (s.bidirectional ? ", bidirectional" : "") +
                               (s.batch_first ? ", batch_first" : "") + (s.lengths.empty() ? "" : ", lengths");
            table.push_back({name, rnn_module_inputs(s),
                             [s](const std::vector<Tensor<T, D>>& x) { return run_rnn_module<T, D>(s, x); }, 64});
        }
        return table;
    }
};

}  // namespace tapegrad::testing
