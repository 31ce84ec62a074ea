#pragma once
/// \file
/// Recurrent layers with PyTorch's names, layouts, initialisation and semantics: the cells `RNNCell`,
/// `LSTMCell`, `GRUCell` (one time step) and the sequence modules `RNN` (tanh or relu), `LSTM`, `GRU` with
/// num_layers, bidirectional, batch_first, dropout between layers, optional initial states and variable
/// lengths. A checkpoint saved from one loads into the torch.nn module of the same configuration
/// (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `..._reverse`, `weight_ih_l1`, ...; the cells'
/// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`) and gives the same outputs.
///
/// A recurrent network reads a sequence one step at a time, carrying a state h_t = f(x_t, h_{t-1}) from each
/// step to the next, so the same weights serve every position and any length. The plain (Elman) RNN's
/// gradient through k steps is a product of k Jacobians and fades (or explodes) with distance; the LSTM's
/// cell state c_t = f c_{t-1} + i g is changed additively, under gates the network learns, so gradients can
/// travel far; the GRU gets most of that with two gates and no separate cell.
///
/// Each layer and direction runs as one recorded op with the fused fast path of ops/rnn.hpp.

#include <tapegrad/core/random.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/dropout.hpp>
#include <tapegrad/ops/rnn.hpp>
#include <tapegrad/ops/shape.hpp>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace tapegrad::nn {

/// An Elman RNN's nonlinearity.
enum class RNNNonlinearity { tanh, relu };

/// Options of nn::RNN (torch.nn.RNN's keyword arguments).
struct RNNOptions {
    int64_t num_layers = 1;                               ///< stacked layers, each reading the one below
    RNNNonlinearity nonlinearity = RNNNonlinearity::tanh;  ///< tanh or relu
    bool bias = true;                                     ///< learn b_ih and b_hh
    bool batch_first = false;                             ///< input and output [B, T, *] instead of [T, B, *]
    double dropout = 0.0;  ///< dropout on each layer's output except the last's, in training mode
    bool bidirectional = false;  ///< a second pass from the last step to the first, outputs side by side
};
/// Options of nn::LSTM and nn::GRU (torch.nn.LSTM's and torch.nn.GRU's keyword arguments).
struct RecurrentOptions {
    int64_t num_layers = 1;
    bool bias = true;
    bool batch_first = false;
    double dropout = 0.0;
    bool bidirectional = false;
};
using LSTMOptions = RecurrentOptions;
using GRUOptions = RecurrentOptions;

/// Options of the cells.
struct RNNCellOptions {
    bool bias = true;
    RNNNonlinearity nonlinearity = RNNNonlinearity::tanh;  ///< RNNCell only
};

/// A recurrent state: the hidden state h and, for an LSTM, the cell state c (undefined otherwise). As an
/// initial state either may be undefined (zeros).
template <Scalar T = float, Device D = Cpu>
struct RecurrentState {
    Tensor<T, D> h;
    Tensor<T, D> c;
};

/// What a recurrent module returns (torch's `output, h_n` and `output, (h_n, c_n)`).
template <Scalar T = float, Device D = Cpu>
struct RecurrentOutput {
    Tensor<T, D> output;  ///< [T, B, dirs*H] ([B, T, dirs*H] batch_first; [T, dirs*H] unbatched)
    Tensor<T, D> h_n;     ///< [layers*dirs, B, H] ([layers*dirs, H] unbatched): each sequence's last state
    Tensor<T, D> c_n;     ///< LSTM: the final cell states, as h_n; undefined otherwise
};

