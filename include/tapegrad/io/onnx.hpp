#pragma once
/// \file
/// ONNX export: a trained module as an `.onnx` file that onnxruntime, TensorRT, OpenVINO or a browser runs.
///
///     model->eval();
///     tapegrad::io::export_onnx(*model, example_input, "model.onnx", {.opset = 17, .dynamic_batch = true});
///
/// How the graph is traced: `export_onnx` runs one forward of the module on `example_input` (in eval mode,
/// without recording gradients) and walks the module tree as it does so. Each module it meets reports the
/// ONNX nodes of its own forward to an `OnnxGraph`, which also runs the module's real forward on the real
/// tensor, so every value in the graph carries the tensor the module computed (its shape sizes the Reshape,
/// Slice and pooling nodes that follow). The modules it knows:
///
///  - nn::Sequential: its children in order.
///  - nn::Linear: Gemm (transB) on [N, in]; Transpose + MatMul + Add on more dimensions.
///  - nn::Conv2d: Conv. nn::MaxPool2d: MaxPool. nn::AvgPool2d: AveragePool. nn::AdaptiveAvgPool2d: AveragePool
///    where the output divides the input, else one Slice + ReduceMean per window row and column (adaptive
///    windows are separable). nn::GlobalAvgPool2d: GlobalAveragePool + Flatten.
///  - nn::BatchNorm1d / BatchNorm2d in eval: BatchNormalization over the running statistics (ones and zeros
///    stand in for gamma and beta without affine); without running statistics the batch statistics,
///    composed of ReduceMean, Sub, Mul, Sqrt, Div.
///  - nn::LayerNorm: LayerNormalization (opset 17), or the same ReduceMean composition before it.
///  - nn::RNN, nn::LSTM, nn::GRU (their forward(x): the output sequence from zero states, no lengths): one ONNX
///    RNN / LSTM / GRU node per layer (both directions in one), the gate rows reordered from PyTorch's
///    (LSTM i f g o -> ONNX i o f c; GRU r z n -> z r h, linear_before_reset = 1 as PyTorch computes n), the
///    biases joined [W_b, R_b]; Transpose for batch_first and Reshape for [T, dirs, B, H] -> [T, B, dirs*H].
///    The cells nn::RNNCell / LSTMCell / GRUCell (forward(x): one step from a zero state) as a one-step sequence.
///  - nn::Flatten: Flatten (start 1 to the end) or Reshape. nn::Dropout: nothing (eval is the identity).
///  - Every activation of nn/activation.hpp: Relu, Sigmoid, Tanh, LeakyRelu, Elu, Softsign, Identity;
///    Step as Cast(Greater(x, 0)); Softplus with beta and threshold as Where(beta x > t, x, Softplus(beta x) /
///    beta); SiLU as x * Sigmoid(x); GELU as x/2 (1 + Erf(x / sqrt 2)) or its tanh form; PReLU as PRelu with
///    the slope shaped [C, 1, ...]; Maxout as Gemm, Reshape [N, out, k] and ReduceMax over the pieces.
///  - Any module that implements `io::OnnxExportable`: it writes its own nodes with the graph's ops (add,
///    mul, matmul, reshape, flatten, concat, transpose, softmax, log_softmax, the activations, and `module`
///    for its children). Its export is checked against its forward on the example input.
///
/// Any other module throws ValueError naming it (its describe() and its place in the tree). Parameters
/// and buffers become initializers under their state_dict names (`0.weight`, `conv1.bias`). With
/// `dynamic_batch` the first dimension of the input, and of every value that follows it, is the symbolic
/// `batch`, so the file runs any batch size.
///
/// The file is the protobuf encoding of ONNX's ModelProto, written field by field (io/protobuf.hpp; field
/// numbers from onnx/onnx.proto), IR version 8, opsets 13 to 17. It is written atomically (temporary file +
/// rename): an error leaves an existing file as it was.

#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/io/protobuf.hpp>
#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/batchnorm.hpp>
#include <tapegrad/nn/conv.hpp>
#include <tapegrad/nn/dropout.hpp>
#include <tapegrad/nn/layer_norm.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/nn/pooling.hpp>
#include <tapegrad/nn/rnn.hpp>
#include <tapegrad/ops/activation.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/softmax.hpp>
#include <tapegrad/util/atomic_file.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tapegrad::io {

/// Options of `export_onnx`.
struct OnnxExportOptions {
    int opset = 17;              ///< the default ONNX opset imported, 13 to 17
    bool dynamic_batch = true;   ///< the input's first dimension (and what follows from it) is symbolic: `batch`
    std::string input_name = "input";
    std::string output_name = "output";
    std::string graph_name = "tapegrad";
    std::string doc_string{};    ///< a description stored in the model
};

/// ONNX TensorProto.DataType codes used here.
enum class OnnxType : int32_t { float32 = 1, int64 = 7, boolean = 9, float64 = 11 };

template <Scalar T>
constexpr OnnxType onnx_type_of() {
    return std::same_as<T, float> ? OnnxType::float32 : OnnxType::float64;
}

/// A value in the graph being traced: its ONNX name, the tensor the module computed for the example input
/// (undefined for a few internal values), and whether its first dimension is the symbolic batch.
template <Scalar T = float, Device D = Cpu>
struct OnnxValue {
    std::string name;
    Tensor<T, D> value;
    bool batched = false;
};

/// One attribute of an ONNX node: an int, a float, a string, or a list of ints or floats.
struct OnnxAttribute {
    enum class Kind { f = 1, i = 2, s = 3, floats = 6, ints = 7, strings = 8 };
    std::string name;
    Kind kind = Kind::i;
    int64_t i = 0;
    float f = 0;
    std::string s;
    std::vector<int64_t> ints;
    std::vector<float> floats;
    std::vector<std::string> strings;

    static OnnxAttribute integer(std::string n, int64_t v) { return {std::move(n), Kind::i, v, 0, {}, {}, {}, {}}; }
    static OnnxAttribute real(std::string n, double v) {
        return {std::move(n), Kind::f, 0, static_cast<float>(v), {}, {}, {}, {}};
    }
    static OnnxAttribute text(std::string n, std::string v) {
        return {std::move(n), Kind::s, 0, 0, std::move(v), {}, {}, {}};
    }
    static OnnxAttribute integers(std::string n, std::vector<int64_t> v) {
        return {std::move(n), Kind::ints, 0, 0, {}, std::move(v), {}, {}};
    }
};

