#pragma once
/// \file
/// The op, layer-function and loss case tables, written once for any element type T and device D: each table
/// is a type with `template <class T, class D> static DeviceTable<T, D> cases()`, run by
/// `check_table<Table, D>` (tests/support/device_ops.hpp) on the CPU in the op's own test file and on CUDA
/// in tests/cuda/ops_test.cpp. Adding an op is one row here; every device then checks it.
///
/// Integer arguments (axes, bounds, targets, labels) travel as extra constant inputs so that each row is
/// self-contained and the same draw runs on every device; the data inputs are marked requires_grad
/// (`checked`), which makes gradcheck check only them. A row reads its constants with to_vector(), which
/// works on any device.

#include "device_ops.hpp"

#include <tapegrad/tapegrad.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

namespace tapegrad::testing {

// ---- value domains and input makers used by the tables ------------------------------------------------------

/// |v| in [0.05, 3] with a random sign: away from the kinks of step, relu, leaky_relu, prelu and elu.
inline double wide_away_from_zero(Generator& g) {
    const double m = 0.05 + 2.95 * g.uniform01<double>();
    return g.below(2) ? m : -m;
}
/// Uniform in [-3, 3].
inline double wide_value(Generator& g) { return -3.0 + 6.0 * g.uniform01<double>(); }
/// A probability in [0.1, 0.9] (bce_loss's input).
inline double probability(Generator& g) { return 0.1 + 0.8 * g.uniform01<double>(); }
/// Uniform in [0, 1] (a binary target).
inline double unit_value(Generator& g) { return g.uniform01<double>(); }
/// Uniform in [-3, -0.1] (log-probabilities for nll_loss).
inline double log_probability(Generator& g) { return -3.0 + 2.9 * g.uniform01<double>(); }

/// `x` marked requires_grad: gradcheck checks it (and not the constant inputs beside it).
inline TensorD checked(TensorD x) {
    x.requires_grad_();
    return x;
}
/// The constants a row carries in an input, read back as integers.
template <class T, class D>
std::vector<int64_t> ints(const Tensor<T, D>& t) {
    std::vector<int64_t> out;
    for (const T v : t.to_vector()) out.push_back(static_cast<int64_t>(std::lround(static_cast<double>(v))));
    return out;
}
inline TensorD constants(const std::vector<int64_t>& v) {
    return TensorD::from({static_cast<int64_t>(v.size())}, std::vector<double>(v.begin(), v.end()));
}
inline int random_axis(Generator& g, int rank) {
    return static_cast<int>(g.below(static_cast<uint64_t>(2 * rank))) - rank;  // [-rank, rank)
}

/// Inputs for maximum: a on a 0.1 grid, b on the same grid shifted by 0.05, so |a - b| >= 0.03 everywhere.
inline Inputs maximum_inputs(Generator& g) {
    auto [sa, sb] = broadcast_pair(g);
    return {grid_tensor(sa, g, 0.0), grid_tensor(sb, g, 0.05)};
}

/// A random reshape target of `numel` elements, rank 1..4, with a -1 in it half the time.
inline Shape reshape_target(Generator& g, int64_t numel) {
    Shape s;
    int64_t left = numel;
    const int rank = 1 + static_cast<int>(g.below(4));
    for (int i = 0; i + 1 < rank; ++i) {
        std::vector<int64_t> divisors;
        for (int64_t d = 1; d <= left; ++d)
            if (left % d == 0) divisors.push_back(d);
        const int64_t d = divisors[static_cast<size_t>(g.below(divisors.size()))];
        s.push_back(d);
        left /= d;
    }
    s.push_back(left);
    if (g.below(2)) s[static_cast<int>(g.below(static_cast<uint64_t>(s.rank())))] = -1;
    return s;
}

/// 2 or 3 tensors that agree outside one random axis, with that axis' size varying; the axis goes last.
inline Inputs concat_inputs(Generator& g) {
    const Shape base = random_shape(g);
    const int axis = static_cast<int>(g.below(static_cast<uint64_t>(base.rank())));
    const int n = 2 + static_cast<int>(g.below(2));
    Inputs xs;
    for (int i = 0; i < n; ++i)
        xs.push_back(checked(random_tensor(base.with(axis, 1 + static_cast<int64_t>(g.below(3))), g)));
    xs.push_back(constants({axis}));
    return xs;
}

/// x of a random shape (distinct values when `distinct_values`, for max) and a constant (axis, keepdim).
inline std::function<Inputs(Generator&)> axis_inputs(bool distinct_values) {
    return [distinct_values](Generator& g) {
        const Shape s = random_shape(g);
        TensorD x = distinct_values ? distinct_tensor(s, g) : random_tensor(s, g, wide_value);
        return Inputs{checked(x), constants({random_axis(g, s.rank()), static_cast<int64_t>(g.below(2))})};
    };
}

inline int64_t small_dim(Generator& g) { return 1 + static_cast<int64_t>(g.below(4)); }

/// Class-loss inputs: scores [N, C] from `v` (checked) and N labels in [0, C) as a constant, N in [1, 5],
/// C in [1, 5].
inline std::function<Inputs(Generator&)> class_inputs(Values v) {
    return [v](Generator& g) {
        const int64_t n = 1 + static_cast<int64_t>(g.below(5)), c = 1 + static_cast<int64_t>(g.below(5));
        std::vector<int64_t> labels;
        for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<int64_t>(g.below(static_cast<uint64_t>(c))));
        return Inputs{checked(random_tensor({n, c}, g, v)), constants(labels)};
    };
}
/// Logits [N, C] and a probability target [N, C] whose rows sum to 1.
inline Inputs soft_target_inputs(Generator& g) {
    const int64_t n = 1 + static_cast<int64_t>(g.below(5)), c = 1 + static_cast<int64_t>(g.below(5));
    TensorD t = random_tensor({n, c}, g, positive_value);
    for (int64_t i = 0; i < n; ++i) {
        double s = 0;
        for (int64_t j = 0; j < c; ++j) s += t(i, j);
        for (int64_t j = 0; j < c; ++j) t(i, j) /= s;
    }
    return {random_tensor({n, c}, g, wide_value), t};
}

