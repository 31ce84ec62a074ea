// dist::DataParallel and the DistributedSampler on 2 ranks (mpiexec -n 2): the tests compare what the
// ranks hold with each other and with the same training done by one process on the whole batch, which
// every rank also computes by itself as the reference.
#include "mpi_support.hpp"

#include <tapegrad/tapegrad.hpp>
#if defined(TAPEGRAD_TEST_IO)
#include <tapegrad/io/checkpoint.hpp>
#endif

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::testing::same_on_all_ranks;
using tg::testing::world;

namespace {

template <class T>
std::shared_ptr<nn::Sequential<T>> make_mlp(uint64_t seed, int64_t hidden = 16) {
    tg::Generator gen(seed);
    return std::make_shared<nn::Sequential<T>>(nn::Linear<T>(6, hidden, gen), nn::Tanh<T>(),
                                               nn::Linear<T>(hidden, 12, gen), nn::ReLU<T>(), nn::Linear<T>(12, 4, gen));
}

template <class T>
std::vector<T> flat_params(const nn::Module<T>& m) {
    std::vector<T> out;
    for (const auto& p : m.parameters()) {
        const auto v = p.to_vector();
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

/// max |a - b| / max |b|
template <class T>
double rel_diff(const std::vector<T>& a, const std::vector<T>& b) {
    REQUIRE(a.size() == b.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
        den = std::max(den, std::abs(static_cast<double>(b[i])));
    }
    return num / den;
}

/// A fixed data set, the same on every rank: n samples of 6 features, 4 classes.
template <class T>
tg::data::Dataset<T> make_data(int64_t n, uint64_t seed = 7) {
    tg::Generator gen(seed);
    tg::data::Dataset<T> ds{tg::Tensor<T>::uniform({n, 6}, -1, 1, gen), {}};
    for (int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<int64_t>(gen.below(4)));
    return ds;
}

/// Trains `model` with SGD (momentum 0.9) on the loader's batches, `epochs` times.
template <class T>
void train(nn::Module<T>& model, tg::data::DataLoader<T>& loader, int epochs, double lr = 0.1) {
    tg::optim::SGD<T> opt(model.parameters(), {.lr = lr, .momentum = 0.9});
    for (int e = 0; e < epochs; ++e)
        for (const auto& b : loader) {
            opt.zero_grad();
            nn::cross_entropy(model(b.x), b.y).backward();
            opt.step();
        }
}

}  // namespace

TEST_CASE("DataParallel: construction copies rank 0's parameters to every rank") {
    auto& comm = world();
    REQUIRE(comm.size() == 2);
    auto net = make_mlp<float>(100 + static_cast<uint64_t>(comm.rank()));  // different weights per rank
    CHECK_FALSE(same_on_all_ranks(flat_params(*net)));
    tg::dist::DataParallel<float> model(net, comm);
    CHECK(same_on_all_ranks(flat_params(*net)));
    CHECK(flat_params(*net) == flat_params(*make_mlp<float>(100)));  // rank 0's
    CHECK(model.parameters().size() == net->parameters().size());
    CHECK(model.named_parameters()[0].first == "module.0.weight");
    CHECK(model.describe() == "DataParallel(ranks=2, backend=mpi, buckets=1)");
}

TEST_CASE("DataParallel: after k steps on different data the ranks hold bitwise-identical parameters") {
    auto& comm = world();
    auto net = make_mlp<float>(3);
    tg::dist::DataParallel<float> model(net, comm);
    const auto ds = make_data<float>(96, 10 + static_cast<uint64_t>(comm.rank()));  // each rank its own data
    tg::data::DataLoader<float> loader(ds, {.batch_size = 16, .seed = 5});
    train(model, loader, 2);  // 12 steps
    CHECK(model.stats().passes == 12);
    CHECK(same_on_all_ranks(flat_params(*net)));
    CHECK(flat_params(*net) != flat_params(*make_mlp<float>(3)));  // it did train
}

TEST_CASE("DataParallel: 2 ranks x batch 32 match 1 process x batch 64 after 20 SGD steps") {
    auto& comm = world();
    const auto ds = make_data<float>(64);
    std::vector<int64_t> mine;  // this rank's half of the batch
    for (int64_t i = 0; i < 32; ++i) mine.push_back(32 * comm.rank() + i);
    const auto half = ds.subset(mine);

    auto net = make_mlp<float>(11);
    tg::dist::DataParallel<float> model(net, comm);
    tg::optim::SGD<float> opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
    auto ref = make_mlp<float>(11);  // one process, the whole batch
    tg::optim::SGD<float> ref_opt(ref->parameters(), {.lr = 0.1, .momentum = 0.9});
    for (int step = 0; step < 20; ++step) {
        opt.zero_grad();
        nn::cross_entropy(model(half.features), half.labels).backward();
        opt.step();
        ref_opt.zero_grad();
        nn::cross_entropy((*ref)(ds.features), ds.labels).backward();
        ref_opt.step();
    }
    const double d = rel_diff(flat_params(*net), flat_params(*ref));
    INFO("relative difference " << d);
    CHECK(d < 1e-6);
    CHECK(same_on_all_ranks(flat_params(*net)));
}

namespace {

/// 6 -> 16 -> 16 -> 16 -> 16 -> 16 -> 4 with tanh between. `reversed`: the layers are registered in the
/// reverse of the order the forward uses them, so DataParallel's buckets (reverse registration order) fill
/// in the reverse of the order backward delivers the gradients: the last bucket first.
struct Chain : nn::Module<float> {
    Chain(tg::Generator& gen, bool reversed) {
        const int64_t widths[] = {6, 16, 16, 16, 16, 16, 4};
        for (int i = 0; i < 6; ++i) layers.push_back(std::make_shared<nn::Linear<float>>(widths[i], widths[i + 1], gen));
        for (int k = 0; k < 6; ++k) {
            const int i = reversed ? 5 - k : k;
            register_module("l" + std::to_string(i), layers[static_cast<size_t>(i)]);
        }
    }
    tg::TensorF forward(const tg::TensorF& x) override {
        tg::TensorF h = x;
        for (size_t i = 0; i < layers.size(); ++i) h = i + 1 < layers.size() ? tg::tanh((*layers[i])(h)) : (*layers[i])(h);
        return h;
    }
    std::vector<std::shared_ptr<nn::Linear<float>>> layers;
};

std::vector<float> train_with_caps(double first_mb, double cap_mb, bool backwards, int64_t* buckets) {
    auto& comm = world();
    tg::Generator gen(21);
    auto net = std::make_shared<Chain>(gen, backwards);
    tg::dist::DataParallel<float> model(net, comm, {.bucket_cap_mb = cap_mb, .first_bucket_cap_mb = first_mb});
    *buckets = static_cast<int64_t>(model.buckets().size());
    const auto ds = make_data<float>(80, 30 + static_cast<uint64_t>(comm.rank()));
    tg::data::DataLoader<float> loader(ds, {.batch_size = 16, .seed = 2});
    train(model, loader, 2);
    CHECK(model.stats().allreduces == model.stats().passes * *buckets);
    return flat_params(*net);
}

}  // namespace

TEST_CASE("DataParallel: 1 KB buckets (many, filled out of order) give the result of one 25 MB bucket") {
    for (const bool backwards : {false, true}) {
        CAPTURE(backwards);
        int64_t many = 0, one = 0;
        const auto small = train_with_caps(1.0 / 1024, 1.0 / 1024, backwards, &many);
        const auto big = train_with_caps(1.0, 25.0, backwards, &one);
        CHECK(one == 1);
        CHECK(many >= 5);
        CHECK(small == big);  // the same sums, so bitwise the same
        CHECK(same_on_all_ranks(small));
    }
}

TEST_CASE("DataParallel: buckets follow reverse parameter order with a small first bucket") {
    auto& comm = world();
    auto net = make_mlp<float>(1, 512);  // 0.weight 6x512, 2.weight 512x12 = 24 KiB, ...
    tg::dist::DataParallel<float> model(net, comm, {.bucket_cap_mb = 16.0 / 1024, .first_bucket_cap_mb = 8.0 / 1024});
    const auto b = model.buckets();
    REQUIRE(b.size() == 2);
    // 4.bias, 4.weight, 2.bias (50 floats) then 2.weight (6144 floats, 24 KiB) closes the 8 KiB first bucket
    CHECK(b[0] == std::vector<std::string>{"4.bias", "4.weight", "2.bias", "2.weight"});
    CHECK(b[1] == std::vector<std::string>{"0.bias", "0.weight"});
}

TEST_CASE("DataParallel: no_sync accumulates locally; the next backward averages the sum") {
    auto& comm = world();
    const auto ds = make_data<float>(64);
    auto micro = [&](int rank, int k) {  // rank r's k-th micro-batch of 16
        std::vector<int64_t> idx;
        for (int64_t i = 0; i < 16; ++i) idx.push_back(32 * rank + 16 * k + i);
        return ds.subset(idx);
    };
    auto net = make_mlp<float>(4);
    tg::dist::DataParallel<float> model(net, comm);
    {
        auto guard = model.no_sync();
        const auto m0 = micro(comm.rank(), 0);
        nn::cross_entropy(model(m0.features), m0.labels).backward();
    }
    CHECK_FALSE(same_on_all_ranks(net->parameters()[0].grad().to_vector()));  // still local
    CHECK(model.stats().passes == 0);
    const auto m1 = micro(comm.rank(), 1);
    nn::cross_entropy(model(m1.features), m1.labels).backward();
    CHECK(model.stats().passes == 1);

    auto ref = make_mlp<float>(4);  // one process: the 4 micro-batches' gradients, summed, halved
    for (int r = 0; r < 2; ++r)
        for (int k = 0; k < 2; ++k) {
            const auto m = micro(r, k);
            nn::cross_entropy((*ref)(m.features), m.labels).backward();
        }
    const auto got = net->parameters(), want = ref->parameters();
    for (size_t i = 0; i < got.size(); ++i) {
        std::vector<float> w = want[i].grad().to_vector();
        for (float& v : w) v *= 0.5f;
        CHECK(rel_diff(got[i].grad().to_vector(), w) < 1e-6);
        CHECK(same_on_all_ranks(got[i].grad().to_vector()));
    }
}

TEST_CASE("DataParallel: different models on the ranks fail with a clear error on every rank") {
    auto& comm = world();
    tg::Generator gen(1);
    auto net = std::make_shared<nn::Sequential<float>>(nn::Linear<float>(4, comm.rank() == 0 ? 5 : 6, gen));
    std::string what;
    try {
        tg::dist::DataParallel<float> model(net, comm);
    } catch (const tg::DistributedError& e) {
        what = e.what();
    }
    INFO(what);
    CHECK(what.find("the ranks hold different models") != std::string::npos);
    CHECK(what.find("rank 1: 'parameter 0.weight [6, 4]' where rank 0 has 'parameter 0.weight [5, 4]'") !=
          std::string::npos);

    // A missing layer is named too.
    auto net2 = std::make_shared<nn::Sequential<float>>(nn::Linear<float>(4, 4, gen));
    if (comm.rank() == 1) net2->push_back(nn::Linear<float>(4, 2, gen));
    CHECK_THROWS_WITH_AS(tg::dist::DataParallel<float>(net2, comm),
                         doctest::Contains("rank 1: 'parameter 1.weight [2, 4]' is not on rank 0"),
                         tg::DistributedError);
    // And the communicator still works afterwards: nobody was left behind in a collective.
    CHECK(comm.sum(int64_t{1}) == 2);
}

TEST_CASE("DataParallel: an unused parameter needs finish_gradient_synchronization") {
    auto& comm = world();
    tg::Generator gen(2);
    auto unused = std::make_shared<nn::Sequential<float>>(nn::Linear<float>(6, 4, gen), nn::Linear<float>(2, 2, gen));
    tg::dist::DataParallel<float> model(unused, comm, {.first_bucket_cap_mb = 1e-6});  // one bucket per tensor
    const auto ds = make_data<float>(8, 40 + static_cast<uint64_t>(comm.rank()));
    nn::cross_entropy((*unused)[0]->forward(ds.features), ds.labels).backward();  // "1" gets no gradient
    CHECK_THROWS_WITH_AS(model(ds.features), doctest::Contains("parameter '1.weight' got no gradient"),
                         tg::DistributedError);
    model.finish_gradient_synchronization();
    CHECK(same_on_all_ranks(unused->parameters()[0].grad().to_vector()));
    CHECK(unused->parameters()[2].grad().to_vector() == std::vector<float>(4, 0.f));
}

TEST_CASE("DataParallel: batch-norm buffers are broadcast from rank 0, or averaged, in training forwards") {
    auto& comm = world();
    for (const auto mode : {tg::dist::BufferSync::broadcast, tg::dist::BufferSync::average, tg::dist::BufferSync::none}) {
        auto net = std::make_shared<nn::Sequential<double>>(nn::BatchNorm1d<double>(3));
        tg::dist::DataParallel<double> model(net, comm, {.buffers = mode});
        tg::Generator gen(50 + static_cast<uint64_t>(comm.rank()));
        (void)model(tg::TensorD::uniform({8, 3}, -1, 1, gen));  // different statistics per rank
        const auto mean_after_1 = net->named_buffers()[0].second.to_vector();
        CHECK_FALSE(same_on_all_ranks(mean_after_1));
        // The second forward starts from rank 0's (or the average) running mean, on a batch the same everywhere.
        std::vector<double> expect = mean_after_1;
        if (mode == tg::dist::BufferSync::broadcast) comm.broadcast(expect.data(), 3, 0);
        if (mode == tg::dist::BufferSync::average) {
            comm.allreduce_sum(expect.data(), 3);
            for (double& v : expect) v /= 2;
        }
        tg::Generator common(60);
        const auto x = tg::TensorD::uniform({8, 3}, -1, 1, common);
        (void)model(x);
        const auto mean_after_2 = net->named_buffers()[0].second.to_vector();
        CHECK(same_on_all_ranks(mean_after_2) == (mode != tg::dist::BufferSync::none));
        // running = 0.9 running + 0.1 batch mean
        const auto batch_mean = tg::mean(x, 0).to_vector();
        for (size_t c = 0; c < 3; ++c) CHECK(mean_after_2[c] == doctest::Approx(0.9 * expect[c] + 0.1 * batch_mean[c]));
    }
}

TEST_CASE("DistributedSampler + DataLoader: an uneven last batch matches one process on the whole data") {
    auto& comm = world();
    // 100 samples, 32 per rank and batch: batches of 32 and 18 per rank, 64 and 36 for one process.
    const auto ds = make_data<double>(100);
    auto sampler = std::make_shared<tg::data::DistributedSampler>(
        ds.size(), tg::data::DistributedSamplerOptions{.num_replicas = comm.size(), .rank = comm.rank(), .shuffle = false});
    tg::data::DataLoader<double> loader(ds, sampler, {.batch_size = 32});
    CHECK(loader.num_batches() == 2);
    auto net = make_mlp<double>(8);
    tg::dist::DataParallel<double> model(net, comm);
    train(model, loader, 3);

    tg::data::DataLoader<double> whole(ds, {.batch_size = 64, .shuffle = false});
    auto ref = make_mlp<double>(8);
    train(*ref, whole, 3);
    CHECK(rel_diff(flat_params(*net), flat_params(*ref)) < 1e-12);
    CHECK(same_on_all_ranks(flat_params(*net)));
}

TEST_CASE("DistributedSampler: shards are disjoint, cover the data, and shuffle alike on every rank") {
    auto& comm = world();
    for (const int64_t n : {101, 64}) {
        CAPTURE(n);
        tg::data::DistributedSampler sampler(n, {.num_replicas = comm.size(), .rank = comm.rank(), .seed = 9});
        CHECK(sampler.size() == (n + 1) / 2);
        std::vector<int64_t> e0, e1;
        sampler.epoch_indices(e0);
        sampler.epoch_indices(e1);
        CHECK(e0 != e1);  // a new shuffle each epoch
        // Gather both ranks' shards: together they are the whole set (plus padding), each sample once.
        std::vector<int64_t> all(e0.size() * 2);
        comm.allgather(e0.data(), all.data(), static_cast<int64_t>(e0.size() * sizeof(int64_t)));
        std::vector<int64_t> sorted = all;
        std::sort(sorted.begin(), sorted.end());
        sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
        CHECK(static_cast<int64_t>(sorted.size()) == n);
        CHECK(static_cast<int64_t>(all.size()) == 2 * ((n + 1) / 2));
    }
}

#if defined(TAPEGRAD_TEST_IO)
TEST_CASE("checkpoints: rank 0 writes, any number of ranks loads") {
    auto& comm = world();
    auto net = make_mlp<float>(70);
    tg::dist::DataParallel<float> model(net, comm);
    const auto ds = make_data<float>(64, 80 + static_cast<uint64_t>(comm.rank()));
    tg::data::DataLoader<float> loader(ds, {.batch_size = 16});
    train(model, loader, 1);
    int64_t tag = comm.rank() == 0 ? static_cast<int64_t>(::getpid()) : 0;
    comm.broadcast(&tag, 1, 0);
    const auto path = std::filesystem::temp_directory_path() / ("tapegrad_mpi_ckpt_" + std::to_string(tag) + ".safetensors");
    if (comm.rank() == 0) tg::io::save(path, model.module());  // the wrapped module: no "module." prefix
    comm.barrier();
    auto fresh = make_mlp<float>(71);  // as a single process would load it
    tg::io::load(path, *fresh);
    CHECK(flat_params(*fresh) == flat_params(*net));
    // And into a data-parallel model of another run: rank 0's copy is what everyone starts from.
    auto again = make_mlp<float>(72);
    if (comm.rank() == 0) tg::io::load(path, *again);
    tg::dist::DataParallel<float> model2(again, comm);
    CHECK(flat_params(*again) == flat_params(*net));
    comm.barrier();
    if (comm.rank() == 0) std::filesystem::remove(path);
}
#endif