template <Scalar T, Device D>
class OnnxGraph;

/// Implemented by a module that has no built-in ONNX form (a residual block, a custom head): writes the
/// nodes of its forward with `g`'s ops and returns its output. `export_onnx` checks that the value it
/// returns equals the module's forward on the example input.
///     OnnxValue<float> export_onnx(OnnxGraph<float>& g, const OnnxValue<float>& x) override {
///         return g.add(g.relu(g.module(*fc_, x, "fc")), x);   // relu(fc(x)) + x
///     }
template <Scalar T = float, Device D = Cpu>
class OnnxExportable {
public:
    virtual ~OnnxExportable() = default;
    virtual OnnxValue<T, D> export_onnx(OnnxGraph<T, D>& g, const OnnxValue<T, D>& x) = 0;
};

namespace detail {

inline void write_dims(proto::Writer& w, uint32_t field, std::span<const int64_t> dims) {
    for (int64_t d : dims) w.int64(field, d);
}

/// TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian).
inline proto::Writer tensor_proto(const std::string& name, OnnxType type, std::span<const int64_t> dims,
                                  std::span<const unsigned char> raw) {
    proto::Writer t;
    write_dims(t, 1, dims);
    t.int64(2, static_cast<int32_t>(type));
    t.string(8, name);
    t.bytes(9, raw);
    return t;
}

/// ValueInfoProto: name (1), type (2) = TypeProto{tensor_type (1) = {elem_type (1), shape (2) =
/// TensorShapeProto{dim (1) = {dim_value (1) | dim_param (2)}}}}. A size of -1 is the symbolic batch; -2
/// an unknown dimension (neither field set).
inline proto::Writer value_info(const std::string& name, OnnxType type, std::span<const int64_t> dims) {
    proto::Writer shape;
    for (int64_t d : dims) {
        proto::Writer dim;
        if (d == -1)
            dim.string(2, "batch");
        else if (d >= 0)
            dim.int64(1, d);
        shape.message(1, dim);
    }
    proto::Writer tensor;
    tensor.int64(1, static_cast<int32_t>(type));
    tensor.message(2, shape);
    proto::Writer typ;
    typ.message(1, tensor);
    proto::Writer vi;
    vi.string(1, name);
    vi.message(2, typ);
    return vi;
}

/// AttributeProto: name (1), f (2), i (3), s (4), floats (7), ints (8), strings (9), type (20).
inline proto::Writer attribute_proto(const OnnxAttribute& a) {
    proto::Writer w;
    w.string(1, a.name);
    switch (a.kind) {
    case OnnxAttribute::Kind::f: w.float32(2, a.f); break;
    case OnnxAttribute::Kind::i: w.int64(3, a.i); break;
    case OnnxAttribute::Kind::s: w.string(4, a.s); break;
    case OnnxAttribute::Kind::floats:
        for (float f : a.floats) w.float32(7, f);
        break;
    case OnnxAttribute::Kind::ints:
        for (int64_t i : a.ints) w.int64(8, i);
        break;
    case OnnxAttribute::Kind::strings:
        for (const auto& str : a.strings) w.string(9, str);
        break;
    }
    w.int64(20, static_cast<int64_t>(a.kind));
    return w;
}

/// Adaptive pooling's window along one axis for output `i` of `out` over `in`: [floor(i in / out),
/// ceil((i + 1) in / out)).
inline std::pair<int64_t, int64_t> adaptive_window(int64_t i, int64_t in, int64_t out) {
    return {i * in / out, ((i + 1) * in + out - 1) / out};
}

}  // namespace detail

/// The graph being traced: nodes, initializers and a counter for fresh names. Modules that implement
/// OnnxExportable write their nodes with its ops; each op runs the tapegrad op on the values' tensors too,
/// so the value it returns holds the real result.
template <Scalar T = float, Device D = Cpu>
class OnnxGraph {
public:
    using TensorT = Tensor<T, D>;
    using Value = OnnxValue<T, D>;
    using Attr = OnnxAttribute;

    explicit OnnxGraph(const OnnxExportOptions& opt) : opt_(opt) {}

    // ---- modules ------------------------------------------------------------------------------------
    /// Exports `m` applied to `x`; `name` is its name under the current module (its parameters become
    /// `<path>.<name>.weight`, ...). Throws ValueError for a module with no ONNX form.
    Value module(nn::Module<T, D>& m, const Value& x, const std::string& name) {
        const std::string saved = path_;
        path_ = join(path_, name);
        Value y = dispatch(m, x);
        path_ = saved;
        return y;
    }