/// Two tensors of one random shape, from `va` and `vb`.
inline std::function<Inputs(Generator&)> same_shape_inputs(Values va, Values vb) {
    return [va, vb](Generator& g) {
        const Shape s = random_shape(g);
        return Inputs{random_tensor(s, g, va), random_tensor(s, g, vb)};
    };
}

// ---- the tables --------------------------------------------------------------------------------------------

/// Every elementwise op of ops/elementwise.hpp, broadcasting pairs for the binary ones.
struct ElementwiseTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        return {
            {"add", broadcast_inputs(), [](const auto& x) { return x[0] + x[1]; }, 16},
            {"sub", broadcast_inputs(), [](const auto& x) { return x[0] - x[1]; }, 16},
            {"mul", broadcast_inputs(), [](const auto& x) { return x[0] * x[1]; }, 16},
            {"div", broadcast_inputs(any_value, away_from_zero), [](const auto& x) { return x[0] / x[1]; }, 64},
            {"maximum", maximum_inputs, [](const auto& x) { return maximum(x[0], x[1]); }, 16},
            {"add(tensor, tensor) function form", broadcast_inputs(),
             [](const auto& x) { return add(x[0], x[1]); }, 16},
            {"tensor + scalar", one_input(), [](const auto& x) { return x[0] + 0.5; }},
            {"scalar - tensor", one_input(), [](const auto& x) { return 2.0 - x[0]; }},
            {"tensor * scalar", one_input(), [](const auto& x) { return x[0] * -3.0; }},
            {"scalar / tensor", one_input(away_from_zero), [](const auto& x) { return 2.0 / x[0]; }, 16},
            {"neg", one_input(), [](const auto& x) { return -x[0]; }},
            {"exp", one_input(), [](const auto& x) { return exp(x[0]); }},
            {"log", one_input(positive_value), [](const auto& x) { return log(x[0]); }},
            {"sqrt", one_input(positive_value), [](const auto& x) { return sqrt(x[0]); }},
            {"pow 2", one_input(), [](const auto& x) { return pow(x[0], 2.0); }},
            {"pow 3", one_input(), [](const auto& x) { return pow(x[0], 3.0); }},
            {"pow 1", one_input(), [](const auto& x) { return pow(x[0], 1.0); }},
            {"pow 0", one_input(), [](const auto& x) { return pow(x[0], 0.0) + x[0]; }},
            {"pow 0.5", one_input(positive_value), [](const auto& x) { return pow(x[0], 0.5); }},
            {"pow -1.5", one_input(positive_value), [](const auto& x) { return pow(x[0], -1.5); }, 8},
            {"abs", one_input(away_from_zero), [](const auto& x) { return abs(x[0]); }},
            {"clamp", one_input(clamp_safe), [](const auto& x) { return clamp(x[0], -0.5, 0.5); }},
            {"tanh", one_input(), [](const auto& x) { return tanh(x[0] * 2.0); }},
            {"sigmoid", one_input(), [](const auto& x) { return sigmoid(x[0] * 3.0); }},
            {"relu", one_input(away_from_zero), [](const auto& x) { return relu(x[0]); }},
            // the same input used twice in one op: both partial derivatives land in one buffer
            {"mul(x, x)", one_input(), [](const auto& x) { return x[0] * x[0]; }},
            {"div(x, x + 2)", one_input(), [](const auto& x) { return x[0] / (x[0] + 2.0); }},
        };
    }
};

