#pragma once
/// \file
/// `Ops<Cpu>`: the CPU backend, the primitive families of backend/contract.hpp joined in one type, each
/// family from its own file of backend/cpu/ (the CUDA twins sit in backend/cuda/ under the same names).
/// Call sites spell a primitive `backend::Ops<D>::name(...)` whatever its family.

#include <tapegrad/backend/contract.hpp>
#include <tapegrad/backend/cpu/attention.hpp>
#include <tapegrad/backend/cpu/blas.hpp>
#include <tapegrad/backend/cpu/conv_pool.hpp>
#include <tapegrad/backend/cpu/elementwise.hpp>
#include <tapegrad/backend/cpu/index.hpp>
#include <tapegrad/backend/cpu/memory.hpp>
#include <tapegrad/backend/cpu/norm.hpp>
#include <tapegrad/backend/cpu/optim.hpp>
#include <tapegrad/backend/cpu/random_data.hpp>
#include <tapegrad/backend/cpu/reduce.hpp>
#include <tapegrad/backend/cpu/rnn.hpp>
#include <tapegrad/backend/cpu/softmax_loss.hpp>
#include <tapegrad/core/device.hpp>

namespace tapegrad::backend {

/// The CPU primitives: every family of the contract, on the host.
template <>
struct Ops<Cpu> : CpuMemory,
                  CpuElementwise,
                  CpuReduce,
                  CpuBlas,
                  CpuSoftmaxLoss,
                  CpuConvPool,
                  CpuNorm,
                  CpuOptim,
                  CpuRandomData,
                  CpuAttention,
                  CpuRnn,
                  CpuIndex {};

static_assert(Backend<Cpu>, "Ops<Cpu> must provide every primitive family of backend/contract.hpp");

}  // namespace tapegrad::backend
