#pragma once
/// \file
/// The CUDA backend's convolution and pooling (family `ConvPoolFamily`, backend/contract.hpp), so conv2d,
/// the poolings and nn::Conv2d / MaxPool2d / AvgPool2d / AdaptiveAvgPool2d work unchanged on
/// `Tensor<T, Cuda>`. Kernels in conv_pool.cu (declared in conv_pool.cuh). Twin of backend/cpu/conv_pool.hpp.
///
/// The convolution is im2col + cuBLAS, a whole batch (or a chunk of its images) at a time rather than image
/// by image, which would be one launch per image:
///   col   [K, n*L]   = im2col of n images (K = C*kh*kw rows, L = OH*OW; conv_pool.cuh gives the layout)
///   Y'_g  [O/G, n*L] = W_g [O/G, K/G] col_g                   one strided-batched product over the G groups
///   y     [n, O, L]  = Y' [O, n, L] with its leading axes swapped, + b
/// and the backward, with dY' [O, n, L] the output gradient's leading axes swapped:
///   dW_g (+)= dY'_g col_g^T   (the sum over images is the product's inner dimension)
///   dx    += col2im(W_g^T dY'_g)   (a gather: deterministic)
///   db    += sum of dy over images and pixels   (one owner per channel: deterministic)
/// Scratch buffers come from the caching allocator, so a steady training step calls no cudaMalloc. The
/// chunk is the whole batch when conv2d keeps the column matrix for the backward (`cols`), else as many
/// images as keep each scratch buffer under `chunk_elements`.


#include <tapegrad/backend/common/window.hpp>
#include <tapegrad/backend/cuda/blas.hpp>
#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/backend/cuda/conv_pool.cuh>
#include <tapegrad/backend/cuda/memory.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace tapegrad::backend {

/// Convolution and pooling on the GPU.
struct CudaConvPool {
    // ==== the convolution ===================================================================================

    /// Always false: on the GPU a batch's column matrix [K, N*L] is never the input x [N, C, H*W] itself (its
    /// leading axes are swapped even for a 1x1 kernel), so conv2d keeps the forward's for the backward.
    [[nodiscard]] static constexpr bool im2col_is_identity(const Window2d&) noexcept { return false; }

    /// Scratch buffers of the convolution (a chunk's column matrix, its product) stay under this many
    /// elements (64 MB of float), unless one image alone needs more.
    static constexpr int64_t chunk_elements = int64_t{1} << 24;

    /// y = conv(x, w) + b, as CpuConvPool::conv2d_forward.
    ///  x: [N, C, H, W], w: [O, C/groups, kh, kw], b: [O] or null -> y: [N, O, OH, OW] (overwritten).
    /// With `cols` (N*K*L elements), the batch's column matrix [K, N*L] is left there for conv2d_backward.
    template <class T>
    static void conv2d_forward(const Window2d& g, int64_t N, int64_t O, int64_t groups, const T* x, const T* w,
                               const T* b, T* y, T* cols = nullptr) {
        const int64_t K = g.col_rows(), L = g.out_plane(), Kg = K / groups, Og = O / groups;
        if (N <= 0 || O <= 0 || L <= 0) return;
        const int64_t chunk = cols ? N : images_per_chunk(N, std::max(K, O) * L, L);
        const Window2d& win = g;
        Scratch<T> colbuf(cols ? 0 : K * chunk * L), prod(O * chunk * L);
        for (int64_t n0 = 0; n0 < N; n0 += chunk) {
            const int64_t nb = std::min(chunk, N - n0), cols_n = nb * L;
            T* col = cols ? cols : colbuf.data();
            cuda::im2col(win, nb, x + n0 * g.channels * g.in_plane(), col, cuda::stream());
            cuda::check_launch("conv2d (im2col)");
            // Y'_g [Og, nb*L] = W_g [Og, Kg] col_g [Kg, nb*L]
            CudaBlas::gemm_groups(false, false, Og, cols_n, Kg, w, Og * Kg, col, Kg * cols_n, T(0), prod.data(),
                                  Og * cols_n, groups);
            cuda::swap_leading_axes(O, nb, L, prod.data(), b, y + n0 * O * L, cuda::stream());
            cuda::check_launch("conv2d (output layout)");
        }
    }