/// The activation functions of ops/activation.hpp (with sigmoid, tanh and relu at a wider range), PReLU and
/// maxout.
struct ActivationTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        const auto x = one_input(wide_away_from_zero);
        return {
            {"step", x, [](const auto& v) { return step(v[0]) + v[0]; }},
            {"identity", x, [](const auto& v) { return identity(v[0]); }},
            {"sigmoid", x, [](const auto& v) { return sigmoid(v[0]); }},
            {"tanh", x, [](const auto& v) { return tanh(v[0]); }},
            {"relu", x, [](const auto& v) { return relu(v[0]); }},
            {"leaky_relu", x, [](const auto& v) { return leaky_relu(v[0]); }},
            {"leaky_relu(0.2)", x, [](const auto& v) { return leaky_relu(v[0], 0.2); }},
            {"elu", x, [](const auto& v) { return elu(v[0]); }},
            {"elu(0.5)", x, [](const auto& v) { return elu(v[0], 0.5); }},
            {"softplus", x, [](const auto& v) { return softplus(v[0]); }},
            {"softplus(beta=2)", x, [](const auto& v) { return softplus(v[0], 2.0); }},
            {"gelu", x, [](const auto& v) { return gelu(v[0]); }},
            {"gelu(tanh)", x, [](const auto& v) { return gelu(v[0], GeluApproximation::tanh); }},
            {"silu", x, [](const auto& v) { return silu(v[0]); }},
            {"softsign", x, [](const auto& v) { return softsign(v[0]); }},
            {"prelu, one shared slope",
             [](Generator& g) {
                 return Inputs{random_tensor(random_shape(g), g, wide_away_from_zero),
                               random_tensor({1}, g, positive_value)};
             },
             [](const auto& v) { return prelu(v[0], v[1]); }, 64},
            {"prelu, one slope per channel",
             [](Generator& g) {
                 const Shape s = random_shape(g, 2, 4);
                 return Inputs{random_tensor(s, g, wide_away_from_zero), random_tensor({s[1]}, g, positive_value)};
             },
             [](const auto& v) { return prelu(v[0], v[1]); }, 64},
            {"maxout k=3",
             [](Generator& g) {
                 const int64_t n = small_dim(g), in = small_dim(g), out = small_dim(g);
                 return Inputs{random_tensor({n, in}, g), distinct_tensor({out * 3, in}, g),
                               distinct_tensor({out * 3}, g)};
             },
             [](const auto& v) { return maxout(v[0], v[1], v[2], 3); }, 16},
        };
    }
};

/// Reductions: of all elements, and along a random axis with and without keepdim.
struct ReduceTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        return {
            {"sum", one_input(), [](const auto& x) { return sum(x[0]); }, 256},
            {"mean", one_input(), [](const auto& x) { return mean(x[0]); }, 256},
            {"sum of a broadcast product", broadcast_inputs(), [](const auto& x) { return sum(x[0] * x[1]); }, 256},
            {"sum(axis)", axis_inputs(false),
             [](const auto& x) {
                 const auto p = ints(x[1]);
                 return sum(x[0], static_cast<int>(p[0]), p[1] != 0);
             },
             16},
            {"mean(axis)", axis_inputs(false),
             [](const auto& x) {
                 const auto p = ints(x[1]);
                 return mean(x[0], static_cast<int>(p[0]), p[1] != 0);
             },
             16},
            {"max(axis).values", axis_inputs(true),
             [](const auto& x) {
                 const auto p = ints(x[1]);
                 return tapegrad::max(x[0], static_cast<int>(p[0]), p[1] != 0).values;
             }},
        };
    }
};

