// A whole training step -- loader batch, zero_grad, forward, loss, backward, optimizer step -- makes no heap
// allocation once it has run a few times: tensors, tape nodes, closures and gradient buffers come back
// from the per-thread caching allocator, the engine reuses its scratch vectors, the loader refills its
// batch in place and the optimizers keep their state. Counted through the test binary's replacement of
// the global operator new (tests/support/alloc_counting.cpp), for the networks the workloads time: the
// XOR net, an MLP with momentum SGD and with Adam, and a small LeNet-style CNN.

#include <tapegrad/data/dataset.hpp>
#include <tapegrad/optim/optim.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/alloc_counting.hpp"
#include "../../support/char_lm_step.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace nn = tapegrad::nn;
namespace optim = tapegrad::optim;
namespace data = tapegrad::data;
using tapegrad::Generator;
using tapegrad::TensorF;
using tapegrad::testing::AllocationCounter;
using tapegrad::testing::CharLmStep;

/// Runs `step` until warm, then counts the allocations of three more steps.
int64_t steady_state_allocations(const std::function<void()>& step) {
    for (int i = 0; i < 3; ++i) step();
    AllocationCounter count;
    for (int i = 0; i < 3; ++i) step();
    return count.stop();
}

/// `n` random samples of the given sample shape, labels in [0, classes).
data::Dataset<float> random_dataset(int64_t n, const tapegrad::Shape& sample, int64_t classes, Generator& gen) {
    tapegrad::Shape s{n};
    for (int64_t d : sample) s.push_back(d);
    data::Dataset<float> ds{TensorF::uniform(s, -1.f, 1.f, gen), {}};
    for (int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<int64_t>(gen.below(static_cast<uint64_t>(classes))));
    return ds;
}

/// A classifier trained from a shuffling loader: the loop of examples/mnist_mlp.cpp.
struct ClassifierLoop {
    data::DataLoader<float> loader;
    nn::Sequential<float>& net;
    optim::Optimizer<float>& opt;
    data::Batch<float> batch;
    float last_loss = 0;

    void step() {
        if (!loader.next(batch)) {
            loader.start_epoch();
            REQUIRE(loader.next(batch));
        }
        opt.zero_grad();
        const TensorF loss = nn::cross_entropy(net(batch.x), batch.y);
        loss.backward();
        opt.step();
        last_loss = loss.item();
    }
};

}  // namespace

TEST_CASE("training step: XOR (2-4-1, tanh, sigmoid, BCE, SGD) allocates nothing in the steady state") {
    if (!AllocationCounter::works()) {
        MESSAGE(AllocationCounter::why_not());
        return;
    }
    Generator gen(1);
    nn::Sequential<float> net{nn::Linear<float>(2, 4, gen), nn::Tanh<float>(), nn::Linear<float>(4, 1, gen),
                              nn::Sigmoid<float>()};
    optim::SGD<float> opt(net.parameters(), {.lr = 0.5});
    const TensorF x = TensorF::from({4, 2}, {0, 0, 0, 1, 1, 0, 1, 1});
    const TensorF y = TensorF::from({4, 1}, {0, 1, 1, 0});
    float first = -1, last = -1;
    const auto step = [&] {
        opt.zero_grad();
        const TensorF loss = nn::bce_loss(net(x), y);
        loss.backward();
        opt.step();
        last = loss.item();
        if (first < 0) first = last;
    };
    CHECK(steady_state_allocations(step) == 0);
    CHECK(last < first);  // it really trained
}

TEST_CASE("training step: MLP from a shuffling loader, with momentum SGD and with Adam, allocates nothing") {
    if (!AllocationCounter::works()) {
        MESSAGE(AllocationCounter::why_not());
        return;
    }
    Generator gen(2);
    const data::Dataset<float> ds = random_dataset(40, {20}, 5, gen);
    for (const bool adam : {false, true}) {
        INFO("optimizer: " << std::string(adam ? "Adam" : "SGD momentum 0.9"));
        nn::Sequential<float> net{nn::Linear<float>(20, 16, gen), nn::ReLU<float>(), nn::Linear<float>(16, 5, gen)};
        std::unique_ptr<optim::Optimizer<float>> opt;
        if (adam)
            opt = std::make_unique<optim::Adam<float>>(net.parameters(), optim::AdamOptions{.lr = 1e-3});
        else
            opt = std::make_unique<optim::SGD<float>>(net.parameters(), optim::SGDOptions{.lr = 0.05, .momentum = 0.9});
        // 40 samples in batches of 16: two full batches and a short one, so the loop crosses epochs and
        // batch shapes change inside the counted steps.
        ClassifierLoop loop{data::DataLoader<float>(ds, {.batch_size = 16, .shuffle = true, .seed = 3}), net, *opt,
                            {}};
        loop.loader.start_epoch();
        for (int i = 0; i < 6; ++i) loop.step();  // two epochs: every batch shape has been seen
        AllocationCounter count;
        for (int i = 0; i < 6; ++i) loop.step();
        CHECK(count.stop() == 0);
    }
}

TEST_CASE("training step: a LeNet-style CNN (conv, max-pool, flatten, linear) allocates nothing") {
    if (!AllocationCounter::works()) {
        MESSAGE(AllocationCounter::why_not());
        return;
    }
    Generator gen(3);
    const data::Dataset<float> ds = random_dataset(8, {1, 14, 14}, 4, gen);
    // 14x14 -> conv 12x12 -> pool 6x6 -> conv 4x4 -> pool 2x2
    nn::Sequential<float> net{nn::Conv2d<float>(1, 4, 3, gen),  nn::ReLU<float>(),
                              nn::MaxPool2d<float>(2),         nn::Conv2d<float>(4, 6, 3, gen),
                              nn::ReLU<float>(),               nn::MaxPool2d<float>(2),
                              nn::Flatten<float>(),            nn::Linear<float>(6 * 2 * 2, 4, gen)};
    optim::SGD<float> opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
    ClassifierLoop loop{data::DataLoader<float>(ds, {.batch_size = 4, .shuffle = true, .seed = 4}), net, opt, {}};
    loop.loader.start_epoch();
    CHECK(steady_state_allocations([&] { loop.step(); }) == 0);
}

TEST_CASE("training step: an LSTM language-model step (Embedding, LSTM, Linear, cross-entropy over B*T, Adam, "
          "clipping) allocates nothing") {
    if (!AllocationCounter::works()) {
        MESSAGE(AllocationCounter::why_not());
        return;
    }
    Generator gen(5);
    const int64_t B = 4, T = 6, E = 5, H = 8;
    CharLmStep lm(B, T, E, H, 7, gen);
    CHECK(steady_state_allocations([&] { lm.step(); }) == 0);
    CHECK(std::isfinite(lm.last_loss));
    const TensorF x = TensorF::uniform({B, T, E}, -1.f, 1.f, gen);

    // two layers, both directions, variable lengths (the lengths are made once, outside the step)
    nn::GRU<float> gru(E, H, gen, {.num_layers = 2, .batch_first = true, .bidirectional = true});
    optim::Adam<float> opt2(gru.parameters(), {.lr = 1e-3});
    const tapegrad::SequenceLengths<> lengths{6, 2, 5, 1};
    const auto step2 = [&] {
        opt2.zero_grad();
        const auto r = gru.forward(x, {}, lengths);
        const TensorF loss = tapegrad::sum(r.output * r.output) + tapegrad::sum(r.h_n);
        loss.backward();
        opt2.step();
    };
    CHECK(steady_state_allocations(step2) == 0);
}
