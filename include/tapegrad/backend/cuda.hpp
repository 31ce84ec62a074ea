#pragma once
/// \file
/// The CUDA backend: `Tensor<float, Cuda>` and `Tensor<double, Cuda>` with the same ops, tape, layers,
/// losses and optimizers as on the CPU. Opt-in: not included by tapegrad.hpp; include it and link
/// `tapegrad::cuda` (CMake option TAPEGRAD_CUDA=ON), which adds CUDA::cudart, CUDA::cublas and the kernels.
///
///     #include <tapegrad/tapegrad.hpp>
///     #include <tapegrad/backend/cuda.hpp>
///     using tapegrad::Cuda;
///     auto x = tapegrad::to<Cuda>(cpu_tensor);         // upload
///     nn::Linear<float, Cuda> fc(784, 10, gen);          // initialised on the host, then uploaded
///     auto loss = nn::cross_entropy(fc(x), labels);     // host labels are copied over; Labels<Cuda> stay
///     loss.backward();
///     float value = loss.item();                        // downloads (synchronises)
///
/// `backend::Ops<Cuda>` implements the primitive families of backend/contract.hpp by enqueuing the kernels of
/// backend/cuda/*.cu on one stream per process (`cuda::stream()`), so every op runs in
/// order without synchronising; only reading values back to the host waits. Copies from the host go
/// through pinned staging buffers and do not wait either (`cuda::PinnedStaging`). Matrix products go
/// through cuBLAS with TF32 off unless `cuda::set_allow_tf32(true)`. Device memory comes from a caching
/// allocator (`cuda::memory_stats()`): after a warm-up step, training calls neither cudaMalloc nor cudaFree.
/// A whole training step can be captured once and replayed as one CUDA graph (`cuda::Graph`), with its
/// batches gathered on the device by data::DeviceLoader.
///
/// Errors: a failing CUDA or cuBLAS call throws `DeviceError` naming the call and the CUDA error string;
/// using a CUDA tensor on a machine without a usable GPU throws `DeviceError` at first use, with the reason.
///
/// This umbrella header joins the CUDA backend's parts, one concern each, none including another upward:
///   cuda/context.hpp    the `Cuda` tag, error checks, the stream and cuBLAS handle, capture flag
///   cuda/allocator.hpp  the caching device allocator and its counters
///   cuda/staging.hpp    pinned host buffers for asynchronous uploads
///   cuda/ops.hpp        `Ops<Cuda>`: the primitive families (cuda/<family>.hpp, twins of cpu/<family>.hpp)
///   cuda/graph.hpp      `cuda::Graph`: capture a step once, replay it
/// Link `tapegrad::cuda` (find_package(tapegrad) installs and exports it when built with TAPEGRAD_CUDA).

#include <tapegrad/backend/cuda/allocator.hpp>
#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/graph.hpp>
#include <tapegrad/backend/cuda/ops.hpp>
#include <tapegrad/backend/cuda/staging.hpp>
