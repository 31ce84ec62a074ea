// Tests for include/tapegrad/ops/index.hpp: embedding, index_select, gather, where, masked_fill.
#include <tapegrad/ops/index.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/index_tables.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("index ops: every op passes gradcheck in double (the device-generic table, on the CPU)") {
    check_table<IndexTable, Cpu>(14000);
}

TEST_CASE("embedding: rows picked by ids of any shape; gradients summed per id; padding row gets none") {
    const TensorD w = TensorD::from({4, 2}, {0, 1, 10, 11, 20, 21, 30, 31});
    const TensorL ids = TensorL::from({2, 3}, {3, 0, 3, 1, 2, 1});
    const TensorD y = embedding(w, ids);
    CHECK(y.shape() == Shape{2, 3, 2});
    CHECK(y.to_vector() == std::vector<double>{30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 10, 11});
    CHECK(embedding(w, TensorL::scalar(2)).shape() == Shape{2});
    CHECK(embedding(w, TensorL::zeros({0})).shape() == Shape{0, 2});

    TensorD wg = w.clone().detach().requires_grad_();
    sum(embedding(wg, ids) * TensorD::from({2}, {1, 100})).backward();
    CHECK(wg.grad().to_vector() == std::vector<double>{1, 100, 2, 200, 1, 100, 2, 200});

    TensorD wp = w.clone().detach().requires_grad_();
    sum(embedding(wp, ids, 3)).backward();
    CHECK(wp.grad().to_vector() == std::vector<double>{1, 1, 2, 2, 1, 1, 0, 0});
    CHECK(std::string(embedding(wp, ids).grad_fn_name()) == "embedding");
}

TEST_CASE("embedding: errors name the op and the values") {
    const TensorF w = TensorF::zeros({64, 8});
    std::vector<int64_t> v(20, 5);
    v[13] = 70;
    CHECK_THROWS_WITH_AS(embedding(w, TensorL::from({4, 5}, v)), "embedding: id 70 out of range [0, 64) at position 13",
                         IndexError);
    CHECK_THROWS_WITH_AS(embedding(w, TensorL::from({2}, {0, -1})), "embedding: id -1 out of range [0, 64) at position 1",
                         IndexError);
    CHECK_THROWS_WITH_AS(embedding(TensorF::zeros({64}), TensorL::zeros({2})),
                         "embedding: weight must be 2-D [num_embeddings, dim], got shape [64]", ShapeError);
    CHECK_THROWS_WITH_AS(embedding(w, TensorL::zeros({2}), 64), "embedding: padding_idx 64 out of range for 64 embeddings",
                         IndexError);
    CHECK_THROWS_AS(embedding(w, TensorL::zeros({1, 1, 1, 1, 1, 1, 1, 1})), ShapeError);
}

TEST_CASE("embedding: the backward gives the same bits every run, with many repeats") {
    Generator g(3);
    const TensorF w0 = TensorF::uniform({16, 33}, -1.f, 1.f, g);
    std::vector<int64_t> v(2000);
    for (auto& e : v) e = static_cast<int64_t>(g.below(16));
    const TensorL ids = TensorL::from({40, 50}, v);
    const TensorF r = TensorF::uniform({40, 50, 33}, -1.f, 1.f, g);
    std::vector<float> first;
    for (int run = 0; run < 3; ++run) {
        TensorF w = w0.clone().detach().requires_grad_();
        sum(embedding(w, ids, 0) * r).backward();
        const std::vector<float> grad = w.grad().to_vector();
        if (run == 0) first = grad;
        CHECK(std::memcmp(first.data(), grad.data(), grad.size() * sizeof(float)) == 0);
        for (int64_t c = 0; c < 33; ++c) CHECK(w.grad()(0, c) == 0.f);
    }
}

TEST_CASE("index_select: values along an axis, repeats add in backward; errors") {
    const TensorD x = TensorD::arange(12).reshape({3, 4});
    CHECK(index_select(x, 1, TensorL::from({3}, {3, 0, 3})).to_vector() ==
          std::vector<double>{3, 0, 3, 7, 4, 7, 11, 8, 11});
    CHECK(index_select(x, 0, TensorL::from({2}, {2, 2})).to_vector() ==
          std::vector<double>{8, 9, 10, 11, 8, 9, 10, 11});
    TensorD xg = x.clone().detach().requires_grad_();
    sum(index_select(xg, -1, TensorL::from({3}, {3, 0, 3}))).backward();
    CHECK(xg.grad().to_vector() == std::vector<double>{1, 0, 0, 2, 1, 0, 0, 2, 1, 0, 0, 2});
    CHECK_THROWS_WITH_AS(index_select(x, 1, TensorL::from({2}, {1, 4})),
                         "index_select: index 4 out of range [0, 4) at position 1", IndexError);
    CHECK_THROWS_WITH_AS(index_select(x, 1, TensorL::zeros({2, 2})),
                         "index_select: the index must be 1-D, got shape [2, 2]", ShapeError);
    CHECK_THROWS_AS(index_select(x, 2, TensorL::zeros({1})), IndexError);
}

