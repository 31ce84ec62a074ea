#pragma once
/// \file
/// The umbrella header: `#include <tapegrad/tapegrad.hpp>` brings in tensors, autograd, ops, layers,
/// losses, optimizers and in-memory datasets, and needs nothing but Eigen. Headers with other dependencies
/// are included on their own: data/idx.hpp and data/mnist.hpp (zlib), io/safetensors.hpp and
/// io/checkpoint.hpp (nlohmann-json), util/svg_plot.hpp; the CUDA backend is separate too.

// core: tensors, shapes, devices, random numbers, errors
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/device.hpp>
#include <tapegrad/core/shape.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/core/labels.hpp>

// matrix products: threads (set_num_threads) and BLAS kernels (blas_info)
#include <tapegrad/backend/cpu_threads.hpp>

// autograd: the tape, how ops record, gradcheck
#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/autograd/record.hpp>
#include <tapegrad/autograd/gradcheck.hpp>

// ops: every differentiable function (the torch.nn.functional layer)
#include <tapegrad/ops/elementwise.hpp>
#include <tapegrad/ops/activation.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/softmax.hpp>
#include <tapegrad/ops/loss.hpp>
#include <tapegrad/ops/conv.hpp>
#include <tapegrad/ops/pooling.hpp>
#include <tapegrad/ops/batch_norm.hpp>
#include <tapegrad/ops/dropout.hpp>
#include <tapegrad/ops/transfer.hpp>
#include <tapegrad/ops/stack.hpp>
#include <tapegrad/ops/layer_norm.hpp>
#include <tapegrad/ops/attention.hpp>
#include <tapegrad/ops/rnn.hpp>
#include <tapegrad/ops/integer.hpp>
#include <tapegrad/ops/index.hpp>

// nn: modules (layers, activations, losses as function objects, containers) and metrics
#include <tapegrad/nn/module.hpp>
#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/perceptron.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/nn/activation.hpp>
#include <tapegrad/nn/loss.hpp>
#include <tapegrad/nn/metrics.hpp>
#include <tapegrad/nn/conv.hpp>
#include <tapegrad/nn/pooling.hpp>
#include <tapegrad/nn/dropout.hpp>
#include <tapegrad/nn/batchnorm.hpp>
#include <tapegrad/nn/layer_norm.hpp>
#include <tapegrad/nn/attention.hpp>
#include <tapegrad/nn/transformer.hpp>
#include <tapegrad/nn/rnn.hpp>
#include <tapegrad/nn/embedding.hpp>
// decoding: greedy search, beam search and sampling over a step function
#include <tapegrad/nn/decoding.hpp>

// optim: optimizers, schedules, clipping
#include <tapegrad/optim/optim.hpp>

// data: in-memory datasets and the loader
#include <tapegrad/data/dataset.hpp>
#include <tapegrad/data/device_loader.hpp>