/// Shape ops: reshape, flatten, transpose, t, concat, slice, clone.
struct ShapeTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        return {
            {"reshape",
             [](Generator& g) {
                 const TensorD x = checked(random_tensor(random_shape(g), g));
                 const Shape to = reshape_target(g, x.numel());
                 return Inputs{x, constants(std::vector<int64_t>(to.begin(), to.end()))};
             },
             [](const auto& x) {
                 Shape to;
                 for (int64_t d : ints(x[1])) to.push_back(d);
                 return x[0].reshape(to) * 1.5;  // scaled so that a pass-through bug cannot look right
             }},
            {"flatten", one_input(), [](const auto& x) { return x[0].flatten(); }},
            {"flatten(1, -1)", [](Generator& g) { return Inputs{random_tensor(random_shape(g, 2, 4), g)}; },
             [](const auto& x) { return flatten(x[0], 1) * 1.5; }},
            {"flatten(0, -2)", [](Generator& g) { return Inputs{random_tensor(random_shape(g, 2, 4), g)}; },
             [](const auto& x) { return flatten(x[0], 0, -2) * -2.0; }},
            {"transpose",
             [](Generator& g) {
                 const TensorD x = checked(random_tensor(random_shape(g), g));
                 return Inputs{x, constants({random_axis(g, x.dim()), random_axis(g, x.dim())})};
             },
             [](const auto& x) {
                 const auto p = ints(x[1]);
                 return transpose(x[0], static_cast<int>(p[0]), static_cast<int>(p[1]));
             }},
            {"t", [](Generator& g) { return Inputs{random_tensor(random_shape(g, 2, 2), g)}; },
             [](const auto& x) { return x[0].t(); }},
            {"concat", concat_inputs,
             [](const auto& x) {
                 const std::vector<std::decay_t<decltype(x[0])>> parts(x.begin(), x.end() - 1);
                 return concat(parts, static_cast<int>(ints(x.back())[0]));
             }},
            {"concat of one tensor with itself", one_input(),
             [](const auto& x) { return concat({x[0], x[0] * 2.0}, -1); }},
            {"slice",
             [](Generator& g) {
                 const TensorD x = checked(random_tensor(random_shape(g), g));
                 const int axis = random_axis(g, x.dim());
                 const int64_t n = x.size(axis);
                 int64_t start = static_cast<int64_t>(g.below(static_cast<uint64_t>(n)));
                 int64_t end = start + 1 + static_cast<int64_t>(g.below(static_cast<uint64_t>(n - start)));
                 if (g.below(2)) start -= n;  // negative start, counted from the end
                 if (g.below(3) == 0 && end < n) end -= n;
                 return Inputs{x, constants({axis, start, end})};
             },
             [](const auto& x) {
                 const auto p = ints(x[1]);
                 return slice(x[0], static_cast<int>(p[0]), p[1], p[2]);
             }},
            {"clone", one_input(), [](const auto& x) { return clone(x[0]) * x[0]; }},
        };
    }
};

/// softmax and log_softmax along a random axis; softmax with its output used twice.
struct SoftmaxTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        const auto along_axis = [](Generator& g) {
            const Shape s = random_shape(g);
            return Inputs{checked(random_tensor(s, g, wide_value)), constants({random_axis(g, s.rank())})};
        };
        return {
            {"softmax", along_axis,
             [](const auto& x) { return softmax(x[0], static_cast<int>(ints(x[1])[0])); }, 16},
            {"log_softmax", along_axis,
             [](const auto& x) { return log_softmax(x[0], static_cast<int>(ints(x[1])[0])); }, 16},
            {"softmax output used twice", one_input(wide_value),
             [](const auto& x) {
                 const auto y = softmax(x[0], -1);
                 return y * y + y * x[0];
             },
             16},
        };
    }
};