    // ---- values -------------------------------------------------------------------------------------
    /// A constant tensor as an initializer named `<path>.<name>` (a fresh name when `name` is empty).
    /// A module reached twice under one name (a custom module calling the same child twice) shares its
    /// initializers; another tensor under a name already taken gets a fresh suffix.
    Value constant(const TensorT& t, const std::string& name = "") {
        std::string n = name.empty() ? fresh("const") : join(path_, name);
        for (const auto& [taken, impl] : initializer_names_) {
            if (taken != n) continue;
            if (impl == t.impl()) return {n, t, false};
            n = fresh(n);
            break;
        }
        initializer_names_.emplace_back(n, t.impl());
        const std::vector<T> host = t.to_vector();
        const std::vector<int64_t> dims = t.shape().to_vector();
        std::vector<unsigned char> raw(host.size() * sizeof(T));
        if (!host.empty()) std::memcpy(raw.data(), host.data(), raw.size());
        initializers_.push_back(detail::tensor_proto(n, onnx_type_of<T>(), dims, raw));
        return {n, t, false};
    }
    /// A scalar constant (rank 0).
    Value scalar(double v) { return constant(TensorT::scalar(static_cast<T>(v))); }
    /// An int64 constant (a shape, axes or indices), as a 1-D initializer.
    std::string int64_constant(const std::vector<int64_t>& v) {
        const std::string n = fresh("const");
        std::vector<unsigned char> raw(v.size() * sizeof(int64_t));
        if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());
        const int64_t dims[] = {static_cast<int64_t>(v.size())};
        initializers_.push_back(detail::tensor_proto(n, OnnxType::int64, dims, raw));
        return n;
    }

    /// Adds a node `op_type(inputs) -> one output` with attributes, and returns its output, holding
    /// `result` (the tapegrad value, when known) and batched as said. The low-level way to write any op.
    /// `output` names the node's output (default: a fresh name).
    Value node(const std::string& op_type, const std::vector<std::string>& inputs, const std::vector<Attr>& attrs,
               TensorT result, bool batched, const std::string& output = "") {
        const std::string out = output.empty() ? fresh(op_type) : output;
        proto::Writer n;
        for (const auto& i : inputs) n.string(1, i);
        n.string(2, out);
        n.string(3, out);
        n.string(4, op_type);
        for (const auto& a : attrs) n.message(5, detail::attribute_proto(a));
        nodes_.push_back(std::move(n));
        return {out, std::move(result), batched};
    }

    // ---- ops for OnnxExportable modules ---------------------------------------------------------------
    Value add(const Value& a, const Value& b) { return binary("Add", a, b, tapegrad::add(a.value, b.value)); }
    Value sub(const Value& a, const Value& b) { return binary("Sub", a, b, tapegrad::sub(a.value, b.value)); }
    Value mul(const Value& a, const Value& b) { return binary("Mul", a, b, tapegrad::mul(a.value, b.value)); }
    Value div(const Value& a, const Value& b) { return binary("Div", a, b, tapegrad::div(a.value, b.value)); }
    Value maximum(const Value& a, const Value& b) {
        return binary("Max", a, b, tapegrad::maximum(a.value, b.value));
    }
    Value matmul(const Value& a, const Value& b) {
        return binary("MatMul", a, b, tapegrad::matmul(a.value, b.value));
    }
    Value relu(const Value& x) { return node("Relu", {x.name}, {}, tapegrad::relu(x.value), x.batched); }
    Value sigmoid(const Value& x) { return node("Sigmoid", {x.name}, {}, tapegrad::sigmoid(x.value), x.batched); }
    Value tanh(const Value& x) { return node("Tanh", {x.name}, {}, tapegrad::tanh(x.value), x.batched); }
    Value exp(const Value& x) { return node("Exp", {x.name}, {}, tapegrad::exp(x.value), x.batched); }
    Value log(const Value& x) { return node("Log", {x.name}, {}, tapegrad::log(x.value), x.batched); }
    Value sqrt(const Value& x) { return node("Sqrt", {x.name}, {}, tapegrad::sqrt(x.value), x.batched); }
    Value neg(const Value& x) { return node("Neg", {x.name}, {}, tapegrad::neg(x.value), x.batched); }
    Value abs(const Value& x) { return node("Abs", {x.name}, {}, tapegrad::abs(x.value), x.batched); }
    /// Softmax along `axis` (Softmax-13: per axis, as tapegrad's).
    Value softmax(const Value& x, int axis = -1) {
        return node("Softmax", {x.name}, {Attr::integer("axis", axis)}, tapegrad::softmax(x.value, axis), x.batched);
    }
    Value log_softmax(const Value& x, int axis = -1) {
        return node("LogSoftmax", {x.name}, {Attr::integer("axis", axis)}, tapegrad::log_softmax(x.value, axis),
                    x.batched);
    }
    /// Reshape to `shape` (one -1 allowed). With a batched input the first dimension is written as 0 (copy
    /// the input's) when it keeps the batch size, else as -1, so the node works for any batch.
    Value reshape(const Value& x, const Shape& shape) {
        TensorT y = tapegrad::reshape(x.value, shape);
        return reshape_to(x, y.shape(), y);
    }
    /// Flattens dimensions [start, end] into one, as tapegrad::flatten.
    Value flatten(const Value& x, int start = 0, int end = -1) {
        TensorT y = tapegrad::flatten(x.value, start, end);
        const int rank = x.value.dim();
        const int a = rank == 0 ? 0 : x.value.shape().normalize_axis(start, "flatten");
        const int b = rank == 0 ? 0 : x.value.shape().normalize_axis(end, "flatten");
        // ONNX Flatten always gives 2-D [d0 * ... * d(axis-1), rest]: tapegrad's flatten(x, 1) exactly.
        if (rank >= 2 && a == 1 && b == rank - 1)
            return node("Flatten", {x.name}, {Attr::integer("axis", 1)}, y, x.batched);
        return reshape_to(x, y.shape(), y);
    }
    /// Joins values along `axis`.
    Value concat(const std::vector<Value>& xs, int axis) {
        TAPEGRAD_CHECK(!xs.empty(), ValueError, "export_onnx: concat of no values");
        std::vector<TensorT> ts;
        std::vector<std::string> names;
        bool batched = false;
        for (const auto& v : xs) {
            ts.push_back(v.value);
            names.push_back(v.name);
            batched = batched || v.batched;
        }
        if (batched && xs[0].value.shape().normalize_axis(axis, "concat") == 0) batch_moved_ = true;
        return node("Concat", names, {Attr::integer("axis", axis)}, tapegrad::concat(ts, axis), batched);
    }
    /// Swaps two axes.
    Value transpose(const Value& x, int axis0, int axis1) {
        const int rank = x.value.dim();
        const int a = x.value.shape().normalize_axis(axis0, "transpose");
        const int b = x.value.shape().normalize_axis(axis1, "transpose");
        std::vector<int64_t> perm(static_cast<size_t>(rank));
        for (int i = 0; i < rank; ++i) perm[static_cast<size_t>(i)] = i;
        std::swap(perm[static_cast<size_t>(a)], perm[static_cast<size_t>(b)]);
        if (x.batched && (a == 0 || b == 0)) batch_moved_ = true;
        return node("Transpose", {x.name}, {Attr::integers("perm", perm)}, tapegrad::transpose(x.value, axis0, axis1),
                    x.batched && a != 0 && b != 0);
    }

    // ---- the file -----------------------------------------------------------------------------------
    /// ModelProto: ir_version (1), producer_name (2), producer_version (3), doc_string (6), graph (7),
    /// opset_import (8) = {domain (1), version (2)}. GraphProto: node (1), name (2), initializer (5),
    /// input (11), output (12).
    [[nodiscard]] std::vector<unsigned char> encode(const Value& input, const Value& output) const {
        proto::Writer g;
        for (const auto& n : nodes_) g.message(1, n);
        g.string(2, opt_.graph_name);
        for (const auto& t : initializers_) g.message(5, t);
        g.message(11, detail::value_info(input.name, onnx_type_of<T>(), dims_of(input)));
        g.message(12, detail::value_info(output.name, onnx_type_of<T>(), dims_of(output)));
        proto::Writer m;
        m.int64(1, 8);
        m.string(2, "tapegrad");
        m.string(3, "0.1");
        if (!opt_.doc_string.empty()) m.string(6, opt_.doc_string);
        m.message(7, g);
        proto::Writer opset;
        opset.string(1, "");
        opset.int64(2, opt_.opset);
        m.message(8, opset);
        return std::move(m).take();
    }
    [[nodiscard]] const OnnxExportOptions& options() const noexcept { return opt_; }
    /// The current module's dotted path ("" at the root).
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    static std::string join(const std::string& a, const std::string& b) {
        return a.empty() ? b : b.empty() ? a : a + "." + b;
    }
    std::string fresh(const std::string& what) {
        return (path_.empty() ? std::string() : path_ + "/") + what + "_" + std::to_string(counter_++);
    }
    /// The dimensions declared for the graph's input or output: the batch symbolic (-1); every dimension
    /// unknown (-2) when the batch was merged or moved into another dimension on the way.
    std::vector<int64_t> dims_of(const Value& v) const {
        std::vector<int64_t> d = v.value.shape().to_vector();
        if (!opt_.dynamic_batch || d.empty()) return d;
        if (v.batched)
            d[0] = -1;
        else if (batch_moved_)
            std::fill(d.begin(), d.end(), -2);
        return d;
    }
    Value binary(const char* op, const Value& a, const Value& b, TensorT y) {
        return node(op, {a.name, b.name}, {}, std::move(y), a.batched || b.batched);
    }
    Value reshape_to(const Value& x, const Shape& out, TensorT y) {
        std::vector<int64_t> s = out.to_vector();
        bool batched = false;
        if (x.batched && opt_.dynamic_batch && !s.empty() && x.value.dim() > 0) {
            if (s[0] == x.value.shape()[0]) {
                s[0] = 0;  // Reshape: 0 copies the input's dimension
                batched = true;
            } else {
                s[0] = -1;  // the batch is merged into the first dimension
                batch_moved_ = true;
            }
        }
        return node("Reshape", {x.name, int64_constant(s)}, {}, std::move(y), batched);
    }
    /// A parameter or buffer of the current module as an initializer, `<path>.<name>`.
    std::string param(const TensorT& t, const std::string& name) { return constant(t, name).name; }
    /// `t` seen as [C, 1, ..., 1] to broadcast along dimension 1 of a rank-`rank` value.
    std::string per_channel(const TensorT& t, int rank, const std::string& name) {
        if (rank <= 2) return param(t, name);
        Shape s{t.numel()};
        for (int i = 2; i < rank; ++i) s.push_back(1);
        NoGradGuard ng;
        return constant(tapegrad::reshape(t.detach(), s), name).name;
    }

    Value dispatch(nn::Module<T, D>& m, const Value& x);
    template <class F>
    Value activation(nn::Module<T, D>& m, const Value& x, const F& y, bool& handled);
    Value linear(const Value& x, const std::string& w, const std::string& b, TensorT y);
    Value batch_norm(nn::BatchNormBase<T, D>& bn, const Value& x, const TensorT& y);
    Value layer_norm(nn::LayerNorm<T, D>& ln, const Value& x, const TensorT& y);
    /// One ONNX recurrent node over a time-major [T, B, in] value: (weights of each direction) -> Y [T, B,
    /// dirs*H] (or, with `last_state`, Y_h reshaped [B, H]).
    struct RnnWeights {
        TensorT w_ih, w_hh, b_ih, b_hh;
    };
    std::string recurrent(RnnMode mode, int64_t hidden, const std::vector<RnnWeights>& dirs,
                          const std::string& x, const std::string& name, bool last_state);
    Value recurrent_module(nn::RecurrentBase<T, D>& r, const Value& x, const TensorT& y);
    Value recurrent_cell(nn::RecurrentCellBase<T, D>& c, RnnMode mode, const Value& x, const TensorT& y);
    Value normalize(const Value& x, const std::vector<int64_t>& axes, double eps, const std::string& w,
                    const std::string& b, const TensorT& y);
    Value adaptive_pool(const Value& x, Size2 out, const TensorT& y);
    [[nodiscard]] std::string where() const { return path_.empty() ? std::string("(root)") : path_; }
    [[noreturn]] void unsupported(nn::Module<T, D>& m) const {
        ::tapegrad::detail::raise<ValueError>("export_onnx: module '", m.describe(), "' at '", where(),
                                              "' has no ONNX form; implement tapegrad::io::OnnxExportable in it to "
                                              "export it");
    }

    OnnxExportOptions opt_;
    std::string path_;
    int64_t counter_ = 0;
    bool batch_moved_ = false;  ///< some op merged the batch into another dimension or moved it
    std::vector<proto::Writer> nodes_, initializers_;
    std::vector<std::pair<std::string, const void*>> initializer_names_;  ///< each initializer's tensor
};

