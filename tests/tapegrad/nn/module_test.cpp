// Tests for tapegrad/nn/module.hpp: dotted parameter names for nested modules (as a PyTorch state_dict),
// registration order, zero_grad, train/eval propagation, num_parameters, printing, Sequential built from
// values and from shared_ptrs, ModuleList and ModuleDict (nested, PyTorch's dotted names), the argument
// checks, and the layers' table of tests/support/op_tables.hpp (which every device runs) on the CPU.

#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/reduce.hpp>

#include "../../support/op_tables.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using tapegrad::Generator;
using tapegrad::TensorF;
namespace nn = tapegrad::nn;

/// The names of `named`, in order.
std::vector<std::string> names_of(const nn::Module<float>::Named& named) {
    std::vector<std::string> out;
    for (const auto& [name, t] : named) out.push_back(name);
    return out;
}

/// A user-defined network: two children registered by name, with its own forward.
class TwoLayer : public nn::Module<float> {
public:
    TwoLayer(int64_t in, int64_t hidden, int64_t out, Generator& gen)
        : fc1(register_module("fc1", std::make_shared<nn::Linear<float>>(in, hidden, gen))),
          fc2(register_module("fc2", std::make_shared<nn::Linear<float>>(hidden, out, gen))) {}
    TensorF forward(const TensorF& x) override { return fc2->forward(tapegrad::relu(fc1->forward(x))); }
    [[nodiscard]] std::string describe() const override { return "TwoLayer"; }

    std::shared_ptr<nn::Linear<float>> fc1, fc2;
};

/// A module with its own parameter and buffer besides a child: its own entries come first.
class Scaled : public nn::Module<float> {
public:
    explicit Scaled(Generator& gen) {
        scale = register_parameter("scale", TensorF::full({2}, 3.0f));
        count = register_buffer("count", TensorF::zeros({1}));
        inner = register_module("inner", std::make_shared<nn::Linear<float>>(2, 2, gen));
    }
    TensorF forward(const TensorF& x) override { return inner->forward(x) * scale; }

    TensorF scale, count;
    std::shared_ptr<nn::Linear<float>> inner;
};

/// Registers whatever child it is given (to test register_module's null check).
class Holder : public nn::Module<float> {
public:
    void add(std::string name, std::shared_ptr<nn::Module<float>> m) { register_module(std::move(name), std::move(m)); }
    TensorF forward(const TensorF& x) override { return x; }
};

std::string printed(const nn::Module<float>& m) {
    std::ostringstream os;
    os << m;
    return os.str();
}

}  // namespace

TEST_CASE("Module: a user module names its children's parameters fc1.weight, fc1.bias, fc2.weight, fc2.bias") {
    Generator gen(1);
    TwoLayer net(4, 8, 3, gen);
    const auto named = net.named_parameters();
    CHECK(names_of(named) == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
    CHECK(named[0].second.same_as(net.fc1->weight()));
    CHECK(named[1].second.same_as(net.fc1->bias()));
    CHECK(named[2].second.same_as(net.fc2->weight()));
    CHECK(named[3].second.same_as(net.fc2->bias()));
    CHECK(named[0].second.shape() == tapegrad::Shape{8, 4});
    CHECK(named[3].second.shape() == tapegrad::Shape{3});
    for (const auto& np : named) CHECK_MESSAGE(np.second.requires_grad(), np.first);
    CHECK(net.named_buffers().empty());
}

TEST_CASE("Module: own parameters come before children's; buffers follow parameters in state_dict") {
    Generator gen(2);
    Scaled m(gen);
    CHECK(names_of(m.named_parameters()) == std::vector<std::string>{"scale", "inner.weight", "inner.bias"});
    CHECK(names_of(m.named_buffers()) == std::vector<std::string>{"count"});
    CHECK(names_of(m.state_dict()) == std::vector<std::string>{"scale", "inner.weight", "inner.bias", "count"});
    CHECK_FALSE(m.named_buffers()[0].second.requires_grad());
    CHECK(m.num_parameters() == 2 + 4 + 2);  // buffers are not parameters
}

TEST_CASE("Module: a Sequential names its layers 0, 1, 2 and skips parameter-free layers") {
    Generator gen(3);
    nn::Sequential<float> net(nn::Linear<float>(4, 8, gen), nn::ReLU<float>(), nn::Linear<float>(8, 3, gen));
    CHECK(net.size() == 3);
    CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
    CHECK(names_of(net.state_dict()) == names_of(net.named_parameters()));
    CHECK(net.children().size() == 3);
    CHECK(net.children()[1].first == "1");
}

TEST_CASE("Module: nested names join with dots at every level") {
    Generator gen(4);
    nn::Sequential<float> net(TwoLayer(4, 5, 6, gen), nn::ReLU<float>(), nn::Linear<float>(6, 2, gen));
    CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"0.fc1.weight", "0.fc1.bias", "0.fc2.weight",
                                                                      "0.fc2.bias", "2.weight", "2.bias"});
}

