// The recurrent ops and modules on the GPU: the device-generic table of tests/support/rnn_tables.hpp (every
// mode, both directions, lengths, the cells, whole modules) gradchecked in double through the GPU and compared
// with the CPU in float; and an LSTM training step on the GPU against the same step on the CPU. Without a
// GPU every case reports that it skipped and passes.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../support/rnn_tables.hpp"
#include "gpu_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace tapegrad;
using namespace tapegrad::testing;

TEST_CASE("CUDA tables: rnn_layer, the cells and the recurrent modules") {
    REQUIRE_GPU();
    check_table<RnnTable, Cuda>(14000, 2);
}

TEST_CASE("CUDA: an LSTM with lengths trains as on the CPU (output, states, gradients)") {
    REQUIRE_GPU();
    Generator g1(21), g2(21);
    nn::LSTM<float> cpu(5, 8, g1, {.num_layers = 2, .batch_first = true, .bidirectional = true});
    nn::LSTM<float, Cuda> gpu(5, 8, g2, {.num_layers = 2, .batch_first = true, .bidirectional = true});
    const auto pc = cpu.parameters();
    auto pg = gpu.parameters();
    for (size_t i = 0; i < pc.size(); ++i) {
        NoGradGuard ng;
        pg[i].copy_(to<Cuda>(pc[i]));
    }
    Generator gx(3);
    const TensorF x = TensorF::uniform({4, 6, 5}, -1.f, 1.f, gx);
    const auto rc = cpu.forward(x, {}, SequenceLengths<Cpu>{6, 3, 1, 5});
    const auto rg = gpu.forward(to<Cuda>(x), {}, SequenceLengths<Cuda>{6, 3, 1, 5});
    check_close("output", rc.output.to_vector(), rg.output.to_vector(), 1e-5);
    check_close("h_n", rc.h_n.to_vector(), rg.h_n.to_vector(), 1e-5);
    check_close("c_n", rc.c_n.to_vector(), rg.c_n.to_vector(), 1e-5);
    (sum(rc.output * rc.output) + sum(rc.c_n)).backward();
    (sum(rg.output * rg.output) + sum(rg.c_n)).backward();
    for (size_t i = 0; i < pc.size(); ++i)
        check_close("gradient of parameter " + std::to_string(i), pc[i].grad().to_vector(), pg[i].grad().to_vector(),
                    1e-4);
}
