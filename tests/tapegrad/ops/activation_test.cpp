// Tests for tapegrad/ops/activation.hpp: every activation function, PReLU and maxout pass gradcheck on random
// shapes through the device-generic table (tests/support/op_tables.hpp), here on the CPU. Reference values,
// behaviour at |x| = 1e4 and the errors are tested with the modules, in nn/activation_test.cpp.

#include <tapegrad/ops/activation.hpp>

#include "../../support/op_tables.hpp"

#include <doctest/doctest.h>

TEST_CASE("every activation function, prelu and maxout pass gradcheck (the device-generic table, on the CPU)") {
    const int checked = tapegrad::testing::check_table<tapegrad::testing::ActivationTable, tapegrad::Cpu>(6000);
    CHECK(checked == static_cast<int>(tapegrad::testing::ActivationTable::cases<double, tapegrad::Cpu>().size()) *
                         tapegrad::testing::kCasesPerOp);
}
