// Tests for include/tapegrad/nn/embedding.hpp.
#include <tapegrad/nn/embedding.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../interop/embedding_reference.hpp"
#include "../test_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

using namespace tapegrad;

TEST_CASE("Embedding: PyTorch's parameter name, shape and init (N(0, 1), the padding row zero)") {
    Generator g(5);
    nn::Embedding<float> emb(300, 40, g, {.padding_idx = 7});
    const auto sd = emb.state_dict();
    REQUIRE(sd.size() == 1);
    CHECK(sd[0].first == "weight");
    CHECK(sd[0].second.shape() == Shape{300, 40});
    CHECK(emb.padding_idx() == 7);
    CHECK(emb.describe() == "Embedding(300, 40, padding_idx=7)");
    double s = 0, s2 = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < 300; ++r)
        for (int64_t c = 0; c < 40; ++c) {
            const double v = emb.weight()(r, c);
            if (r == 7) {
                CHECK(v == 0.0);
                continue;
            }
            s += v;
            s2 += v * v;
            ++n;
        }
    const double mean = s / static_cast<double>(n), var = s2 / static_cast<double>(n) - mean * mean;
    CHECK(std::abs(mean) < 0.03);  // 11960 draws: the standard error of the mean is 0.009
    CHECK(std::abs(var - 1.0) < 0.05);
    CHECK(nn::Embedding<float>(4, 2, g, {.padding_idx = -1}).padding_idx() == 3);
    CHECK(nn::Embedding<float>(4, 2, g).describe() == "Embedding(4, 2)");
}

TEST_CASE("Embedding: forward and weight gradient equal torch.nn.Embedding's (values from PyTorch 1.13)") {
    namespace ref = embedding_reference;
    nn::Embedding<double> emb(ref::num_embeddings, ref::embedding_dim, {.padding_idx = ref::padding_idx});
    {
        NoGradGuard no_grad;
        emb.weight().copy_(TensorD::from({ref::num_embeddings, ref::embedding_dim}, ref::weight));
    }
    const TensorL ids = TensorL::from({ref::batch, ref::steps}, ref::ids);
    const TensorD y = emb(ids);
    CHECK(y.shape() == Shape{ref::batch, ref::steps, ref::embedding_dim});
    const std::vector<double> out = y.to_vector();
    for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == doctest::Approx(ref::output[i]).epsilon(1e-14));
    sum(y * TensorD::from(y.shape(), ref::upstream)).backward();
    const std::vector<double> grad = emb.weight().grad().to_vector();
    REQUIRE(grad.size() == ref::weight_grad.size());
    for (size_t i = 0; i < grad.size(); ++i) CHECK(grad[i] == doctest::Approx(ref::weight_grad[i]).epsilon(1e-12));
}

TEST_CASE("Embedding: gradcheck through the module; errors name the layer") {
    Generator g(8);
    nn::Embedding<double> emb(5, 3, g, {.padding_idx = 0});
    const TensorL ids = TensorL::from({4}, {1, 0, 4, 1});
    // The padding row gets no gradient although the forward reads it (as PyTorch): it is held constant.
    const TensorD pad_row = TensorD::zeros({1, 3});
    const auto r = gradcheck([&](const std::vector<TensorD>& w) { return embedding(concat({pad_row, w[0]}, 0), ids, 0); },
                             {TensorD::uniform({4, 3}, -1.0, 1.0, g).requires_grad_()});
    CHECK_MESSAGE(r.ok, r.message);
    const TensorD with_pad = TensorD::uniform({5, 3}, -1.0, 1.0, g).requires_grad_();
    const auto r_pad = gradcheck([&](const std::vector<TensorD>& w) { return embedding(w[0], ids, 0); }, {with_pad});
    CHECK_MESSAGE(!r_pad.ok, "the padding row's gradient is zero by design, so a check that perturbs it must fail");
    CHECK_THROWS_WITH_AS(nn::Embedding<float>(0, 3), "Embedding: num_embeddings (0) and embedding_dim (3) must be positive",
                         ValueError);
    CHECK_THROWS_WITH_AS(nn::Embedding<float>(4, 3, {.padding_idx = 4}), "Embedding: padding_idx 4 out of range for 4 embeddings",
                         IndexError);
    nn::Embedding<float> e(4, 3);
    CHECK_THROWS_WITH_AS(e.forward(TensorF::zeros({2})),
                         "Embedding: forward takes int64 ids (Tensor<int64_t, D>), got a float tensor of shape [2]; "
                         "convert it with cast<int64_t>(x)",
                         ValueError);
    CHECK_THROWS_WITH_AS(e(TensorL::from({2}, {1, 4})), "embedding: id 4 out of range [0, 4) at position 1", IndexError);
}

TEST_CASE("Embedding -> Linear -> cross_entropy with int64 labels trains (loss falls)") {
    Generator g(2);
    nn::Embedding<float> emb(6, 8, g);
    nn::Linear<float> head(8, 6, g);
    std::vector<Tensor<float>> params{emb.weight(), head.weight(), head.bias()};
    optim::SGD<float> opt(params, {.lr = 0.5});
    const TensorL x = TensorL::from({6}, {0, 1, 2, 3, 4, 5});
    const TensorL next = TensorL::from({6}, {1, 2, 3, 4, 5, 0});
    float first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
        opt.zero_grad();
        Tensor<float> loss = cross_entropy(head(emb(x)), next);
        loss.backward();
        opt.step();
        if (step == 0) first = loss.item();
        last = loss.item();
    }
    CHECK(last < 0.1f * first);
    CHECK(argmax(head(emb(x)), 1).to_vector() == next.to_vector());
}
