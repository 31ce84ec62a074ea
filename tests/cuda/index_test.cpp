// Integer tensors and the index ops on the GPU: the device-generic IndexTable (tests/support/index_tables.hpp)
// instantiated for Cuda (gradchecked in double through the GPU, compared with the CPU in float), plus the
// integer ops compared with the CPU exactly, the index errors, and the determinism of embedding's backward
// (the same bits as the CPU's, every run). Without a GPU, every test case reports that it skipped and passes.

#include <tapegrad/backend/cuda.hpp>
#include <tapegrad/tapegrad.hpp>

#include "../support/index_tables.hpp"
#include "gpu_support.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using namespace tapegrad;
using tapegrad::Cuda;
using namespace tapegrad::testing;

}  // namespace

TEST_CASE("CUDA tables: embedding, index_select, gather, where, masked_fill") {
    REQUIRE_GPU();
    check_table<IndexTable, Cuda>(14000, 3);
}

TEST_CASE("CUDA integer tensors: creation, shape ops, comparisons, argmax/argmin and cast equal the CPU's") {
    REQUIRE_GPU();
    const TensorL a = TensorL::from({2, 3}, {4, 1, 7, 0, 2, 2});
    const auto ad = Tensor<int64_t, Cuda>::from({2, 3}, a.to_vector());
    CHECK(Tensor<int64_t, Cuda>::full({3}, 5).to_vector() == std::vector<int64_t>{5, 5, 5});
    CHECK(Tensor<int32_t, Cuda>::zeros({2}).to_vector() == std::vector<int32_t>{0, 0});
    CHECK(ad.reshape({3, 2}).to_vector() == a.to_vector());
    CHECK(transpose(ad, 0, 1).to_vector() == transpose(a, 0, 1).to_vector());
    CHECK(slice(ad, 1, 1, 3).to_vector() == slice(a, 1, 1, 3).to_vector());
    CHECK(ad.clone().to_vector() == a.to_vector());
    Generator g(1);
    const TensorF x = TensorF::uniform({4, 5, 3}, -1.f, 1.f, g);
    const auto xd = to<Cuda>(x);
    for (int axis = 0; axis < 3; ++axis) {
        CHECK(argmax(xd, axis).to_vector() == argmax(x, axis).to_vector());
        CHECK(argmin(xd, axis, true).to_vector() == argmin(x, axis, true).to_vector());
    }
    const TensorF t = TensorF::uniform({5, 1}, -1.f, 1.f, g);
    CHECK(gt(xd, to<Cuda>(t)).to_vector() == gt(x, t).to_vector());
    CHECK(le(xd, 0.25f).to_vector() == le(x, 0.25f).to_vector());
    CHECK(eq(ad, int64_t{2}).to_vector() == eq(a, int64_t{2}).to_vector());
    CHECK(cast<int64_t>(xd * 4.f).to_vector() == cast<int64_t>(x * 4.f).to_vector());
    CHECK(cast<double>(ad).to_vector() == cast<double>(a).to_vector());
    CHECK(cast<float>(gt(xd, 0.f)).to_vector() == cast<float>(gt(x, 0.f)).to_vector());
}

TEST_CASE("CUDA index ops: out-of-range indices throw the CPU's message") {
    REQUIRE_GPU();
    const auto w = Tensor<float, Cuda>::zeros({64, 8});
    std::vector<int64_t> v(20, 5);
    v[13] = 70;
    CHECK_THROWS_WITH_AS(embedding(w, Tensor<int64_t, Cuda>::from({4, 5}, v)),
                         "embedding: id 70 out of range [0, 64) at position 13", IndexError);
    CHECK_THROWS_WITH_AS(index_select(w, 1, Tensor<int64_t, Cuda>::from({2}, {1, 8})),
                         "index_select: index 8 out of range [0, 8) at position 1", IndexError);
    CHECK_THROWS_WITH_AS(gather(w, 0, Tensor<int64_t, Cuda>::from({1, 2}, {3, -2})),
                         "gather: index -2 out of range [0, 64) at position 1", IndexError);
}

TEST_CASE("CUDA embedding: the backward gives the CPU's bits, every run, with many repeats and padding") {
    REQUIRE_GPU();
    Generator g(3);
    const TensorF w0 = TensorF::uniform({50, 33}, -1.f, 1.f, g);
    std::vector<int64_t> v(4000);
    for (auto& e : v) e = static_cast<int64_t>(g.below(50));
    const TensorL ids = TensorL::from({80, 50}, v);
    const TensorF r = TensorF::uniform({80, 50, 33}, -1.f, 1.f, g);
    TensorF wc = w0.clone().detach().requires_grad_();
    sum(embedding(wc, ids, 7) * r).backward();
    const std::vector<float> cpu = wc.grad().to_vector();
    for (int run = 0; run < 3; ++run) {
        auto wd = to<Cuda>(w0).requires_grad_();
        sum(embedding(wd, to<Cuda>(ids), 7) * to<Cuda>(r)).backward();
        const std::vector<float> gpu = wd.grad().to_vector();
        REQUIRE(gpu.size() == cpu.size());
        CHECK(std::memcmp(gpu.data(), cpu.data(), cpu.size() * sizeof(float)) == 0);
    }
    nn::Embedding<float, Cuda> emb(10, 4, {.padding_idx = 0});
    const auto y = emb(Tensor<int64_t, Cuda>::from({3}, {0, 9, 0}));
    CHECK(y.shape() == Shape{3, 4});
    CHECK(y.to_vector()[0] == 0.f);
}
