// The attention family on the GPU: the device-generic table of tests/support/attention_tables.hpp (stack,
// select, unbind, permute, layer_norm, bmm and broadcasting matmul, masked_softmax, scaled_dot_product_attention
// with every mask kind and dropout, multi_head_attention) instantiated for Cuda: each row gradchecked in double
// through the GPU and compared with the CPU in float. Plus the modules on the GPU against the CPU. Without a
// GPU every case reports that it skipped.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../support/attention_tables.hpp"
#include "gpu_support.hpp"

#include <doctest/doctest.h>

namespace {

using tapegrad::Cuda;
using namespace tapegrad::testing;

}  // namespace

TEST_CASE("CUDA tables: the attention family (stack, layer_norm, bmm, masked softmax, attention)") {
    REQUIRE_GPU();
    check_table<AttentionTable, Cuda>(14000, 3);
}

TEST_CASE("CUDA: TransformerEncoderLayer and MultiheadAttention equal the CPU's (forward and parameter gradients)") {
    REQUIRE_GPU();
    using namespace tapegrad;
    Generator g1(5), g2(5);
    nn::TransformerEncoderLayer<float> cpu(16, 4, g1, {.dim_feedforward = 32, .dropout = 0.0, .norm_first = true});
    nn::TransformerEncoderLayer<float, Cuda> gpu(16, 4, g2, {.dim_feedforward = 32, .dropout = 0.0, .norm_first = true});
    Generator g(6);
    const auto x = Tensor<float, Cpu>::uniform({7, 3, 16}, -1.f, 1.f, g);
    const auto yc = cpu.forward(x, {.is_causal = true, .lengths = {7, 5, 1}});
    const auto yd = gpu.forward(to<Cuda>(x), {.is_causal = true, .lengths = {7, 5, 1}});
    check_close("encoder forward", yc.to_vector(), yd.to_vector(), 1e-5);
    sum(yc * yc).backward();
    sum(yd * yd).backward();
    const auto pc = cpu.named_parameters();
    const auto pd = gpu.named_parameters();
    REQUIRE(pc.size() == pd.size());
    for (size_t i = 0; i < pc.size(); ++i)
        check_close("gradient of " + pc[i].first, pc[i].second.grad().to_vector(), pd[i].second.grad().to_vector(),
                    1e-4);
}
