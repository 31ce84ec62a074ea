// Tests for tapegrad/backend/cpu_threads.hpp: set_num_threads / get_num_threads, the per-product thread
// rule, the choice of OpenBLAS kernels (as a table, and on this machine's OpenBLAS by simulating the trap:
// switching it to its generic Prescott kernels, then letting tapegrad's check choose again), and the
// products of whichever path was chosen against a double-precision reference.

#include <tapegrad/backend/cpu_threads.hpp>
#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

namespace detail = tapegrad::detail;
using Ops = tapegrad::backend::Ops<tapegrad::Cpu>;

/// The largest |C - C_ref| / (sum_k |a_ik b_kj|) over the elements of C = op(A) op(B) for random A and B,
/// with C_ref computed in double. Products of every transpose combination, and sizes both below and above
/// the size at which products use threads.
double worst_product_error(int64_t M, int64_t N, int64_t K, bool ta, bool tb) {
    tapegrad::Generator gen(7);
    std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N)), C(static_cast<size_t>(M * N));
    for (float& v : A) v = gen.uniform01<float>() * 2.f - 1.f;
    for (float& v : B) v = gen.uniform01<float>() * 2.f - 1.f;
    Ops::gemm(ta, tb, M, N, K, 1.f, A.data(), B.data(), 0.f, C.data());
    // op(A)[i, k] and op(B)[k, j] in the stored row-major layouts ([K, M] when ta, [N, K] when tb).
    const auto a = [&](int64_t i, int64_t k) { return static_cast<double>(ta ? A[k * M + i] : A[i * K + k]); };
    const auto b = [&](int64_t k, int64_t j) { return static_cast<double>(tb ? B[j * K + k] : B[k * N + j]); };
    double worst = 0;
    for (int64_t i = 0; i < M; i += std::max<int64_t>(1, M / 37))
        for (int64_t j = 0; j < N; j += std::max<int64_t>(1, N / 41)) {
            double ref = 0, scale = 0;
            for (int64_t k = 0; k < K; ++k) {
                ref += a(i, k) * b(k, j);
                scale += std::abs(a(i, k) * b(k, j));
            }
            worst = std::max(worst, std::abs(static_cast<double>(C[i * N + j]) - ref) / scale);
        }
    return worst;
}

/// Every product shape of the tests: a float product's rounding error is at most about K eps relative to
/// sum |a b|; blocked kernels give far less. 1e-5 is ~ 100 eps: a wrong kernel is off by O(1).
void check_products() {
    for (const bool ta : {false, true})
        for (const bool tb : {false, true}) {
            CAPTURE(ta);
            CAPTURE(tb);
            CHECK(worst_product_error(37, 29, 53, ta, tb) < 1e-5);     // one thread
            CHECK(worst_product_error(512, 32, 32, ta, tb) < 1e-5);    // the sin-fit MLP's largest
            CHECK(worst_product_error(257, 300, 301, ta, tb) < 1e-5);  // threaded where threads exist
        }
    CHECK(worst_product_error(1, 1000, 1000, false, false) < 1e-5);  // a matrix-vector product (gemv)
}

}  // namespace

TEST_CASE("set_num_threads / get_num_threads: a count is kept until 0 restores the default; bad counts throw") {
    const int before = tapegrad::get_num_threads();
    tapegrad::set_num_threads(1);
    CHECK(tapegrad::get_num_threads() == 1);
    if (detail::products_can_thread()) {
        tapegrad::set_num_threads(3);
        CHECK(tapegrad::get_num_threads() == 3);
        if (detail::omp_api().present()) CHECK(detail::omp_api().get_max_threads() == 3);  // the calling thread's
        if (detail::openblas_api().present()) CHECK(detail::openblas_api().get_num_threads() == 3);
        CHECK(tapegrad::blas_info().find("up to 3 (set_num_threads)") != std::string::npos);
    }
    tapegrad::set_num_threads(0);
    CHECK(tapegrad::get_num_threads() == before);
    CHECK_THROWS_AS(tapegrad::set_num_threads(-1), tapegrad::ValueError);
    CHECK_THROWS_WITH(tapegrad::set_num_threads(5000),
                      doctest::Contains("set_num_threads: thread count 5000 is out of range"));
    CHECK(tapegrad::get_num_threads() == before);
}

TEST_CASE("product_threads: one thread below 8M multiply-adds, one per 4M above, at most the count set") {
    tapegrad::set_num_threads(64);
    CHECK(detail::product_threads(512, 32, 32) == 1);  // the sin-fit MLP's largest product
    CHECK(detail::product_threads(128, 128, 128) == 1);
    CHECK(detail::product_threads(1, 4096, 2047) == 1);
    CHECK(detail::product_threads(256, 256, 128) == 2);
    CHECK(detail::product_threads(128, 512, 784) == 12);  // mlp_l's first layer: 51M
    CHECK(detail::product_threads(0, 1 << 20, 1 << 20) == 1);
    CHECK(detail::product_threads(1024, 1024, 1024) == 64);
    tapegrad::set_num_threads(2);
    CHECK(detail::product_threads(1024, 1024, 1024) == 2);
    tapegrad::set_num_threads(0);
    CHECK(detail::product_threads(1024, 1024, 1024) >= 1);
    CHECK(detail::product_threads(1024, 1024, 1024) <= detail::usable_cores());
}