/// The common body of RNN, LSTM and GRU: parameters per layer and direction, the stacking, directions,
/// batch_first, dropout and lengths.
template <Scalar T = float, Device D = Cpu>
class RecurrentBase : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;

    /// x: [T, B, input_size] ([B, T, input_size] batch_first, [T, input_size] unbatched) -> output as
    /// RecurrentOutput says. state.h, state.c: [layers*dirs, B, H] ([layers*dirs, H] unbatched) or undefined
    /// (zeros); lengths: B lengths in [0, T] (pack_padded_sequence's semantics: outputs past a length are 0,
    /// h_n and c_n are taken at each sequence's own last step, the reverse direction starts there).
    RecurrentOutput<T, D> forward(const TensorT& x, const RecurrentState<T, D>& state,
                                  const SequenceLengths<D>& lengths = {}) {
        const char* op = kind_;
        TAPEGRAD_CHECK(x.dim() == 3 || x.dim() == 2, ShapeError, op, ": input must be [T, B, ", input_size_,
                       "] (or [B, T, ", input_size_, "] with batch_first, or unbatched [T, ", input_size_,
                       "]), got shape ", x.shape());
        TAPEGRAD_CHECK(x.size(-1) == input_size_, ShapeError, op, ": input shape ", x.shape(),
                       " does not end in input_size ", input_size_);
        TAPEGRAD_CHECK(mode_ == RnnMode::lstm || !state.c.defined(), ValueError, op,
                       ": only an LSTM takes an initial cell state");
        const bool unbatched = x.dim() == 2;
        const int64_t dirs = bidirectional_ ? 2 : 1, L = num_layers_;
        TensorT seq = unbatched ? x.reshape({x.size(0), 1, input_size_}) : (batch_first_ ? transpose(x, 0, 1) : x);
        const int64_t batch = seq.size(1), steps = seq.size(0);
        const auto initial = [&](const TensorT& s, const char* what) -> TensorT {
            if (!s.defined()) return {};
            const Shape want = unbatched ? Shape{L * dirs, hidden_size_} : Shape{L * dirs, batch, hidden_size_};
            TAPEGRAD_CHECK(s.shape() == want, ShapeError, op, ": initial ", what, " state shape ", s.shape(),
                           " should be ", want);
            return unbatched ? s.reshape({L * dirs, 1, hidden_size_}) : s;
        };
        const TensorT h0 = initial(state.h, "hidden"), c0 = initial(state.c, "cell");
        const int64_t S = mode_ == RnnMode::lstm ? 2 : 1;
        // Scratch lists kept between calls (cleared, capacity kept), so a steady-state step allocates nothing.
        std::vector<TensorT>& hn = hn_;
        std::vector<TensorT>& cn = cn_;
        std::vector<TensorT>& outs = outs_;
        hn.clear(), cn.clear();
        for (int64_t l = 0; l < L; ++l) {
            outs.clear();
            for (int64_t d = 0; d < dirs; ++d) {
                const int64_t idx = l * dirs + d;
                const Params& p = params_[static_cast<size_t>(idx)];
                const auto layer_state = [&](const TensorT& s) -> TensorT {
                    return s.defined() ? slice(s, 0, idx, idx + 1).reshape({batch, hidden_size_}) : TensorT{};
                };
                const TensorT z = rnn_layer(mode_, seq, p.w_ih, p.w_hh, p.b_ih, p.b_hh, layer_state(h0),
                                            layer_state(c0), lengths, d == 1);
                outs.push_back(slice(z, 0, 0, steps));
                hn.push_back(slice(z, 0, steps, steps + 1));
                if (S == 2) cn.push_back(slice(z, 0, steps + 1, steps + 2));
            }
            seq = dirs == 2 ? concat(outs, 2) : outs[0];
            if (dropout_ > 0.0 && this->is_training() && l + 1 < L) seq = dropout(seq, dropout_, true, gen_);
        }
        RecurrentOutput<T, D> r;
        r.h_n = hn.size() == 1 ? hn[0] : concat(hn, 0);
        if (S == 2) r.c_n = cn.size() == 1 ? cn[0] : concat(cn, 0);
        if (unbatched) {
            r.output = seq.reshape({steps, dirs * hidden_size_});
            r.h_n = r.h_n.reshape({L * dirs, hidden_size_});
            if (S == 2) r.c_n = r.c_n.reshape({L * dirs, hidden_size_});
        } else {
            r.output = batch_first_ ? transpose(seq, 0, 1) : seq;
        }
        hn.clear(), cn.clear(), outs.clear();
        return r;
    }
    /// The output sequence only, from zero initial states.
    TensorT forward(const TensorT& x) override { return forward(x, RecurrentState<T, D>{}).output; }

    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << kind_ << "(" << input_size_ << ", " << hidden_size_ << ", num_layers=" << num_layers_;
        if (mode_ == RnnMode::rnn_relu) os << ", nonlinearity=relu";
        if (!bias_) os << ", bias=false";
        if (batch_first_) os << ", batch_first=true";
        if (dropout_ > 0.0) os << ", dropout=" << dropout_;
        if (bidirectional_) os << ", bidirectional=true";
        os << ')';
        return os.str();
    }
    [[nodiscard]] int64_t input_size() const noexcept { return input_size_; }
    [[nodiscard]] int64_t hidden_size() const noexcept { return hidden_size_; }
    [[nodiscard]] int64_t num_layers() const noexcept { return num_layers_; }
    [[nodiscard]] bool bidirectional() const noexcept { return bidirectional_; }
    [[nodiscard]] bool batch_first() const noexcept { return batch_first_; }
    [[nodiscard]] RnnMode mode() const noexcept { return mode_; }
    /// weight_ih_l{layer}[_reverse]: [G*H, in] (G = 4 LSTM, 3 GRU, 1 RNN)
    [[nodiscard]] TensorT& weight_ih(int64_t layer, bool reverse = false) { return at(layer, reverse).w_ih; }
    /// weight_hh_l{layer}[_reverse]: [G*H, H]
    [[nodiscard]] TensorT& weight_hh(int64_t layer, bool reverse = false) { return at(layer, reverse).w_hh; }
    /// bias_ih_l{layer}[_reverse]: [G*H] (undefined without bias)
    [[nodiscard]] TensorT& bias_ih(int64_t layer, bool reverse = false) { return at(layer, reverse).b_ih; }
    /// bias_hh_l{layer}[_reverse]: [G*H]
    [[nodiscard]] TensorT& bias_hh(int64_t layer, bool reverse = false) { return at(layer, reverse).b_hh; }
    /// The generator of the dropout between layers (to re-seed it).
    [[nodiscard]] Generator& generator() noexcept { return gen_; }

