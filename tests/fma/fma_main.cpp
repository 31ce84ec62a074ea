// doctest's main for tapegrad_fma_tests (tests/CMakeLists.txt): its test files are compiled with -mavx2 -mfma,
// so on a CPU without them the binary reports a skip (exit code 77, which ctest counts as skipped) instead of
// dying on an illegal instruction. This file is compiled for plain x86-64, and the checks run before any test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

int main(int argc, char** argv) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        std::puts("tapegrad_fma_tests: this CPU has no AVX2 and FMA; skipped");
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
