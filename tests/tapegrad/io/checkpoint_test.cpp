// Tests for tapegrad/io/checkpoint.hpp: module state_dicts and optimizer state saved as safetensors.
//  - the file holds PyTorch's names and layouts, and save -> load -> save is byte-identical;
//  - loading reproduces a model bitwise; strict and non-strict loading report every problem at once, and a
//    failed load leaves the model untouched;
//  - saving is atomic: a failed save leaves the previous checkpoint as it was;
//  - F64 files load into float models (and F32 into double);
//  - optimizer state round trips exactly (SGD with momentum, Adam): a resumed run matches an uninterrupted one
//    bit for bit;
//  - robustness: a checkpoint cut at every byte offset, and every header byte flipped, never crash and never
//    change the model unless the load passed every check.

#include <tapegrad/io/checkpoint.hpp>
#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/batchnorm.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/optim/adam.hpp>
#include <tapegrad/optim/sgd.hpp>

#include "../../support/temp_dir.hpp"
#include "../../support/check_throws.hpp"
#include "../../support/tensor_checks.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <csignal>
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace {

namespace fs = std::filesystem;
namespace io = tapegrad::io;
namespace nn = tapegrad::nn;
namespace optim = tapegrad::optim;
using tapegrad::Generator;
using tapegrad::Shape;
using tapegrad::TensorD;
using tapegrad::TensorF;
using Bytes = std::vector<unsigned char>;

using tapegrad::testing::TempDir;

using tapegrad::testing::read_bytes;

/// Writes the first `count` bytes of `b` to a new file `p` (removed first: truncating a file in place makes
/// ext4 flush it on close, which would make the every-byte loops below take seconds).
void write_bytes(const fs::path& p, const Bytes& b, size_t count) {
    std::error_code ec;
    fs::remove(p, ec);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    REQUIRE(out.is_open());
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(count));
}

/// in -> 5 -> ReLU -> out, weights drawn from `seed`: state names 0.weight, 0.bias, 2.weight, 2.bias.
template <class T = float>
std::shared_ptr<nn::Sequential<T>> mlp(uint64_t seed, int64_t in = 4, int64_t hidden = 5, int64_t out = 3) {
    Generator g(seed);
    return std::make_shared<nn::Sequential<T>>(nn::Linear<T>(in, hidden, g), nn::ReLU<T>(), nn::Linear<T>(hidden, out, g));
}

/// A module with a buffer besides its parameters (saved, not trained).
class WithBuffer : public nn::Module<float> {
public:
    explicit WithBuffer(uint64_t seed) {
        Generator g(seed);
        fc = register_module("fc", std::make_shared<nn::Linear<float>>(3, 2, g));
        running = register_buffer("running_mean", TensorF::uniform({2}, -1.0f, 1.0f, g));
    }
    TensorF forward(const TensorF& x) override { return fc->forward(x) - running; }
    std::shared_ptr<nn::Linear<float>> fc;
    TensorF running;
};

/// A deep copy of every state tensor's values, to compare a model before and after.
template <class T>
std::vector<std::vector<T>> snapshot(const nn::Module<T>& m) {
    std::vector<std::vector<T>> out;
    for (const auto& [name, t] : m.state_dict()) out.push_back(t.to_vector());
    return out;
}

/// True when both models hold bitwise the same state.
template <class T>
bool same_state(const nn::Module<T>& a, const nn::Module<T>& b) {
    const auto sa = a.state_dict(), sb = b.state_dict();
    if (sa.size() != sb.size()) return false;
    for (size_t i = 0; i < sa.size(); ++i) {
        if (sa[i].first != sb[i].first || !(sa[i].second.shape() == sb[i].second.shape())) return false;
        if (std::memcmp(sa[i].second.data(), sb[i].second.data(), static_cast<size_t>(sa[i].second.numel()) * sizeof(T)) != 0)
            return false;
    }
    return true;
}

using tapegrad::testing::same_bits;

using tapegrad::testing::message_of;