template <Scalar T, Device D>
auto OnnxGraph<T, D>::linear(const Value& x, const std::string& w, const std::string& b, TensorT y) -> Value {
    if (x.value.dim() == 2) {
        std::vector<std::string> in{x.name, w};
        if (!b.empty()) in.push_back(b);
        return node("Gemm", in, {Attr::integer("transB", 1)}, std::move(y), x.batched);
    }
    const Value wt = node("Transpose", {w}, {Attr::integers("perm", {1, 0})}, {}, false);
    Value h = node("MatMul", {x.name, wt.name}, {}, b.empty() ? y : TensorT{}, x.batched);
    if (b.empty()) return h;
    return node("Add", {h.name, b}, {}, std::move(y), x.batched);
}

template <Scalar T, Device D>
auto OnnxGraph<T, D>::batch_norm(nn::BatchNormBase<T, D>& bn, const Value& x, const TensorT& y) -> Value {
    const int64_t c = bn.num_features();
    const bool affine = bn.weight().defined();
    const double eps = bn.options().eps;
    if (bn.running_mean().defined()) {
        const std::string w = affine ? param(bn.weight(), "weight") : constant(TensorT::ones({c}), "weight_ones").name;
        const std::string b = affine ? param(bn.bias(), "bias") : constant(TensorT::zeros({c}), "bias_zeros").name;
        const std::string mean = param(bn.running_mean(), "running_mean");
        const std::string var = param(bn.running_var(), "running_var");
        return node("BatchNormalization", {x.name, w, b, mean, var}, {Attr::real("epsilon", eps)}, y, x.batched);
    }
    // No running statistics: eval normalises with the batch's own, over every axis but the channels.
    const int rank = x.value.dim();
    std::vector<int64_t> axes{0};
    for (int i = 2; i < rank; ++i) axes.push_back(i);
    const std::string wc = affine ? per_channel(bn.weight(), rank, "weight_channels")
                                  : per_channel(TensorT::ones({c}), rank, "weight_ones_channels");
    const std::string bc = affine ? per_channel(bn.bias(), rank, "bias_channels")
                                  : per_channel(TensorT::zeros({c}), rank, "bias_zeros_channels");
    return normalize(x, axes, eps, wc, bc, y);
}

