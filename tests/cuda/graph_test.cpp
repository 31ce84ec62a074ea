// Tests of what a captured training step needs, on a GPU: labels and batches that
// stay on the device (Labels<Cuda>, data::DeviceLoader<T, Cuda>), asynchronous uploads through pinned
// staging, and cuda::Graph: replays equal the eager steps, no cudaMalloc in the steady state, the graph's
// memory is reserved while it lives and returned after, and anything that needs the host inside a capture
// throws DeviceError and leaves the stream usable.
//
// Without a GPU each test reports that it skipped and passes (as tests/cuda/cuda_test.cpp).

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "gpu_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

using tapegrad::testing::check_close;

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace optim = tapegrad::optim;
using tg::Cpu;
using tg::Cuda;
using CpuT = tg::Tensor<float, Cpu>;
using GpuT = tg::Tensor<float, Cuda>;

/// n samples of 12 features (uniform in [-1, 1]) with labels in [0, 5).
tg::data::Dataset<float> random_set(int64_t n, uint64_t seed) {
    tg::Generator gen(seed);
    tg::data::Dataset<float> ds{CpuT::uniform({n, 12}, -1.f, 1.f, gen), {}};
    for (int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<int64_t>(gen.below(5)));
    return ds;
}

/// A 12-16-5 MLP with the same initial weights on every device.
template <class D>
std::shared_ptr<nn::Sequential<float, D>> mlp() {
    tg::Generator gen(7);
    auto net = std::make_shared<nn::Sequential<float, D>>();
    net->push_back(nn::Linear<float, D>(12, 16, gen));
    net->push_back(nn::ReLU<float, D>());
    net->push_back(nn::Linear<float, D>(16, 5, gen));
    return net;
}

std::vector<float> flat_params(nn::Module<float, Cuda>& net) {
    std::vector<float> out;
    for (const GpuT& p : net.parameters()) {
        const auto v = p.to_vector();
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

}  // namespace

TEST_CASE("CUDA: cross_entropy and nll_loss with Labels<Cuda> match the CPU, value and gradient") {
    REQUIRE_GPU();
    tg::Generator gen(3);
    const std::vector<int64_t> host{4, 0, 2, 2, 1, 3, 0, 4};
    const tg::Labels<Cuda> labels = tg::Labels<Cuda>::from(host);
    CHECK(labels.to_vector() == host);
    CHECK(labels.max_label() == 4);
    for (const auto r : {nn::Reduction::mean, nn::Reduction::sum, nn::Reduction::none}) {
        const CpuT xc = CpuT::uniform({8, 5}, -3.f, 3.f, gen).requires_grad_();
        const GpuT xg = tg::to<Cuda>(xc.detach()).requires_grad_();
        const CpuT lc = nn::cross_entropy(xc, host, r);
        const GpuT lg = nn::cross_entropy(xg, labels, r);
        check_close("cross_entropy", lc.to_vector(), lg.to_vector());
        tg::sum(lc).backward();
        tg::sum(lg).backward();
        check_close("cross_entropy grad", xc.grad().to_vector(), xg.grad().to_vector());

        const CpuT pc = tg::log_softmax(xc.detach(), 1).requires_grad_();
        const GpuT pg = tg::to<Cuda>(pc.detach()).requires_grad_();
        const CpuT nc = nn::nll_loss(pc, host, r);
        const GpuT ng = nn::nll_loss(pg, labels, r);
        check_close("nll_loss", nc.to_vector(), ng.to_vector());
        tg::sum(nc).backward();
        tg::sum(ng).backward();
        check_close("nll_loss grad", pc.grad().to_vector(), pg.grad().to_vector());
    }
    const tg::Labels<Cuda> bad = tg::Labels<Cuda>::from(std::vector<int64_t>{0, 9});
    CHECK_THROWS_AS((void)nn::cross_entropy(GpuT::zeros({2, 5}), bad), tg::IndexError);
}

TEST_CASE("CUDA: uploads are asynchronous and the host buffer may be reused at once") {
    REQUIRE_GPU();
    std::vector<float> host(3 * (tg::cuda::PinnedStaging::slot_bytes / sizeof(float)) + 17);  // several slots
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i % 1000) - 500.f;
    const std::vector<float> expect = host;
    const GpuT a = GpuT::from({static_cast<int64_t>(host.size())}, host);
    for (float& v : host) v = 0.f;  // overwritten before the GPU ran: the upload must not see it
    const GpuT b = GpuT::from({3}, std::vector<float>{1.f, 2.f, 3.f});
    CHECK(a.to_vector() == expect);
    CHECK(b.to_vector() == std::vector<float>{1.f, 2.f, 3.f});
}