protected:
    RecurrentBase(RnnMode mode, const char* kind, int64_t input_size, int64_t hidden_size, Generator& gen,
                  const RecurrentOptions& opt)
        : mode_(mode), kind_(kind), input_size_(input_size), hidden_size_(hidden_size), num_layers_(opt.num_layers),
          bias_(opt.bias), batch_first_(opt.batch_first), bidirectional_(opt.bidirectional), dropout_(opt.dropout),
          gen_(gen.next_u64()) {
        TAPEGRAD_CHECK(input_size > 0 && hidden_size > 0, ValueError, kind, ": input_size (", input_size,
                       ") and hidden_size (", hidden_size, ") must be positive");
        TAPEGRAD_CHECK(opt.num_layers >= 1, ValueError, kind, ": num_layers must be at least 1, got ", opt.num_layers);
        TAPEGRAD_CHECK(opt.dropout >= 0.0 && opt.dropout < 1.0, ValueError, kind,
                       ": dropout must be in [0, 1), got ", opt.dropout);
        const int64_t G = rnn_gate_count(mode), dirs = opt.bidirectional ? 2 : 1;
        const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
        const auto make = [&](const std::string& name, const Shape& shape) {
            TensorT t = TensorT::empty(shape);
            init::uniform_(t, -bound, bound, gen);
            return this->register_parameter(name, t);
        };
        for (int64_t l = 0; l < opt.num_layers; ++l) {
            for (int64_t d = 0; d < dirs; ++d) {
                const std::string sfx = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
                const int64_t in = l == 0 ? input_size : hidden_size * dirs;
                Params p;
                p.w_ih = make("weight_ih" + sfx, {G * hidden_size, in});
                p.w_hh = make("weight_hh" + sfx, {G * hidden_size, hidden_size});
                if (opt.bias) {
                    p.b_ih = make("bias_ih" + sfx, {G * hidden_size});
                    p.b_hh = make("bias_hh" + sfx, {G * hidden_size});
                }
                params_.push_back(p);
            }
        }
    }