/// A safetensors entry holding `values` as F32 (or F64), of shape `shape`.
template <class T>
io::StEntry entry(std::string name, std::vector<int64_t> shape, const std::vector<T>& values) {
    io::StEntry e{std::move(name), io::dtype_of<T>(), std::move(shape), {}};
    e.data.resize(values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(e.data.data(), values.data(), e.data.size());
    return e;
}

std::vector<float> counting(size_t n, float start = 0.5f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = start + 0.25f * static_cast<float>(i);
    return v;
}

/// `steps` of full-batch training on mse_loss.
void train(nn::Module<float>& model, optim::OptimizerBase& opt, const TensorF& x, const TensorF& y, int steps) {
    for (int s = 0; s < steps; ++s) {
        opt.zero_grad();
        nn::mse_loss(model.forward(x), y).backward();
        opt.step();
    }
}

}  // namespace

TEST_CASE("checkpoint: a Sequential of Linear layers saves 0.weight [out, in], 0.bias [out], 2.weight, 2.bias") {
    TempDir dir;
    const auto net = mlp(1);
    const fs::path path = dir.path / "model.safetensors";
    io::save(path, *net);
    const io::StFile f = io::load_safetensors(path);
    REQUIRE(f.tensors.size() == 4);
    CHECK(f.tensors[0].name == "0.bias");
    CHECK(f.tensors[0].shape == std::vector<int64_t>{5});
    CHECK(f.tensors[1].name == "0.weight");
    CHECK(f.tensors[1].shape == std::vector<int64_t>{5, 4});
    CHECK(f.tensors[2].name == "2.bias");
    CHECK(f.tensors[2].shape == std::vector<int64_t>{3});
    CHECK(f.tensors[3].name == "2.weight");
    CHECK(f.tensors[3].shape == std::vector<int64_t>{3, 5});
    for (const auto& e : f.tensors) CHECK(e.dtype == io::Dtype::F32);
    CHECK(f.metadata.at("format") == "pt");  // what transformers' loaders look for
    // The bytes are the parameters' row-major values.
    const auto named = net->named_parameters();
    for (const auto& [name, t] : named) {
        const io::StEntry* e = f.find(name);
        REQUIRE(e != nullptr);
        CHECK(std::memcmp(e->data.data(), t.data(), e->data.size()) == 0);
    }
    // User metadata is kept alongside.
    io::save(path, *net, {{"epoch", "3"}});
    CHECK(io::load_safetensors(path).metadata.at("epoch") == "3");
}

TEST_CASE("checkpoint: save -> load -> save is byte-identical; the loaded model reproduces outputs bitwise") {
    TempDir dir;
    const auto a = mlp(11, 6, 7, 4);
    const auto b = mlp(12, 6, 7, 4);  // another seed: different weights
    REQUIRE_FALSE(same_state(*a, *b));
    const fs::path p1 = dir.path / "a.safetensors", p2 = dir.path / "b.safetensors";
    io::save(p1, *a);
    io::load(p1, *b);
    io::save(p2, *b);
    const Bytes b1 = read_bytes(p1), b2 = read_bytes(p2);
    CHECK(b1 == b2);
    CHECK(io::encode_safetensors(io::decode_safetensors(b1, "a")) == b1);
    CHECK(same_state(*a, *b));
    Generator g(13);
    const TensorF x = TensorF::uniform({9, 6}, -2.0f, 2.0f, g);
    CHECK(same_bits(a->forward(x), b->forward(x)));
    // Loading copies values into the existing parameters: the handles (and any optimizer over them) stay valid.
    const float* w = b->named_parameters()[0].second.data();
    io::load(p1, *b);
    CHECK(b->named_parameters()[0].second.data() == w);
}

TEST_CASE("checkpoint: buffers are saved and restored with the parameters") {
    TempDir dir;
    WithBuffer a(1), b(2);
    const fs::path p = dir.path / "buf.safetensors";
    io::save(p, a);
    const io::StFile f = io::load_safetensors(p);
    std::vector<std::string> names;
    for (const auto& e : f.tensors) names.push_back(e.name);
    CHECK(names == std::vector<std::string>{"fc.bias", "fc.weight", "running_mean"});
    io::load(p, b);
    CHECK(same_state(a, b));
    CHECK(b.running.to_vector() == a.running.to_vector());
}

