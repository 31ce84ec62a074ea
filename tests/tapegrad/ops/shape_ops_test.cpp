// Tests for include/tapegrad/ops/shape.hpp (named shape_ops_test so its object file does not clash with
// core/shape_test's).
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../../support/op_tables.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("shape ops: every op passes gradcheck on random shapes (the device-generic table, on the CPU)") {
    check_table<ShapeTable, Cpu>(4000);
}

TEST_CASE("reshape: values are unchanged, -1 is inferred, the gradient is reshaped back") {
    TensorD x = TensorD::arange(6);
    const TensorD r = x.reshape({3, -1});
    CHECK(r.shape() == Shape{3, 2});
    CHECK(r(2, 1) == 5.0);
    CHECK(reshape(x, {-1, 3}).shape() == Shape{2, 3});
    CHECK(reshape(TensorD::zeros({0, 3}), {-1}).shape() == Shape{0});
    x.requires_grad_();
    sum(x.reshape({2, 3}) * TensorD::from({3}, {1, 2, 3})).backward();
    CHECK(x.grad().shape() == Shape{6});
    CHECK(x.grad().to_vector() == std::vector<double>{1, 2, 3, 1, 2, 3});
    CHECK(std::string(x.reshape({2, 3}).grad_fn_name()) == "reshape");
}

TEST_CASE("reshape and flatten: errors") {
    const TensorD x = TensorD::zeros({2, 3});
    CHECK_THROWS_WITH_AS((void)x.reshape({4, 2}),
                         "reshape: cannot reshape tensor of shape [2, 3] (6 elements) into [4, 2] (8 elements)",
                         ShapeError);
    CHECK_THROWS_WITH_AS((void)x.reshape({4, -1}),
                         "reshape: cannot reshape tensor of shape [2, 3] (6 elements) into [4, -1]", ShapeError);
    CHECK_THROWS_WITH_AS((void)x.reshape({-1, -1}), "reshape: more than one -1 in [-1, -1]", ShapeError);
    CHECK_THROWS_AS((void)x.reshape({0, -1}), ShapeError);
    CHECK_THROWS_WITH_AS(flatten(x, 2), "flatten: axis 2 out of range for a tensor of rank 2 (shape [2, 3])",
                         IndexError);
    CHECK_THROWS_WITH_AS(flatten(x, 1, 0), "flatten: start axis 1 comes after end axis 0 for shape [2, 3]", IndexError);
}

TEST_CASE("transpose: values for 2-D and 3-D, any axis pair") {
    const TensorD m = TensorD::arange(6).reshape({2, 3});
    const TensorD mt = m.t();
    CHECK(mt.shape() == Shape{3, 2});
    CHECK(mt.to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
    CHECK(mt.data_ptr() != m.data_ptr());  // a copy in the new layout
    CHECK(transpose(m, 1, 0).to_vector() == mt.to_vector());
    CHECK(transpose(m, 0, 0).to_vector() == m.to_vector());

    const TensorD c = TensorD::arange(24).reshape({2, 3, 4});
    const TensorD c02 = transpose(c, 0, 2);
    CHECK(c02.shape() == Shape{4, 3, 2});
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 4; ++k) CHECK(c02(k, j, i) == c(i, j, k));
    CHECK(transpose(c, -1, -2).shape() == Shape{2, 4, 3});
    CHECK(transpose(c, -1, -2)(1, 3, 2) == c(1, 2, 3));

    CHECK_THROWS_WITH_AS(transpose(c, 0, 3), "transpose: axis 3 out of range for a tensor of rank 3 (shape [2, 3, 4])",
                         IndexError);
    CHECK_THROWS_WITH_AS((void)c.t(), "t: needs a 2-D tensor, got shape [2, 3, 4]", ShapeError);
}

