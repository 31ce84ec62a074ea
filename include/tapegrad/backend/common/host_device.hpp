#pragma once
/// \file
/// `TAPEGRAD_HD`: marks a function usable from host code and, under nvcc, from CUDA device code, so that
/// one definition (a functor, the dropout generator, the multi-tensor plan) serves both backends. No other
/// include: the CUDA kernels (backend/cuda/*.cu) include the headers that use it.

#if defined(__CUDACC__)
#define TAPEGRAD_HD __host__ __device__
#else
#define TAPEGRAD_HD
#endif