TEST_CASE("checkpoint: strict load lists missing, unexpected and mismatched names in one ShapeError") {
    TempDir dir;
    const fs::path p = dir.path / "bad.safetensors";
    io::StFile f;
    f.tensors.push_back(entry<float>("0.weight", {5, 4}, counting(20)));
    // 0.bias missing
    f.tensors.push_back(entry<float>("2.weight", {3, 6}, counting(18)));  // model has [3, 5]
    f.tensors.push_back(entry<float>("2.bias", {3}, counting(3)));
    f.tensors.push_back(entry<float>("extra.weight", {1}, counting(1)));
    f.tensors.push_back(entry<float>("4.bias", {2}, counting(2)));
    io::save_safetensors(p, f);
    const auto net = mlp(3);
    const auto before = snapshot(*net);
    const std::string msg = message_of<tapegrad::ShapeError>([&] { io::load(p, *net); });
    CHECK(msg == "load: '" + p.string() +
                     "' does not match the model: missing [0.bias]; unexpected [4.bias, extra.weight]; "
                     "shape mismatch [2.weight (file [3, 6], model [3, 5])];");
    CHECK(snapshot(*net) == before);  // nothing was copied, not even the tensors that matched
}

TEST_CASE("checkpoint: non-strict load ignores missing and unexpected names, still rejects a shape mismatch") {
    TempDir dir;
    const auto src = mlp(4);
    const auto sd = src->state_dict();  // 0.weight, 0.bias, 2.weight, 2.bias
    io::StFile f;
    f.tensors.push_back(entry<float>("0.weight", {5, 4}, sd[0].second.to_vector()));
    f.tensors.push_back(entry<float>("0.bias", {5}, sd[1].second.to_vector()));
    f.tensors.push_back(entry<float>("2.weight", {3, 5}, sd[2].second.to_vector()));
    f.tensors.push_back(entry<float>("head.weight", {7}, counting(7)));  // unexpected; 2.bias missing
    const fs::path partial = dir.path / "partial.safetensors";
    io::save_safetensors(partial, f);

    const auto net = mlp(5);
    const auto old_bias = net->state_dict()[3].second.to_vector();
    CHECK_THROWS_AS(io::load(partial, *net), tapegrad::ShapeError);  // strict by default
    io::load(partial, *net, {.strict = false});
    const auto got = net->state_dict();
    CHECK(got[0].second.to_vector() == sd[0].second.to_vector());
    CHECK(got[1].second.to_vector() == sd[1].second.to_vector());
    CHECK(got[2].second.to_vector() == sd[2].second.to_vector());
    CHECK(got[3].second.to_vector() == old_bias);  // missing from the file: left as it was

    f.tensors[2] = entry<float>("2.weight", {5, 3}, sd[2].second.to_vector());  // same count, transposed shape
    const fs::path mismatched = dir.path / "mismatched.safetensors";
    io::save_safetensors(mismatched, f);
    const auto fresh = mlp(6);
    const auto before = snapshot(*fresh);
    const std::string msg = message_of<tapegrad::ShapeError>([&] { io::load(mismatched, *fresh, {.strict = false}); });
    CHECK(msg.find("shape mismatch [2.weight (file [5, 3], model [3, 5])]") != std::string::npos);
    CHECK(msg.find("unexpected") == std::string::npos);
    CHECK(snapshot(*fresh) == before);
}

TEST_CASE("checkpoint: a tensor of a non-float dtype fails the load before anything is copied") {
    TempDir dir;
    const auto src = mlp(7);
    io::StFile f = io::to_safetensors<float>(src->state_dict());
    io::StEntry* bias = f.find("2.bias");
    REQUIRE(bias != nullptr);
    bias->dtype = io::Dtype::I32;  // same byte count, wrong type
    const fs::path p = dir.path / "int.safetensors";
    io::save_safetensors(p, f);
    const auto net = mlp(8);
    const auto before = snapshot(*net);
    const std::string msg = message_of<tapegrad::FormatError>([&] { io::load(p, *net); });
    CHECK(msg.find("tensor '2.bias' has dtype I32") != std::string::npos);
    CHECK(snapshot(*net) == before);  // 0.weight, 0.bias and 2.weight were valid but are not written either
}

