#pragma once
/// \file
/// Recurrent layers as functions: one layer and one direction of an Elman RNN (tanh or relu), an LSTM or a
/// GRU over a whole sequence, as ONE recorded op (`rnn_layer`). The modules nn::RNN, nn::LSTM, nn::GRU and the
/// cells (nn/rnn.hpp) stack these.
///
/// The fast path, written once over backend::Ops<D> (so the same loop runs on the CPU and a GPU):
///  - the input projection of every time step, x W_ih^T + biases, is one matrix product before the loop,
///    written straight into the gate buffer;
///  - each step adds h_prev W_hh^T for all gates in one product, then one fused primitive applies the gate
///    nonlinearities and the state update (backend::Ops<D>::lstm_cell_forward and its siblings);
///  - the gates of every step are kept in one buffer, so the backward through time runs the fused adjoint
///    and one product per step, and the weight gradients are three products over all steps at the end:
///    no per-step tensors, no per-step graph nodes.
///  - a backend may run the whole time loop in one call instead (backend::RnnSteps): the CPU does for floats
///    in its packed layout (FMA targets, OpenMP programs), where the threads share every step, each owning a
///    range of hidden units, with one barrier per step (backend/cpu/rnn.hpp). There each step's input
///    projection and biases, and after the last step dx and the weight gradients, are computed inside the
///    loop too, by the threads already running it. Results do not depend on the thread count.
///
/// Variable-length batches follow torch.nn.utils.rnn.pack_padded_sequence: with lengths, row b runs steps
/// 0 .. lengths[b]-1 only; its outputs past that are 0, its final state is the state after its own last
/// step, and the reverse direction starts at its own last step (t = lengths[b] - 1) from the initial state.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/backend/common/rnn_steps.hpp>
#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/shape.hpp>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tapegrad {

/// Which recurrence a layer runs.
enum class RnnMode {
    rnn_tanh,  ///< h = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
    rnn_relu,  ///< h = relu(...)
    lstm,      ///< gates i, f, g, o (PyTorch's order); c = f c + i g, h = o tanh(c)
    gru,       ///< gates r, z, n; n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)), h = (1 - z) n + z h
};

/// Gate blocks per mode: 1, 4 (LSTM), 3 (GRU).
[[nodiscard]] inline int64_t rnn_gate_count(RnnMode m) noexcept {
    return m == RnnMode::lstm ? 4 : m == RnnMode::gru ? 3 : 1;
}
/// The mode's name in error messages.
[[nodiscard]] inline const char* rnn_mode_name(RnnMode m) noexcept {
    switch (m) {
        case RnnMode::rnn_tanh: return "rnn_tanh";
        case RnnMode::rnn_relu: return "rnn_relu";
        case RnnMode::lstm: return "lstm";
        case RnnMode::gru: return "gru";
    }
    return "rnn";
}

/// The lengths of the sequences of a padded batch (pack_padded_sequence's `lengths`), held on the host and,
/// for another device, uploaded once where the primitives read them. Each length is in [0, T]; an
/// undefined (default) SequenceLengths means every sequence has the full length T.
template <Device D = Cpu>
class SequenceLengths {
public:
    SequenceLengths() = default;
    /// Takes the lengths of a batch, one per sequence. Throws ValueError for a negative length.
    explicit SequenceLengths(std::vector<int64_t> lengths)
        : host_(std::make_shared<const std::vector<int64_t>>(std::move(lengths))) {
        for (size_t b = 0; b < host_->size(); ++b)
            TAPEGRAD_CHECK((*host_)[b] >= 0, ValueError, "SequenceLengths: length ", (*host_)[b], " of sequence ", b,
                           " is negative");
        if constexpr (!HostAccessible<D>) {
            const auto n = static_cast<int64_t>(host_->size());
            int64_t* p = backend::Ops<D>::template allocate<int64_t>(n);
            device_ = std::shared_ptr<int64_t>(p, [n](int64_t* q) { backend::Ops<D>::deallocate(q, n); });
            backend::Ops<D>::upload(n, host_->data(), p);
        }
    }
    SequenceLengths(std::initializer_list<int64_t> lengths) : SequenceLengths(std::vector<int64_t>(lengths)) {}