template <Scalar T, Device D>
auto OnnxGraph<T, D>::normalize(const Value& x, const std::vector<int64_t>& axes, double eps, const std::string& w,
                                const std::string& b, const TensorT& y) -> Value {
    // (x - mean) / sqrt(var + eps) * w + b, mean and (biased) variance over `axes`.
    const Value mean = node("ReduceMean", {x.name}, {Attr::integers("axes", axes), Attr::integer("keepdims", 1)}, {},
                            false);
    const Value centred = node("Sub", {x.name, mean.name}, {}, {}, x.batched);
    const Value sq = node("Mul", {centred.name, centred.name}, {}, {}, x.batched);
    const Value var = node("ReduceMean", {sq.name}, {Attr::integers("axes", axes), Attr::integer("keepdims", 1)}, {},
                           false);
    const Value shifted = node("Add", {var.name, scalar(eps).name}, {}, {}, false);
    const Value sd = node("Sqrt", {shifted.name}, {}, {}, false);
    const Value normed = node("Div", {centred.name, sd.name}, {}, {}, x.batched);
    const Value scaled = node("Mul", {normed.name, w}, {}, {}, x.batched);
    return node("Add", {scaled.name, b}, {}, y, x.batched);
}

template <Scalar T, Device D>
auto OnnxGraph<T, D>::layer_norm(nn::LayerNorm<T, D>& ln, const Value& x, const TensorT& y) -> Value {
    const Shape& ns = ln.normalized_shape();
    const bool affine = ln.weight().defined();
    const std::string w = affine ? param(ln.weight(), "weight") : constant(TensorT::ones(ns), "weight_ones").name;
    const std::string b = affine ? param(ln.bias(), "bias") : constant(TensorT::zeros(ns), "bias_zeros").name;
    const double eps = ln.options().eps;
    if (opt_.opset >= 17)
        return node("LayerNormalization", {x.name, w, b},
                    {Attr::integer("axis", -static_cast<int64_t>(ns.rank())), Attr::real("epsilon", eps)}, y,
                    x.batched);
    std::vector<int64_t> axes;
    for (int i = x.value.dim() - ns.rank(); i < x.value.dim(); ++i) axes.push_back(i);
    return normalize(x, axes, eps, w, b, y);
}

template <Scalar T, Device D>
std::string OnnxGraph<T, D>::recurrent(RnnMode mode, int64_t hidden, const std::vector<RnnWeights>& dirs,
                                       const std::string& x, const std::string& name, bool last_state) {
    // ONNX's gate order, as indices of PyTorch's: LSTM i o f c <- i f g o; GRU z r h <- r z n.
    std::vector<int64_t> order{0};
    const char* op = "RNN";
    if (mode == RnnMode::lstm) {
        order = {0, 3, 1, 2};
        op = "LSTM";
    } else if (mode == RnnMode::gru) {
        order = {1, 0, 2};
        op = "GRU";
    }
    const auto gates = static_cast<int64_t>(order.size());
    const auto reorder = [&](const TensorT& t, std::vector<T>& out) {
        const std::vector<T> v = t.to_vector();
        const int64_t per_gate = static_cast<int64_t>(v.size()) / gates;
        for (int64_t g : order)
            out.insert(out.end(), v.begin() + g * per_gate, v.begin() + (g + 1) * per_gate);
    };
    std::vector<T> w, r, b;
    const bool bias = dirs[0].b_ih.defined();
    for (const auto& d : dirs) {
        reorder(d.w_ih, w);
        reorder(d.w_hh, r);
        if (bias) {
            reorder(d.b_ih, b);
            reorder(d.b_hh, b);
        }
    }
    const auto nd = static_cast<int64_t>(dirs.size());
    const int64_t in = dirs[0].w_ih.size(1);
    std::vector<std::string> inputs{x, constant(TensorT::from({nd, gates * hidden, in}, w), name + "_W").name,
                                    constant(TensorT::from({nd, gates * hidden, hidden}, r), name + "_R").name};
    if (bias) inputs.push_back(constant(TensorT::from({nd, 2 * gates * hidden}, b), name + "_B").name);
    std::vector<Attr> attrs{Attr::integer("hidden_size", hidden),
                            Attr::text("direction", nd == 2 ? "bidirectional" : "forward")};
    if (mode == RnnMode::rnn_relu || mode == RnnMode::rnn_tanh) {
        const char* act = mode == RnnMode::rnn_relu ? "Relu" : "Tanh";
        OnnxAttribute a;
        a.name = "activations";
        a.kind = OnnxAttribute::Kind::strings;
        a.strings.assign(static_cast<size_t>(nd), act);
        attrs.push_back(a);
    }
    if (mode == RnnMode::gru) attrs.push_back(Attr::integer("linear_before_reset", 1));
    // Outputs Y [T, dirs, B, H] and Y_h [dirs, B, H]; only one is used.
    const std::string y = fresh(std::string(op) + "_Y"), yh = fresh(std::string(op) + "_Y_h");
    proto::Writer n;
    for (const auto& i : inputs) n.string(1, i);
    if (last_state) {
        n.string(2, "");  // Y unused
        n.string(2, yh);
    } else {
        n.string(2, y);
    }
    n.string(3, y);
    n.string(4, op);
    for (const auto& a : attrs) n.message(5, detail::attribute_proto(a));
    nodes_.push_back(std::move(n));
    if (last_state) return node("Reshape", {yh, int64_constant({-1, hidden})}, {}, {}, false).name;
    const Value t = node("Transpose", {y}, {Attr::integers("perm", {0, 2, 1, 3})}, {}, false);
    return node("Reshape", {t.name, int64_constant({0, 0, nd * hidden})}, {}, {}, false).name;
}