private:
    struct Params {
        TensorT w_ih, w_hh, b_ih, b_hh;
    };
    Params& at(int64_t layer, bool reverse) {
        TAPEGRAD_CHECK(layer >= 0 && layer < num_layers_ && (!reverse || bidirectional_), IndexError, kind_,
                       ": no layer ", layer, reverse ? " (reverse)" : "", " in a module of ", num_layers_,
                       bidirectional_ ? " bidirectional" : "", " layers");
        return params_[static_cast<size_t>(layer * (bidirectional_ ? 2 : 1) + (reverse ? 1 : 0))];
    }
    RnnMode mode_;
    const char* kind_;
    int64_t input_size_, hidden_size_, num_layers_;
    bool bias_, batch_first_, bidirectional_;
    double dropout_;
    Generator gen_;
    std::vector<Params> params_;
    std::vector<TensorT> hn_, cn_, outs_;
};

/// Elman RNN, torch.nn.RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.
/// x: [T, B, in] -> output [T, B, dirs*H], h_n [layers*dirs, B, H] (see RecurrentBase::forward).
/// Parameters weight_ih_l{k}[_reverse] [H, in or dirs*H], weight_hh_l{k} [H, H], bias_ih_l{k}, bias_hh_l{k}
/// [H], all drawn from U(-1/sqrt(H), 1/sqrt(H)) as PyTorch does.
template <Scalar T = float, Device D = Cpu>
class RNN : public RecurrentBase<T, D> {
public:
    RNN(int64_t input_size, int64_t hidden_size, Generator& gen, RNNOptions opt = {})
        : RecurrentBase<T, D>(opt.nonlinearity == RNNNonlinearity::relu ? RnnMode::rnn_relu : RnnMode::rnn_tanh,
                              "RNN", input_size, hidden_size, gen,
                              RecurrentOptions{opt.num_layers, opt.bias, opt.batch_first, opt.dropout,
                                               opt.bidirectional}) {}
    RNN(int64_t input_size, int64_t hidden_size, RNNOptions opt = {})
        : RNN(input_size, hidden_size, default_generator(), opt) {}
};

/// Long short-term memory, torch.nn.LSTM: gates i, f, g, o (in that order in the weights' rows),
///   i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.), each x_t W_i*^T + b_i* + h_{t-1} W_h*^T + b_h*,
///   c_t = f c_{t-1} + i g,  h_t = o tanh(c_t).
/// x: [T, B, in] -> output [T, B, dirs*H], h_n and c_n [layers*dirs, B, H]. Parameters as RNN's with 4H rows
/// (weight_ih_l0: [4H, in]).
template <Scalar T = float, Device D = Cpu>
class LSTM : public RecurrentBase<T, D> {
public:
    LSTM(int64_t input_size, int64_t hidden_size, Generator& gen, LSTMOptions opt = {})
        : RecurrentBase<T, D>(RnnMode::lstm, "LSTM", input_size, hidden_size, gen, opt) {}
    LSTM(int64_t input_size, int64_t hidden_size, LSTMOptions opt = {})
        : LSTM(input_size, hidden_size, default_generator(), opt) {}
};

