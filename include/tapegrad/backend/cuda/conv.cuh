#pragma once
/// \file
/// The CUDA kernel launchers of the convolutional layers: im2col / col2im, the layout change and bias of the
/// convolution's output, its bias gradient, and max, average and adaptive average pooling with their
/// backwards, and the per-channel statistics and normalisation of batch norm. Declared here for host code compiled by any C++20 compiler (backend/cuda_conv.hpp calls them,
/// as `backend::ConvOps<Cuda>`); defined and explicitly instantiated for float and double in conv.cu (batch norm's in batchnorm.cu).
///
/// Conventions as kernels.cuh: never includes Eigen, raw device pointers, sizes in elements, launchers only
/// enqueue on `stream` (the caller checks the launch), and launchers with no work enqueue nothing. Every
/// result is deterministic: a gradient that gathers several contributions is formed by one thread per
/// element it writes, adding the contributions in a fixed order (no atomics).
///
/// Layouts are NCHW, as backend/conv_cpu.hpp. The column matrix of `images` images is
/// col [C*kh*kw, images*OH*OW]: row (c*kh + ki)*kw + kj, column n*OH*OW + oy*OW + ox, the layout of
/// ConvOps<Cpu>::im2col called with `images` > 1, so that one matrix product per group covers them all.

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tapegrad::cuda {

/// The sizes of one 2-D sliding-window pass: the fields of backend::Window2d (backend/conv_cpu.hpp), which
/// this header cannot include (it pulls in Eigen). Plain data, passed to kernels by value.
struct ConvWindow {
    int64_t channels = 1;                    ///< C (im2col and col2im only; pooling takes a plane count)
    int64_t height = 0, width = 0;           ///< H, W
    int64_t kernel_h = 1, kernel_w = 1;      ///< kh, kw
    int64_t stride_h = 1, stride_w = 1;      ///< >= 1
    int64_t pad_h = 0, pad_w = 0;            ///< implicit padding on each side
    int64_t dilation_h = 1, dilation_w = 1;  ///< >= 1
    int64_t out_h = 0, out_w = 0;            ///< OH, OW
};

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
/// maximum in row-major window order, a NaN beating any number (the first NaN wins), as ConvOps<Cpu>. A null
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
/// count_include_pad, as ConvOps<Cpu>::avg_pool2d (no dilation).  x: [planes, H, W] -> y: [planes, OH, OW]
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

// ==== batch normalisation over x: [N, C, L] (defined in batchnorm.cu, not conv.cu) ==========================
// As the channel_* primitives of backend::ConvOps<Cpu>. Each channel's sums are formed by one block in a fixed
// order, in double: deterministic, no atomics. C = 0 enqueues nothing.
/// mean[c] and the biased variance var[c] over the channel's N*L values.  x -> mean, var: [C]
template <class T>
void channel_mean_var(int64_t N, int64_t C, int64_t L, const T* x, T* mean, T* var, cudaStream_t stream);
/// mean[c], invstd[c] = 1 / sqrt(var[c] + eps), and, when running_mean and running_var are not null, their
/// update (1 - momentum) running + momentum stat, with the unbiased variance var M / (M - 1), M = N*L >= 2.
template <class T>
void channel_batch_stats(int64_t N, int64_t C, int64_t L, const T* x, T eps, T momentum, T* mean, T* invstd,
                         T* running_mean, T* running_var, cudaStream_t stream);
/// mean[c] = running_mean[c], invstd[c] = 1 / sqrt(running_var[c] + eps).
template <class T>
void channel_running_stats(int64_t C, const T* running_mean, const T* running_var, T eps, T* mean, T* invstd,
                           cudaStream_t stream);
/// y = (x - mean[c]) invstd[c] gamma[c] + beta[c]; a null gamma is 1, a null beta 0.  x -> y: [N, C, L]
template <class T>
void channel_normalize(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd, const T* gamma,
                       const T* beta, T* y, cudaStream_t stream);
/// The adjoint of channel_normalize, as ConvOps<Cpu>::channel_normalize_backward: dbeta[c] += sum dy,
/// dgamma[c] += sum dy xhat, dx += gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) with batch statistics,
/// gamma invstd dy without. Any of dx, dgamma, dbeta may be null; a null gamma is 1.
template <class T>
void channel_normalize_backward(int64_t N, int64_t C, int64_t L, const T* x, const T* mean, const T* invstd,
                                const T* gamma, const T* dy, bool batch_stats, T* dx, T* dgamma, T* dbeta,
                                cudaStream_t stream);
// ==== end of the batch-normalisation section ====================================================================

}  // namespace tapegrad::cuda