TEST_CASE("CUDA: DeviceLoader gathers the same batches on the GPU as on the CPU") {
    REQUIRE_GPU();
    const auto ds = random_set(203, 5);
    const tg::data::LoaderOptions opt{.batch_size = 20, .shuffle = true, .seed = 8};
    tg::data::DeviceLoader<float, Cpu> cpu(ds, opt);
    tg::data::DeviceLoader<float, Cuda> gpu(ds, opt);
    REQUIRE(gpu.num_batches() == 10);
    for (int epoch = 0; epoch < 2; ++epoch) {
        cpu.start_epoch();
        gpu.start_epoch();
        for (int64_t b = 0; b < gpu.num_batches() + 1; ++b) {  // one past the end: both wrap to the start
            cpu.next();
            gpu.next();
            CHECK(cpu.x().to_vector() == gpu.x().to_vector());
            CHECK(cpu.y().to_vector() == gpu.y().to_vector());
        }
    }
}

TEST_CASE("CUDA: a captured computation replays on the current values of its inputs") {
    REQUIRE_GPU();
    const GpuT x = GpuT::from({4}, std::vector<float>{1.f, 2.f, 3.f, 4.f});
    tg::cuda::Graph graph;
    CHECK_FALSE(graph.captured());
    const GpuT y = graph.capture([&] { return x * 2.f + 1.f; });
    CHECK(graph.captured());
    CHECK(graph.node_count() >= 1);
    graph.replay();
    CHECK(y.to_vector() == std::vector<float>{3.f, 5.f, 7.f, 9.f});
    tg::backend::Ops<Cuda>::upload(4, std::vector<float>{0.f, -1.f, 10.f, 0.5f}.data(), x.data_ptr());
    graph.replay();
    CHECK(y.to_vector() == std::vector<float>{1.f, -1.f, 21.f, 2.f});
    graph.reset();
    CHECK_FALSE(graph.captured());
    CHECK_THROWS_AS(graph.replay(), tg::DeviceError);
}

TEST_CASE("CUDA: replaying a captured SGD training step equals the eager steps") {
    REQUIRE_GPU();
    const auto ds = random_set(160, 6);
    const tg::data::LoaderOptions opt{.batch_size = 16, .shuffle = true, .seed = 2};
    for (const double momentum : {0.0, 0.9}) {
        CAPTURE(momentum);
        auto eager_net = mlp<Cuda>();
        auto graph_net = mlp<Cuda>();
        optim::SGD<float, Cuda> eager_opt(eager_net->parameters(), {.lr = 0.1, .momentum = momentum});
        optim::SGD<float, Cuda> graph_opt(graph_net->parameters(), {.lr = 0.1, .momentum = momentum});
        tg::data::DeviceLoader<float, Cuda> eager_loader(ds, opt), graph_loader(ds, opt);
        auto step = [](nn::Module<float, Cuda>& net, optim::SGD<float, Cuda>& o, tg::data::DeviceLoader<float, Cuda>& l) {
            l.next();
            o.zero_grad();
            GpuT loss = nn::cross_entropy(net(l.x()), l.y());
            loss.backward();
            o.step();
            return loss;
        };
        eager_loader.start_epoch();
        graph_loader.start_epoch();
        // One eager step first on both (SGD's first momentum step cannot be captured), then capture.
        (void)step(*eager_net, eager_opt, eager_loader);
        (void)step(*graph_net, graph_opt, graph_loader);
        tg::cuda::Graph graph;
        const GpuT graph_loss = graph.capture([&] { return step(*graph_net, graph_opt, graph_loader); });
        const int64_t reserved = tg::cuda::memory_stats().graph_bytes;
        CHECK(reserved > 0);
        int64_t replay_mallocs = 0;
        for (int epoch = 0; epoch < 2; ++epoch) {
            for (int64_t b = (epoch == 0 ? 1 : 0); b < graph_loader.num_batches(); ++b) {
                // (The eager steps may allocate: the capture took blocks from the eager cache.)
                const GpuT eager_loss = step(*eager_net, eager_opt, eager_loader);
                const int64_t before = tg::cuda::memory_stats().device_mallocs;
                graph.replay();
                replay_mallocs += tg::cuda::memory_stats().device_mallocs - before;
                check_close("loss", eager_loss.to_vector(), graph_loss.to_vector());
            }
            eager_loader.start_epoch();
            graph_loader.start_epoch();
        }
        check_close("parameters", flat_params(*eager_net), flat_params(*graph_net));
        CHECK(replay_mallocs == 0);  // replays allocate nothing
        graph.reset();
        CHECK(tg::cuda::memory_stats().graph_bytes < reserved);
    }
}