template <Scalar T, Device D>
auto OnnxGraph<T, D>::recurrent_module(nn::RecurrentBase<T, D>& r, const Value& x, const TensorT& y) -> Value {
    const bool unbatched = x.value.dim() == 2;
    const int64_t dirs = r.bidirectional() ? 2 : 1, H = r.hidden_size();
    std::string seq = x.name;
    if (unbatched)
        seq = node("Reshape", {seq, int64_constant({0, 1, r.input_size()})}, {}, {}, false).name;
    else if (r.batch_first())
        seq = node("Transpose", {seq}, {Attr::integers("perm", {1, 0, 2})}, {}, false).name;
    for (int64_t l = 0; l < r.num_layers(); ++l) {
        std::vector<RnnWeights> w;
        for (int64_t d = 0; d < dirs; ++d)
            w.push_back({r.weight_ih(l, d == 1), r.weight_hh(l, d == 1), r.bias_ih(l, d == 1), r.bias_hh(l, d == 1)});
        seq = recurrent(r.mode(), H, w, seq, "l" + std::to_string(l), false);
    }
    if (unbatched) return node("Reshape", {seq, int64_constant({0, dirs * H})}, {}, y, x.batched);
    if (r.batch_first()) return node("Transpose", {seq}, {Attr::integers("perm", {1, 0, 2})}, y, x.batched);
    return node("Identity", {seq}, {}, y, x.batched);
}

template <Scalar T, Device D>
auto OnnxGraph<T, D>::recurrent_cell(nn::RecurrentCellBase<T, D>& c, RnnMode mode, const Value& x,
                                     const TensorT& y) -> Value {
    // One step from a zero state: the input as a sequence of length 1, the last hidden state out.
    const bool single = x.value.dim() == 1;
    const std::string seq = node("Reshape", {x.name, int64_constant({1, -1, c.input_size()})}, {}, {}, false).name;
    const std::string h = recurrent(mode, c.hidden_size(), {{c.weight_ih(), c.weight_hh(), c.bias_ih(), c.bias_hh()}},
                                    seq, "cell", true);
    if (single) return node("Reshape", {h, int64_constant({c.hidden_size()})}, {}, y, false);
    return node("Identity", {h}, {}, y, x.batched);
}

template <Scalar T, Device D>
auto OnnxGraph<T, D>::adaptive_pool(const Value& x, Size2 out, const TensorT& y) -> Value {
    const int64_t h = x.value.shape()[2], w = x.value.shape()[3];
    if (out.h == 1 && out.w == 1) {
        return node("GlobalAveragePool", {x.name}, {}, y, x.batched);
    }
    if (h % out.h == 0 && w % out.w == 0) {
        const std::vector<int64_t> k{h / out.h, w / out.w};
        return node("AveragePool", {x.name}, {Attr::integers("kernel_shape", k), Attr::integers("strides", k)}, y,
                    x.batched);
    }
    // Windows of unequal sizes: the mean over a window's rectangle is the mean over its rows of the means
    // over its columns, so pool the rows (axis 2), then the columns (axis 3), one Slice + ReduceMean each.
    Value cur = x;
    const int64_t in_sizes[] = {h, w};
    const int64_t out_sizes[] = {out.h, out.w};
    for (int axis = 2; axis <= 3; ++axis) {
        const int64_t n = in_sizes[axis - 2], o = out_sizes[axis - 2];
        if (n == o) continue;
        std::vector<std::string> parts;
        for (int64_t i = 0; i < o; ++i) {
            const auto [s, e] = detail::adaptive_window(i, n, o);
            const Value piece = node("Slice",
                                     {cur.name, int64_constant({s}), int64_constant({e}), int64_constant({axis})},
                                     {}, {}, x.batched);
            parts.push_back(node("ReduceMean", {piece.name},
                                 {Attr::integers("axes", {axis}), Attr::integer("keepdims", 1)}, {}, x.batched)
                                .name);
        }
        cur = node("Concat", parts, {Attr::integer("axis", axis)}, {}, x.batched);
    }
    if (cur.name == x.name) return node("Identity", {x.name}, {}, y, x.batched);
    cur.value = y;
    return cur;
}

