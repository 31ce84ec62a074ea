#pragma once
/// \file
/// For bench/blas_configs.sh on a CPU that OpenBLAS recognises: recreate the BLAS trap (OpenBLAS on its
/// generic Prescott kernels, as 0.3.21 runs on a CPU it does not know), then run tapegrad's kernel check
/// again, so that the benchmark times the path tapegrad chooses from there.

#include <tapegrad/backend/cpu_threads.hpp>

#include <string>

namespace workloads {

/// What the check chose from Prescott: "Prescott -> SkylakeX", or why nothing happened.
inline std::string simulate_blas_trap() {
    namespace detail = tapegrad::detail;
    if (!detail::openblas_switch_core("Prescott")) return "this OpenBLAS cannot switch kernels: nothing done";
    const detail::CoreChoice c = detail::fix_openblas_core();
    return c.found + " -> " + c.chosen + (c.switched ? " (switched by tapegrad)" : " (kept)");
}

}  // namespace workloads
