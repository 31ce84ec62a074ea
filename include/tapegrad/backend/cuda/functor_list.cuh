#pragma once
/// \file
/// The one list of elementwise functors the CUDA backend instantiates its launchers for: map and
/// map_backward for every unary functor (elementwise.cu), zip and zip_backward for every binary one
/// (broadcast.cu), each for float and double. A functor missing here links fine on the CPU and fails to link
/// (undefined reference to tapegrad::cuda::map<float, fn::Name>) on the GPU.
///
/// ADDING A FUNCTOR to backend/functors.hpp, activation_functors.hpp or loss_functors.hpp? Add one line
/// here too: `X(Name)` under TAPEGRAD_CUDA_UNARY_FUNCTORS if it has operator()(T) and backward(x, y, dy),
/// under TAPEGRAD_CUDA_BINARY_FUNCTORS if it has operator()(T, T), da and db. A new functor header must
/// also be included below.

#include <tapegrad/backend/activation_functors.hpp>
#include <tapegrad/backend/functors.hpp>
#include <tapegrad/backend/loss_functors.hpp>

/// X(functor) for every unary functor of the functor headers.
#define TAPEGRAD_CUDA_UNARY_FUNCTORS(X) \
    X(Neg)                              \
    X(Exp)                              \
    X(Log)                              \
    X(Sqrt)                             \
    X(Abs)                              \
    X(Pow)                              \
    X(Clamp)                            \
    X(Tanh)                             \
    X(Sigmoid)                          \
    X(Relu)                             \
    X(Step)                             \
    X(Identity)                         \
    X(LeakyRelu)                        \
    X(Elu)                              \
    X(Softplus)                         \
    X(Gelu)                             \
    X(Silu)                             \
    X(Softsign)

/// X(functor) for every binary functor of the functor headers.
#define TAPEGRAD_CUDA_BINARY_FUNCTORS(X) \
    X(Add)                               \
    X(Sub)                               \
    X(Mul)                               \
    X(Div)                               \
    X(Maximum)                           \
    X(Prelu)                             \
    X(SquaredError)                      \
    X(Bce)                               \
    X(BceWithLogits)
