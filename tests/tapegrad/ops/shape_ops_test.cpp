// Tests for include/tapegrad/ops/shape.hpp (named shape_ops_test so its object file does not clash with
// core/shape_test's).
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../test_support.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

namespace {

/// Integer parameters (axes, bounds, targets) travel as extra constant inputs so that each table row is
/// self-contained; the data inputs are marked requires_grad, which makes gradcheck check only them.
TensorD checked(TensorD x) {
    x.requires_grad_();
    return x;
}

int random_axis(Generator& g, int rank) {
    return static_cast<int>(g.below(static_cast<uint64_t>(2 * rank))) - rank;  // [-rank, rank)
}

/// A random reshape target of x's element count, rank 1..4, with a -1 in it half the time.
Shape reshape_target(Generator& g, int64_t numel) {
    Shape s;
    int64_t left = numel;
    const int rank = 1 + static_cast<int>(g.below(4));
    for (int i = 0; i + 1 < rank; ++i) {
        std::vector<int64_t> divisors;
        for (int64_t d = 1; d <= left; ++d)
            if (left % d == 0) divisors.push_back(d);
        const int64_t d = divisors[static_cast<size_t>(g.below(divisors.size()))];
        s.push_back(d);
        left /= d;
    }
    s.push_back(left);
    if (g.below(2)) s[static_cast<int>(g.below(static_cast<uint64_t>(s.rank())))] = -1;
    return s;
}

/// 2 or 3 tensors that agree outside one random axis, with that axis' size varying; the axis goes last.
Inputs concat_inputs(Generator& g) {
    const Shape base = random_shape(g);
    const int axis = static_cast<int>(g.below(static_cast<uint64_t>(base.rank())));
    const int n = 2 + static_cast<int>(g.below(2));
    Inputs xs;
    for (int i = 0; i < n; ++i)
        xs.push_back(checked(random_tensor(base.with(axis, 1 + static_cast<int64_t>(g.below(3))), g)));
    xs.push_back(TensorD::scalar(static_cast<double>(axis)));  // carries the axis; constant for gradcheck
    return xs;
}

TensorD concat_of(const Inputs& x) {
    const std::vector<TensorD> parts(x.begin(), x.end() - 1);
    return concat(parts, static_cast<int>(x.back().item()));
}

const std::vector<OpCase>& shape_ops() {
    static const std::vector<OpCase> table = {
        {"reshape",
         [](Generator& g) {
             const TensorD x = checked(random_tensor(random_shape(g), g));
             const Shape to = reshape_target(g, x.numel());
             return Inputs{x, TensorD::from({to.rank()}, std::vector<double>(to.begin(), to.end()))};
         },
         [](const Inputs& x) {
             Shape to;
             for (double d : x[1].span()) to.push_back(static_cast<int64_t>(d));
             return x[0].reshape(to) * 1.5;  // scaled so that a pass-through bug cannot look right
         }},
        {"flatten", one_input(), [](const Inputs& x) { return x[0].flatten(); }},
        {"flatten(1, -1)",
         [](Generator& g) { return Inputs{random_tensor(random_shape(g, 2, 4), g)}; },
         [](const Inputs& x) { return flatten(x[0], 1) * 1.5; }},
        {"flatten(0, -2)",
         [](Generator& g) { return Inputs{random_tensor(random_shape(g, 2, 4), g)}; },
         [](const Inputs& x) { return flatten(x[0], 0, -2) * -2.0; }},
        {"transpose",
         [](Generator& g) {
             const TensorD x = checked(random_tensor(random_shape(g), g));
             const int r = x.dim();
             return Inputs{x, TensorD::from({2}, {double(random_axis(g, r)), double(random_axis(g, r))})};
         },
         [](const Inputs& x) { return transpose(x[0], int(x[1](0)), int(x[1](1))); }},
        {"t", [](Generator& g) { return Inputs{random_tensor(random_shape(g, 2, 2), g)}; },
         [](const Inputs& x) { return x[0].t(); }},
        {"concat", concat_inputs, concat_of},
        {"concat of one tensor with itself",
         one_input(), [](const Inputs& x) { return concat({x[0], x[0] * 2.0}, -1); }},
        {"slice",
         [](Generator& g) {
             const TensorD x = checked(random_tensor(random_shape(g), g));
             const int axis = random_axis(g, x.dim());
             const int64_t n = x.size(axis);
             int64_t start = static_cast<int64_t>(g.below(static_cast<uint64_t>(n)));
             int64_t end = start + 1 + static_cast<int64_t>(g.below(static_cast<uint64_t>(n - start)));
             if (g.below(2)) start -= n;  // negative start, counted from the end
             if (g.below(3) == 0 && end < n) end -= n;
             return Inputs{x, TensorD::from({3}, {double(axis), double(start), double(end)})};
         },
         [](const Inputs& x) {
             return slice(x[0], int(x[1](0)), int64_t(x[1](1)), int64_t(x[1](2)));
         }},
        {"clone", one_input(), [](const Inputs& x) { return clone(x[0]) * x[0]; }},
    };
    return table;
}

}  // namespace

TEST_CASE("shape ops: every op passes gradcheck on random shapes") { gradcheck_table(shape_ops(), 4000); }

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
