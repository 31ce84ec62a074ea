// Determinism of a whole training run: with the same seed (and one thread), two runs of
// initialisation + shuffled mini-batches + SGD with momentum give bitwise-identical losses.
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

namespace tg = tapegrad;

namespace {

tg::data::Dataset<float> synthetic(int64_t n, uint64_t seed) {
    tg::Generator g(seed);
    tg::data::Dataset<float> ds{tg::TensorF::normal({n, 12}, 0.f, 1.f, g), {}};
    for (int64_t i = 0; i < n; ++i) {
        const float* row = ds.features.data() + i * 12;
        ds.labels.push_back((row[0] + row[1] > 0 ? 1 : 0) + (row[2] > 0.5f ? 2 : 0));
    }
    return ds;
}

std::vector<float> train_losses(uint64_t seed) {
    const auto ds = synthetic(300, 7);
    tg::Generator gen(seed);
    tg::nn::Sequential<float> net;
    net.push_back(tg::nn::Linear<float>(12, 16, gen));
    net.push_back(tg::nn::ReLU<float>());
    net.push_back(tg::nn::Linear<float>(16, 4, gen));
    tg::optim::SGD<float> opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
    tg::data::DataLoader<float> loader(ds, {.batch_size = 32, .shuffle = true, .seed = seed});
    std::vector<float> losses;
    for (int epoch = 0; epoch < 3; ++epoch) {
        for (const auto& batch : loader) {
            opt.zero_grad();
            const auto loss = tg::nn::cross_entropy(net(batch.x), batch.y);
            loss.backward();
            opt.step();
            losses.push_back(loss.item());
        }
    }
    return losses;
}

}  // namespace

TEST_CASE("training with the same seed gives bitwise-identical losses") {
    const auto a = train_losses(11);
    const auto b = train_losses(11);
    REQUIRE(a.size() == 30);  // 3 epochs x ceil(300 / 32) batches
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    CHECK(a.back() < a.front());  // and it learns
    const auto c = train_losses(12);
    CHECK(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)) != 0);  // the seed matters
}
