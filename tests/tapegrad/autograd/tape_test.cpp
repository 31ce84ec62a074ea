#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace tapegrad;

namespace {

TensorD leaf(const Shape& s, std::initializer_list<double> values) {
    TensorD t = TensorD::from(s, values);
    t.requires_grad_();
    return t;
}

std::vector<double> grad_of(const TensorD& t) { return t.grad().to_vector(); }

/// A small regression model, y = tanh(x W + b), trained by plain SGD on mean squared error. Returns the
/// final parameters W (4x3) then b (3). Everything it touches is local, so two calls may run in parallel.
std::vector<double> train_small_model(uint64_t seed, int steps) {
    Generator g(seed);
    const TensorD x = TensorD::uniform({8, 4}, -1.0, 1.0, g);
    const TensorD target = TensorD::uniform({8, 3}, -0.5, 0.5, g);
    TensorD w = TensorD::normal({4, 3}, 0.0, 0.5, g);
    TensorD b = TensorD::zeros({3});
    w.requires_grad_();
    b.requires_grad_();
    const double lr = 0.2;
    for (int step = 0; step < steps; ++step) {
        const TensorD y = tanh(matmul(x, w) + b);
        const TensorD loss = mean(pow(y - target, 2.0));
        loss.backward();
        NoGradGuard ng;
        for (TensorD* p : {&w, &b}) {
            double* d = p->data();
            const double* gd = p->grad().data();
            for (int64_t i = 0; i < p->numel(); ++i) d[i] -= lr * gd[i];
            p->zero_grad();
        }
    }
    std::vector<double> out = w.to_vector();
    const std::vector<double> bv = b.to_vector();
    out.insert(out.end(), bv.begin(), bv.end());
    return out;
}

bool bitwise_equal(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("backward: gradients accumulate into leaves across backward calls") {
    TensorD x = leaf({3}, {1.0, 2.0, 3.0});
    TensorD w = leaf({3}, {0.5, -1.0, 2.0});
    sum(x * w).backward();
    CHECK(grad_of(x) == std::vector<double>{0.5, -1.0, 2.0});
    CHECK(grad_of(w) == std::vector<double>{1.0, 2.0, 3.0});
    sum(x * 3.0).backward();  // a second, separate graph: adds to x's gradient
    CHECK(grad_of(x) == std::vector<double>{3.5, 2.0, 5.0});
    CHECK(grad_of(w) == std::vector<double>{1.0, 2.0, 3.0});

    // backward on a one-element leaf seeds its own gradient
    TensorD s = leaf({1}, {4.0});
    s.backward();
    CHECK(grad_of(s) == std::vector<double>{1.0});

    // an input that does not require grad gets no gradient
    TensorD c = TensorD::from({3}, {1.0, 1.0, 1.0});
    sum(c * x).backward();
    CHECK_FALSE(c.grad().defined());
}

TEST_CASE("backward: fan-out b = a + a, c = b * b gives dc/da = 8a") {
    TensorD a = leaf({3}, {1.0, -2.0, 0.5});
    TensorD b = a + a;
    TensorD c = b * b;
    sum(c).backward();
    CHECK(grad_of(a) == std::vector<double>{8.0, -16.0, 4.0});
}

TEST_CASE("backward: a reused intermediate receives every contribution") {
    // h = tanh(x);  y = sum(h * h + h)  =>  dy/dx = (2h + 1)(1 - h^2)
    TensorD x = leaf({4}, {-1.0, -0.2, 0.3, 1.5});
    TensorD h = tanh(x);
    TensorD y = sum(h * h + h);
    y.backward();
    for (int64_t i = 0; i < 4; ++i) {
        const double hv = std::tanh(x.data()[i]);
        CHECK(x.grad().data()[i] == doctest::Approx((2 * hv + 1) * (1 - hv * hv)).epsilon(1e-12));
    }

    // a diamond: u feeds two branches that meet again
    TensorD p = leaf({2}, {2.0, 3.0});
    TensorD u = p * p;           // du/dp = 2p
    TensorD v = exp(u) + u * u;  // dv/du = e^u + 2u
    sum(v).backward();
    for (int64_t i = 0; i < 2; ++i) {
        const double pv = p.data()[i], uv = pv * pv;
        CHECK(p.grad().data()[i] == doctest::Approx((std::exp(uv) + 2 * uv) * 2 * pv).epsilon(1e-12));
    }
}

TEST_CASE("backward: a chain of 1,000,000 ops runs and is destroyed without recursion") {
    const int64_t nodes_before = live_nodes();
    const int64_t bytes_before = backend::cpu_live_bytes().load();
    {
        TensorD x0 = leaf({1}, {1.0});
        const TensorD k = TensorD::full({1}, 1.0000001);
        TensorD x = x0;
        for (int i = 0; i < 1000000; ++i) x = x * k;
        CHECK(live_nodes() - nodes_before == 1000000);
        // retain_graph keeps every closure alive, so the destruction at the end of this scope has to walk
        // the whole chain too (a recursive destructor would overflow the stack here).
        x.backward({.retain_graph = true});
        // each of the million nodes multiplies the gradient by k once: missing or repeating one would move
        // the result by 1e-7 relative, far above the rounding error of the product (~1e-10).
        CHECK(x0.grad().item() == doctest::Approx(std::pow(1.0000001, 1e6)).epsilon(1e-9));
    }
    CHECK(live_nodes() == nodes_before);
    CHECK(backend::cpu_live_bytes().load() == bytes_before);
}

TEST_CASE("tape: live nodes and live bytes return to their baseline after every step") {
    Generator g(17);
    const TensorD x = TensorD::uniform({16, 5}, -1.0, 1.0, g);
    TensorD w = TensorD::normal({5, 3}, 0.0, 0.3, g);
    TensorD b = TensorD::zeros({3});
    w.requires_grad_();
    b.requires_grad_();
    auto step = [&] {
        const TensorD loss = mean(sum(relu(matmul(x, w) + b) * 2.0, 1));
        loss.backward();
        NoGradGuard ng;
        for (TensorD* p : {&w, &b}) {
            for (int64_t i = 0; i < p->numel(); ++i) p->data()[i] -= 0.1 * p->grad().data()[i];
            p->zero_grad();
        }
    };
    const int64_t nodes = live_nodes();
    step();  // the first step allocates the parameters' gradient buffers, which are then kept
    const int64_t bytes = backend::cpu_live_bytes().load();
    CHECK(live_nodes() == nodes);
    int node_leaks = 0, byte_leaks = 0;
    for (int i = 0; i < 100; ++i) {
        step();
        node_leaks += live_nodes() != nodes;
        byte_leaks += backend::cpu_live_bytes().load() != bytes;
    }
    CHECK(node_leaks == 0);
    CHECK(byte_leaks == 0);

    // forward passes that record (no NoGradGuard) but are never differentiated free their record with
    // their tensors
    for (int i = 0; i < 100; ++i) {
        {
            const TensorD loss = mean(sigmoid(matmul(x, w) + b));
            CHECK(loss.requires_grad());
            if (i == 0) CHECK(live_nodes() > nodes);
        }
        node_leaks += live_nodes() != nodes;
        byte_leaks += backend::cpu_live_bytes().load() != bytes;
    }
    CHECK(node_leaks == 0);
    CHECK(byte_leaks == 0);
}

TEST_CASE("NoGradGuard: records nothing, nests and restores the previous mode") {
    TensorD x = leaf({2}, {1.0, 2.0});
    CHECK(is_grad_enabled());
    const int64_t nodes = live_nodes();
    {
        NoGradGuard ng;
        CHECK_FALSE(is_grad_enabled());
        TensorD y = tanh(x * x + 1.0);
        TensorD z = matmul(x.reshape({1, 2}), x.reshape({2, 1}));
        CHECK_FALSE(y.requires_grad());
        CHECK(y.is_leaf());
        CHECK_FALSE(z.requires_grad());
        CHECK(live_nodes() == nodes);
        {
            NoGradGuard inner;  // nested: still off, and back to off when it ends
            CHECK_FALSE(is_grad_enabled());
        }
        CHECK_FALSE(is_grad_enabled());
        {
            NoGradGuard enable(true);  // re-enables recording inside a no-grad region
            CHECK(is_grad_enabled());
            CHECK((x * x).requires_grad());
        }
        CHECK_FALSE(is_grad_enabled());
        // grad mode is per thread: another thread still records
        bool other_thread_enabled = false;
        std::thread t([&] { other_thread_enabled = is_grad_enabled(); });
        t.join();
        CHECK(other_thread_enabled);
    }
    CHECK(is_grad_enabled());
    CHECK((x * x).requires_grad());
}

TEST_CASE("detach: stops gradients at the detached value") {
    TensorD x = leaf({2}, {1.0, 3.0});
    TensorD h = x * x;
    TensorD y = sum(h.detach() * x);  // dy/dx = h (treated as constant) = x^2, not 3x^2
    y.backward();
    CHECK(grad_of(x) == std::vector<double>{1.0, 9.0});
    CHECK_FALSE(h.detach().requires_grad());
}

TEST_CASE("backward: a second backward without retain_graph throws; retain_graph allows it") {
    TensorD x = leaf({2}, {1.0, 2.0});
    TensorD y = sum(x * x);
    y.backward();
    CHECK(grad_of(x) == std::vector<double>{2.0, 4.0});
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("second time"), ValueError);
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("retain_graph"), ValueError);