TEST_CASE("gather: PyTorch's semantics (values from torch.gather), backward scatters; errors") {
    // torch.gather(torch.arange(12.).reshape(3, 4), 1, torch.tensor([[3, 0], [1, 1], [2, 0]]))
    //   -> [[3., 0.], [5., 5.], [10., 8.]]
    const TensorD x = TensorD::arange(12).reshape({3, 4});
    CHECK(gather(x, 1, TensorL::from({3, 2}, {3, 0, 1, 1, 2, 0})).to_vector() ==
          std::vector<double>{3, 0, 5, 5, 10, 8});
    // torch.gather(x, 0, torch.tensor([[2, 0, 1]])) -> [[8., 1., 6.]]  (idx smaller than x in dim 1)
    CHECK(gather(x, 0, TensorL::from({1, 3}, {2, 0, 1})).to_vector() == std::vector<double>{8, 1, 6});
    TensorD xg = x.clone().detach().requires_grad_();
    sum(gather(xg, 1, TensorL::from({3, 2}, {3, 0, 1, 1, 2, 0}))).backward();
    CHECK(xg.grad().to_vector() == std::vector<double>{1, 0, 0, 1, 0, 2, 0, 0, 1, 0, 1, 0});
    CHECK_THROWS_WITH_AS(gather(x, 1, TensorL::from({1, 2}, {0, 9})), "gather: index 9 out of range [0, 4) at position 1",
                         IndexError);
    CHECK_THROWS_WITH_AS(gather(x, 1, TensorL::zeros({4, 1})),
                         "gather: index of shape [4, 1] is larger than the input of shape [3, 4] in dimension 0",
                         ShapeError);
    CHECK_THROWS_WITH_AS(gather(x, 1, TensorL::zeros({3})),
                         "gather: index of shape [3] must have the input's rank (input shape [3, 4])", ShapeError);
}

TEST_CASE("where and masked_fill: values, broadcast masks, gradients to the chosen branch; errors") {
    const TensorD a = TensorD::from({2, 3}, {1, 2, 3, 4, 5, 6});
    const TensorD b = TensorD::from({2, 3}, {-1, -2, -3, -4, -5, -6});
    const Mask<> m = Mask<>::from({2, 3}, {1, 0, 1, 0, 0, 1});
    CHECK(where(m, a, b).to_vector() == std::vector<double>{1, -2, 3, -4, -5, 6});
    const Mask<> col = Mask<>::from({2, 1}, {0, 1});
    CHECK(where(col, a, b).to_vector() == std::vector<double>{-1, -2, -3, 4, 5, 6});
    CHECK(masked_fill(a, Mask<>::from({3}, {0, 1, 0}), -9.0).to_vector() == std::vector<double>{1, -9, 3, 4, -9, 6});

    TensorD ag = a.clone().detach().requires_grad_(), bg = b.clone().detach().requires_grad_();
    sum(where(m, ag, bg)).backward();
    CHECK(ag.grad().to_vector() == std::vector<double>{1, 0, 1, 0, 0, 1});
    CHECK(bg.grad().to_vector() == std::vector<double>{0, 1, 0, 1, 1, 0});
    TensorD xg = a.clone().detach().requires_grad_();
    sum(masked_fill(xg, col, 0.0) * 2.0).backward();
    CHECK(xg.grad().to_vector() == std::vector<double>{2, 2, 2, 0, 0, 0});

    CHECK_THROWS_WITH_AS(where(m, a, TensorD::zeros({3})), "where: the two branches differ in shape ([2, 3] and [3])",
                         ShapeError);
    CHECK_THROWS_WITH_AS(masked_fill(TensorD::zeros({3}), m, 0.0),
                         "masked_fill: mask of shape [2, 3] does not broadcast to the shape [3]", ShapeError);
    CHECK_THROWS_AS(masked_fill(a, Mask<>::zeros({4}), 0.0), ShapeError);
}
