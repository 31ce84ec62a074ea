// Every op, layer function, loss and layer on the GPU: the device-generic tables of tests/support/op_tables.hpp
// instantiated for Cuda. Each case is gradchecked in double through the GPU (x -> to<Cpu>(f(to<Cuda>(x)))) and
// compared with the CPU in float, forward and every input's gradient, within 1e-6 k + 1e-5 |cpu| (k the
// longest sum the op forms); see tests/support/device_ops.hpp. The CPU runs the same tables in the op's own
// test file. Without a GPU, every test case reports that it skipped (MESSAGE) and passes.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../support/op_tables.hpp"
#include "gpu_support.hpp"

#include <doctest/doctest.h>

namespace {

using tapegrad::Cuda;
using namespace tapegrad::testing;

/// Draws per case on the GPU: fewer than the CPU's, since each gradcheck element launches kernels.
constexpr int kGpuDraws = 3;

}  // namespace

TEST_CASE("CUDA tables: elementwise ops") {
    REQUIRE_GPU();
    check_table<ElementwiseTable, Cuda>(1000, kGpuDraws);
}

TEST_CASE("CUDA tables: activation functions, prelu and maxout") {
    REQUIRE_GPU();
    check_table<ActivationTable, Cuda>(6000, kGpuDraws);
}

TEST_CASE("CUDA tables: reductions") {
    REQUIRE_GPU();
    check_table<ReduceTable, Cuda>(3000, kGpuDraws);
}

TEST_CASE("CUDA tables: shape ops") {
    REQUIRE_GPU();
    check_table<ShapeTable, Cuda>(4000, kGpuDraws);
}

TEST_CASE("CUDA tables: softmax and log_softmax") {
    REQUIRE_GPU();
    check_table<SoftmaxTable, Cuda>(5000, kGpuDraws);
}

TEST_CASE("CUDA tables: matmul and linear (cuBLAS, TF32 off)") {
    REQUIRE_GPU();
    check_table<LinalgTable, Cuda>(2000, kGpuDraws);
}

TEST_CASE("CUDA tables: losses with every reduction") {
    REQUIRE_GPU();
    check_table<LossTable, Cuda>(2100, kGpuDraws);
}

TEST_CASE("CUDA tables: conv2d and pooling") {
    REQUIRE_GPU();
    check_table<ConvPoolTable, Cuda>(7000, 1);
}

TEST_CASE("CUDA tables: batch_norm and dropout") {
    REQUIRE_GPU();
    check_table<LayerFunctionTable, Cuda>(8000, 2);
}

TEST_CASE("CUDA tables: layers (Linear, Conv2d, BatchNorm, Dropout, activation modules)") {
    REQUIRE_GPU();
    check_table<LayerTable, Cuda>(9000, 1);
}
