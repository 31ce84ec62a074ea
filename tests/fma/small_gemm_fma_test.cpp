// The panel kernel's tests (tapegrad/backend/small_gemm_test.cpp) again, compiled for AVX2 and FMA: the
// width (8 floats) and the 6-row tiles that -march=native builds on such CPUs run.
#include "../tapegrad/backend/small_gemm_test.cpp"
