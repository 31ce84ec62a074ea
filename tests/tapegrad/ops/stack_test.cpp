// Tests for include/tapegrad/ops/stack.hpp: stack, select, unbind, permute (values, gradients, errors; the
// gradchecks on random shapes are rows of tests/support/attention_tables.hpp, run in ops/attention_test).
#include <tapegrad/ops/stack.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <vector>

using namespace tapegrad;

TEST_CASE("stack: a new axis at the front, middle and end") {
    const TensorD a = TensorD::from({2, 2}, {1, 2, 3, 4});
    const TensorD b = TensorD::from({2, 2}, {5, 6, 7, 8});
    const TensorD s0 = stack({a, b}, 0);
    CHECK(s0.shape() == Shape{2, 2, 2});
    CHECK(s0.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8});
    const TensorD s1 = stack({a, b}, 1);
    CHECK(s1.shape() == Shape{2, 2, 2});
    CHECK(s1.to_vector() == std::vector<double>{1, 2, 5, 6, 3, 4, 7, 8});
    const TensorD s2 = stack(std::vector<TensorD>{a, b, a}, -1);
    CHECK(s2.shape() == Shape{2, 2, 3});
    CHECK(s2.to_vector() == std::vector<double>{1, 5, 1, 2, 6, 2, 3, 7, 3, 4, 8, 4});
}

TEST_CASE("stack: each input gets its own slice of the gradient; errors") {
    TensorD a = TensorD::zeros({3}).requires_grad_();
    TensorD b = TensorD::zeros({3}).requires_grad_();
    sum(stack({a, b, a}, 1) * TensorD::from({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{1 + 3, 4 + 6, 7 + 9});
    CHECK(b.grad().to_vector() == std::vector<double>{2, 5, 8});
    CHECK_THROWS_WITH_AS(stack({a, TensorD::zeros({2})}), "stack: tensor 1 has shape [2], tensor 0 has shape [3] (stack needs equal shapes)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(stack({a, b}, 2), "stack: axis 2 out of range for tensors of rank 1 (shape [3]; valid: [-2, 1])",
                         IndexError);
    CHECK_THROWS_WITH_AS(stack(std::vector<TensorD>{}), "stack: no tensors given", ValueError);
}

TEST_CASE("select and unbind: values, negative indices, gradients, errors") {
    TensorD x = TensorD::arange(24).reshape({2, 3, 4}).detach().requires_grad_();
    const TensorD s = select(x, 1, -1);
    CHECK(s.shape() == Shape{2, 4});
    CHECK(s.to_vector() == std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23});
    CHECK(select(x, 2, 1).to_vector() == std::vector<double>{1, 5, 9, 13, 17, 21});
    sum(select(x, 0, 1)).backward();
    const auto gx = x.grad().to_vector();
    for (size_t i = 0; i < gx.size(); ++i) CHECK(gx[i] == (i >= 12 ? 1.0 : 0.0));
    const auto parts = unbind(x, 1);
    REQUIRE(parts.size() == 3);
    CHECK(parts[2].to_vector() == s.to_vector());
    CHECK(stack(parts, 1).to_vector() == x.to_vector());  // unbind is stack's inverse
    CHECK_THROWS_WITH_AS(select(x, 1, 3), "select: index 3 is out of range for axis 1 of size 3 (shape [2, 3, 4])",
                         IndexError);
    CHECK_THROWS_AS(select(x, 3, 0), IndexError);
    CHECK(unbind(TensorD::zeros({0, 2})).empty());
}

TEST_CASE("permute: values against transposes, the gradient permuted back, errors") {
    TensorD x = TensorD::arange(24).reshape({2, 3, 4}).detach().requires_grad_();
    const TensorD p = permute(x, {2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 4; ++k) CHECK(p(k, i, j) == x(i, j, k));
    CHECK(permute(x, {0, -1, 1}).to_vector() == transpose(x, 1, 2).to_vector());
    sum(permute(x, {1, 2, 0}) * permute(TensorD::arange(24).reshape({2, 3, 4}), {1, 2, 0})).backward();
    CHECK(x.grad().to_vector() == TensorD::arange(24).to_vector());
    CHECK_THROWS_WITH_AS(permute(x, {0, 1}), "permute: 2 axes given for a tensor of rank 3 (shape [2, 3, 4])", ShapeError);
    CHECK_THROWS_WITH_AS(permute(x, {0, 1, 1}), "permute: axis 1 appears twice (shape [2, 3, 4])", ValueError);
}