TEST_CASE("checkpoint: a missing file or a directory fails with FormatError and leaves the model alone") {
    TempDir dir;
    const auto net = mlp(9);
    const auto before = snapshot(*net);
    CHECK_THROWS_AS(io::load(dir.path / "nope.safetensors", *net), tapegrad::FormatError);
    CHECK_THROWS_AS(io::load(dir.path, *net), tapegrad::FormatError);
    CHECK(snapshot(*net) == before);
}

TEST_CASE("checkpoint: an F64 file loads into a float model, converting; F32 loads into a double model") {
    TempDir dir;
    const auto dnet = mlp<double>(21);
    const fs::path p64 = dir.path / "f64.safetensors";
    io::save(p64, *dnet);
    for (const auto& e : io::load_safetensors(p64).tensors) CHECK(e.dtype == io::Dtype::F64);
    const auto fnet = mlp<float>(22);
    io::load(p64, *fnet);
    const auto ds = dnet->state_dict();
    const auto fs_ = fnet->state_dict();
    for (size_t i = 0; i < ds.size(); ++i)
        for (int64_t k = 0; k < ds[i].second.numel(); ++k)
            CHECK(fs_[i].second.data()[k] == static_cast<float>(ds[i].second.data()[k]));

    const fs::path p32 = dir.path / "f32.safetensors";
    io::save(p32, *fnet);
    const auto back = mlp<double>(23);
    io::load(p32, *back);
    const auto bs = back->state_dict();
    for (size_t i = 0; i < bs.size(); ++i)
        for (int64_t k = 0; k < bs[i].second.numel(); ++k)
            CHECK(bs[i].second.data()[k] == static_cast<double>(fs_[i].second.data()[k]));  // exact widening
}

TEST_CASE("checkpoint: saving over a directory fails and leaves it, and no temporary file, behind") {
    TempDir dir;
    const fs::path target = dir.path / "model.safetensors";
    fs::create_directory(target);
    write_bytes(target / "inside.txt", Bytes{'h', 'i'}, 2);
    const auto net = mlp(31);
    CHECK_THROWS_AS(io::save(target, *net), tapegrad::FormatError);
    CHECK(fs::is_directory(target));
    CHECK(read_bytes(target / "inside.txt") == Bytes{'h', 'i'});
    CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
    // A folder that does not exist: nothing is created.
    CHECK_THROWS_AS(io::save(dir.path / "no" / "such" / "dir" / "m.safetensors", *net), tapegrad::FormatError);
    CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
}

#if !defined(_WIN32)
TEST_CASE("checkpoint: a save that fails while writing leaves the previous checkpoint byte for byte") {
    // The write is made to fail with a file-size limit (RLIMIT_FSIZE: writes past it fail with EFBIG), which
    // works for any user, root included. The previous checkpoint is small; the new one is larger than the limit.
    TempDir dir;
    const fs::path target = dir.path / "model.safetensors";
    const auto small = mlp(41);
    io::save(target, *small);
    const Bytes old = read_bytes(target);
    const auto big = mlp(42, 200, 100, 10);  // ~85 KB of weights
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);  // otherwise exceeding the limit kills the process
    rlimit lowered = saved;
    lowered.rlim_cur = 16 * 1024;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
    std::string msg;
    try {
        io::save(target, *big);
        msg = "<no exception>";
    } catch (const tapegrad::FormatError& e) {
        msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    CHECK(msg.find("save_safetensors") != std::string::npos);
    CHECK(read_bytes(target) == old);
    CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});  // the temporary file is gone
    const auto check = mlp(43);
    io::load(target, *check);
    CHECK(same_state(*check, *small));
    // With the limit lifted the same save succeeds and replaces the file.
    io::save(target, *big);
    const auto reloaded = mlp(44, 200, 100, 10);
    io::load(target, *reloaded);
    CHECK(same_state(*reloaded, *big));
}

TEST_CASE("checkpoint: saving into a read-only folder fails and leaves the old file (skipped as root)") {
    if (::geteuid() == 0) {
        MESSAGE("running as root: permissions are not enforced, read-only folder test skipped");
        return;
    }
    TempDir dir;
    const fs::path target = dir.path / "model.safetensors";
    const auto net = mlp(45);
    io::save(target, *net);
    const Bytes old = read_bytes(target);
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::remove);
    CHECK_THROWS_AS(io::save(target, *mlp(46)), tapegrad::FormatError);
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::add);
    CHECK(read_bytes(target) == old);
    CHECK(dir.names() == std::vector<std::string>{"model.safetensors"});
}
#endif

