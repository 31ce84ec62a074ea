#pragma once
// Recurrent cells for the sequence lessons (char_lm, seq2seq), written from the library's ops: matmul,
// slice, sigmoid, tanh, + and *. Autograd differentiates them through time, so backpropagation through time
// is just `loss.backward()` over the unrolled steps. Parameters are named and laid out as PyTorch's
// RNNCell / LSTMCell / GRUCell (weight_ih [G*H, in], weight_hh [G*H, H], bias_ih, bias_hh [G*H]; gate order
// i, f, g, o for the LSTM and r, z, n for the GRU, with b_hn inside the reset product), initialised
// uniformly in [-1/sqrt(H), 1/sqrt(H)] as PyTorch does.
//
// (The library's own nn::RNN / LSTM / GRU with fused kernels were being written alongside these lessons;
// these cells are the lesson's readable version of the same equations.)

#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace examples {

enum class CellKind { rnn, lstm, gru };

inline const char* cell_name(CellKind k) { return k == CellKind::rnn ? "rnn" : k == CellKind::lstm ? "lstm" : "gru"; }
inline CellKind parse_cell(const std::string& s) {
    if (s == "rnn") return CellKind::rnn;
    if (s == "lstm") return CellKind::lstm;
    if (s == "gru") return CellKind::gru;
    throw std::invalid_argument("'" + s + "' is not a cell (expected rnn, lstm or gru)");
}

/// The recurrent state: h, and for the LSTM also the cell c (undefined otherwise). Each [B, H].
struct RecurrentState {
    tapegrad::TensorF h, c;
};

/// One recurrent cell. Its input projection x W_ih^T + b_ih does not depend on the state, so a layer
/// computes it for all time steps in one product (`project`) and the loop only adds h W_hh^T + b_hh.
class RecurrentCell : public tapegrad::nn::Module<float> {
public:
    RecurrentCell(CellKind kind, int64_t input, int64_t hidden, tapegrad::Generator& gen)
        : kind_(kind), hidden_(hidden) {
        const int64_t g = gates() * hidden;
        const auto k = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hidden)));
        weight_ih = register_parameter("weight_ih", tapegrad::TensorF::uniform({g, input}, -k, k, gen));
        weight_hh = register_parameter("weight_hh", tapegrad::TensorF::uniform({g, hidden}, -k, k, gen));
        bias_ih = register_parameter("bias_ih", tapegrad::TensorF::uniform({g}, -k, k, gen));
        bias_hh = register_parameter("bias_hh", tapegrad::TensorF::uniform({g}, -k, k, gen));
    }

    [[nodiscard]] int64_t gates() const { return kind_ == CellKind::rnn ? 1 : kind_ == CellKind::lstm ? 4 : 3; }
    [[nodiscard]] int64_t hidden() const { return hidden_; }
    [[nodiscard]] CellKind kind() const { return kind_; }

    /// x [N, input] -> x W_ih^T + b_ih [N, G*H].
    tapegrad::TensorF project(const tapegrad::TensorF& x) const { return tapegrad::linear(x, weight_ih, bias_ih); }

    /// A zero state for a batch of `batch` rows.
    [[nodiscard]] RecurrentState zero_state(int64_t batch) const {
        RecurrentState s{tapegrad::TensorF::zeros({batch, hidden_}), {}};
        if (kind_ == CellKind::lstm) s.c = tapegrad::TensorF::zeros({batch, hidden_});
        return s;
    }

    /// One time step from the projected input gi [B, G*H] and the state.
    ///   rnn:  h' = tanh(gi + h W_hh^T + b_hh)
    ///   lstm: i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (gi + h W_hh^T + b_hh), in four slices;
    ///         c' = f c + i g;  h' = o tanh(c')
    ///   gru:  r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z);  n = tanh(gi_n + r gh_n);  h' = n + z (h - n)
    RecurrentState step(const tapegrad::TensorF& gi, const RecurrentState& s) const {
        using tapegrad::sigmoid;
        using tapegrad::slice;
        using tapegrad::tanh;
        const int64_t H = hidden_;
        const tapegrad::TensorF gh = tapegrad::linear(s.h, weight_hh, bias_hh);
        switch (kind_) {
            case CellKind::rnn:
                return {tanh(gi + gh), {}};
            case CellKind::lstm: {
                const tapegrad::TensorF g = gi + gh;
                const auto i = sigmoid(slice(g, 1, 0, H)), f = sigmoid(slice(g, 1, H, 2 * H));
                const auto c = f * s.c + i * tanh(slice(g, 1, 2 * H, 3 * H));
                return {sigmoid(slice(g, 1, 3 * H, 4 * H)) * tanh(c), c};
            }
            case CellKind::gru: {
                const auto r = sigmoid(slice(gi, 1, 0, H) + slice(gh, 1, 0, H));
                const auto z = sigmoid(slice(gi, 1, H, 2 * H) + slice(gh, 1, H, 2 * H));
                const auto n = tanh(slice(gi, 1, 2 * H, 3 * H) + r * slice(gh, 1, 2 * H, 3 * H));
                return {n + z * (s.h - n), {}};
            }
        }
        return {};
    }

    tapegrad::TensorF forward(const tapegrad::TensorF& x) override { return project(x); }

    tapegrad::TensorF weight_ih, weight_hh, bias_ih, bias_hh;

private:
    CellKind kind_;
    int64_t hidden_;
};

/// Row-major one-hot rows: ids [N] over `classes` -> [N, classes]. Multiplying it by an embedding matrix
/// [classes, E] picks rows, which is what an embedding lookup is (and its gradient adds into those rows).
inline tapegrad::TensorF one_hot(const std::vector<int64_t>& ids, int64_t classes) {
    tapegrad::TensorF t = tapegrad::TensorF::zeros({static_cast<int64_t>(ids.size()), classes});
    for (size_t i = 0; i < ids.size(); ++i) t.data()[static_cast<int64_t>(i) * classes + ids[i]] = 1.0f;
    return t;
}

}  // namespace examples
