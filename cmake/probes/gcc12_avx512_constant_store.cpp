// Configure-time probe (CMakeLists.txt, TAPEGRAD_NATIVE): exits 1 where the compiler miscompiles a store of
// the constant {100, 100, 0, 0}. Debian 12's g++ 12.2 at -O2 with -mavx512f (-march=native on an AVX-512
// CPU) SLP-vectorises it into one broadcast of 100 over all four doubles (found through a failing test:
// std::vector<double>{100.0, 100.0, 0.0, 0.0} held four 100s). -fno-tree-slp-vectorize avoids it.
#include <cstdio>
#include <vector>

/// Reads the values back from memory (not inlined: the compiler cannot use the constants it meant to store).
[[gnu::noinline]] static int wrong(const std::vector<double>& v) {
    if (v.size() == 4 && v[0] == 100.0 && v[1] == 100.0 && v[2] == 0.0 && v[3] == 0.0) return 0;
    std::printf("{100, 100, 0, 0} was stored as {");
    for (const double x : v) std::printf(" %g", x);
    std::printf(" }\n");
    return 1;
}

int main() { return wrong(std::vector<double>{100.0, 100.0, 0.0, 0.0}); }