    /// The adjoint of conv2d_forward for the output gradient dy [N, O, OH, OW], as CpuConvPool::
    /// conv2d_backward: dw [O, C/groups, kh, kw] overwritten when dw_overwrite, else accumulated; dx
    /// [N, C, H, W] += ; db [O] += . Any of them may be null. `cols`, when not null, is what conv2d_forward
    /// left there. Deterministic: the same inputs give the same bits on every run.
    template <class T>
    static void conv2d_backward(const Window2d& g, int64_t N, int64_t O, int64_t groups, const T* x, const T* w,
                                const T* dy, T* dx, T* dw, bool dw_overwrite, T* db, const T* cols = nullptr) {
        const int64_t K = g.col_rows(), L = g.out_plane(), Kg = K / groups, Og = O / groups;
        if (db) {
            cuda::conv_bias_backward(N, O, L, dy, db, cuda::stream());
            cuda::check_launch("conv2d backward (bias)");
        }
        if (!dw && !dx) return;
        if (N <= 0 || L <= 0 || O <= 0) {  // no products: an overwritten dw is all zeros
            if (dw && dw_overwrite) CudaMemory::fill(O * Kg, T(0), dw);
            return;
        }
        const int64_t chunk = cols ? N : images_per_chunk(N, std::max(K, O) * L, L);
        const Window2d& win = g;
        const int64_t in_image = g.channels * g.in_plane();
        Scratch<T> dyt(O * chunk * L), colbuf(dw && !cols ? K * chunk * L : 0), dcol(dx ? K * chunk * L : 0);
        bool overwrite = dw_overwrite;
        for (int64_t n0 = 0; n0 < N; n0 += chunk) {
            const int64_t nb = std::min(chunk, N - n0), cols_n = nb * L;
            cuda::swap_leading_axes(nb, O, L, dy + n0 * O * L, static_cast<const T*>(nullptr), dyt.data(),
                                    cuda::stream());  // dY' [O, nb, L]
            cuda::check_launch("conv2d backward (gradient layout)");
            if (dw) {  // dW_g [Og, Kg] (+)= dY'_g [Og, nb*L] col_g^T [nb*L, Kg]
                const T* col = cols;
                if (!col) {
                    cuda::im2col(win, nb, x + n0 * in_image, colbuf.data(), cuda::stream());
                    cuda::check_launch("conv2d backward (im2col)");
                    col = colbuf.data();
                }
                CudaBlas::gemm_groups(false, true, Og, Kg, cols_n, dyt.data(), Og * cols_n, col, Kg * cols_n,
                                      overwrite ? T(0) : T(1), dw, Og * Kg, groups);
                overwrite = false;
            }
            if (dx) {  // dcol_g [Kg, nb*L] = W_g^T [Kg, Og] dY'_g [Og, nb*L]; dx += col2im(dcol)
                CudaBlas::gemm_groups(true, false, Kg, cols_n, Og, w, Og * Kg, dyt.data(), Og * cols_n, T(0),
                                      dcol.data(), Kg * cols_n, groups);
                cuda::col2im(win, nb, dcol.data(), dx + n0 * in_image, cuda::stream());
                cuda::check_launch("conv2d backward (col2im)");
            }
        }
    }

    // ==== im2col / col2im (CpuConvPool's layout for `images` images) ======================================

    /// col[(c*kh + ki)*kw + kj, n*OH*OW + oy*OW + ox] = x[n, c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw], or 0
    /// in the padding.  x: [images, C, H, W] -> col: [C*kh*kw, images*OH*OW] (overwritten)
    template <class T>
    static void im2col(const Window2d& g, int64_t images, const T* x, T* col) {
        cuda::im2col(g, images, x, col, cuda::stream());
        cuda::check_launch("im2col");
    }
    /// The adjoint of im2col.  col: [C*kh*kw, images*OH*OW] -> dx: [images, C, H, W] (accumulated)
    template <class T>
    static void col2im(const Window2d& g, int64_t images, const T* col, T* dx) {
        cuda::col2im(g, images, col, dx, cuda::stream());
        cuda::check_launch("col2im");
    }

