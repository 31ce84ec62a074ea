#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/op_tables.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

namespace {

int64_t dim(Generator& g) { return 1 + static_cast<int64_t>(g.below(4)); }

/// [B, M, K] x [B, K, N]
Inputs mm_3d3d(Generator& g) {
    const int64_t b = dim(g), m = dim(g), k = dim(g), n = dim(g);
    return {random_tensor({b, m, k}, g), random_tensor({b, k, n}, g)};
}
/// [B, M, K] x [K, N]
Inputs mm_3d2d(Generator& g) {
    const int64_t b = dim(g), m = dim(g), k = dim(g), n = dim(g);
    return {random_tensor({b, m, k}, g), random_tensor({k, n}, g)};
}

}  // namespace

TEST_CASE("matmul and linear: pass gradcheck on random shapes (the device-generic table, on the CPU)") {
    check_table<LinalgTable, Cpu>(2000);
}

TEST_CASE("matmul: gradcheck with only one operand requiring grad") {
    Generator g(7);
    for (int c = 0; c < 4; ++c) {
        Inputs xs = c % 2 ? mm_3d2d(g) : mm_3d3d(g);
        xs[static_cast<size_t>(c / 2)].requires_grad_();
        check_gradient("matmul, one operand", [](const Inputs& x) { return matmul(x[0], x[1]); }, xs);
    }
}

TEST_CASE_TEMPLATE("matmul: forward values against hand-computed literals", T, float, double) {
    using Tn = Tensor<T>;
    // [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
    const Tn a = Tn::from({2, 3}, {1, 2, 3, 4, 5, 6});
    const Tn b = Tn::from({3, 2}, {1, 0, 0, 1, 1, 1});
    const Tn y = matmul(a, b);
    CHECK(y.shape() == Shape{2, 2});
    CHECK(y.to_vector() == std::vector<T>{4, 5, 10, 11});

    // batched: each batch entry has its own right operand
    const Tn ab = Tn::from({2, 1, 2}, {1, 2, 3, 4});
    const Tn bb = Tn::from({2, 2, 1}, {10, 20, 30, 40});
    const Tn yb = matmul(ab, bb);
    CHECK(yb.shape() == Shape{2, 1, 1});
    CHECK(yb.to_vector() == std::vector<T>{50, 250});  // 1*10+2*20, 3*30+4*40

    // 3-D x 2-D: the right operand is shared by the batch
    const Tn shared = Tn::from({2, 3}, {1, 0, 2, 0, 1, 3});
    const Tn y3 = matmul(ab, shared);
    CHECK(y3.shape() == Shape{2, 1, 3});
    CHECK(y3.to_vector() == std::vector<T>{1, 2, 8, 3, 4, 18});

    // an empty inner dimension gives zeros
    const Tn z = matmul(Tn::zeros({2, 0}), Tn::zeros({0, 3}));
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.to_vector() == std::vector<T>(6, T(0)));
}

TEST_CASE("matmul: backward values for a 2x2 product") {
    // L = sum(A B):  dL/dA = 1 B^T (row sums of B), dL/dB = A^T 1 (column sums of A)
    TensorD a = TensorD::from({2, 2}, {1, 2, 3, 4});
    TensorD b = TensorD::from({2, 2}, {5, 6, 7, 8});
    a.requires_grad_();
    b.requires_grad_();
    sum(matmul(a, b)).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{11, 15, 11, 15});
    CHECK(b.grad().to_vector() == std::vector<double>{4, 4, 6, 6});

    // empty inner dimension: the gradients exist and are empty
    TensorD e = TensorD::zeros({2, 0});
    TensorD f = TensorD::zeros({0, 3});
    e.requires_grad_();
    f.requires_grad_();
    sum(matmul(e, f)).backward();
    CHECK(e.grad().shape() == Shape{2, 0});
    CHECK(f.grad().shape() == Shape{0, 3});
}

TEST_CASE("matmul: shape errors name both shapes") {
    CHECK_THROWS_WITH_AS(matmul(TensorD::zeros({4, 3}), TensorD::zeros({2, 5})),
                         "matmul: inner dimensions differ (4x3 and 2x5)", ShapeError);
    CHECK_THROWS_WITH_AS(matmul(TensorD::zeros({2, 4, 3}), TensorD::zeros({2, 5})),
                         "matmul: inner dimensions differ (2x4x3 and 2x5)", ShapeError);
    CHECK_THROWS_WITH_AS(matmul(TensorD::zeros({2, 4, 3}), TensorD::zeros({3, 3, 5})),
                         "matmul: batch sizes differ (2x4x3 and 3x3x5)", ShapeError);
    CHECK_THROWS_WITH_AS(matmul(TensorD::zeros({3}), TensorD::zeros({3, 2})),
                         "matmul: expects tensors of rank 2 or more ([..., M, K] and [..., K, N]), got shapes [3] and [3, 2]",
                         ShapeError);
    CHECK_THROWS_WITH_AS(matmul(TensorD::zeros({2, 3, 4, 3}), TensorD::zeros({2, 3, 5})),
                         "matmul: batch sizes differ (2x3x4x3 and 2x3x5)", ShapeError);
    CHECK_THROWS_WITH_AS(bmm(TensorD::zeros({2, 4, 3}), TensorD::zeros({3, 5})),
                         "bmm: expects 3-D tensors [B, M, K] and [B, K, N], got shapes [2, 4, 3] and [3, 5]", ShapeError);
    CHECK_THROWS_WITH_AS(bmm(TensorD::zeros({2, 4, 3}), TensorD::zeros({1, 3, 5})), "bmm: batch sizes differ (2x4x3 and 1x3x5)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(bmm(TensorD::zeros({2, 4, 3}), TensorD::zeros({2, 2, 5})),
                         "bmm: inner dimensions differ (2x4x3 and 2x2x5)", ShapeError);
    CHECK_THROWS_AS(matmul(TensorD::scalar(1.0), TensorD::scalar(1.0)), ShapeError);
}

TEST_CASE("matmul: broadcast batch dimensions equal a loop of 2-D products; bmm equals matmul") {
    Generator g(21);
    TensorD a = TensorD::uniform({2, 1, 3, 4}, -1, 1, g).requires_grad_();
    TensorD b = TensorD::uniform({3, 4, 2}, -1, 1, g).requires_grad_();
    const TensorD y = matmul(a, b);
    REQUIRE(y.shape() == Shape{2, 3, 3, 2});
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j) {
            const TensorD want = matmul(select(select(a, 0, i), 0, 0), select(b, 0, j));
            CHECK(select(select(y, 0, i), 0, j).to_vector() == want.to_vector());
        }
    // b is used by both entries of a's batch: its gradient is their sum
    sum(y).backward();
    TensorD b2 = b.detach().requires_grad_();
    sum(matmul(select(select(a.detach(), 0, 0), 0, 0), b2) + matmul(select(select(a.detach(), 0, 1), 0, 0), b2)).backward();
    check_close("broadcast gradient", b2.grad().to_vector(), b.grad().to_vector(), 1e-12);
    const TensorD p = TensorD::uniform({4, 2, 3}, -1, 1, g), q = TensorD::uniform({4, 3, 5}, -1, 1, g);
    CHECK(bmm(p, q).to_vector() == matmul(p, q).to_vector());
}