/// Matrix products and the dense layer's product.
struct LinalgTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        const auto mm = [](bool batched_a, bool batched_b) {
            return [batched_a, batched_b](Generator& g) {
                const int64_t b = small_dim(g), m = small_dim(g), k = small_dim(g), n = small_dim(g);
                return Inputs{batched_a ? random_tensor({b, m, k}, g) : random_tensor({m, k}, g),
                              batched_b ? random_tensor({b, k, n}, g) : random_tensor({k, n}, g)};
            };
        };
        const auto lin = [](bool bias) {
            return [bias](Generator& g) {
                const int64_t n = small_dim(g), in = small_dim(g), out = small_dim(g);
                Inputs xs{random_tensor({n, in}, g), random_tensor({out, in}, g)};
                if (bias) xs.push_back(random_tensor({out}, g));
                return xs;
            };
        };
        return {
            {"matmul 2-D", mm(false, false), [](const auto& x) { return matmul(x[0], x[1]); }, 8},
            {"matmul 3-D x 3-D", mm(true, true), [](const auto& x) { return matmul(x[0], x[1]); }, 8},
            {"matmul 3-D x 2-D", mm(true, false), [](const auto& x) { return matmul(x[0], x[1]); }, 16},
            {"matmul, a used twice",
             [](Generator& g) {
                 const int64_t m = small_dim(g), k = small_dim(g), n = small_dim(g);
                 return Inputs{random_tensor({m, k}, g), random_tensor({k, n}, g), random_tensor({k, n}, g)};
             },
             [](const auto& x) { return matmul(x[0], x[1]) * matmul(x[0], x[2]); }, 16},
            {"matmul(x, x)",
             [](Generator& g) {
                 const int64_t n = small_dim(g);
                 return Inputs{random_tensor({n, n}, g)};
             },
             [](const auto& x) { return matmul(x[0], x[0]); }, 8},
            {"matmul 3-D x 2-D, b used twice", mm(true, false),
             [](const auto& x) { return matmul(tanh(matmul(x[0], x[1])), x[1].t()); }, 16},
            {"linear with bias", lin(true), [](const auto& x) { return linear(x[0], x[1], x[2]); }, 8},
            {"linear without bias", lin(false), [](const auto& x) { return linear(x[0], x[1]); }, 8},
        };
    }
};

/// Every loss of ops/loss.hpp, with each reduction.
struct LossTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        DeviceTable<T, D> t;
        for (const Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
            const std::string on = r == Reduction::mean ? " (mean)" : r == Reduction::sum ? " (sum)" : " (none)";
            t.push_back({"mse_loss" + on, same_shape_inputs(any_value, any_value),
                         [r](const auto& x) { return mse_loss(x[0], x[1], r); }, 64});
            t.push_back({"bce_loss" + on, same_shape_inputs(probability, unit_value),
                         [r](const auto& x) { return bce_loss(x[0], x[1], r); }, 64});
            t.push_back({"binary_cross_entropy_with_logits" + on, same_shape_inputs(wide_value, unit_value),
                         [r](const auto& x) { return binary_cross_entropy_with_logits(x[0], x[1], r); }, 64});
            t.push_back({"cross_entropy (labels)" + on, class_inputs(wide_value),
                         [r](const auto& x) { return cross_entropy(x[0], ints(x[1]), r); }, 16});
            t.push_back({"cross_entropy (probability targets)" + on, soft_target_inputs,
                         [r](const auto& x) { return cross_entropy(x[0], x[1], r); }, 16});
            t.push_back({"nll_loss" + on, class_inputs(log_probability),
                         [r](const auto& x) { return nll_loss(x[0], ints(x[1]), r); }, 16});
        }
        return t;
    }
};

