#pragma once
/// \file
/// The CUDA launchers of the convolution and pooling family (defined in conv_pool.cu): im2col / col2im,
/// the layout change and bias of the convolution's output, its bias gradient, and max, average and
/// adaptive average pooling with their backwards. Every result is deterministic: a gradient that gathers
/// several contributions is formed by one thread per element it writes, adding them in a fixed order (no
/// atomics). Layouts are NCHW, as backend/cpu/conv_pool.hpp; the column matrix of `images` images is
/// col [C*kh*kw, images*OH*OW], the layout of the CPU's im2col called with `images` > 1, so that one matrix
/// product per group covers them all. Twin of backend/cpu/conv_pool.hpp.

/// Launchers only enqueue on `stream` (the caller in the .hpp beside this header checks the launch); raw
/// device pointers, sizes in elements, nothing enqueued when there is no work. Never includes Eigen:
/// host code compiled by any C++20 compiler and the nvcc-compiled .cu file both include it.

#include <tapegrad/backend/common/window.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

/// The window plan, shared with the CPU (backend/common/window.hpp): plain data, passed to kernels by value.
using ConvWindow = backend::Window2d;

// ---- the convolution --------------------------------------------------------------------------------------
/// col[(c*kh + ki)*kw + kj, n*OH*OW + oy*OW + ox] = x[n, c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw], 0 in the
/// padding.  x: [images, C, H, W] -> col: [C*kh*kw, images*OH*OW] (overwritten)
template <class T>
void im2col(const ConvWindow& g, int64_t images, const T* x, T* col, cudaStream_t stream);
/// The adjoint of im2col: dx[n, c, iy, ix] += the sum of the col entries im2col copied from (iy, ix), one
/// thread per pixel of dx adding its entries in order of (ki, kj).
///  col: [C*kh*kw, images*OH*OW] -> dx: [images, C, H, W] (accumulated)
template <class T>
void col2im(const ConvWindow& g, int64_t images, const T* col, T* dx, cudaStream_t stream);
/// out[b, a, l] = in[a, b, l] (+ bias[a] when bias is not null): swaps the two leading axes of [A, B, L].
/// The convolution's product comes out as [O, images, L] and the network wants [images, O, L]; its backward
/// needs the output gradient the other way round.
template <class T>
void swap_leading_axes(int64_t A, int64_t B, int64_t L, const T* in, const T* bias, T* out, cudaStream_t stream);
/// db[o] += sum over n and l of dy[n, o, l]; one owner per o (deterministic).  dy: [N, O, L] -> db: [O]
template <class T>
void conv_bias_backward(int64_t N, int64_t O, int64_t L, const T* dy, T* db, cudaStream_t stream);

// ---- pooling over `planes` independent H x W planes (g.channels unused) ---------------------------------------
/// y[p, oy, ox] = max of the window, padding ignored; argmax[p, oy, ox] = the flat index iy*W + ix of the first
/// maximum in row-major window order, a NaN beating any number (the first NaN wins), as CpuConvPool. A null
/// argmax is not written.  x: [planes, H, W] -> y, argmax: [planes, OH, OW]
template <class T>
void max_pool2d(const ConvWindow& g, int64_t planes, const T* x, T* y, int64_t* argmax, cudaStream_t stream);
/// dx[p, i] += the sum of dy[p, o] over the windows o whose argmax is i, one thread per pixel of dx (windows
/// may overlap when the stride is below the kernel), in order of o.
///  argmax, dy: [planes, OH, OW] -> dx: [planes, H, W] (accumulated)
template <class T>
void max_pool2d_backward(const ConvWindow& g, int64_t planes, const int64_t* argmax, const T* dy, T* dx,
                         cudaStream_t stream);
/// y[p, o] = (sum of the window's pixels) / divisor, the divisor counting the padded positions when
/// count_include_pad, as CpuConvPool::avg_pool2d (no dilation).  x: [planes, H, W] -> y: [planes, OH, OW]
template <class T>
void avg_pool2d(const ConvWindow& g, int64_t planes, const T* x, T* y, bool count_include_pad, cudaStream_t stream);
/// dx[p, i] += sum over the windows o holding i of dy[p, o] / divisor_o, one thread per pixel of dx.
template <class T>
void avg_pool2d_backward(const ConvWindow& g, int64_t planes, const T* dy, T* dx, bool count_include_pad,
                         cudaStream_t stream);
/// y[p, oy, ox] = the mean of rows [floor(oy H / OH), ceil((oy+1) H / OH)) and the columns likewise.
///  x: [planes, H, W] -> y: [planes, OH, OW]
template <class T>
void adaptive_avg_pool2d(const ConvWindow& g, int64_t planes, const T* x, T* y, cudaStream_t stream);
/// dx[p, i] += sum over the windows o holding i of dy[p, o] / (window size), one thread per pixel of dx.
template <class T>
void adaptive_avg_pool2d_backward(const ConvWindow& g, int64_t planes, const T* dy, T* dx, cudaStream_t stream);

}  // namespace tapegrad::cuda
