#pragma once
/// \file
/// Runs the PyTorch reference cases of rnn_reference.hpp in tapegrad: the module of a case, its parameters
/// set from the reference's state_dict, its forward on the reference inputs and the reference loss's
/// backward; and a value check that names the worst element. Used by nn/rnn_test.cpp and
/// io/rnn_checkpoint_test.cpp.

#include <tapegrad/tapegrad.hpp>

#include "rnn_reference.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace tapegrad::testing {

using RefModule = nn::Module<double>;

/// The module of a reference case, its parameters set to the reference's state_dict by name.
inline std::shared_ptr<RefModule> make_module(const RnnReference& r) {
    Generator gen(1);
    std::shared_ptr<RefModule> m;
    const nn::RecurrentOptions opt{.num_layers = r.layers, .bias = r.bias, .batch_first = r.batch_first,
                                   .bidirectional = r.bidirectional};
    if (r.kind == "RNN")
        m = std::make_shared<nn::RNN<double>>(
            r.input, r.hidden, gen,
            nn::RNNOptions{.num_layers = r.layers,
                           .nonlinearity = r.relu ? nn::RNNNonlinearity::relu : nn::RNNNonlinearity::tanh,
                           .bias = r.bias, .batch_first = r.batch_first, .bidirectional = r.bidirectional});
    else if (r.kind == "LSTM")
        m = std::make_shared<nn::LSTM<double>>(r.input, r.hidden, gen, opt);
    else if (r.kind == "GRU")
        m = std::make_shared<nn::GRU<double>>(r.input, r.hidden, gen, opt);
    else if (r.kind == "RNNCell")
        m = std::make_shared<nn::RNNCell<double>>(
            r.input, r.hidden, gen,
            nn::RNNCellOptions{.bias = r.bias,
                               .nonlinearity = r.relu ? nn::RNNNonlinearity::relu : nn::RNNNonlinearity::tanh});
    else if (r.kind == "LSTMCell")
        m = std::make_shared<nn::LSTMCell<double>>(r.input, r.hidden, gen, nn::RNNCellOptions{.bias = r.bias});
    else
        m = std::make_shared<nn::GRUCell<double>>(r.input, r.hidden, gen, nn::RNNCellOptions{.bias = r.bias});
    return m;
}

inline void set_parameters(RefModule& m, const RnnReference& r) {
    const auto named = m.named_parameters();
    REQUIRE(named.size() == r.param_names.size());
    for (size_t i = 0; i < named.size(); ++i) {
        CHECK(named[i].first == r.param_names[i]);
        REQUIRE(named[i].second.numel() == static_cast<int64_t>(r.params[i].size()));
        std::copy(r.params[i].begin(), r.params[i].end(), named[i].second.data());
    }
}

inline TensorD tensor_of(const std::vector<double>& v, const Shape& s, bool grad) {
    TensorD t = TensorD::from(s, v);
    if (grad) t.requires_grad_();
    return t;
}

inline void check_values(const std::string& what, const TensorD& got, const std::vector<double>& want, double tol = 1e-10) {
    REQUIRE_MESSAGE(got.defined(), what, " is undefined");
    const std::vector<double> v = got.to_vector();
    REQUIRE_MESSAGE(v.size() == want.size(), what, ": ", v.size(), " values, PyTorch has ", want.size());
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < v.size(); ++i)
        if (std::abs(v[i] - want[i]) > worst) worst = std::abs(v[i] - want[i]), at = i;
    CHECK_MESSAGE(worst <= tol, what, ": element ", at, " is ", v[at], ", PyTorch's ", want[at]);
}

struct RefRun {
    TensorD out, h_n, c_n, x, h0, c0;
};

/// Runs the reference case's module on its inputs (fresh leaves) and backpropagates the reference's loss.
inline RefRun run_case(RefModule& m, const RnnReference& r, bool backward = true) {
    RefRun run;
    const bool cell = r.kind.ends_with("Cell");
    const int64_t dirs = r.bidirectional ? 2 : 1;
    const Shape sx(r.x_shape);
    const Shape ss = cell ? Shape{sx[0], r.hidden} : Shape{r.layers * dirs, r.x_shape[r.batch_first ? 0 : 1], r.hidden};
    run.x = tensor_of(r.x, sx, true);
    if (!r.h0.empty()) run.h0 = tensor_of(r.h0, ss, true);
    if (!r.c0.empty()) run.c0 = tensor_of(r.c0, ss, true);
    if (r.kind == "RNNCell") {
        run.h_n = dynamic_cast<nn::RNNCell<double>&>(m).forward(run.x, run.h0);
    } else if (r.kind == "GRUCell") {
        run.h_n = dynamic_cast<nn::GRUCell<double>&>(m).forward(run.x, run.h0);
    } else if (r.kind == "LSTMCell") {
        const auto s = dynamic_cast<nn::LSTMCell<double>&>(m).forward(run.x, {run.h0, run.c0});
        run.h_n = s.h;
        run.c_n = s.c;
    } else {
        const SequenceLengths<> lengths = r.lengths.empty() ? SequenceLengths<>{} : SequenceLengths<>(r.lengths);
        const auto o = dynamic_cast<nn::RecurrentBase<double>&>(m).forward(run.x, {run.h0, run.c0}, lengths);
        run.out = o.output;
        run.h_n = o.h_n;
        run.c_n = o.c_n;
    }
    if (!backward) return run;
    TensorD loss = sum(run.h_n * tensor_of(r.r_h, run.h_n.shape(), false));
    if (run.out.defined()) loss = loss + sum(run.out * tensor_of(r.r_out, run.out.shape(), false));
    if (run.c_n.defined()) loss = loss + sum(run.c_n * tensor_of(r.r_c, run.c_n.shape(), false));
    loss.backward();
    return run;
}

}  // namespace tapegrad::testing