    // a new output built on a released intermediate cannot backpropagate through it either
    TensorD x2 = leaf({2}, {1.0, 2.0});
    TensorD h = x2 * 3.0;
    sum(h).backward();
    CHECK_THROWS_WITH_AS(sum(h * h).backward(), doctest::Contains("second time"), ValueError);

    TensorD z = leaf({2}, {1.0, 2.0});
    TensorD q = sum(tanh(z) * z);
    q.backward({.retain_graph = true});
    const std::vector<double> once = grad_of(z);
    q.backward({.retain_graph = true});
    const std::vector<double> twice = grad_of(z);
    CHECK(twice[0] == doctest::Approx(2 * once[0]).epsilon(1e-14));
    CHECK(twice[1] == doctest::Approx(2 * once[1]).epsilon(1e-14));
    q.backward();  // a third time, now freeing the record
    CHECK(grad_of(z)[0] == doctest::Approx(3 * once[0]).epsilon(1e-14));
    CHECK_THROWS_AS(q.backward(), ValueError);
}

TEST_CASE("backward: argument errors") {
    TensorD x = leaf({2}, {1.0, 2.0});
    CHECK_THROWS_WITH_AS((x * x).backward(),
                         "backward: called on a tensor of shape [2]; only a one-element output can start backward "
                         "without an explicit gradient",
                         ShapeError);
    TensorD c = TensorD::ones({1});
    CHECK_THROWS_WITH_AS(c.backward(), "backward: tensor of shape [1] does not require grad and has no grad_fn",
                         ValueError);
    {
        NoGradGuard ng;
        CHECK_THROWS_AS(sum(x * x).backward(), ValueError);  // recorded nothing
    }
    CHECK_THROWS_WITH_AS((x * x).backward(TensorD::ones({3})),
                         "backward: gradient of shape [3] given for a tensor of shape [2]", ShapeError);

    // an explicit gradient for a non-scalar output
    TensorD y = x * x;
    y.backward(TensorD::from({2}, {1.0, 10.0}));
    CHECK(grad_of(x) == std::vector<double>{2.0, 40.0});
}

