#pragma once
/// \file
/// Helpers shared by the CUDA tests: skipping cleanly where there is no GPU, and the fp32 comparison
/// against the CPU with issue 6's tolerance (|gpu - cpu| <= abs_tol + 1e-5 |cpu|).

#include <tapegrad/backend/cuda.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

namespace tapegrad::testing {

/// Whether a usable CUDA GPU exists (asked once).
inline bool have_gpu() {
    static const bool ok = tapegrad::cuda::available();
    return ok;
}

/// |gpu - cpu| <= abs_tol + 1e-5 |cpu| element by element (NaN matching NaN), naming the first offender.
template <class T>
void check_close(const std::string& what, const std::vector<T>& cpu, const std::vector<T>& gpu,
                 double abs_tol = 1e-6) {
    REQUIRE_MESSAGE(cpu.size() == gpu.size(), what << ": sizes differ (" << cpu.size() << " vs " << gpu.size() << ")");
    for (size_t i = 0; i < cpu.size(); ++i) {
        const double c = static_cast<double>(cpu[i]), g = static_cast<double>(gpu[i]);
        const bool ok = (std::isnan(c) && std::isnan(g)) || (c == g) || std::abs(g - c) <= abs_tol + 1e-5 * std::abs(c);
        if (!ok) {
            FAIL_CHECK(what << ": element " << i << " is " << g << " on the GPU, " << c << " on the CPU");
            return;
        }
    }
}

}  // namespace tapegrad::testing

/// Ends the current test case with a message (passing) when there is no GPU.
#define REQUIRE_GPU()                                                          \
    do {                                                                       \
        if (!::tapegrad::testing::have_gpu()) {                                \
            MESSAGE("skipped: no CUDA GPU on this machine");                   \
            return;                                                            \
        }                                                                      \
    } while (0)
