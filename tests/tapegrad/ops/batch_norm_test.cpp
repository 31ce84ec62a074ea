// Tests for tapegrad/ops/batch_norm.hpp and ops/dropout.hpp, the layer functions with state or randomness:
// batch_norm in training and eval, with and without affine parameters, and dropout from a fixed seed pass
// gradcheck through the device-generic table (tests/support/op_tables.hpp), here on the CPU. The layers'
// behaviour (running statistics, modes, masks, state_dict names) is tested in nn/batchnorm_test.cpp and
// nn/dropout_test.cpp.

#include <tapegrad/ops/batch_norm.hpp>
#include <tapegrad/ops/dropout.hpp>

#include "../../support/op_tables.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("batch_norm and dropout pass gradcheck (the device-generic table, on the CPU)") {
    tapegrad::testing::check_table<tapegrad::testing::LayerFunctionTable, tapegrad::Cpu>(8000, 4);
}

TEST_CASE("batch_norm: absent weight and bias are not inputs of the recorded op") {
    using tapegrad::TensorD;
    TensorD x = TensorD::from({2, 1}, {1.0, 3.0}).requires_grad_();
    const TensorD y = tapegrad::batch_norm(x, {}, {}, {}, {}, true);
    REQUIRE(y.grad_fn_name() != nullptr);
    CHECK(std::string(y.grad_fn_name()) == "batch_norm");
    CHECK(y.impl()->grad_fn->num_edges() == 1);
    TensorD w = TensorD::ones({1}).requires_grad_();
    CHECK(tapegrad::batch_norm(x, {}, {}, w, {}, true).impl()->grad_fn->num_edges() == 2);
    CHECK(tapegrad::batch_norm(x.detach(), {}, {}, {}, TensorD::zeros({1}).requires_grad_(), true)
              .impl()->grad_fn->num_edges() == 1);
}