    // ==== pooling over `planes` independent H x W planes (N*C for an NCHW batch; g.channels unused) ==========

    /// As CpuConvPool::max_pool2d: the first maximum of each window (a NaN wins), its plane index
    /// iy*W + ix in argmax (device memory; null: not written).  x: [planes, H, W] -> y, argmax: [planes, OH, OW]
    template <class T>
    static void max_pool2d(const Window2d& g, int64_t planes, const T* x, T* y, int64_t* argmax) {
        cuda::max_pool2d(g, planes, x, y, argmax, cuda::stream());
        cuda::check_launch("max_pool2d");
    }
    /// dx[p, argmax[p, o]] += dy[p, o], gathered per input pixel (deterministic with overlapping windows).
    template <class T>
    static void max_pool2d_backward(const Window2d& g, int64_t planes, const int64_t* argmax, const T* dy, T* dx) {
        cuda::max_pool2d_backward(g, planes, argmax, dy, dx, cuda::stream());
        cuda::check_launch("max_pool2d backward");
    }

    /// As CpuConvPool::avg_pool2d.  x: [planes, H, W] -> y: [planes, OH, OW]
    template <class T>
    static void avg_pool2d(const Window2d& g, int64_t planes, const T* x, T* y, bool count_include_pad) {
        cuda::avg_pool2d(g, planes, x, y, count_include_pad, cuda::stream());
        cuda::check_launch("avg_pool2d");
    }
    /// As CpuConvPool::avg_pool2d_backward, gathered per input pixel.  dy -> dx (accumulated)
    template <class T>
    static void avg_pool2d_backward(const Window2d& g, int64_t planes, const T* dy, T* dx, bool count_include_pad) {
        cuda::avg_pool2d_backward(g, planes, dy, dx, count_include_pad, cuda::stream());
        cuda::check_launch("avg_pool2d backward");
    }

    /// As CpuConvPool::adaptive_avg_pool2d (g.height, g.width, g.out_h, g.out_w used).
    template <class T>
    static void adaptive_avg_pool2d(const Window2d& g, int64_t planes, const T* x, T* y) {
        cuda::adaptive_avg_pool2d(g, planes, x, y, cuda::stream());
        cuda::check_launch("adaptive_avg_pool2d");
    }
    /// As CpuConvPool::adaptive_avg_pool2d_backward, gathered per input pixel.  dy -> dx (accumulated)
    template <class T>
    static void adaptive_avg_pool2d_backward(const Window2d& g, int64_t planes, const T* dy, T* dx) {
        cuda::adaptive_avg_pool2d_backward(g, planes, dy, dx, cuda::stream());
        cuda::check_launch("adaptive_avg_pool2d backward");
    }


private:
    /// n device elements from the caching allocator for the duration of a call (none when n is 0). Freed
    /// blocks are handed out again only to work enqueued later on the one stream, so freeing right after
    /// enqueuing the kernels that use it is safe.
    template <class T>
    class Scratch {
    public:
        explicit Scratch(int64_t n) : data_(n > 0 ? CudaMemory::allocate<T>(n) : nullptr), size_(n) {}
        Scratch(const Scratch&) = delete;
        Scratch& operator=(const Scratch&) = delete;
        ~Scratch() {
            if (data_) CudaMemory::deallocate(data_, size_);
        }
        [[nodiscard]] T* data() const noexcept { return data_; }

    private:
        T* data_;
        int64_t size_;
    };


    /// Images per chunk: as many of the N as keep per_image * images under chunk_elements and the product's
    /// width images * L within cuBLAS's 32-bit sizes; at least 1.
    static int64_t images_per_chunk(int64_t N, int64_t per_image, int64_t L) noexcept {
        const int64_t by_memory = chunk_elements / std::max<int64_t>(per_image, 1);
        const int64_t by_int = std::numeric_limits<int>::max() / std::max<int64_t>(L, 1);
        return std::clamp<int64_t>(std::min(by_memory, by_int), 1, std::max<int64_t>(N, 1));
    }

};

}  // namespace tapegrad::backend
