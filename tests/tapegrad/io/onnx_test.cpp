// Tests for tapegrad/io/onnx.hpp: the exported file decoded again in C++ (the ONNX checker and onnxruntime
// run on exported models in tests/onnx/, ctest onnx/export_check_runtime).
//  - ModelProto fields: IR version, opset, producer; the graph's nodes, attributes and initializers by
//    their state_dict names, holding the weights' bytes; the symbolic batch dimension, or none;
//  - a module with no ONNX form throws naming it and its place; a custom module's export that disagrees
//    with its forward throws; an unsupported opset throws;
//  - a failed export (a bad module, a write that fails) leaves an existing file byte for byte;
//  - the module's training mode is restored, and the trace runs in eval mode.

#include <tapegrad/io/onnx.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/check_throws.hpp"
#include "../../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <csignal>
#include <sys/resource.h>
#endif

namespace {

namespace fs = std::filesystem;
namespace io = tapegrad::io;
namespace nn = tapegrad::nn;
namespace proto = tapegrad::io::proto;
using tapegrad::Generator;
using tapegrad::TensorF;
using Bytes = std::vector<unsigned char>;

using tapegrad::testing::TempDir;

using tapegrad::testing::read_bytes;

// ---- a small ONNX decoder, by onnx.proto's field numbers ---------------------------------------------------
struct Attr {
    int64_t type = 0, i = 0;
    float f = 0;
    std::vector<int64_t> ints;
};
struct Node {
    std::string op, name;
    std::vector<std::string> in, out;
    std::map<std::string, Attr> attrs;
};
struct Init {
    std::string name;
    int64_t type = 0;
    std::vector<int64_t> dims;
    Bytes raw;
};
struct ValueInfo {
    std::string name;
    int64_t elem = 0;
    std::vector<std::string> dims;  // "batch", "?" (unknown) or the number
};
struct Model {
    int64_t ir_version = 0, opset = 0;
    std::string producer, opset_domain = "unset", graph_name;
    std::vector<Node> nodes;
    std::vector<Init> inits;
    std::vector<ValueInfo> inputs, outputs;
};

ValueInfo decode_value_info(std::span<const unsigned char> b) {
    ValueInfo v;
    proto::Reader r(b);
    while (!r.done()) {
        const auto f = r.next();
        if (f.number == 1) v.name = f.as_string();
        if (f.number != 2) continue;
        proto::Reader type(f.bytes);
        const auto tensor = type.next();  // tensor_type = 1
        REQUIRE(tensor.number == 1);
        proto::Reader t(tensor.bytes);
        while (!t.done()) {
            const auto g = t.next();
            if (g.number == 1) v.elem = g.as_int64();
            if (g.number != 2) continue;
            proto::Reader shape(g.bytes);
            while (!shape.done()) {
                const auto dim = shape.next();
                proto::Reader d(dim.bytes);
                std::string s = "?";
                while (!d.done()) {
                    const auto h = d.next();
                    s = h.number == 1 ? std::to_string(h.as_int64()) : h.as_string();
                }
                v.dims.push_back(s);
            }
        }
    }
    return v;
}

Model decode(const Bytes& bytes) {
    Model m;
    proto::Reader r(bytes, "model");
    while (!r.done()) {
        const auto f = r.next();
        if (f.number == 1) m.ir_version = f.as_int64();
        if (f.number == 2) m.producer = f.as_string();
        if (f.number == 8) {
            proto::Reader o(f.bytes);
            while (!o.done()) {
                const auto g = o.next();
                if (g.number == 1) m.opset_domain = g.as_string();
                if (g.number == 2) m.opset = g.as_int64();
            }
        }
        if (f.number != 7) continue;
        proto::Reader g(f.bytes);
        while (!g.done()) {
            const auto h = g.next();
            if (h.number == 2) m.graph_name = h.as_string();
            if (h.number == 11) m.inputs.push_back(decode_value_info(h.bytes));
            if (h.number == 12) m.outputs.push_back(decode_value_info(h.bytes));
            if (h.number == 1) {
                Node n;
                proto::Reader nr(h.bytes);
                while (!nr.done()) {
                    const auto k = nr.next();
                    if (k.number == 1) n.in.push_back(k.as_string());
                    if (k.number == 2) n.out.push_back(k.as_string());
                    if (k.number == 3) n.name = k.as_string();
                    if (k.number == 4) n.op = k.as_string();
                    if (k.number == 5) {
                        Attr a;
                        std::string name;
                        proto::Reader ar(k.bytes);
                        while (!ar.done()) {
                            const auto x = ar.next();
                            if (x.number == 1) name = x.as_string();
                            if (x.number == 2) a.f = x.as_float();
                            if (x.number == 3) a.i = x.as_int64();
                            if (x.number == 8) a.ints.push_back(x.as_int64());
                            if (x.number == 20) a.type = x.as_int64();
                        }
                        n.attrs[name] = a;
                    }
                }
                m.nodes.push_back(n);
            }
            if (h.number == 5) {
                Init t;
                proto::Reader tr(h.bytes);
                while (!tr.done()) {
                    const auto x = tr.next();
                    if (x.number == 1) t.dims.push_back(x.as_int64());
                    if (x.number == 2) t.type = x.as_int64();
                    if (x.number == 8) t.name = x.as_string();
                    if (x.number == 9) t.raw.assign(x.bytes.begin(), x.bytes.end());
                }
                m.inits.push_back(t);
            }
        }
    }
    return m;
}

const Init* find_init(const Model& m, const std::string& name) {
    for (const auto& t : m.inits)
        if (t.name == name) return &t;
    return nullptr;
}

Bytes bytes_of(const TensorF& t) {
    const std::vector<float> v = t.to_vector();
    Bytes b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

std::shared_ptr<nn::Sequential<float>> small_mlp(uint64_t seed) {
    Generator gen(seed);
    return std::make_shared<nn::Sequential<float>>(nn::Linear<float>(4, 3, gen), nn::ReLU<float>(),
                                                   nn::Dropout<float>(0.5, gen), nn::Linear<float>(3, 2, gen));
}

/// A module with a forward of its own and no ONNX form.
struct Doubler : nn::Module<float> {
    TensorF forward(const TensorF& x) override { return x * 2.0f; }
    std::string describe() const override { return "Doubler()"; }
};

/// A custom module whose export does not match its forward (it forgets the doubling).
struct WrongExport : nn::Module<float>, io::OnnxExportable<float> {
    TensorF forward(const TensorF& x) override { return x * 2.0f; }
    io::OnnxValue<float> export_onnx(io::OnnxGraph<float>& g, const io::OnnxValue<float>& x) override {
        return g.relu(x);
    }
    std::string describe() const override { return "WrongExport()"; }
};

/// Applies one child twice: fc(relu(fc(x))).
struct Twice : nn::Module<float>, io::OnnxExportable<float> {
    Twice() { fc = register_module("fc", std::make_shared<nn::Linear<float>>(3, 3)); }
    TensorF forward(const TensorF& x) override { return fc->forward(tapegrad::relu(fc->forward(x))); }
    io::OnnxValue<float> export_onnx(io::OnnxGraph<float>& g, const io::OnnxValue<float>& x) override {
        return g.module(*fc, g.relu(g.module(*fc, x, "fc")), "fc");
    }
    std::shared_ptr<nn::Linear<float>> fc;
};

}  // namespace

TEST_CASE("onnx: a child applied twice shares its initializers") {
    TempDir dir;
    Twice net;
    io::export_onnx(net, TensorF::ones({2, 3}), dir.path / "m.onnx");
    const Model m = decode(read_bytes(dir.path / "m.onnx"));
    REQUIRE(m.inits.size() == 2);
    CHECK(m.inits[0].name == "fc.weight");
    CHECK(m.inits[1].name == "fc.bias");
    REQUIRE(m.nodes.size() == 4);
    CHECK(m.nodes[0].in[1] == "fc.weight");
    CHECK(m.nodes[2].in[1] == "fc.weight");
}

TEST_CASE("onnx: an MLP's file decodes to its ModelProto, nodes and initializers") {
    TempDir dir;
    auto net = small_mlp(3);
    Generator gen(7);
    const TensorF x = TensorF::uniform({2, 4}, -1.0f, 1.0f, gen);
    const TensorF y = io::export_onnx(*net, x, dir.path / "mlp.onnx");
    const Model m = decode(read_bytes(dir.path / "mlp.onnx"));
    CHECK(m.ir_version == 8);
    CHECK(m.opset == 17);
    CHECK(m.opset_domain.empty());
    CHECK(m.producer == "tapegrad");
    CHECK(m.graph_name == "tapegrad");
    // Dropout in eval is nothing; the graph ends in an Identity named "output".
    REQUIRE(m.nodes.size() == 4);
    CHECK(m.nodes[0].op == "Gemm");
    CHECK(m.nodes[0].in == std::vector<std::string>{"input", "0.weight", "0.bias"});
    CHECK(m.nodes[0].attrs.at("transB").i == 1);
    CHECK(m.nodes[0].attrs.at("transB").type == 2);  // AttributeProto.INT
    CHECK(m.nodes[1].op == "Relu");
    CHECK(m.nodes[1].in == m.nodes[0].out);
    CHECK(m.nodes[2].op == "Gemm");
    CHECK(m.nodes[2].in == std::vector<std::string>{m.nodes[1].out[0], "3.weight", "3.bias"});
    CHECK(m.nodes[3].op == "Identity");
    CHECK(m.nodes[3].out == std::vector<std::string>{"output"});
    // The weights, under their state_dict names, hold the parameters' bytes (float32 = 1).
    const auto named = net->named_parameters();
    REQUIRE(m.inits.size() == named.size());
    for (const auto& entry : named) {  // no structured binding: clang 14 cannot capture one in a CHECK
        const Init* init = find_init(m, entry.first);
        REQUIRE_MESSAGE(init != nullptr, entry.first);
        CHECK(init->type == 1);
        CHECK(init->dims == entry.second.shape().to_vector());
        CHECK(init->raw == bytes_of(entry.second));
    }
    // The batch is symbolic in the input and the output.
    REQUIRE(m.inputs.size() == 1);
    REQUIRE(m.outputs.size() == 1);
    CHECK(m.inputs[0].name == "input");
    CHECK(m.inputs[0].elem == 1);
    CHECK(m.inputs[0].dims == std::vector<std::string>{"batch", "4"});
    CHECK(m.outputs[0].dims == std::vector<std::string>{"batch", "2"});
    // The returned value is the module's output for the example (in eval: dropout passes x on).
    tapegrad::NoGradGuard ng;
    net->eval();
    CHECK(y.to_vector() == net->forward(x).to_vector());
}

TEST_CASE("onnx: options: fixed batch, names, opset; double models are DOUBLE") {
    TempDir dir;
    auto net = small_mlp(4);
    Generator gen(8);
    const TensorF x = TensorF::uniform({3, 4}, -1.0f, 1.0f, gen);
    io::export_onnx(*net, x, dir.path / "fixed.onnx",
                    {.opset = 13, .dynamic_batch = false, .input_name = "pixels", .output_name = "logits"});
    const Model m = decode(read_bytes(dir.path / "fixed.onnx"));
    CHECK(m.opset == 13);
    CHECK(m.inputs[0].name == "pixels");
    CHECK(m.inputs[0].dims == std::vector<std::string>{"3", "4"});
    CHECK(m.outputs[0].name == "logits");
    CHECK(m.outputs[0].dims == std::vector<std::string>{"3", "2"});
    CHECK(m.nodes[0].in[0] == "pixels");

    Generator g2(9);
    nn::Sequential<double> dnet{nn::Linear<double>(4, 2, g2), nn::Tanh<double>()};
    io::export_onnx(dnet, tapegrad::TensorD::ones({1, 4}), dir.path / "double.onnx");
    const Model md = decode(read_bytes(dir.path / "double.onnx"));
    CHECK(md.inputs[0].elem == 11);
    CHECK(find_init(md, "0.weight")->type == 11);
    CHECK(find_init(md, "0.weight")->raw.size() == 8 * 8);

    tapegrad::testing::check_throws<tapegrad::ValueError>(
        [&] { io::export_onnx(*net, x, dir.path / "x.onnx", {.opset = 18}); },
        "export_onnx: opset 18 is not supported");
    tapegrad::testing::check_throws<tapegrad::ValueError>(
        [&] { io::export_onnx(*net, x, dir.path / "x.onnx", {.input_name = "a", .output_name = "a"}); },
        "input and output names must be non-empty and differ");
}

TEST_CASE("onnx: batch merged into another dimension: the output's dimensions are left unknown") {
    TempDir dir;
    nn::Sequential<float> net{nn::Flatten<float>(0, 1)};
    io::export_onnx(net, TensorF::ones({2, 3, 4}), dir.path / "m.onnx");
    const Model m = decode(read_bytes(dir.path / "m.onnx"));
    CHECK(m.inputs[0].dims == std::vector<std::string>{"batch", "3", "4"});
    CHECK(m.outputs[0].dims == std::vector<std::string>{"?", "?"});
    REQUIRE(m.nodes.size() == 2);
    CHECK(m.nodes[0].op == "Reshape");
    // The shape constant says -1 for the merged dimension, so any batch reshapes.
    const Init* shape = find_init(m, m.nodes[0].in[1]);
    REQUIRE(shape != nullptr);
    CHECK(shape->type == 7);
    std::vector<int64_t> s(shape->raw.size() / 8);
    std::memcpy(s.data(), shape->raw.data(), shape->raw.size());
    CHECK(s == std::vector<int64_t>{-1, 4});
}

TEST_CASE("onnx: a module with no ONNX form throws naming it and its place; the old file stays") {
    TempDir dir;
    const fs::path target = dir.path / "model.onnx";
    auto good = small_mlp(5);
    io::export_onnx(*good, TensorF::ones({1, 4}), target);
    const Bytes old = read_bytes(target);

    nn::Sequential<float> bad{nn::Linear<float>(4, 4), std::make_shared<Doubler>()};
    tapegrad::testing::check_throws<tapegrad::ValueError>(
        [&] { io::export_onnx(bad, TensorF::ones({1, 4}), target); },
        "export_onnx: module 'Doubler()' at '1' has no ONNX form; implement tapegrad::io::OnnxExportable");
    auto list = std::make_shared<nn::ModuleList<float>>();
    nn::Sequential<float> holder{nn::Sequential<float>(nn::ReLU<float>()), list};
    tapegrad::testing::check_throws<tapegrad::ValueError>(
        [&] { io::export_onnx(holder, TensorF::ones({1, 4}), target); }, "module 'ModuleList' at '1'");
    Doubler root;
    tapegrad::testing::check_throws<tapegrad::ValueError>(
        [&] { io::export_onnx(root, TensorF::ones({1, 4}), target); }, "at '(root)'");
    WrongExport wrong;
    tapegrad::testing::check_throws<tapegrad::ValueError>(
        [&] { io::export_onnx(wrong, TensorF::ones({1, 4}), target); },
        "module 'WrongExport()' at '(root)': its export_onnx disagrees with its forward");
    CHECK(read_bytes(target) == old);
    CHECK(dir.names() == std::vector<std::string>{"model.onnx"});
}

TEST_CASE("onnx: an unwritable path throws FormatError and leaves an existing file byte for byte") {
    TempDir dir;
    auto net = small_mlp(6);
    tapegrad::testing::check_throws<tapegrad::FormatError>(
        [&] { io::export_onnx(*net, TensorF::ones({1, 4}), dir.path / "no_such_folder" / "m.onnx"); },
        "export_onnx: '");
    tapegrad::testing::check_throws<tapegrad::FormatError>(
        [&] { io::export_onnx(*net, TensorF::ones({1, 4}), dir.path); }, "export_onnx: '");
#if !defined(_WIN32)
    // A write that fails half way (a file-size limit, effective for root too) leaves the old file.
    const fs::path target = dir.path / "model.onnx";
    io::export_onnx(*net, TensorF::ones({1, 4}), target);
    const Bytes old = read_bytes(target);
    Generator gen(1);
    nn::Sequential<float> big{nn::Linear<float>(200, 100, gen)};  // 80 KB of weights
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved;
    lowered.rlim_cur = 16 * 1024;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
    std::string msg = "<no exception>";
    try {
        io::export_onnx(big, TensorF::ones({1, 200}), target);
    } catch (const tapegrad::FormatError& e) {
        msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    CHECK(msg.find("export_onnx: '") != std::string::npos);
    CHECK(read_bytes(target) == old);
    CHECK(dir.names() == std::vector<std::string>{"model.onnx"});
#endif
}

TEST_CASE("onnx: the trace runs in eval mode and restores the training mode") {
    TempDir dir;
    Generator gen(2);
    nn::Sequential<float> net{nn::Dropout<float>(0.9, gen), nn::BatchNorm1d<float>(3)};
    CHECK(net.is_training());
    const TensorF x = TensorF::uniform({4, 3}, -1.0f, 1.0f, gen);
    const TensorF y = io::export_onnx(net, x, dir.path / "m.onnx");
    CHECK(net.is_training());
    CHECK(net[0]->is_training());
    // In eval, dropout passes x through and batch norm uses its initial running statistics (0 and 1).
    CHECK(net[1]->named_buffers()[2].second.to_vector() == std::vector<float>{0.0f});  // no batch counted
    const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
    for (size_t i = 0; i < xv.size(); ++i) CHECK(yv[i] == doctest::Approx(xv[i] / std::sqrt(1.0f + 1e-5f)));
    net.eval();
    io::export_onnx(net, x, dir.path / "m.onnx");
    CHECK_FALSE(net.is_training());
}