TEST_CASE("checkpoint: optimizer state round trip; a resumed run equals an uninterrupted one bitwise") {
    TempDir dir;
    Generator g(51);
    const TensorF x = TensorF::uniform({16, 4}, -1.0f, 1.0f, g);
    const TensorF y = TensorF::uniform({16, 3}, -1.0f, 1.0f, g);
    const fs::path model_path = dir.path / "model.safetensors", opt_path = dir.path / "opt.safetensors";

    auto run = [&](auto make_opt, const char* name) {
        CAPTURE(name);
        // A: 3 steps, checkpoint, 3 more.
        const auto a = mlp(52);
        auto opt_a = make_opt(a->parameters());
        train(*a, opt_a, x, y, 3);
        io::save(model_path, *a);
        io::save_optimizer(opt_path, opt_a);
        train(*a, opt_a, x, y, 3);
        // B: a fresh model (another seed) and optimizer, both loaded, 3 steps.
        const auto b = mlp(53);
        auto opt_b = make_opt(b->parameters());
        io::load(model_path, *b);
        io::load_optimizer(opt_path, opt_b);
        train(*b, opt_b, x, y, 3);
        CHECK(same_state(*a, *b));
        // Without the optimizer state the run diverges: the state matters.
        const auto c = mlp(54);
        auto opt_c = make_opt(c->parameters());
        io::load(model_path, *c);
        train(*c, opt_c, x, y, 3);
        CHECK_FALSE(same_state(*a, *c));
        // The file holds the optimizer's name and its state names.
        const io::StFile f = io::load_safetensors(opt_path);
        CHECK(f.metadata.at("tapegrad.optimizer") == name);
        return f;
    };
    const io::StFile sgd = run(
        [](std::vector<TensorF> p) { return optim::SGD<float>(std::move(p), {.lr = 0.1, .momentum = 0.9}); }, "SGD");
    CHECK(sgd.find("0.momentum_buffer") != nullptr);
    CHECK(sgd.find("3.momentum_buffer") != nullptr);
    CHECK(sgd.find("3.momentum_buffer")->shape == std::vector<int64_t>{3});
    const io::StFile adam =
        run([](std::vector<TensorF> p) { return optim::Adam<float>(std::move(p), {.lr = 0.01}); }, "Adam");
    CHECK(adam.find("1.exp_avg") != nullptr);
    CHECK(adam.find("1.exp_avg_sq") != nullptr);
    REQUIRE(adam.find("2.step") != nullptr);
    CHECK(adam.find("2.step")->shape.empty());  // a rank-0 step count
    float step = 0;
    std::memcpy(&step, adam.find("2.step")->data.data(), sizeof step);
    CHECK(step == 3.0f);
    run([](std::vector<TensorF> p) { return optim::Adam<float>(std::move(p), {.lr = 0.01, .amsgrad = true}); }, "Adam");
    run([](std::vector<TensorF> p) { return optim::AdamW<float>(std::move(p), {.lr = 0.01}); }, "AdamW");
}

TEST_CASE("checkpoint: save_with_optimizer writes both files, or neither when one cannot be written") {
    TempDir dir;
    const fs::path model_path = dir.path / "m.safetensors", opt_path = dir.path / "m.safetensors.optim";
    const auto a = mlp(81);
    optim::SGD<float> opt_a(a->parameters(), {.lr = 0.1, .momentum = 0.9});
    Generator g(82);
    const TensorF x = TensorF::uniform({8, 4}, -1.0f, 1.0f, g), y = TensorF::uniform({8, 3}, -1.0f, 1.0f, g);
    train(*a, opt_a, x, y, 2);
    io::save_with_optimizer(model_path, *a, opt_path, opt_a, {{"tapegrad.model", "test"}});
    CHECK(dir.names() == std::vector<std::string>{"m.safetensors", "m.safetensors.optim"});
    const auto b = mlp(83);
    optim::SGD<float> opt_b(b->parameters(), {.lr = 0.1, .momentum = 0.9});
    io::load(model_path, *b);
    io::load_optimizer(opt_path, opt_b);
    CHECK(same_state(*a, *b));
    CHECK(io::load_safetensors(model_path).metadata.at("tapegrad.model") == "test");
    train(*a, opt_a, x, y, 1);
    train(*b, opt_b, x, y, 1);
    CHECK(same_state(*a, *b));  // the optimizer state came back too

    // The optimizer's file cannot be written (a folder sits at its path): the model file keeps its bytes.
    const Bytes old_model = read_bytes(model_path);
    fs::remove(opt_path);
    fs::create_directory(opt_path);
    train(*a, opt_a, x, y, 1);
    CHECK_THROWS_WITH_AS(io::save_with_optimizer(model_path, *a, opt_path, opt_a),
                         doctest::Contains("m.safetensors.optim"), tapegrad::FormatError);
    CHECK(read_bytes(model_path) == old_model);
    CHECK(dir.names() == std::vector<std::string>{"m.safetensors", "m.safetensors.optim"});
}