TEST_CASE("Module: parameters() follows named_parameters() order and shares the tensors") {
    Generator gen(5);
    TwoLayer net(3, 4, 2, gen);
    auto params = net.parameters();
    const auto named = net.named_parameters();
    REQUIRE(params.size() == named.size());
    for (size_t i = 0; i < params.size(); ++i) CHECK(params[i].same_as(named[i].second));
    // A handle, not a copy: writing through parameters() changes the layer.
    {
        tapegrad::NoGradGuard ng;
        params[0].fill_(0.5f);
    }
    CHECK(net.fc1->weight()(0, 0) == 0.5f);
}

TEST_CASE("Module: zero_grad zeroes every gradient in place, keeping the buffers") {
    Generator gen(6);
    TwoLayer net(3, 4, 2, gen);
    const TensorF x = TensorF::uniform({5, 3}, -1.0f, 1.0f, gen);
    tapegrad::sum(net.forward(x)).backward();
    std::vector<const float*> buffers;
    bool any_nonzero = false;
    for (const auto& p : net.parameters()) {
        REQUIRE(p.grad().defined());
        buffers.push_back(p.grad().data());
        for (float g : p.grad().span()) any_nonzero = any_nonzero || g != 0.0f;
    }
    CHECK(any_nonzero);
    net.zero_grad();
    const auto params = net.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
        CHECK(params[i].grad().data() == buffers[i]);
        for (float g : params[i].grad().span()) CHECK(g == 0.0f);
    }
    // Gradients accumulate again from zero.
    tapegrad::sum(net.forward(x)).backward();
    const auto g1 = net.fc2->bias().grad().to_vector();
    CHECK(g1 == std::vector<float>(2, 5.0f));  // d(sum)/d(bias_j) = N = 5 for the last layer
}