/// Gated recurrent unit, torch.nn.GRU: gates r, z, n (in that order in the weights' rows),
///   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr), z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz),
///   n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)),  h_t = (1 - z) n + z h_{t-1}.
/// x: [T, B, in] -> output [T, B, dirs*H], h_n [layers*dirs, B, H]. Parameters as RNN's with 3H rows.
template <Scalar T = float, Device D = Cpu>
class GRU : public RecurrentBase<T, D> {
public:
    GRU(int64_t input_size, int64_t hidden_size, Generator& gen, GRUOptions opt = {})
        : RecurrentBase<T, D>(RnnMode::gru, "GRU", input_size, hidden_size, gen, opt) {}
    GRU(int64_t input_size, int64_t hidden_size, GRUOptions opt = {})
        : GRU(input_size, hidden_size, default_generator(), opt) {}
};

/// The common body of the cells: one time step of the recurrence, over a batch [B, in] or one input [in].
template <Scalar T = float, Device D = Cpu>
class RecurrentCellBase : public Module<T, D> {
public:
    using TensorT = Tensor<T, D>;

    /// x: [B, in] or [in]; state.h, state.c: [B, H] or [H] (as x), or undefined (zeros) -> the next state
    /// (c only for an LSTMCell), each [B, H] or [H].
    RecurrentState<T, D> step(const TensorT& x, const RecurrentState<T, D>& state = {}) {
        const char* op = kind_;
        TAPEGRAD_CHECK((x.dim() == 2 || x.dim() == 1) && x.size(-1) == input_size_, ShapeError, op,
                       ": input must be [B, ", input_size_, "] or [", input_size_, "], got shape ", x.shape());
        TAPEGRAD_CHECK(mode_ == RnnMode::lstm || !state.c.defined(), ValueError, op,
                       ": only an LSTMCell takes a cell state");
        const bool single = x.dim() == 1;
        const int64_t batch = single ? 1 : x.size(0);
        const auto as_batch = [&](const TensorT& s, const char* what) -> TensorT {
            if (!s.defined()) return {};
            const Shape want = single ? Shape{hidden_size_} : Shape{batch, hidden_size_};
            TAPEGRAD_CHECK(s.shape() == want, ShapeError, op, ": ", what, " state shape ", s.shape(), " should be ",
                           want);
            return single ? s.reshape({1, hidden_size_}) : s;
        };
        const TensorT z = rnn_layer(mode_, x.reshape({1, batch, input_size_}), w_ih_, w_hh_, b_ih_, b_hh_,
                                    as_batch(state.h, "hidden"), as_batch(state.c, "cell"));
        const Shape out = single ? Shape{hidden_size_} : Shape{batch, hidden_size_};
        RecurrentState<T, D> next;
        next.h = slice(z, 0, 1, 2).reshape(out);
        if (mode_ == RnnMode::lstm) next.c = slice(z, 0, 2, 3).reshape(out);
        return next;
    }
    /// The next hidden state from a zero state.
    TensorT forward(const TensorT& x) override { return step(x).h; }

    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << kind_ << "(" << input_size_ << ", " << hidden_size_;
        if (mode_ == RnnMode::rnn_relu) os << ", nonlinearity=relu";
        if (!b_ih_.defined()) os << ", bias=false";
        os << ')';
        return os.str();
    }
    [[nodiscard]] int64_t input_size() const noexcept { return input_size_; }
    [[nodiscard]] int64_t hidden_size() const noexcept { return hidden_size_; }
    /// weight_ih: [G*H, in], weight_hh: [G*H, H], bias_ih, bias_hh: [G*H] (G = 4 LSTM, 3 GRU, 1 RNN)
    [[nodiscard]] TensorT& weight_ih() noexcept { return w_ih_; }
    [[nodiscard]] TensorT& weight_hh() noexcept { return w_hh_; }
    [[nodiscard]] TensorT& bias_ih() noexcept { return b_ih_; }
    [[nodiscard]] TensorT& bias_hh() noexcept { return b_hh_; }