TEST_CASE("concat: values along each axis, and errors") {
    const TensorD a = TensorD::from({2, 2}, {1, 2, 3, 4});
    const TensorD b = TensorD::from({2, 1}, {5, 6});
    const TensorD ab = concat({a, b}, 1);
    CHECK(ab.shape() == Shape{2, 3});
    CHECK(ab.to_vector() == std::vector<double>{1, 2, 5, 3, 4, 6});
    CHECK(concat({a, b}, -1).to_vector() == ab.to_vector());
    const TensorD aa = concat(std::vector<TensorD>{a, a, a}, 0);
    CHECK(aa.shape() == Shape{6, 2});
    CHECK(aa(4, 1) == 2.0);
    CHECK(concat({a}, 0).to_vector() == a.to_vector());
    CHECK(concat({TensorD::zeros({0, 2}), a}, 0).to_vector() == a.to_vector());

    // the gradient hands each input its block
    TensorD p = TensorD::ones({1, 2});
    TensorD q = TensorD::ones({2, 2});
    p.requires_grad_();
    q.requires_grad_();
    sum(concat({p, q}, 0) * TensorD::from({3, 1}, {1, 2, 3})).backward();
    CHECK(p.grad().to_vector() == std::vector<double>{1, 1});
    CHECK(q.grad().to_vector() == std::vector<double>{2, 2, 3, 3});

    CHECK_THROWS_WITH_AS(
        concat({a, TensorD::zeros({3, 1})}, 1),
        "concat: tensor 1 has shape [3, 1], which does not match tensor 0's shape [2, 2] outside axis 1", ShapeError);
    CHECK_THROWS_WITH_AS(concat({a, TensorD::zeros({2, 2, 1})}, 0),
                         doctest::Contains("concat: tensor 1 has shape [2, 2, 1]"), ShapeError);
    CHECK_THROWS_WITH_AS(concat({a, b}, 2), "concat: axis 2 out of range for a tensor of rank 2 (shape [2, 2])",
                         IndexError);
    CHECK_THROWS_WITH_AS(concat(std::vector<TensorD>{}, 0), "concat: no tensors given", ValueError);
}

TEST_CASE("slice: values with positive and negative bounds, and errors") {
    const TensorD x = TensorD::arange(12).reshape({3, 4});
    const TensorD s = slice(x, 1, 1, 3);
    CHECK(s.shape() == Shape{3, 2});
    CHECK(s.to_vector() == std::vector<double>{1, 2, 5, 6, 9, 10});
    CHECK(slice(x, 0, -1, 3).to_vector() == std::vector<double>{8, 9, 10, 11});
    CHECK(slice(x, -1, 0, -2).to_vector() == std::vector<double>{0, 1, 4, 5, 8, 9});
    CHECK(slice(x, 0, 1, 1).shape() == Shape{0, 4});
    CHECK(slice(x, 0, 0, 3).to_vector() == x.to_vector());

    TensorD y = TensorD::arange(5);
    y.requires_grad_();
    sum(slice(y, 0, 1, 4) * 2.0).backward();
    CHECK(y.grad().to_vector() == std::vector<double>{0, 2, 2, 2, 0});

    CHECK_THROWS_WITH_AS(slice(x, 1, 0, 5), "slice: range [0, 5) is out of bounds for axis 1 of size 4 (shape [3, 4])",
                         IndexError);
    CHECK_THROWS_WITH_AS(slice(x, 0, 2, 1), "slice: range [2, 1) is out of bounds for axis 0 of size 3 (shape [3, 4])",
                         IndexError);
    CHECK_THROWS_AS(slice(x, 0, -4, 2), IndexError);
    CHECK_THROWS_WITH_AS(slice(x, 2, 0, 1), "slice: axis 2 out of range for a tensor of rank 2 (shape [3, 4])",
                         IndexError);
}

TEST_CASE("clone: a deep copy that stays in the graph") {
    TensorD x = TensorD::from({2}, {1, 2});
    x.requires_grad_();
    TensorD c = clone(x);
    CHECK(c.data_ptr() != x.data_ptr());
    CHECK(c.to_vector() == x.to_vector());
    CHECK(std::string(c.grad_fn_name()) == "clone");
    sum(c * 3.0).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{3, 3});
}