TEST_CASE("CUDA: host work inside a capture throws DeviceError and leaves the GPU usable") {
    REQUIRE_GPU();
    const GpuT x = GpuT::from({3}, std::vector<float>{1.f, 2.f, 3.f});
    tg::cuda::Graph graph;
    auto expect_error = [&](auto&& f, const std::string& needle) {
        try {
            graph.capture(f);
            FAIL("no exception; expected one containing '" << needle << "'");
        } catch (const tg::DeviceError& e) {
            CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, "message was: ", e.what());
        }
        CHECK_FALSE(graph.captured());
        CHECK_FALSE(tg::cuda::capturing());
        CHECK((x + 1.f).to_vector() == std::vector<float>{2.f, 3.f, 4.f});  // eager work runs again
    };
    expect_error([&] { return tg::sum(x).item(); }, "reading device values back to the host cannot be captured");
    expect_error([&] { return GpuT::from({1}, std::vector<float>{1.f}); },
                 "copying host values to the device cannot be captured");
    expect_error([&] { return nn::cross_entropy(GpuT::zeros({2, 3}), std::vector<int64_t>{0, 1}); },
                 "copying host values to the device cannot be captured");
    expect_error([&] { tg::cuda::synchronize(); }, "cuda::synchronize");
    expect_error([&] {
        tg::cuda::Graph inner;
        return inner.capture([&] { return x * 2.f; });
    }, "captures cannot nest");
}

TEST_CASE("CUDA: optimizer steps a replay could not repeat faithfully refuse to be captured") {
    REQUIRE_GPU();
    auto net = mlp<Cuda>();
    const auto ds = random_set(32, 4);
    tg::data::DeviceLoader<float, Cuda> loader(ds, {.batch_size = 16, .shuffle = false});
    auto step = [&](tg::optim::Optimizer<float, Cuda>& o) {
        loader.next();
        o.zero_grad();
        GpuT loss = nn::cross_entropy((*net)(loader.x()), loader.y());
        loss.backward();
        o.step();
        return loss;
    };
    tg::cuda::Graph graph;
    optim::SGD<float, Cuda> sgd(net->parameters(), {.lr = 0.1, .momentum = 0.9});
    try {
        (void)graph.capture([&] { return step(sgd); });
        FAIL("capturing SGD's first momentum step did not throw");
    } catch (const tg::DeviceError& e) {
        CHECK(std::string(e.what()).find("SGD: the first step with momentum cannot be captured") != std::string::npos);
    }
    CHECK(sgd.state().empty());  // refused before any state was made
    (void)step(sgd);             // one eager step, then the capture works
    CHECK_NOTHROW((void)graph.capture([&] { return step(sgd); }));
    graph.reset();

    optim::Adam<float, Cuda> adam(net->parameters(), {.lr = 1e-3});
    try {
        (void)graph.capture([&] { return step(adam); });
        FAIL("capturing an Adam step did not throw");
    } catch (const tg::DeviceError& e) {
        CHECK(std::string(e.what()).find("Adam: a step cannot be captured") != std::string::npos);
    }
    CHECK_FALSE(tg::cuda::capturing());
}

TEST_CASE("CUDA: a graph's memory stays reserved while it lives and returns to the cache after") {
    REQUIRE_GPU();
    tg::cuda::synchronize();
    const int64_t live0 = tg::cuda::live_bytes().load();
    const int64_t graph0 = tg::cuda::memory_stats().graph_bytes;
    {
        const GpuT x = GpuT::ones({1000});
        tg::cuda::Graph graph;
        {
            const GpuT y = graph.capture([&] {
                const GpuT t = x * 3.f;  // freed inside the capture: stays the graph's
                return t + 1.f;
            });
            CHECK(tg::cuda::memory_stats().graph_bytes > graph0);
            graph.replay();
            CHECK(y.to_vector() == std::vector<float>(1000, 4.f));
        }
        // y is gone, but the graph still writes its buffer on replay: it must not be handed out.
        const GpuT z = GpuT::full({1000}, 5.f);
        graph.replay();
        CHECK(z.to_vector() == std::vector<float>(1000, 5.f));
    }
    CHECK(tg::cuda::memory_stats().graph_bytes == graph0);
    CHECK(tg::cuda::live_bytes().load() == live0);
}
