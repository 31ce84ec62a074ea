// Tests for tapegrad/backend/contract.hpp: the CPU backend meets every family (the CPU backend's own
// static_assert says so too), each family file of backend/cpu/ meets its own concept and no other, and a
// backend missing one primitive, or with one of the wrong parameters, is not a Backend.

#include <tapegrad/backend/contract.hpp>
#include <tapegrad/backend/cpu.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <type_traits>

namespace {

namespace backend = tapegrad::backend;

/// A device whose Ops lack gemm: every family but BLAS.
struct NoGemm {
    static constexpr const char* name = "no_gemm";
};
/// A device whose gemm takes float only.
struct FloatGemm {
    static constexpr const char* name = "float_gemm";
};

struct FloatOnlyBlas {
    static void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float, float*) {}
    static void pack_right(int64_t, int64_t, const float*, float*) {}
    static void gemm_packed(int64_t, int64_t, int64_t, float, const float*, const float*, float, float*) {}
};

}  // namespace

template <>
struct tapegrad::backend::Ops<NoGemm> : CpuMemory,
                                        CpuElementwise,
                                        CpuReduce,
                                        CpuSoftmaxLoss,
                                        CpuConvPool,
                                        CpuNorm,
                                        CpuOptim,
                                        CpuRandomData,
                                        CpuAttention {};
template <>
struct tapegrad::backend::Ops<FloatGemm> : CpuMemory,
                                           CpuElementwise,
                                           CpuReduce,
                                           FloatOnlyBlas,
                                           CpuSoftmaxLoss,
                                           CpuConvPool,
                                           CpuNorm,
                                           CpuOptim,
                                           CpuRandomData,
                                           CpuAttention {};

TEST_CASE("the CPU backend meets the contract, one family per file") {
    static_assert(backend::Backend<tapegrad::Cpu>);
    static_assert(backend::MemoryFamily<backend::CpuMemory> && !backend::ElementwiseFamily<backend::CpuMemory>);
    static_assert(backend::ElementwiseFamily<backend::CpuElementwise> && !backend::MemoryFamily<backend::CpuElementwise>);
    static_assert(backend::ReductionFamily<backend::CpuReduce> && !backend::BlasFamily<backend::CpuReduce>);
    static_assert(backend::BlasFamily<backend::CpuBlas> && !backend::ReductionFamily<backend::CpuBlas>);
    static_assert(backend::SoftmaxLossFamily<backend::CpuSoftmaxLoss> && !backend::NormFamily<backend::CpuSoftmaxLoss>);
    static_assert(backend::ConvPoolFamily<backend::CpuConvPool> && !backend::NormFamily<backend::CpuConvPool>);
    static_assert(backend::NormFamily<backend::CpuNorm> && !backend::ConvPoolFamily<backend::CpuNorm>);
    static_assert(backend::OptimFamily<backend::CpuOptim> && !backend::RandomDataFamily<backend::CpuOptim>);
    static_assert(backend::RandomDataFamily<backend::CpuRandomData> && !backend::OptimFamily<backend::CpuRandomData>);
    static_assert(backend::AttentionFamily<backend::CpuAttention> && !backend::BlasFamily<backend::CpuAttention>);
    // the index family also needs memory for the integer and mask types, which CpuMemory provides
    static_assert(backend::IndexFamily<backend::Ops<tapegrad::Cpu>> && !backend::IndexFamily<backend::CpuIndex> &&
                  backend::contract::IndexGradOf<backend::CpuIndex, double>);
    CHECK(backend::Backend<tapegrad::Cpu>);
}

TEST_CASE("a backend missing a primitive, or with one for float only, is not a Backend") {
    CHECK_FALSE(backend::Backend<NoGemm>);
    CHECK_FALSE(backend::BlasFamily<backend::Ops<NoGemm>>);
    CHECK(backend::MemoryFamily<backend::Ops<NoGemm>>);
    CHECK_FALSE(backend::Backend<FloatGemm>);
    CHECK(backend::contract::BlasOf<backend::Ops<FloatGemm>, float>);
    CHECK_FALSE(backend::contract::BlasOf<backend::Ops<FloatGemm>, double>);
}
