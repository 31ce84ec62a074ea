// Tests for tapegrad/ops/transfer.hpp on the CPU: to<Cpu> of a CPU tensor is the tensor itself (no copy,
// same record), and the host-transfer primitives every backend provides (upload, download) behind
// Tensor::from, item() and to_vector(). GPU transfers are tested in tests/cuda.

#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <vector>

using tapegrad::Cpu;
using tapegrad::TensorD;

TEST_CASE("to<Cpu> of a CPU tensor returns the same tensor, record included") {
    TensorD x = TensorD::from({3}, {1, 2, 3}).requires_grad_();
    const TensorD y = x * x;
    const TensorD z = tapegrad::to<Cpu>(y);
    CHECK(z.same_as(y));
    tapegrad::sum(z).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
}

TEST_CASE("detail::copy_to_device<Cpu> copies the values into a new buffer") {
    const TensorD x = TensorD::from({2, 2}, {1, 2, 3, 4});
    const TensorD c = tapegrad::detail::copy_to_device<Cpu>(x);
    CHECK(!c.same_as(x));
    CHECK(c.data() != x.data());
    CHECK(c.to_vector() == x.to_vector());
    CHECK(c.shape() == x.shape());
}

TEST_CASE("item() and to_vector() read through the backend's download primitive") {
    CHECK(TensorD::scalar(2.5).item() == 2.5);
    CHECK(TensorD::from({2}, {1, -1}).to_vector() == std::vector<double>{1, -1});
    CHECK(TensorD::zeros({0}).to_vector().empty());
}
