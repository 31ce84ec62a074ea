#pragma once
/// \file
/// Helpers shared by the CUDA tests: skipping cleanly where there is no GPU. The fp32 comparison against the
/// CPU (|gpu - cpu| <= abs_tol + 1e-5 |cpu|, `check_close`) and the device-generic op tables come from
/// tests/support.

#include <tapegrad/backend/cuda.hpp>

#include "../support/device_ops.hpp"

#include <doctest/doctest.h>

namespace tapegrad::testing {

/// Whether a usable CUDA GPU exists (asked once).
inline bool have_gpu() {
    static const bool ok = tapegrad::cuda::available();
    return ok;
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