/// conv2d over strides, paddings, dilations and groups, and the pooling ops.
struct ConvPoolTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        using TD = Tensor<T, D>;
        return {
            {"conv2d 3x3 same, bias", shaped({{2, 3, 5, 4}, {4, 3, 3, 3}, {4}}),
             [](const auto& x) { return conv2d(x[0], x[1], x[2], {.padding = 1}); }, 64},
            {"conv2d stride 2x1, padding 1x0, 2 groups, no bias", shaped({{2, 4, 6, 5}, {6, 2, 3, 2}}),
             [](const auto& x) { return conv2d(x[0], x[1], {.stride = {2, 1}, .padding = {1, 0}, .groups = 2}); }, 64},
            {"conv2d dilation 2, padding 2, bias", shaped({{1, 2, 6, 6}, {3, 2, 3, 3}, {3}}),
             [](const auto& x) { return conv2d(x[0], x[1], x[2], {.padding = 2, .dilation = 2}); }, 64},
            {"conv2d depthwise 3x3, stride 2", shaped({{2, 4, 5, 5}, {4, 1, 3, 3}, {4}}),
             [](const auto& x) { return conv2d(x[0], x[1], x[2], {.stride = 2, .padding = 1, .groups = 4}); }, 64},
            {"conv2d 1x1, bias", shaped({{2, 3, 4, 3}, {5, 3, 1, 1}, {5}}),
             [](const auto& x) { return conv2d(x[0], x[1], x[2]); }, 64},
            {"conv2d, input reused by two convolutions", shaped({{1, 2, 4, 4}, {2, 2, 3, 3}, {3, 2, 1, 1}}),
             [](const auto& x) { return conv2d(x[0], x[1], {.padding = 1}) * sum(conv2d(x[0], x[2])); }, 64},
            {"max_pool2d 2x2", distinct({2, 2, 4, 6}), [](const auto& x) { return max_pool2d(x[0], 2); }},
            {"max_pool2d 3x3, stride 2, padding 1", distinct({1, 2, 7, 6}),
             [](const auto& x) { return max_pool2d(x[0], 3, {.stride = 2, .padding = 1}); }},
            {"max_pool2d 2x2, dilation 2", distinct({1, 2, 6, 6}),
             [](const auto& x) { return max_pool2d(x[0], 2, {.stride = 1, .dilation = 2}); }},
            {"avg_pool2d 3x3, stride 2, padding 1", shaped({{2, 2, 7, 6}}),
             [](const auto& x) { return avg_pool2d(x[0], 3, {.stride = 2, .padding = 1}); }, 16},
            {"avg_pool2d without count_include_pad", shaped({{1, 2, 5, 5}}),
             [](const auto& x) {
                 return avg_pool2d(x[0], 3, {.stride = 2, .padding = 1, .count_include_pad = false});
             },
             16},
            {"adaptive_avg_pool2d to 3x2", shaped({{2, 2, 7, 5}}),
             [](const auto& x) { return adaptive_avg_pool2d(x[0], {3, 2}); }, 16},
            {"global_avg_pool2d", shaped({{2, 3, 4, 5}}), [](const auto& x) { return global_avg_pool2d(x[0]); }, 32},
            {"conv2d -> relu -> max_pool2d", shaped({{2, 2, 6, 6}, {3, 2, 3, 3}, {3}}),
             [](const auto& x) {
                 const TD h = relu(conv2d(x[0], x[1], x[2]) + 0.05);
                 return max_pool2d(h, 2);
             },
             64},
        };
    }
};

/// The layer functions with state or randomness: batch_norm (training and eval, with and without affine
/// parameters) and dropout from a fixed seed.
struct LayerFunctionTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        using TD = Tensor<T, D>;
        return {
            {"batch_norm training [N, C], weight and bias", shaped({{6, 3}, {3}, {3}}),
             [](const auto& x) {
                 // running statistics given: they are updated as a side effect, the output does not depend on them
                 return batch_norm(x[0], TD::zeros({3}), TD::ones({3}), x[1], x[2], true);
             },
             64},
            {"batch_norm training [N, C, L], no affine", shaped({{3, 2, 4}}),
             [](const auto& x) { return batch_norm(x[0], {}, {}, {}, {}, true); }, 64},
            {"batch_norm training [N, C, H, W], weight only", shaped({{2, 3, 2, 3}, {3}}),
             [](const auto& x) { return batch_norm(x[0], {}, {}, x[1], {}, true); }, 64},
            {"batch_norm eval (running statistics are constants)",
             [](Generator& g) {
                 return Inputs{checked(random_tensor({4, 3, 2}, g)), random_tensor({3}, g),
                               random_tensor({3}, g, positive_value), checked(random_tensor({3}, g)),
                               checked(random_tensor({3}, g))};
             },
             [](const auto& x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], false); }, 64},
            {"dropout p=0.3, fixed seed", one_input(),
             [](const auto& x) {
                 Generator gen(5);
                 return dropout(x[0], 0.3, true, gen);
             }},
        };
    }
};