TEST_CASE("Module: zero_grad on a module whose parameters have no gradient yet is a no-op") {
    Generator gen(7);
    TwoLayer net(3, 4, 2, gen);
    net.zero_grad();
    for (const auto& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("Module: train() and eval() reach every descendant") {
    Generator gen(8);
    nn::Sequential<float> net(TwoLayer(2, 3, 2, gen), nn::ReLU<float>());
    const auto& inner = dynamic_cast<TwoLayer&>(*net[0]);
    CHECK(net.is_training());
    CHECK(inner.fc1->is_training());
    net.eval();
    CHECK_FALSE(net.is_training());
    CHECK_FALSE(net[0]->is_training());
    CHECK_FALSE(inner.fc1->is_training());
    CHECK_FALSE(inner.fc2->is_training());
    CHECK_FALSE(net[1]->is_training());
    net.train();
    CHECK(inner.fc2->is_training());
    net.train(false);
    CHECK_FALSE(inner.fc2->is_training());
    // A child switched alone does not affect its parent.
    net[0]->train(true);
    CHECK(inner.fc1->is_training());
    CHECK_FALSE(net.is_training());
}

TEST_CASE("Module: num_parameters counts every trainable scalar") {
    Generator gen(9);
    nn::Sequential<float> net(nn::Linear<float>(4, 8, gen), nn::ReLU<float>(), nn::Linear<float>(8, 3, gen),
                              nn::Linear<float>(3, 5, gen, {.bias = false}));
    CHECK(net.num_parameters() == (4 * 8 + 8) + (8 * 3 + 3) + 3 * 5);
    CHECK(nn::ReLU<float>().num_parameters() == 0);
    // The MNIST MLP of the examples: 784-256-128-10.
    nn::Sequential<float> mlp(nn::Linear<float>(784, 256, gen), nn::ReLU<float>(), nn::Linear<float>(256, 128, gen),
                              nn::ReLU<float>(), nn::Linear<float>(128, 10, gen));
    CHECK(mlp.num_parameters() == 235146);
}

TEST_CASE("Module: operator<< prints the tree, one child per line, nested with indentation") {
    Generator gen(10);
    nn::Sequential<float> net(nn::Linear<float>(4, 8, gen), nn::ReLU<float>(),
                              nn::Linear<float>(8, 3, gen, {.bias = false}));
    CHECK(printed(net) ==
          "Sequential (\n"
          "  (0): Linear(in=4, out=8, bias=true)\n"
          "  (1): ReLU()\n"
          "  (2): Linear(in=8, out=3, bias=false)\n"
          ")");
    nn::Sequential<float> nested(TwoLayer(2, 3, 4, gen), nn::Sigmoid<float>());
    CHECK(printed(nested) ==
          "Sequential (\n"
          "  (0): TwoLayer (\n"
          "    (fc1): Linear(in=2, out=3, bias=true)\n"
          "    (fc2): Linear(in=3, out=4, bias=true)\n"
          "  )\n"
          "  (1): Sigmoid()\n"
          ")");
    CHECK(printed(nn::Linear<float>(1, 1, gen)) == "Linear(in=1, out=1, bias=true)");
    CHECK(printed(nn::Sequential<float>()) == "Sequential");
}

TEST_CASE("Sequential: built from shared_ptrs keeps those very modules") {
    Generator gen(11);
    auto l1 = std::make_shared<nn::Linear<float>>(3, 4, gen);
    auto act = std::make_shared<nn::Tanh<float>>();
    auto l2 = std::make_shared<nn::Linear<float>>(4, 2, gen);
    nn::Sequential<float> net(l1, act, l2);
    CHECK(net.size() == 3);
    CHECK(net[0].get() == l1.get());
    CHECK(net[1].get() == act.get());
    CHECK(net[2].get() == l2.get());
    CHECK(net.named_parameters()[0].second.same_as(l1->weight()));
    // Changing the layer through the caller's handle changes the network's output.
    const TensorF x = TensorF::uniform({2, 3}, -1.0f, 1.0f, gen);
    const auto before = net.forward(x).to_vector();
    {
        tapegrad::NoGradGuard ng;
        l2->bias().fill_(100.0f);
    }
    const auto after = net.forward(x).to_vector();
    for (size_t i = 0; i < after.size(); ++i) CHECK(after[i] > before[i] + 90.0f);
}

TEST_CASE("Sequential: built from values; push_back returns the shared handle; forward chains the layers") {
    Generator gen(12);
    nn::Sequential<float> net;
    auto l1 = net.push_back(nn::Linear<float>(3, 4, gen));
    net.push_back(nn::ReLU<float>());
    auto l2 = net.push_back(std::make_shared<nn::Linear<float>>(4, 2, gen));
    CHECK(net.size() == 3);
    CHECK(net[0].get() == l1.get());
    CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
    const TensorF x = TensorF::uniform({5, 3}, -1.0f, 1.0f, gen);
    const TensorF want = l2->forward(tapegrad::relu(l1->forward(x)));
    CHECK(net.forward(x).to_vector() == want.to_vector());
    CHECK(net(x).to_vector() == want.to_vector());
    // An empty Sequential is the identity.
    nn::Sequential<float> empty;
    CHECK(empty.forward(x).same_as(x));
}

TEST_CASE("Sequential: operator[] out of range throws IndexError naming the index and the size") {
    Generator gen(13);
    nn::Sequential<float> net(nn::Linear<float>(2, 2, gen), nn::ReLU<float>(), nn::Linear<float>(2, 2, gen));
    CHECK_NOTHROW(static_cast<void>(net[2]));
    CHECK_THROWS_WITH_AS(static_cast<void>(net[3]), "Sequential: index 3 out of range (3 modules)",
                         tapegrad::IndexError);
    nn::Sequential<float> empty;
    CHECK_THROWS_AS(static_cast<void>(empty[0]), tapegrad::IndexError);
}

TEST_CASE("Module: register_module(nullptr) throws ValueError naming the child") {
    Holder h;
    CHECK_THROWS_WITH_AS(h.add("head", nullptr), "register_module: child 'head' is null", tapegrad::ValueError);
    CHECK(h.children().empty());
}

TEST_CASE("Sequential: push_back(nullptr) throws and leaves the Sequential unchanged") {
    Generator gen(14);
    nn::Sequential<float> net(nn::Linear<float>(2, 3, gen));
    CHECK_THROWS_AS(net.push_back(std::shared_ptr<nn::ReLU<float>>()), tapegrad::ValueError);
    CHECK(net.size() == 1);
    CHECK(net.children().size() == 1);
    // Still usable: the failed push_back left no null layer behind, and the next one is named "1".
    CHECK(net.forward(TensorF::ones({1, 2})).shape() == tapegrad::Shape{1, 3});
    net.push_back(nn::Linear<float>(3, 1, gen));
    CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
}

TEST_CASE("Sequential: a user module with its own forward composes inside a Sequential and trains") {
    Generator gen(15);
    auto block = std::make_shared<TwoLayer>(3, 6, 4, gen);
    auto head = std::make_shared<nn::Linear<float>>(4, 2, gen);
    nn::Sequential<float> net(block, nn::Tanh<float>(), head);
    const TensorF x = TensorF::uniform({7, 3}, -1.0f, 1.0f, gen);
    const TensorF y = net.forward(x);
    CHECK(y.shape() == tapegrad::Shape{7, 2});
    CHECK(y.to_vector() == head->forward(tapegrad::tanh(block->forward(x))).to_vector());
    // Gradients reach the user module's own layers through the Sequential.
    tapegrad::sum(y).backward();
    for (const auto& np : net.named_parameters()) CHECK_MESSAGE(np.second.grad().defined(), np.first);
    CHECK(block->fc1->weight().grad().defined());
}

namespace {

/// A residual stack and named heads, as a transformer-style model holds them: `layers` a ModuleList,
/// `heads` a ModuleDict, `blocks` a ModuleList of ModuleDicts (containers nested in containers).
class Stacked : public nn::Module<float> {
public:
    explicit Stacked(Generator& gen)
        : layers(register_module("layers", std::make_shared<nn::ModuleList<float>>())),
          heads(register_module("heads", std::make_shared<nn::ModuleDict<float>>())),
          blocks(register_module("blocks", std::make_shared<nn::ModuleList<float>>())) {
        for (int i = 0; i < 2; ++i) layers->push_back(nn::Linear<float>(3, 3, gen));
        heads->insert("cls", nn::Linear<float>(3, 2, gen));
        heads->insert("box", nn::Linear<float>(3, 4, gen, {.bias = false}));
        auto block = blocks->push_back(std::make_shared<nn::ModuleDict<float>>());
        block->insert("proj", nn::Linear<float>(3, 3, gen));
    }
    /// x: [N, 3] -> [N, 2]: the residual layers, then the block's projection, then the cls head.
    TensorF forward(const TensorF& x) override {
        TensorF h = x;
        for (const auto& layer : *layers) h = h + tapegrad::relu(layer->forward(h));
        const auto& block = static_cast<const nn::ModuleDict<float>&>(*(*blocks)[0]);
        h = block["proj"]->forward(h);
        return (*heads)["cls"]->forward(h);
    }
    std::shared_ptr<nn::ModuleList<float>> layers;
    std::shared_ptr<nn::ModuleDict<float>> heads;
    std::shared_ptr<nn::ModuleList<float>> blocks;
};

}  // namespace

TEST_CASE("ModuleList and ModuleDict: dotted names as PyTorch spells them, nested containers included") {
    Generator g(4);
    const Stacked m(g);
    CHECK(names_of(m.named_parameters()) ==
          std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                   "heads.cls.weight", "heads.cls.bias", "heads.box.weight",
                                   "blocks.0.proj.weight", "blocks.0.proj.bias"});
    CHECK(m.layers->size() == 2);
    CHECK(m.heads->keys() == std::vector<std::string>{"cls", "box"});
    CHECK(m.heads->contains("box"));
    CHECK(!m.heads->contains("seg"));
    // operator[] hands back the very module registered, and iteration follows insertion order
    CHECK(std::addressof(*(*m.heads)["cls"]) == std::addressof(*m.heads->children()[0].second));
    std::vector<std::string> keys;
    for (const auto& [k, mod] : *m.heads) keys.push_back(k);
    CHECK(keys == m.heads->keys());
    std::ostringstream os;
    os << *m.heads;
    CHECK(os.str() ==
          "ModuleDict (\n  (cls): Linear(in=3, out=2, bias=true)\n  (box): Linear(in=3, out=4, bias=false)\n)");
}

TEST_CASE("ModuleList and ModuleDict: the owner's forward trains every contained parameter") {
    Generator g(5);
    Stacked m(g);
    const TensorF x = TensorF::uniform({4, 3}, -1.f, 1.f, g);
    tapegrad::sum(m.forward(x)).backward();
    for (const auto& named : m.named_parameters()) {
        const std::string& name = named.first;  // not a structured binding: clang 14 cannot capture one
        const TensorF& p = named.second;
        if (name.rfind("heads.box", 0) == 0) {
            CHECK_MESSAGE(!p.grad().defined(), name);  // the box head is not used by forward
        } else {
            REQUIRE_MESSAGE(p.grad().defined(), name);
        }
    }
    m.eval();
    CHECK(!(*m.layers)[1]->is_training());
    CHECK(!(*m.heads)["box"]->is_training());
}

TEST_CASE("ModuleList and ModuleDict: no forward of their own, bad keys and indices throw naming them") {
    Generator g(6);
    nn::ModuleList<float> list{nn::Linear<float>(2, 2, g), nn::ReLU<float>()};
    CHECK(list.size() == 2);
    CHECK(names_of(list.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias"});
    CHECK_THROWS_WITH_AS((void)list.forward(TensorF::zeros({1, 2})), doctest::Contains("ModuleList: has no forward"),
                         tapegrad::ValueError);
    CHECK_THROWS_WITH_AS((void)list[2], "ModuleList: index 2 out of range (2 modules)", tapegrad::IndexError);
    CHECK_THROWS_AS(list.push_back(std::shared_ptr<nn::Linear<float>>()), tapegrad::ValueError);
    CHECK(list.size() == 2);

    nn::ModuleDict<float> dict{{"a", std::make_shared<nn::ReLU<float>>()}};
    CHECK_THROWS_WITH_AS(dict.insert("a", nn::ReLU<float>()), "ModuleDict: key 'a' is already present",
                         tapegrad::ValueError);
    CHECK_THROWS_WITH_AS(dict.insert("x.y", nn::ReLU<float>()),
                         doctest::Contains("key 'x.y' must be non-empty and hold no '.'"), tapegrad::ValueError);
    CHECK_THROWS_AS(dict.insert("", nn::ReLU<float>()), tapegrad::ValueError);
    CHECK_THROWS_WITH_AS((void)dict["b"], "ModuleDict: no module under key 'b' (keys: 'a')", tapegrad::IndexError);
    CHECK_THROWS_WITH_AS((void)dict.forward(TensorF::zeros({1})), doctest::Contains("ModuleDict: has no forward"),
                         tapegrad::ValueError);
    CHECK(dict.size() == 1);
}

TEST_CASE("layers pass gradcheck with respect to their input (the device-generic LayerTable, on the CPU)") {
    tapegrad::testing::check_table<tapegrad::testing::LayerTable, tapegrad::Cpu>(9000, 2);
}
