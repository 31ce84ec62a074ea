#pragma once
/// \file
/// `Ops<Cuda>`: the CUDA backend, the primitive families of backend/contract.hpp joined in one type, each
/// family from its own file of backend/cuda/ (twins of backend/cpu/ under the same names), every primitive
/// enqueued on `cuda::stream()`.

#include <tapegrad/backend/contract.hpp>
#include <tapegrad/backend/cuda/attention.hpp>
#include <tapegrad/backend/cuda/blas.hpp>
#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/conv_pool.hpp>
#include <tapegrad/backend/cuda/elementwise.hpp>
#include <tapegrad/backend/cuda/index.hpp>
#include <tapegrad/backend/cuda/memory.hpp>
#include <tapegrad/backend/cuda/norm.hpp>
#include <tapegrad/backend/cuda/optim.hpp>
#include <tapegrad/backend/cuda/random_data.hpp>
#include <tapegrad/backend/cuda/reduce.hpp>
#include <tapegrad/backend/cuda/rnn.hpp>
#include <tapegrad/backend/cuda/softmax_loss.hpp>

namespace tapegrad::backend {

/// The CUDA primitives: every family of the contract, on the GPU.
template <>
struct Ops<Cuda> : CudaMemory,
                   CudaElementwise,
                   CudaReduce,
                   CudaBlas,
                   CudaSoftmaxLoss,
                   CudaConvPool,
                   CudaNorm,
                   CudaOptim,
                   CudaRandomData,
                   CudaAttention,
                   CudaRnn,
                   CudaIndex {};

static_assert(Backend<Cuda>, "Ops<Cuda> must provide every primitive family of backend/contract.hpp");

}  // namespace tapegrad::backend