template <Scalar T, Device D>
template <class F>
auto OnnxGraph<T, D>::activation(nn::Module<T, D>& m, const Value& x, const F& y, bool& handled) -> Value {
    handled = true;
    const auto simple = [&](const char* op, std::vector<Attr> attrs = {}) {
        return node(op, {x.name}, attrs, y(), x.batched);
    };
    if (dynamic_cast<nn::ReLU<T, D>*>(&m)) return simple("Relu");
    if (dynamic_cast<nn::Sigmoid<T, D>*>(&m)) return simple("Sigmoid");
    if (dynamic_cast<nn::Tanh<T, D>*>(&m)) return simple("Tanh");
    if (dynamic_cast<nn::Identity<T, D>*>(&m)) return simple("Identity");
    if (dynamic_cast<nn::Activation<"Softsign", fn::Softsign, T, D>*>(&m)) return simple("Softsign");
    if (auto* a = dynamic_cast<nn::LeakyReLU<T, D>*>(&m))
        return simple("LeakyRelu", {Attr::real("alpha", a->functor().alpha)});
    if (auto* a = dynamic_cast<nn::ELU<T, D>*>(&m)) return simple("Elu", {Attr::real("alpha", a->functor().alpha)});
    if (dynamic_cast<nn::Step<T, D>*>(&m)) {
        const Value gt = node("Greater", {x.name, scalar(0).name}, {}, {}, x.batched);
        return node("Cast", {gt.name}, {Attr::integer("to", static_cast<int64_t>(onnx_type_of<T>()))}, y(), x.batched);
    }
    if (dynamic_cast<nn::SiLU<T, D>*>(&m)) {
        const Value s = node("Sigmoid", {x.name}, {}, {}, x.batched);
        return node("Mul", {x.name, s.name}, {}, y(), x.batched);
    }
    if (auto* a = dynamic_cast<nn::Softplus<T, D>*>(&m)) {
        // y = x where beta x > threshold, else log(1 + e^(beta x)) / beta (ONNX Softplus has no beta).
        const double beta = a->functor().beta, threshold = a->functor().threshold;
        const Value bx = beta == 1.0 ? x : node("Mul", {x.name, scalar(beta).name}, {}, {}, x.batched);
        Value sp = node("Softplus", {bx.name}, {}, {}, x.batched);
        if (beta != 1.0) sp = node("Div", {sp.name, scalar(beta).name}, {}, {}, x.batched);
        const Value over = node("Greater", {bx.name, scalar(threshold).name}, {}, {}, x.batched);
        return node("Where", {over.name, x.name, sp.name}, {}, y(), x.batched);
    }
    if (auto* a = dynamic_cast<nn::Activation<"GELU", fn::Gelu, T, D>*>(&m)) {
        Value inner;
        if (a->functor().tanh_approx) {
            // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            const Value x2 = node("Mul", {x.name, x.name}, {}, {}, x.batched);
            const Value x3 = node("Mul", {x2.name, x.name}, {}, {}, x.batched);
            const Value c3 = node("Mul", {x3.name, scalar(0.044715).name}, {}, {}, x.batched);
            const Value u0 = node("Add", {x.name, c3.name}, {}, {}, x.batched);
            const Value u = node("Mul", {u0.name, scalar(0.79788456080286535588).name}, {}, {}, x.batched);
            inner = node("Tanh", {u.name}, {}, {}, x.batched);
        } else {
            // 0.5 x (1 + erf(x / sqrt 2))
            const Value u = node("Mul", {x.name, scalar(0.70710678118654752440).name}, {}, {}, x.batched);
            inner = node("Erf", {u.name}, {}, {}, x.batched);
        }
        const Value one_plus = node("Add", {inner.name, scalar(1).name}, {}, {}, x.batched);
        const Value half_x = node("Mul", {x.name, scalar(0.5).name}, {}, {}, x.batched);
        return node("Mul", {half_x.name, one_plus.name}, {}, y(), x.batched);
    }
    if (auto* a = dynamic_cast<nn::PReLU<T, D>*>(&m)) {
        const TensorT& w = a->weight();
        const std::string slope =
            w.numel() == 1 ? param(w, "weight") : per_channel(w, x.value.dim(), "weight_channels");
        return node("PRelu", {x.name, slope}, {}, y(), x.batched);
    }
    if (auto* a = dynamic_cast<nn::Maxout<T, D>*>(&m)) {
        // linear -> [..., out, k] -> max over the pieces
        const std::string w = param(a->weight(), "weight");
        const std::string b = a->bias().defined() ? param(a->bias(), "bias") : std::string();
        const Value h = linear(x, w, b, {});
        std::vector<int64_t> s = x.value.shape().to_vector();
        s.back() = a->out_features();
        s.push_back(a->pieces());
        if (x.batched && opt_.dynamic_batch) s[0] = 0;
        const Value r = node("Reshape", {h.name, int64_constant(s)}, {}, {}, x.batched);
        return node("ReduceMax", {r.name}, {Attr::integers("axes", {-1}), Attr::integer("keepdims", 0)}, y(),
                    x.batched);
    }
    handled = false;
    return {};
}