    /// False for the default "every sequence is full length".
    [[nodiscard]] bool defined() const noexcept { return host_ != nullptr; }
    /// The number of sequences (0 when undefined).
    [[nodiscard]] int64_t size() const noexcept { return host_ ? static_cast<int64_t>(host_->size()) : 0; }
    /// Length of sequence b (on the host).
    [[nodiscard]] int64_t operator[](int64_t b) const { return (*host_)[static_cast<size_t>(b)]; }
    /// The lengths where device D reads them, or null when undefined. Copies share them.
    [[nodiscard]] const int64_t* data() const noexcept {
        if (!host_) return nullptr;
        if constexpr (HostAccessible<D>)
            return host_->data();
        else
            return device_.get();
    }

private:
    std::shared_ptr<const std::vector<int64_t>> host_;
    std::shared_ptr<int64_t> device_;
};

namespace detail {

/// Checks one layer's arguments; returns the hidden size H.
template <Scalar T, Device D>
int64_t check_rnn_layer(RnnMode mode, const Tensor<T, D>& x, const Tensor<T, D>& w_ih, const Tensor<T, D>& w_hh,
                        const Tensor<T, D>& b_ih, const Tensor<T, D>& b_hh, const Tensor<T, D>& h0,
                        const Tensor<T, D>& c0, const SequenceLengths<D>& lengths) {
    const char* op = rnn_mode_name(mode);
    TAPEGRAD_CHECK(x.dim() == 3, ShapeError, op, ": input must be [T, B, input_size], got shape ", x.shape());
    const int64_t steps = x.size(0), batch = x.size(1), in = x.size(2), G = rnn_gate_count(mode);
    TAPEGRAD_CHECK(w_hh.dim() == 2 && w_hh.size(0) % G == 0 && w_hh.size(1) * G == w_hh.size(0), ShapeError, op,
                   ": weight_hh must be [", G, "*hidden, hidden], got shape ", w_hh.shape());
    const int64_t H = w_hh.size(1);
    TAPEGRAD_CHECK(w_ih.shape() == (Shape{G * H, in}), ShapeError, op, ": weight_ih shape ", w_ih.shape(),
                   " should be [", G * H, ", ", in, "] for input of shape ", x.shape(), " and hidden size ", H);
    TAPEGRAD_CHECK(b_ih.defined() == b_hh.defined(), ValueError, op, ": give both biases or neither");
    if (b_ih.defined())
        TAPEGRAD_CHECK(b_ih.shape() == Shape{G * H} && b_hh.shape() == Shape{G * H}, ShapeError, op,
                       ": biases must be [", G * H, "], got ", b_ih.shape(), " and ", b_hh.shape());
    if (h0.defined())
        TAPEGRAD_CHECK(h0.shape() == (Shape{batch, H}), ShapeError, op, ": initial hidden state shape ", h0.shape(),
                       " should be [", batch, ", ", H, "]");
    if (mode == RnnMode::lstm) {
        if (c0.defined())
            TAPEGRAD_CHECK(c0.shape() == (Shape{batch, H}), ShapeError, op, ": initial cell state shape ",
                           c0.shape(), " should be [", batch, ", ", H, "]");
    } else {
        TAPEGRAD_CHECK(!c0.defined(), ValueError, op, ": only an LSTM takes an initial cell state");
    }
    if (lengths.defined()) {
        TAPEGRAD_CHECK(lengths.size() == batch, ShapeError, op, ": ", lengths.size(), " lengths given for a batch of ",
                       batch, " sequences");
        for (int64_t b = 0; b < batch; ++b)
            TAPEGRAD_CHECK(lengths[b] <= steps, ValueError, op, ": length ",
                           lengths[b], " of sequence ", b, " exceeds the ", steps,
                           " time steps of the input");
    }
    return H;
}

}  // namespace detail

