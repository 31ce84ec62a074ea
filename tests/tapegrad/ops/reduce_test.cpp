#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/op_tables.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("sum, mean and max, of all elements and along an axis, pass gradcheck (the device-generic table)") {
    check_table<ReduceTable, Cpu>(3000);
}

TEST_CASE("reductions: forward values and shapes") {
    // x = [[1, 2, 3], [4, 5, 6]]
    const TensorD x = TensorD::arange(1.0, 7.0).reshape({2, 3});
    CHECK(sum(x).shape() == Shape{});
    CHECK(sum(x).item() == 21.0);
    CHECK(mean(x).item() == 3.5);
    CHECK(sum(x, 0).shape() == Shape{3});
    CHECK(sum(x, 0).to_vector() == std::vector<double>{5, 7, 9});
    CHECK(sum(x, 1).to_vector() == std::vector<double>{6, 15});
    CHECK(sum(x, -1).to_vector() == std::vector<double>{6, 15});
    CHECK(sum(x, 1, true).shape() == Shape{2, 1});
    CHECK(sum(x, 0, true).shape() == Shape{1, 3});
    CHECK(mean(x, 0).to_vector() == std::vector<double>{2.5, 3.5, 4.5});
    CHECK(mean(x, 1, true).to_vector() == std::vector<double>{2, 5});
    CHECK(mean(x, 1, true).shape() == Shape{2, 1});

    // the middle axis of a 3-D tensor
    const TensorD c = TensorD::arange(24).reshape({2, 3, 4});
    const TensorD s1 = sum(c, 1);
    CHECK(s1.shape() == Shape{2, 4});
    CHECK(s1.to_vector() == std::vector<double>{12, 15, 18, 21, 48, 51, 54, 57});

    // sum of an empty tensor is 0; of a scalar, itself
    CHECK(sum(TensorD::zeros({0})).item() == 0.0);
    CHECK(sum(TensorD::zeros({2, 0}), 1).to_vector() == std::vector<double>{0, 0});
    CHECK(sum(TensorD::scalar(4.0)).item() == 4.0);
    CHECK(mean(TensorF::from({4}, {1, 2, 3, 4})).item() == 2.5f);
}

TEST_CASE("max along an axis: values and argmax indices") {
    // x = [[3, 9, 1], [7, 2, 8]]
    const TensorD x = TensorD::from({2, 3}, {3, 9, 1, 7, 2, 8});
    const auto m0 = tapegrad::max(x, 0);
    CHECK(m0.values.shape() == Shape{3});
    CHECK(m0.values.to_vector() == std::vector<double>{7, 9, 8});
    CHECK(m0.indices == std::vector<int64_t>{1, 0, 1});
    const auto m1 = tapegrad::max(x, 1, true);
    CHECK(m1.values.shape() == Shape{2, 1});
    CHECK(m1.values.to_vector() == std::vector<double>{9, 8});
    CHECK(m1.indices == std::vector<int64_t>{1, 2});
    CHECK(tapegrad::max(x, -1).indices == m1.indices);

    // ties: the first position wins, and receives the whole gradient
    TensorD t = TensorD::from({4}, {1, 5, 5, 2});
    t.requires_grad_();
    const auto mt = tapegrad::max(t, 0);
    CHECK(mt.indices == std::vector<int64_t>{1});
    mt.values.backward();
    CHECK(t.grad().to_vector() == std::vector<double>{0, 1, 0, 0});

    // 3-D, middle axis
    const TensorD c = TensorD::from({2, 2, 2}, {1, 8, 5, 2, 0, -1, -3, 4});
    const auto mc = tapegrad::max(c, 1);
    CHECK(mc.values.to_vector() == std::vector<double>{5, 8, 0, 4});
    CHECK(mc.indices == std::vector<int64_t>{1, 0, 0, 1});
}

TEST_CASE("reductions: backward values") {
    TensorD x = TensorD::arange(6).reshape({2, 3});
    x.requires_grad_();
    sum(mean(x, 1) * TensorD::from({2}, {3, 6})).backward();  // each element gets weight / 3
    CHECK(x.grad().to_vector() == std::vector<double>{1, 1, 1, 2, 2, 2});
}

TEST_CASE("reductions: errors") {
    const TensorD x = TensorD::zeros({2, 3});
    CHECK_THROWS_WITH_AS(sum(x, 2), "sum: axis 2 out of range for a tensor of rank 2 (shape [2, 3])", IndexError);
    CHECK_THROWS_WITH_AS(mean(x, -3), "mean: axis -3 out of range for a tensor of rank 2 (shape [2, 3])",
                         IndexError);
    CHECK_THROWS_WITH_AS(tapegrad::max(x, 2), "max: axis 2 out of range for a tensor of rank 2 (shape [2, 3])",
                         IndexError);
    CHECK_THROWS_AS(sum(TensorD::scalar(1.0), 0), IndexError);
    CHECK_THROWS_WITH_AS(mean(TensorD::zeros({0})), "mean: tensor of shape [0] is empty", ValueError);
    CHECK_THROWS_WITH_AS(mean(TensorD::zeros({2, 0}), 1), "mean: axis 1 of shape [2, 0] is empty", ValueError);
    CHECK_THROWS_WITH_AS(tapegrad::max(TensorD::zeros({0, 2}), 0), "max: axis 0 of shape [0, 2] is empty",
                         ValueError);
}
