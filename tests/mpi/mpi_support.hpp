#pragma once
// Shared by the tests that run on 2 ranks: the world communicator, made by mpi_main.cpp.

#include <tapegrad/distributed/mpi.hpp>

#include <cstring>
#include <vector>

namespace tapegrad::testing {

/// The communicator of every rank of the test job.
dist::MpiCommunicator& world();

/// True on every rank when `values` on every rank are bitwise equal to rank 0's.
template <class T>
bool same_on_all_ranks(const std::vector<T>& values) {
    dist::Communicator& comm = world();
    int64_t n = static_cast<int64_t>(values.size());
    int64_t n0 = n;
    comm.broadcast(&n0, 1, 0);
    int64_t differs = n0 != n ? 1 : 0;
    if (differs == 0) {
        std::vector<T> root = values;
        comm.broadcast(root.data(), n, 0);
        differs = std::memcmp(root.data(), values.data(), values.size() * sizeof(T)) != 0 ? 1 : 0;
    }
    return comm.sum(differs) == 0;
}

}  // namespace tapegrad::testing