/// One layer, one direction, over a whole sequence, as one recorded op.
///  x: [T, B, I] (time-major), w_ih: [G*H, I], w_hh: [G*H, H], b_ih, b_hh: [G*H] or both undefined,
///  h0: [B, H] or undefined (zeros), c0: [B, H] or undefined (LSTM only), lengths: B values in [0, T] or
///  undefined, reverse: run from the last step to the first.  G = rnn_gate_count(mode).
///  -> [T + S, B, H] with S = 2 for an LSTM, 1 otherwise: rows 0..T-1 the outputs h_t (0 past a sequence's
///  length), row T the final hidden state h_n, row T+1 (LSTM) the final cell state c_n. Take them apart
///  with slice(y, 0, ...).
/// Backward through time with the saved gates: the fused adjoint and one product per step, then
///  dx = dG W_ih, dW_ih = dG^T x, dW_hh = dG_h^T h_prev, db = column sums of dG (dG_h differs from dG only
///  in a GRU's n block, which the reset gate scales).
template <Scalar T, Device D>
Tensor<T, D> rnn_layer(RnnMode mode, const Tensor<T, D>& x, const Tensor<T, D>& w_ih, const Tensor<T, D>& w_hh,
                       const Tensor<T, D>& b_ih, const Tensor<T, D>& b_hh, const Tensor<T, D>& h0 = {},
                       const Tensor<T, D>& c0 = {}, const SequenceLengths<D>& lengths = {}, bool reverse = false) {
    using Bk = backend::Ops<D>;
    const int64_t H = detail::check_rnn_layer(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths);
    const int64_t steps = x.size(0), batch = x.size(1), in = x.size(2), G = rnn_gate_count(mode), GH = G * H;
    const bool lstm = mode == RnnMode::lstm, gru = mode == RnnMode::gru, relu = mode == RnnMode::rnn_relu;
    const int64_t S = lstm ? 2 : 1, BH = batch * H, rows = steps * batch;

    // States by time: the step at time t reads row in_row(t) and writes row out_row(t) of hs (and cs), so the
    // rows 0..T-1 (forward) or 1..T (reverse) are each step's h_prev in time order, beside its gates.
    const int64_t first_row = reverse ? steps : 0, final_row = reverse ? 0 : steps, prev_block = reverse ? 1 : 0;
    Tensor<T, D> y = Tensor<T, D>::empty({steps + S, batch, H});
    Tensor<T, D> gates = Tensor<T, D>::empty({rows, GH});
    Tensor<T, D> hs = Tensor<T, D>::empty({steps + 1, batch, H});
    Tensor<T, D> cs = lstm ? Tensor<T, D>::empty({steps + 1, batch, H}) : Tensor<T, D>{};
    Tensor<T, D> hg = gru ? Tensor<T, D>::empty({rows, GH}) : Tensor<T, D>{};

    T* H0 = hs.data_ptr() + first_row * BH;
    if (h0.defined()) Bk::copy(BH, h0.data_ptr(), H0); else Bk::fill(BH, T(0), H0);
    if (lstm) {
        T* C0 = cs.data_ptr() + first_row * BH;
        if (c0.defined()) Bk::copy(BH, c0.data_ptr(), C0); else Bk::fill(BH, T(0), C0);
    }
    const int64_t* len = lengths.data();
    // The time loop: in one call where the backend runs it so (the CPU, for floats in its packed layout: the
    // threads share every step, input projection included), else the projection of all steps as one product
    // and then one product and one fused cell per step. A single step (the cells: nn::LSTMCell and its
    // siblings) takes the latter, since packing the weights pays only across steps.
    const bool packed = steps > 1;
    const auto ptr = [](const Tensor<T, D>& t) -> T* { return t.defined() ? t.data_ptr() : nullptr; };
    backend::RnnSteps<T> plan{.steps = steps, .batch = batch, .hidden = H, .gate_count = G, .input = in,
                              .relu = relu, .reverse = reverse, .lengths = len, .x = x.data_ptr(),
                              .w_ih = w_ih.data_ptr(), .w_hh = w_hh.data_ptr(), .b_ih = ptr(b_ih),
                              .b_hh = ptr(b_hh), .hs = hs.data_ptr(), .cs = ptr(cs), .gates = gates.data_ptr(),
                              .hg = ptr(hg), .y = y.data_ptr()};
    bool looped = false;
    if constexpr (requires { Bk::rnn_steps_forward(plan); })
        looped = packed && Bk::rnn_steps_forward(plan);
    if (!looped) {
        // The recurrent weights as the right operand of every step's product, packed once per call
        // (Bk::pack_right: the CPU's few-row kernel reads its own layout; a GPU reads them as they are).
        Tensor<T, D> w_hh_packed;
        if (packed) {
            w_hh_packed = Tensor<T, D>::empty({H * GH});
            Bk::pack_right(H, GH, transpose(w_hh.detach(), 0, 1).data_ptr(), w_hh_packed.data_ptr());
        }
        const auto recurrent_product = [&](const T* hp, T* out) {  // out += h_prev W_hh^T
            if (packed)
                Bk::gemm_packed(batch, GH, H, T(1), hp, static_cast<const T*>(w_hh_packed.data_ptr()), T(1), out);
            else
                Bk::gemm(false, true, batch, GH, H, T(1), hp, w_hh.data_ptr(), T(1), out);
        };
        Bk::gemm(false, true, rows, GH, in, T(1), x.data_ptr(), w_ih.data_ptr(), T(0), gates.data_ptr());
        if (b_ih.defined()) {
            Bk::add_row_vector(rows, GH, b_ih.data_ptr(), gates.data_ptr());
            if (gru) {
                Bk::fill(rows * GH, T(0), hg.data_ptr());
                Bk::add_row_vector(rows, GH, b_hh.data_ptr(), hg.data_ptr());
            } else {
                Bk::add_row_vector(rows, GH, b_hh.data_ptr(), gates.data_ptr());
            }
        } else if (gru) {
            Bk::fill(rows * GH, T(0), hg.data_ptr());
        }
        for (int64_t k = 0; k < steps; ++k) {
            const int64_t t = reverse ? steps - 1 - k : k;
            const int64_t in_row = reverse ? t + 1 : t, out_row = reverse ? t : t + 1;
            const T* hp = hs.data_ptr() + in_row * BH;
            T* hn = hs.data_ptr() + out_row * BH;
            T* g = gates.data_ptr() + t * batch * GH;
            T* yt = y.data_ptr() + t * BH;
            if (gru) {
                T* hgt = hg.data_ptr() + t * batch * GH;
                recurrent_product(hp, hgt);
                Bk::gru_cell_forward(batch, H, t, len, hp, g, static_cast<const T*>(hgt), hn, yt);
            } else {
                recurrent_product(hp, g);
                if (lstm)
                    Bk::lstm_cell_forward(batch, H, t, len, hp, static_cast<const T*>(cs.data_ptr() + in_row * BH), g,
                                          hn, cs.data_ptr() + out_row * BH, yt);
                else
                    Bk::rnn_cell_forward(batch, H, t, len, relu, hp, g, hn, yt);
            }
        }
    }
    Bk::copy(BH, hs.data_ptr() + final_row * BH, y.data_ptr() + steps * BH);
    if (lstm) Bk::copy(BH, cs.data_ptr() + final_row * BH, y.data_ptr() + (steps + 1) * BH);

    if (detail::needs_grad(x, w_ih, w_hh, b_ih, b_hh, h0, c0)) {
        detail::record(
            y, rnn_mode_name(mode), {&x, &w_ih, &w_hh, &b_ih, &b_hh, &h0, &c0},
            [=](const Tensor<T, D>& dy) {
                const int64_t* lens = lengths.data();
                const T* dY = dy.data_ptr();
                Tensor<T, D> dh = Tensor<T, D>::empty({batch, H});
                Bk::copy(BH, dY + steps * BH, dh.data_ptr());
                Tensor<T, D> dc;
                if (lstm) {
                    dc = Tensor<T, D>::empty({batch, H});
                    Bk::copy(BH, dY + (steps + 1) * BH, dc.data_ptr());
                }
                Tensor<T, D> dg = Tensor<T, D>::empty({rows, GH});
                Tensor<T, D> dgh = gru ? Tensor<T, D>::empty({rows, GH}) : dg;
                backend::RnnSteps<T> back = plan;
                back.dy = dY;
                back.dh = dh.data_ptr();
                back.dc = ptr(dc);
                back.dg = dg.data_ptr();
                back.dgh = dgh.data_ptr();
                // The input's and the weights' gradients: computed by the backend's loop when it runs, else below.
                bool fresh = false;
                if (x.requires_grad()) {
                    back.dx = detail::grad_buffer_for_overwrite(x, fresh);
                    back.dx_accumulate = !fresh;
                }
                if (w_ih.requires_grad()) {
                    back.dw_ih = detail::grad_buffer_for_overwrite(w_ih, fresh);
                    back.dw_ih_accumulate = !fresh;
                }
                if (w_hh.requires_grad()) {
                    back.dw_hh = detail::grad_buffer_for_overwrite(w_hh, fresh);
                    back.dw_hh_accumulate = !fresh;
                }
                // the column sums of dG and (a GRU's) dG_h, for the biases
                const bool bias_grads = detail::wants_grad(b_ih) || detail::wants_grad(b_hh);
                Tensor<T, D> db = bias_grads ? Tensor<T, D>::empty({gru ? 2 * GH : GH}) : Tensor<T, D>{};
                if (bias_grads) {
                    back.db = db.data_ptr();
                    back.dbh = gru ? db.data_ptr() + GH : nullptr;
                }
                bool looped_back = false;
                if constexpr (requires { Bk::rnn_steps_backward(back); })
                    looped_back = packed && Bk::rnn_steps_backward(back);
                Tensor<T, D> w_hh_back;
                if (packed && !looped_back) {
                    w_hh_back = Tensor<T, D>::empty({GH * H});
                    Bk::pack_right(GH, H, w_hh.data_ptr(), w_hh_back.data_ptr());
                }
                for (int64_t k = steps - 1; k >= 0 && !looped_back; --k) {
                    const int64_t t = reverse ? steps - 1 - k : k;
                    const int64_t in_row = reverse ? t + 1 : t;
                    const T* g = gates.data_ptr() + t * batch * GH;
                    T* dgt = dg.data_ptr() + t * batch * GH;
                    T* dght = dgh.data_ptr() + t * batch * GH;
                    const T* dyt = dY + t * BH;
                    if (lstm)
                        Bk::lstm_cell_backward(batch, H, t, lens, g, static_cast<const T*>(cs.data_ptr() + in_row * BH),
                                               dyt, dh.data_ptr(), dc.data_ptr(), dgt);
                    else if (gru)
                        Bk::gru_cell_backward(batch, H, t, lens, g, static_cast<const T*>(hg.data_ptr() + t * batch * GH),
                                              static_cast<const T*>(hs.data_ptr() + in_row * BH), dyt, dh.data_ptr(),
                                              dgt, dght);
                    else
                        Bk::rnn_cell_backward(batch, H, t, lens, relu, static_cast<const T*>(g), dyt, dh.data_ptr(),
                                              dgt);
                    if (packed)  // dh += dG_h W_hh
                        Bk::gemm_packed(batch, H, GH, T(1), static_cast<const T*>(dght),
                                        static_cast<const T*>(w_hh_back.data_ptr()), T(1), dh.data_ptr());
                    else
                        Bk::gemm(false, false, batch, H, GH, T(1), static_cast<const T*>(dght), w_hh.data_ptr(), T(1),
                                 dh.data_ptr());
                }
                if (detail::wants_grad(h0)) Bk::axpy(BH, T(1), dh.data_ptr(), detail::grad_buffer(h0));
                if (lstm && detail::wants_grad(c0)) Bk::axpy(BH, T(1), dc.data_ptr(), detail::grad_buffer(c0));
                const auto beta = [](bool accumulate) { return accumulate ? T(1) : T(0); };
                if (back.dx != nullptr && !looped_back)
                    Bk::gemm(false, false, rows, in, GH, T(1), dg.data_ptr(), w_ih.data_ptr(), beta(back.dx_accumulate),
                             back.dx);
                if (back.dw_ih != nullptr && !looped_back)
                    Bk::gemm(true, false, GH, in, rows, T(1), dg.data_ptr(), x.data_ptr(), beta(back.dw_ih_accumulate),
                             back.dw_ih);
                if (back.dw_hh != nullptr && !looped_back)
                    Bk::gemm(true, false, GH, H, rows, T(1), dgh.data_ptr(), hs.data_ptr() + prev_block * BH,
                             beta(back.dw_hh_accumulate), back.dw_hh);
                if (bias_grads) {  // db = column sums of dG (b_ih), of dG_h (b_hh: dG itself but in a GRU)
                    if (!looped_back) {
                        Bk::fill(db.numel(), T(0), db.data_ptr());
                        Bk::add_column_sums(rows, GH, dg.data_ptr(), db.data_ptr());
                        if (gru) Bk::add_column_sums(rows, GH, dgh.data_ptr(), db.data_ptr() + GH);
                    }
                    const T* sums[] = {db.data_ptr(), db.data_ptr() + (gru ? GH : 0)};
                    const Tensor<T, D>* biases[] = {&b_ih, &b_hh};
                    for (int i = 0; i < 2; ++i) {
                        if (!detail::wants_grad(*biases[i])) continue;
                        T* g = detail::grad_buffer_for_overwrite(*biases[i], fresh);
                        if (fresh) Bk::copy(GH, sums[i], g); else Bk::axpy(GH, T(1), sums[i], g);
                    }
                }
            });
    }
    return y;
}

}  // namespace tapegrad