TEST_CASE("retain_grad: keeps an intermediate's gradient; others are freed") {
    TensorD x = leaf({2}, {1.0, 2.0});
    TensorD h = x * x;
    TensorD k = h * 2.0;
    h.retain_grad();
    TensorD y = sum(k * k);  // dy/dk = 2k, dy/dh = 4k = 8h
    y.backward();
    CHECK(grad_of(h) == std::vector<double>{8.0, 32.0});
    CHECK_FALSE(k.grad().defined());  // not retained
    CHECK_FALSE(y.grad().defined());
    CHECK(grad_of(x) == std::vector<double>{16.0, 128.0});  // 8h * 2x
}

TEST_CASE("retain_grad with retain_graph: a second backward adds exactly one more gradient") {
    // As in PyTorch, each backward propagates only its own contribution: h.grad accumulates 1 + 1 and x.grad
    // 2x + 2x. (Feeding h's accumulated gradient to its node again would give x.grad = 6x.)
    TensorD x = leaf({2}, {1.0, 2.0});
    TensorD h = x * x;
    h.retain_grad();
    TensorD y = sum(h);
    y.backward({.retain_graph = true});
    CHECK(grad_of(x) == std::vector<double>{2.0, 4.0});
    CHECK(grad_of(h) == std::vector<double>{1.0, 1.0});
    y.backward({.retain_graph = true});
    CHECK(grad_of(h) == std::vector<double>{2.0, 2.0});
    CHECK_MESSAGE((grad_of(x) == std::vector<double>{4.0, 8.0}),
                  "second backward through a retain_grad() intermediate gave x.grad = ", x.grad(),
                  " (expected [4, 8]): the retained gradient of the first pass was propagated again");

    // the same when the retained tensor is the root itself
    TensorD p = leaf({2}, {1.0, 2.0});
    TensorD q = sum(p * 3.0);
    q.retain_grad();
    q.backward({.retain_graph = true});
    q.backward({.retain_graph = true});
    CHECK(q.grad().item() == 2.0);
    CHECK_MESSAGE((grad_of(p) == std::vector<double>{6.0, 6.0}), "root retain_grad: p.grad = ", p.grad(),
                  " (expected [6, 6])");
}