TEST_CASE("checkpoint: loading another optimizer's state, or a model file, as optimizer state is an error") {
    TempDir dir;
    Generator g(61);
    const TensorF x = TensorF::uniform({8, 4}, -1.0f, 1.0f, g);
    const TensorF y = TensorF::uniform({8, 3}, -1.0f, 1.0f, g);
    const auto net = mlp(62);
    optim::SGD<float> sgd(net->parameters(), {.lr = 0.1, .momentum = 0.9});
    train(*net, sgd, x, y, 2);
    const fs::path sgd_path = dir.path / "sgd.safetensors", model_path = dir.path / "model.safetensors";
    io::save_optimizer(sgd_path, sgd);
    io::save(model_path, *net);

    optim::Adam<float> adam(net->parameters());
    const std::string msg = message_of<tapegrad::FormatError>([&] { io::load_optimizer(sgd_path, adam); });
    CHECK(msg == "load_optimizer: '" + sgd_path.string() + "' holds the state of SGD, not of Adam");
    CHECK(adam.state().empty());  // unchanged
    const std::string msg2 = message_of<tapegrad::FormatError>([&] { io::load_optimizer(model_path, sgd); });
    CHECK(msg2.find("holds the state of no tapegrad optimizer, not of SGD") != std::string::npos);
    // The right type over other parameters: the optimizer's own validation names the problem.
    const auto other = mlp(63, 4, 6, 3);
    optim::SGD<float> sgd_other(other->parameters(), {.lr = 0.1, .momentum = 0.9});
    CHECK_THROWS_AS(io::load_optimizer(sgd_path, sgd_other), tapegrad::ShapeError);
    CHECK(sgd_other.state().empty());
}

TEST_CASE("checkpoint: a checkpoint cut at every byte offset is a FormatError and the model is untouched") {
    TempDir dir;
    const auto src = mlp(71, 3, 2, 2);
    const fs::path good = dir.path / "good.safetensors", cut = dir.path / "cut.safetensors";
    io::save(good, *src);
    const Bytes bytes = read_bytes(good);
    REQUIRE(bytes.size() > 100);
    const auto net = mlp(72, 3, 2, 2);
    const auto before = snapshot(*net);
    int format_errors = 0;
    for (size_t k = 0; k < bytes.size(); ++k) {
        write_bytes(cut, bytes, k);
        try {
            io::load(cut, *net);
            FAIL_CHECK("a checkpoint cut to ", k, " of ", bytes.size(), " bytes loaded");
        } catch (const tapegrad::FormatError&) {
            ++format_errors;
        } catch (const std::exception& e) {
            FAIL_CHECK("cut to ", k, " bytes: not a FormatError: ", e.what());
        }
    }
    CHECK(format_errors == static_cast<int>(bytes.size()));
    CHECK(snapshot(*net) == before);
    io::load(good, *net);  // the whole file still loads
    CHECK(same_state(*net, *src));
}