protected:
    RecurrentCellBase(RnnMode mode, const char* kind, int64_t input_size, int64_t hidden_size, Generator& gen,
                      bool bias)
        : mode_(mode), kind_(kind), input_size_(input_size), hidden_size_(hidden_size) {
        TAPEGRAD_CHECK(input_size > 0 && hidden_size > 0, ValueError, kind, ": input_size (", input_size,
                       ") and hidden_size (", hidden_size, ") must be positive");
        const int64_t G = rnn_gate_count(mode);
        const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
        const auto make = [&](const char* name, const Shape& shape) {
            TensorT t = TensorT::empty(shape);
            init::uniform_(t, -bound, bound, gen);
            return this->register_parameter(name, t);
        };
        w_ih_ = make("weight_ih", {G * hidden_size, input_size});
        w_hh_ = make("weight_hh", {G * hidden_size, hidden_size});
        if (bias) {
            b_ih_ = make("bias_ih", {G * hidden_size});
            b_hh_ = make("bias_hh", {G * hidden_size});
        }
    }

private:
    RnnMode mode_;
    const char* kind_;
    int64_t input_size_, hidden_size_;
    TensorT w_ih_, w_hh_, b_ih_, b_hh_;
};

/// torch.nn.RNNCell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).  x: [B, in] or [in], h: [B, H] -> h' [B, H]
/// `cell(x)` or `cell.forward(x, h)`.
template <Scalar T = float, Device D = Cpu>
class RNNCell : public RecurrentCellBase<T, D> {
public:
    using TensorT = Tensor<T, D>;
    RNNCell(int64_t input_size, int64_t hidden_size, Generator& gen, RNNCellOptions opt = {})
        : RecurrentCellBase<T, D>(opt.nonlinearity == RNNNonlinearity::relu ? RnnMode::rnn_relu : RnnMode::rnn_tanh,
                                  "RNNCell", input_size, hidden_size, gen, opt.bias) {}
    RNNCell(int64_t input_size, int64_t hidden_size, RNNCellOptions opt = {})
        : RNNCell(input_size, hidden_size, default_generator(), opt) {}
    using RecurrentCellBase<T, D>::forward;
    /// h' from x and h (undefined h: zeros).
    TensorT forward(const TensorT& x, const TensorT& h) { return this->step(x, {h, {}}).h; }
};

/// torch.nn.LSTMCell: one LSTM step (gates i, f, g, o).  x: [B, in], state {h, c}: [B, H] -> {h', c'}.
template <Scalar T = float, Device D = Cpu>
class LSTMCell : public RecurrentCellBase<T, D> {
public:
    using TensorT = Tensor<T, D>;
    LSTMCell(int64_t input_size, int64_t hidden_size, Generator& gen, RNNCellOptions opt = {})
        : RecurrentCellBase<T, D>(RnnMode::lstm, "LSTMCell", input_size, hidden_size, gen, opt.bias) {}
    LSTMCell(int64_t input_size, int64_t hidden_size, RNNCellOptions opt = {})
        : LSTMCell(input_size, hidden_size, default_generator(), opt) {}
    using RecurrentCellBase<T, D>::forward;
    /// {h', c'} from x and {h, c} (undefined: zeros).
    RecurrentState<T, D> forward(const TensorT& x, const RecurrentState<T, D>& state) { return this->step(x, state); }
};

/// torch.nn.GRUCell: one GRU step (gates r, z, n).  x: [B, in], h: [B, H] -> h' [B, H].
template <Scalar T = float, Device D = Cpu>
class GRUCell : public RecurrentCellBase<T, D> {
public:
    using TensorT = Tensor<T, D>;
    GRUCell(int64_t input_size, int64_t hidden_size, Generator& gen, RNNCellOptions opt = {})
        : RecurrentCellBase<T, D>(RnnMode::gru, "GRUCell", input_size, hidden_size, gen, opt.bias) {}
    GRUCell(int64_t input_size, int64_t hidden_size, RNNCellOptions opt = {})
        : GRUCell(input_size, hidden_size, default_generator(), opt) {}
    using RecurrentCellBase<T, D>::forward;
    /// h' from x and h (undefined h: zeros).
    TensorT forward(const TensorT& x, const TensorT& h) { return this->step(x, {h, {}}).h; }
};

}  // namespace tapegrad::nn
