// doctest's main for the tests that mpiexec runs on several ranks: MPI is initialised around the run, and
// the job fails when any rank fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include "mpi_support.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <memory>

namespace {
tapegrad::dist::MpiCommunicator* g_world = nullptr;
}

tapegrad::dist::MpiCommunicator& tapegrad::testing::world() { return *g_world; }

int main(int argc, char** argv) {
    tapegrad::dist::MpiEnvironment env(argc, argv);
    int rc = 0;
    {
        tapegrad::dist::MpiCommunicator comm;
        g_world = &comm;
        doctest::Context ctx(argc, argv);
        if (comm.rank() != 0) ctx.setOption("no-intro", true);
        rc = ctx.run();
        if (ctx.shouldExit()) return rc;
        const int64_t failed = comm.sum(static_cast<int64_t>(rc != 0));
        if (comm.rank() == 0)
            std::printf("mpi tests: %d ranks, %lld failed\n", comm.size(), static_cast<long long>(failed));
        if (failed != 0) rc = 1;
        g_world = nullptr;
    }
    return rc;
}