TEST_CASE("checkpoint: every header byte flipped (xor 0x01, 0x20, 0xFF) gives an Error or a fully valid load") {
    TempDir dir;
    const auto src = mlp(81, 3, 2, 2);
    const fs::path good = dir.path / "good.safetensors", bad = dir.path / "flipped.safetensors";
    io::save(good, *src);
    const Bytes bytes = read_bytes(good);
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | bytes[static_cast<size_t>(i)];
    REQUIRE(8 + header < bytes.size());
    const auto net = mlp(82, 3, 2, 2);
    const auto other = snapshot(*net);
    int errors = 0, loads = 0;
    for (size_t k = 0; k < 8 + header; ++k) {
        for (unsigned char mask : {0x01, 0x20, 0xFF}) {
            Bytes b = bytes;
            b[k] = static_cast<unsigned char>(b[k] ^ mask);
            write_bytes(bad, b, b.size());
            const auto before = snapshot(*net);
            try {
                io::load(bad, *net);
                ++loads;
                // It passed every check: names, shapes and data are the original ones (only metadata or
                // an equivalent spelling changed), so the model now holds the source's state.
                CHECK_MESSAGE(same_state(*net, *src), "byte ", k, " ^ ", int(mask), " loaded different values");
            } catch (const tapegrad::Error&) {
                ++errors;
                CHECK_MESSAGE(snapshot(*net) == before, "byte ", k, " ^ ", int(mask), " changed the model");
            } catch (const std::exception& e) {
                FAIL_CHECK("byte ", k, " ^ ", int(mask), ": not a tapegrad::Error: ", e.what());
            }
            // Restore the other state so that every try starts from a model that differs from the file.
            io::load_named<float>(io::to_safetensors<float>(mlp(82, 3, 2, 2)->state_dict()), net->state_dict(), "reset");
            REQUIRE(snapshot(*net) == other);
        }
    }
    CHECK(errors + loads == static_cast<int>(3 * (8 + header)));
    CHECK(errors > loads);
    MESSAGE("header flips: ", errors, " rejected, ", loads, " loaded (", 8 + header, " header bytes)");
}

namespace {

/// Containers nested two deep: `layers` a ModuleList of Linear and BatchNorm1d, `heads` a ModuleDict holding a
/// ModuleList, so the state_dict has names such as `layers.1.running_mean` and `heads.aux.0.weight`.
class Containers : public nn::Module<float> {
public:
    explicit Containers(uint64_t seed) {
        Generator g(seed);
        layers = register_module("layers", std::make_shared<nn::ModuleList<float>>());
        layers->push_back(nn::Linear<float>(4, 3, g));
        layers->push_back(nn::BatchNorm1d<float>(3));
        heads = register_module("heads", std::make_shared<nn::ModuleDict<float>>());
        heads->insert("cls", nn::Linear<float>(3, 2, g));
        auto aux = heads->insert("aux", std::make_shared<nn::ModuleList<float>>());
        aux->push_back(nn::Linear<float>(3, 1, g, {.bias = false}));
    }
    TensorF forward(const TensorF& x) override {
        TensorF h = (*layers)[1]->forward((*layers)[0]->forward(x));
        return (*heads)["cls"]->forward(h);
    }
    std::shared_ptr<nn::ModuleList<float>> layers;
    std::shared_ptr<nn::ModuleDict<float>> heads;
};

}  // namespace

TEST_CASE("checkpoint: ModuleList and ModuleDict state round trips under PyTorch's dotted names") {
    TempDir dir;
    const fs::path p = dir.path / "containers.safetensors";
    Containers src(1);
    (void)src.forward(TensorF::ones({5, 4}));  // a training step moves the batch-norm buffers off their initial values
    io::save(p, src);
    std::vector<std::string> names;
    for (const auto& e : io::load_safetensors(p).tensors) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"heads.aux.0.weight", "heads.cls.bias", "heads.cls.weight",
                                            "layers.0.bias", "layers.0.weight", "layers.1.bias",
                                            "layers.1.num_batches_tracked", "layers.1.running_mean",
                                            "layers.1.running_var", "layers.1.weight"});
    Containers dst(2);
    REQUIRE(!same_state(dst, src));
    io::load(p, dst);
    CHECK(same_state(dst, src));
    // a file whose names are spelled for another nesting does not load, and names what is missing
    nn::Sequential<float> flat{nn::Linear<float>(4, 3)};
    CHECK_THROWS_WITH_AS(io::load(p, flat), doctest::Contains("heads.cls.weight"), tapegrad::Error);
}
