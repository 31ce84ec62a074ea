#pragma once
/// \file
/// The CPU backend: `backend::Ops<Cpu>`, the primitives that autograd, the ops and the layers are written
/// against, on the host. Each takes raw buffers and sizes and knows nothing of `Tensor`, so the CUDA
/// backend implements the same list (backend/contract.hpp) and every backward formula is written once,
/// above this floor. The families live in backend/cpu/, one file each; device-neutral pieces (functors,
/// plans, update rules) in backend/common/.

#include <tapegrad/backend/cpu/ops.hpp>