TEST_CASE("zero_grad: zeroes the gradient in place, reset_grad drops it") {
    TensorD x = leaf({3}, {1.0, 2.0, 3.0});
    x.zero_grad();  // no gradient yet: a no-op
    CHECK_FALSE(x.grad().defined());
    sum(x * x).backward();
    const double* before = x.grad().data();
    x.zero_grad();
    CHECK(x.grad().data() == before);  // same buffer
    CHECK(grad_of(x) == std::vector<double>(3, 0.0));
    sum(x * 2.0).backward();
    CHECK(x.grad().data() == before);  // accumulated into the kept buffer
    CHECK(grad_of(x) == std::vector<double>(3, 2.0));
    x.reset_grad();
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("record: a custom op's backward adds into its inputs; a wrong-shaped gradient names the op") {
    // y = 3x recorded by hand, its backward handing a whole gradient tensor to accumulate()
    TensorD x = leaf({2}, {1.0, 2.0});
    TensorD y = TensorD::empty(x.shape());
    for (int64_t i = 0; i < 2; ++i) y.data()[i] = 3.0 * x.data()[i];
    detail::record(y, "triple", {&x}, [x](const TensorD& dy) {
        TensorD g = TensorD::empty(dy.shape());
        for (int64_t i = 0; i < dy.numel(); ++i) g.data()[i] = 3.0 * dy.data()[i];
        detail::accumulate("triple", x, g);
    });
    CHECK(y.requires_grad());
    CHECK(std::string(y.grad_fn_name()) == "triple");
    sum(y * y).backward();  // d/dx sum(9x^2) = 18x
    CHECK(grad_of(x) == std::vector<double>{18.0, 36.0});

    TensorD z = leaf({2}, {1.0, 2.0});
    TensorD w = TensorD::zeros({2});
    detail::record(w, "bad_op", {&z}, [z](const TensorD&) { detail::accumulate("bad_op", z, TensorD::ones({3})); });
    CHECK_THROWS_WITH_AS(sum(w).backward(),
                         "backward of 'bad_op' produced a gradient of shape [3] for an input of shape [2]",
                         InternalError);
}

TEST_CASE("threads: two trainings in parallel give bitwise the same parameters as run one after the other") {
    const int steps = 40;
    const std::vector<double> seq1 = train_small_model(1, steps);
    const std::vector<double> seq2 = train_small_model(2, steps);
    CHECK_FALSE(bitwise_equal(seq1, seq2));  // the two models really differ
    CHECK_FALSE(bitwise_equal(seq1, train_small_model(1, 0)));  // and training moved the parameters

    const int64_t nodes = live_nodes();
    std::vector<double> par1, par2;
    std::thread t1([&] { par1 = train_small_model(1, steps); });
    std::thread t2([&] { par2 = train_small_model(2, steps); });
    t1.join();
    t2.join();
    CHECK(bitwise_equal(par1, seq1));
    CHECK(bitwise_equal(par2, seq2));
    CHECK(live_nodes() == nodes);
}

TEST_CASE("post_accumulate_grad_hook: runs once per backward, when every contribution to the leaf is in") {
    // w is used by two ops; the hook must see the sum of both contributions, before the ops that come
    // earlier in the forward (here on v) have run.
    TensorD w = leaf({2}, {1.0, 2.0});
    TensorD v = leaf({2}, {3.0, 4.0});
    std::vector<std::string> events;
    std::vector<double> seen;
    w.impl()->post_accumulate_grad_hook = [&] {
        events.push_back("w");
        seen = grad_of(w);
    };
    v.impl()->post_accumulate_grad_hook = [&] { events.push_back("v"); };
    const TensorD h = v * 2.0;                 // first in the forward: its backward runs last
    const TensorD y = sum(h * w) + sum(w * w);  // w used twice
    y.backward();
    CHECK(events == std::vector<std::string>{"w", "v"});
    // d/dw = h + 2w = (6 + 2, 8 + 4)
    CHECK(seen == std::vector<double>{8.0, 12.0});

    events.clear();
    const TensorD z = sum(w * v);  // a second pass: the hook runs again, seeing the accumulated gradient
    z.backward();
    CHECK(events.size() == 2);
    CHECK(seen == std::vector<double>{8.0 + 3.0, 12.0 + 4.0});

    events.clear();
    w.impl()->post_accumulate_grad_hook = nullptr;
    sum(w * v).backward();
    CHECK(events == std::vector<std::string>{"v"});
}

TEST_CASE("post_accumulate_grad_hook: a leaf root and a leaf that the pass does not reach") {
    TensorD w = leaf({1}, {2.0});
    TensorD unused = leaf({1}, {5.0});
    int calls_w = 0, calls_unused = 0;
    w.impl()->post_accumulate_grad_hook = [&] { ++calls_w; };
    unused.impl()->post_accumulate_grad_hook = [&] { ++calls_unused; };
    w.backward();  // the root is the leaf itself
    CHECK(calls_w == 1);
    sum(w * 3.0).backward();
    CHECK(calls_w == 2);
    CHECK(calls_unused == 0);
}