/// Layers (nn/) on every device: each row builds its module inside the op, from a fixed seed, so every device
/// gets the same parameters (drawn on the host, then uploaded); the input's gradient is checked, and the
/// output, which batch-norm rows make depend on the running statistics after training steps.
struct LayerTable {
    template <class T, class D>
    static DeviceTable<T, D> cases() {
        using TD = Tensor<T, D>;
        return {
            {"nn::Linear", shaped({{5, 4}}),
             [](const auto& x) {
                 Generator g(1);
                 nn::Linear<T, D> fc(4, 3, g);
                 return fc(x[0]);
             },
             8},
            {"nn::Sequential of Linear, ReLU, Linear, Tanh", shaped({{6, 5}}),
             [](const auto& x) {
                 Generator g(2);
                 nn::Sequential<T, D> net{nn::Linear<T, D>(5, 8, g), nn::ReLU<T, D>(), nn::Linear<T, D>(8, 3, g),
                                          nn::Tanh<T, D>()};
                 return net(x[0]);
             },
             16},
            {"activation modules: LeakyReLU, ELU, Softplus, GELU(tanh), SiLU", one_input(wide_away_from_zero),
             [](const auto& x) {
                 nn::Sequential<T, D> net{nn::LeakyReLU<T, D>(0.2), nn::ELU<T, D>(), nn::Softplus<T, D>(2.0),
                                          nn::GELU<T, D>(GeluApproximation::tanh), nn::SiLU<T, D>()};
                 return net(x[0]);
             }},
            {"nn::PReLU per channel and nn::Maxout", shaped({{3, 4}}, wide_away_from_zero),
             [](const auto& x) {
                 Generator g(3);
                 nn::PReLU<T, D> pr(4);
                 nn::Maxout<T, D> mo(4, 2, 3, g);
                 return mo(pr(x[0]));
             },
             16},
            {"LeNet-style: Conv2d, ReLU, MaxPool2d, Flatten, Linear", shaped({{2, 1, 8, 8}}),
             [](const auto& x) {
                 Generator g(4);
                 nn::Sequential<T, D> net{nn::Conv2d<T, D>(1, 3, 3, {.padding = 1}, g), nn::ReLU<T, D>(),
                                          nn::MaxPool2d<T, D>(2), nn::Flatten<T, D>(), nn::Linear<T, D>(48, 5, g)};
                 return net(x[0]);
             },
             64},
            {"nn::BatchNorm1d [N, C, L]: two training steps on other data, then eval on x", shaped({{4, 3, 5}}),
             [](const auto& x) {
                 // The running statistics come from batches that do not depend on x (they are constants of
                 // the eval forward, as autograd sees them), drawn on the host: the same on every device.
                 Generator g(7);
                 const TD warm = TD::uniform(x[0].shape(), T(-2), T(2), g);
                 nn::BatchNorm1d<T, D> bn(3);
                 (void)bn(warm);
                 (void)bn(warm * 0.5 + 1.0);
                 bn.eval();
                 return bn(x[0]);
             },
             64},
            {"nn::BatchNorm2d, momentum=None: eval after warm-up batches, then training on x", shaped({{3, 2, 3, 3}}),
             [](const auto& x) {
                 Generator g(8);
                 const TD warm = TD::uniform(x[0].shape(), T(-1), T(3), g);
                 nn::BatchNorm2d<T, D> bn(2, {.momentum = std::nullopt});
                 (void)bn(warm);
                 (void)bn(warm * 2.0);
                 bn.eval();
                 const TD e = bn(x[0]);
                 bn.train();
                 return e + bn(x[0]) * 0.5;
             },
             64},
            {"nn::BatchNorm2d, affine=false, track_running_stats=false", shaped({{3, 2, 2, 3}}),
             [](const auto& x) {
                 nn::BatchNorm2d<T, D> bn(2, {.affine = false, .track_running_stats = false});
                 return bn(x[0]);
             },
             64},
            {"nn::Dropout(0.4) with a fixed seed", shaped({{4, 6}}),
             [](const auto& x) {
                 nn::Dropout<T, D> drop(0.4, uint64_t{9});
                 return drop(x[0]);
             }},
        };
    }
};

}  // namespace tapegrad::testing
