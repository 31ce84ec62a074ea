#pragma once
// Thread count for the programs (not part of the library). Two pools may run matrix products: Eigen's own
// (Eigen::setNbThreads) and, when tapegrad is built with TAPEGRAD_BLAS, OpenBLAS's OpenMP build, which
// takes its count from OpenMP. Setting both makes `--threads N` mean N threads either way.

#include <Eigen/Core>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace examples {

/// Uses `n` threads for matrix products (0: all cores).
inline void set_threads(int n) {
    Eigen::setNbThreads(n);  // 0 restores Eigen's default
#if defined(_OPENMP)
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
#endif
}

}  // namespace examples
