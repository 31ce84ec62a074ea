#pragma once
/// \file
/// Double backward over every op table of op_tables.hpp: which rows must pass gradgradcheck, and which must
/// throw "double backward is not supported for '<op>'" because an op on their path has no differentiable
/// backward yet. A row not listed here must pass; a new op is covered by the table it is added to.

#include "attention_tables.hpp"
#include "index_tables.hpp"
#include "op_tables.hpp"
#include "rnn_tables.hpp"

#include <string>
#include <vector>

namespace tapegrad::testing {

/// A row name prefix and the ops one of which the error of a row starting with it names.
struct NoDoubleBackward {
    std::string row_prefix;
    std::vector<std::string> ops;
};

/// The rows whose second derivative is not implemented (the first-order gradient works; differentiating
/// it throws). Everything else in the tables has a double backward.
inline const std::vector<NoDoubleBackward>& no_double_backward_rows() {
    static const std::vector<NoDoubleBackward> rows = {
        {"conv2d", {"conv2d", "max_pool2d"}},
        {"max_pool2d", {"max_pool2d"}},
        {"avg_pool2d", {"avg_pool2d"}},
        {"adaptive_avg_pool2d", {"adaptive_avg_pool2d"}},
        {"global_avg_pool2d", {"global_avg_pool2d", "adaptive_avg_pool2d"}},
        {"batch_norm", {"batch_norm"}},
        {"LeNet-style", {"conv2d", "max_pool2d"}},
        {"nn::BatchNorm", {"batch_norm"}},
        {"layer_norm", {"layer_norm"}},
        {"masked_softmax", {"masked_softmax"}},
        {"sdpa", {"scaled_dot_product_attention"}},
        {"multi_head_attention", {"scaled_dot_product_attention", "masked_softmax"}},
        {"embedding", {"embedding"}},
        {"index_select", {"index_select"}},
        {"gather", {"gather"}},
        {"where", {"where"}},
        {"masked_fill", {"masked_fill"}},
        {"rnn_layer", {"rnn_tanh", "rnn_relu", "lstm", "gru"}},
        {"LSTMCell", {"lstm"}},
        {"GRUCell", {"gru"}},
        {"RNNCell", {"rnn_tanh", "rnn_relu"}},
        {"module ", {"rnn_tanh", "rnn_relu", "lstm", "gru"}},
    };
    return rows;
}

/// The entry covering row `name`, or null if the row must pass gradgradcheck.
inline const NoDoubleBackward* find_no_double_backward(const std::string& name) {
    for (const auto& r : no_double_backward_rows())
        if (name.rfind(r.row_prefix, 0) == 0) return &r;
    return nullptr;
}

}  // namespace tapegrad::testing