template <Scalar T, Device D>
auto OnnxGraph<T, D>::dispatch(nn::Module<T, D>& m, const Value& x) -> Value {
    if (auto* seq = dynamic_cast<nn::Sequential<T, D>*>(&m)) {
        Value h = x;
        for (size_t i = 0; i < seq->size(); ++i) h = module(*(*seq)[i], h, std::to_string(i));
        return h;
    }
    if (auto* e = dynamic_cast<OnnxExportable<T, D>*>(&m)) {
        Value y = e->export_onnx(*this, x);
        TensorT ref = m.forward(x.value);
        TAPEGRAD_CHECK(y.value.defined(), ValueError, "export_onnx: module '", m.describe(), "' at '", where(),
                       "': its export_onnx returned a value without its tensor");
        TAPEGRAD_CHECK(y.value.shape() == ref.shape(), ValueError, "export_onnx: module '", m.describe(), "' at '",
                       where(), "': its export_onnx gives shape ", y.value.shape(), " but its forward gives ",
                       ref.shape());
        const std::vector<T> a = y.value.to_vector(), b = ref.to_vector();
        double worst = 0, scale = 0;
        for (size_t i = 0; i < a.size(); ++i) {
            worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
            scale = std::max(scale, std::abs(static_cast<double>(b[i])));
        }
        TAPEGRAD_CHECK(worst <= 1e-4 * std::max(scale, 1.0), ValueError, "export_onnx: module '", m.describe(),
                       "' at '", where(), "': its export_onnx disagrees with its forward (max difference ", worst, ")");
        return y;
    }
    if (dynamic_cast<nn::Dropout<T, D>*>(&m)) return x;  // eval: the identity

    // The module's own forward gives each branch's last node its value; called only for a module known here
    // (ModuleList's forward, for one, throws a message of its own).
    const auto y = [&] { return m.forward(x.value); };
    if (auto* l = dynamic_cast<nn::Linear<T, D>*>(&m)) {
        const std::string w = param(l->weight(), "weight");
        const std::string b = l->bias().defined() ? param(l->bias(), "bias") : std::string();
        return linear(x, w, b, y());
    }
    if (auto* c = dynamic_cast<nn::Conv2d<T, D>*>(&m)) {
        const auto& o = c->options();
        const Size2 k = c->kernel_size();
        std::vector<std::string> in{x.name, param(c->weight(), "weight")};
        if (c->bias().defined()) in.push_back(param(c->bias(), "bias"));
        return node("Conv", in,
                    {Attr::integers("kernel_shape", {k.h, k.w}), Attr::integers("strides", {o.stride.h, o.stride.w}),
                     Attr::integers("pads", {o.padding.h, o.padding.w, o.padding.h, o.padding.w}),
                     Attr::integers("dilations", {o.dilation.h, o.dilation.w}), Attr::integer("group", o.groups)},
                    y(), x.batched);
    }
    if (auto* p = dynamic_cast<nn::MaxPool2d<T, D>*>(&m)) {
        const Size2 k = p->kernel_size(), s = p->params().stride.value_or(k), pad = p->params().padding,
                    d = p->params().dilation;
        return node("MaxPool", {x.name},
                    {Attr::integers("kernel_shape", {k.h, k.w}), Attr::integers("strides", {s.h, s.w}),
                     Attr::integers("pads", {pad.h, pad.w, pad.h, pad.w}), Attr::integers("dilations", {d.h, d.w})},
                    y(), x.batched);
    }
    if (auto* p = dynamic_cast<nn::AvgPool2d<T, D>*>(&m)) {
        const Size2 k = p->kernel_size(), s = p->params().stride.value_or(k), pad = p->params().padding;
        return node("AveragePool", {x.name},
                    {Attr::integers("kernel_shape", {k.h, k.w}), Attr::integers("strides", {s.h, s.w}),
                     Attr::integers("pads", {pad.h, pad.w, pad.h, pad.w}),
                     Attr::integer("count_include_pad", p->params().count_include_pad ? 1 : 0)},
                    y(), x.batched);
    }
    if (auto* p = dynamic_cast<nn::AdaptiveAvgPool2d<T, D>*>(&m)) return adaptive_pool(x, p->output_size(), y());
    if (dynamic_cast<nn::GlobalAvgPool2d<T, D>*>(&m)) {
        const Value g = node("GlobalAveragePool", {x.name}, {}, {}, x.batched);
        return node("Flatten", {g.name}, {Attr::integer("axis", 1)}, y(), x.batched);
    }
    if (auto* bn = dynamic_cast<nn::BatchNormBase<T, D>*>(&m)) return batch_norm(*bn, x, y());
    if (auto* ln = dynamic_cast<nn::LayerNorm<T, D>*>(&m)) return layer_norm(*ln, x, y());
    if (auto* r = dynamic_cast<nn::RecurrentBase<T, D>*>(&m)) return recurrent_module(*r, x, y());
    if (auto* c = dynamic_cast<nn::LSTMCell<T, D>*>(&m)) return recurrent_cell(*c, RnnMode::lstm, x, y());
    if (auto* c = dynamic_cast<nn::GRUCell<T, D>*>(&m)) return recurrent_cell(*c, RnnMode::gru, x, y());
    if (auto* c = dynamic_cast<nn::RNNCell<T, D>*>(&m)) {
        // The cell's nonlinearity shows only in its description ("nonlinearity=relu"; tanh by default).
        const bool relu = m.describe().find("nonlinearity=relu") != std::string::npos;
        return recurrent_cell(*c, relu ? RnnMode::rnn_relu : RnnMode::rnn_tanh, x, y());
    }
    if (auto* f = dynamic_cast<nn::Flatten<T, D>*>(&m)) {
        Value v = flatten(x, f->start_dim(), f->end_dim());
        return v;
    }
    bool handled = false;
    Value a = activation(m, x, y, handled);
    if (handled) return a;
    unsupported(m);
}

/// Exports `module` applied to `example_input` as an ONNX model at `path` (see the file comment for what is
/// traced and how). The module is put in eval mode for the trace, and back in training mode afterwards if it
/// was training. Returns the module's output for the example input. Throws ValueError for a module or op
/// with no ONNX form or an unsupported opset, FormatError when the file cannot be written (an existing file
/// is then left as it was).
template <Scalar T, Device D>
Tensor<T, D> export_onnx(nn::Module<T, D>& module, const Tensor<T, D>& example_input, const std::filesystem::path& path,
                         const OnnxExportOptions& opt = {}) {
    TAPEGRAD_CHECK(opt.opset >= 13 && opt.opset <= 17, ValueError, "export_onnx: opset ", opt.opset,
                   " is not supported (13 to 17 are)");
    TAPEGRAD_CHECK(example_input.defined(), ValueError, "export_onnx: the example input is undefined");
    TAPEGRAD_CHECK(!opt.input_name.empty() && !opt.output_name.empty() && opt.input_name != opt.output_name,
                   ValueError, "export_onnx: input and output names must be non-empty and differ, got '",
                   opt.input_name, "' and '", opt.output_name, "'");
    const bool was_training = module.is_training();
    module.eval();
    struct Restore {
        nn::Module<T, D>& m;
        bool on;
        ~Restore() {
            if (on) m.train(true);
        }
    } restore{module, was_training};
    NoGradGuard no_grad;
    OnnxGraph<T, D> g(opt);
    const OnnxValue<T, D> in{opt.input_name, example_input.detach(), example_input.dim() > 0};
    OnnxValue<T, D> out = g.module(module, in, "");
    // The graph's output is a node's output named as asked (an Identity when the module passed its input on).
    const OnnxValue<T, D> named = g.node("Identity", {out.name}, {}, out.value, out.batched, opt.output_name);
    const std::vector<unsigned char> bytes = g.encode(in, named);
    util::write_file_atomically(path, bytes, ::tapegrad::detail::concat("export_onnx: '", path.string(), "'"));
    return out.value;
}

}  // namespace tapegrad::io