TEST_CASE("ProductThreads: sets the thread count for one product and restores it") {
    const detail::OmpApi& omp = detail::omp_api();
    const detail::OpenBlasApi& ob = detail::openblas_api();
    const bool pthread_blas = ob.present() && ob.get_parallel && ob.get_parallel() == 1;
    if (!omp.present() && !pthread_blas) {
        MESSAGE("no OpenMP runtime and no pthread OpenBLAS in this program: nothing to set");
        return;
    }
    // The count that each pool reads: OpenMP's for the calling thread, or the pthread OpenBLAS's own.
    const auto count = [&] { return omp.present() ? omp.get_max_threads() : ob.get_num_threads(); };
    tapegrad::set_num_threads(2);
    REQUIRE(count() == 2);
    {
        const detail::ProductThreads small(512, 32, 32);
        CHECK(count() == 1);
    }
    CHECK(count() == 2);
    {
        const detail::ProductThreads large(1024, 1024, 1024);
        CHECK(count() == 2);
    }
    tapegrad::set_num_threads(0);
}

TEST_CASE("better_openblas_core: generic kernels on AVX2/AVX-512 CPUs are replaced, unless the user chose") {
    const detail::CpuFeatures avx512_intel{.x86 = true, .avx2_fma = true, .avx512 = true, .amd = false};
    const detail::CpuFeatures avx2_intel{.x86 = true, .avx2_fma = true, .avx512 = false, .amd = false};
    const detail::CpuFeatures avx2_amd{.x86 = true, .avx2_fma = true, .avx512 = false, .amd = true};
    const detail::CpuFeatures sse_only{.x86 = true, .avx2_fma = false, .avx512 = false, .amd = false};
    const detail::CpuFeatures arm{};
    // The trap: Debian 12's OpenBLAS on Emerald Rapids reports Prescott.
    CHECK(detail::better_openblas_core("Prescott", avx512_intel, false) == "SkylakeX");
    CHECK(detail::better_openblas_core("Prescott", avx2_intel, false) == "Haswell");
    CHECK(detail::better_openblas_core("Sandybridge", avx2_amd, false) == "Zen");
    CHECK(detail::better_openblas_core("Nehalem", avx512_intel, false) == "SkylakeX");
    // Recognised CPUs keep OpenBLAS's choice, whatever it is.
    for (const char* wide : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SAPPHIRERAPIDS", "Excavator"}) {
        CAPTURE(wide);
        CHECK(detail::better_openblas_core(wide, avx512_intel, false).empty());
    }
    // A CPU without AVX2 (OpenBLAS's generic kernels are its right ones), another architecture, and an
    // OPENBLAS_CORETYPE from the environment are left alone.
    CHECK(detail::better_openblas_core("Prescott", sse_only, false).empty());
    CHECK(detail::better_openblas_core("armv8", arm, false).empty());
    CHECK(detail::better_openblas_core("Prescott", avx512_intel, true).empty());
}

TEST_CASE("the chosen product path agrees with a double reference") {
    MESSAGE(tapegrad::blas_info());
    CHECK(tapegrad::blas_info().find('\n') == std::string::npos);
    CHECK(tapegrad::blas_info().rfind("matrix products: ", 0) == 0);
    check_products();
    tapegrad::set_num_threads(1);
    check_products();
    tapegrad::set_num_threads(0);
}

TEST_CASE("the BLAS trap, simulated: from OpenBLAS's generic kernels tapegrad chooses AVX2/AVX-512 ones") {
    const detail::OpenBlasApi& ob = detail::openblas_api();
    const detail::CpuFeatures cpu = detail::cpu_features();
    if (!ob.present() || !ob.dynamic_init || !cpu.avx2_fma || std::getenv("OPENBLAS_CORETYPE") != nullptr) {
        MESSAGE("needs OpenBLAS with DYNAMIC_ARCH, an AVX2 CPU and no OPENBLAS_CORETYPE: skipped");
        return;
    }
    const std::string original = ob.get_corename();
    REQUIRE(detail::openblas_switch_core("Prescott"));  // what OpenBLAS runs on a CPU it does not know
    CHECK(std::getenv("OPENBLAS_CORETYPE") == nullptr);  // the environment is left as it was
    const detail::CoreChoice c = detail::fix_openblas_core();
    CHECK(c.found == "Prescott");
    CHECK(c.switched);
    CHECK(c.chosen == (cpu.avx512 ? "SkylakeX" : cpu.amd ? "Zen" : "Haswell"));
    CHECK(std::string(ob.get_corename()) == c.chosen);
    CHECK(detail::describe_kernels(c).find(c.chosen + " kernels chosen by tapegrad (OpenBLAS picked its generic "
                                           "Prescott kernels") != std::string::npos);
    check_products();
    // A generic core that the user set is kept: the check is a no-op with OPENBLAS_CORETYPE set.
    ::setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    REQUIRE(detail::openblas_switch_core("Prescott"));
    const detail::CoreChoice kept = detail::fix_openblas_core();
    ::unsetenv("OPENBLAS_CORETYPE");
    CHECK(kept.from_env);
    CHECK_FALSE(kept.switched);
    CHECK(std::string(ob.get_corename()) == "Prescott");
    CHECK(detail::describe_kernels(kept).find("Prescott kernels from OPENBLAS_CORETYPE") != std::string::npos);
    // And back to what this program ran before.
    CHECK(detail::openblas_switch_core(original));
    CHECK(std::string(ob.get_corename()) == original);
}
