#pragma once
/// \file
/// Deterministic sums over broadcast dimensions, shared by zip_backward, strided_add, sum_axis and
/// add_column_sums: for a walk w and a target stride set st[target],
///
///     out[t] (+)= sum of g(offsets of j) over the elements j of w whose st[target] offset is t.
///
/// Every target element is owned by one thread (or one block), which adds its terms in an order fixed by
/// the sizes alone: no floating-point atomics, so results are the same on every run. Requires that distinct
/// kept index tuples give distinct target offsets (true for the strides of any tensor layout).
///
/// Kernels, then the launcher `reduce_into`, which picks one of them:
///   - nothing broadcast: one thread per element (`reduce_none_kernel`);
///   - the output's innermost dimension is broadcast (summing along contiguous memory): one block per target
///     element, its threads striding over the summed elements (`reduce_rows_kernel`);
///   - otherwise: 32 target elements per block along x, the summed elements split along y, the partial sums
///     added in order of y (`reduce_tile_kernel`); neighbouring threads read neighbouring addresses.

#include <tapegrad/backend/common/accumulate.hpp>
#include <tapegrad/backend/cuda/common.cuh>

namespace tapegrad::cuda::detail {

/// g for the copies and sums: the contiguous source element, src[off[0]].
template <class T>
struct Take {
    const T* src;
    __device__ T operator()(const int64_t off[3]) const { return src[off[0]]; }
};

/// out[t] (+)= g(j) for the one element j mapping to t
template <int target, class T, class G>
__global__ void reduce_none_kernel(Walk kept, int64_t K, G g, T* out, bool assign) {
    for (int64_t e = global_thread(); e < K; e += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        kept.locate(e, off);
        const T v = g(off);  // read before the write: with assign, out may be g's own source
        T& o = out[off[target]];
        o = assign ? v : o + v;
    }
}

/// out[t] (+)= sum_r g(t, r), one block per t: thread x adds r = x, x + blockDim.x, ..., then a block tree
template <int target, class T, class G>
__global__ void reduce_rows_kernel(Walk kept, int64_t K, Walk reduced, int64_t R, G g, T* out, bool assign) {
    __shared__ T scratch[32];
    for (int64_t e = blockIdx.x; e < K; e += gridDim.x) {
        int64_t at[3] = {0, 0, 0};
        kept.locate(e, at);
        backend::BlockSum<T> part;  // a thread's share, R / blockDim.x terms: blocked (accumulate.hpp)
        for (int64_t r = threadIdx.x; r < R; r += blockDim.x) {
            int64_t off[3] = {at[0], at[1], at[2]};
            reduced.locate(r, off);
            part.add(g(off));
        }
        const T acc = block_reduce(part.value(), SumOp{}, scratch);
        if (threadIdx.x == 0) {
            T& o = out[at[target]];
            o = assign ? acc : o + acc;
        }
    }
}

/// out[t] (+)= sum_r g(t, r), blockDim.x targets per block: thread (x, y) adds r = y, y + blockDim.y, ...
/// for target x, then thread (x, 0) adds the blockDim.y partial sums in order
template <int target, class T, class G>
__global__ void reduce_tile_kernel(Walk kept, int64_t K, Walk reduced, int64_t R, G g, T* out, bool assign) {
    T* partial = shared_array<T>();
    const int64_t tile = blockDim.x;
    // The bounds depend on the block only, so every thread reaches both barriers.
    for (int64_t base = blockIdx.x * tile; base < K; base += gridDim.x * tile) {
        const int64_t e = base + threadIdx.x;
        int64_t at[3] = {0, 0, 0};
        backend::BlockSum<T> part;  // a thread's share, R / blockDim.y terms: blocked (accumulate.hpp)
        if (e < K) {
            kept.locate(e, at);
            for (int64_t r = threadIdx.y; r < R; r += blockDim.y) {
                int64_t off[3] = {at[0], at[1], at[2]};
                reduced.locate(r, off);
                part.add(g(off));
            }
        }
        partial[threadIdx.y * blockDim.x + threadIdx.x] = part.value();
        __syncthreads();
        if (threadIdx.y == 0 && e < K) {
            T s = partial[threadIdx.x];
            for (unsigned j = 1; j < blockDim.y; ++j) s += partial[j * blockDim.x + threadIdx.x];
            T& o = out[at[target]];
            o = assign ? s : o + s;
        }
        __syncthreads();
    }
}

/// out[t] (+)= the sum of g over the elements of `w` whose st[target] offset is t (see the file comment).
/// `w` must be simplified and non-empty. `target` is a template argument so that kernels index their offset
/// arrays with constants (a run-time index would put them in local memory).
template <int target, class T, class G>
void reduce_into(const Walk& w, G g, T* out, bool assign, cudaStream_t stream) {
    Walk kept, reduced;
    split_walk(w, target, kept, reduced);
    const int64_t K = kept.numel(), R = reduced.numel();
    if (K == 0 || R == 0) return;
    if (R == 1) {
        reduce_none_kernel<target><<<grid_for(K), block_size, 0, stream>>>(kept, K, g, out, assign);
    } else if (w.st[target][w.rank - 1] == 0) {
        const unsigned threads = row_block_for(R);
        reduce_rows_kernel<target><<<grid_for(K, 1), threads, 0, stream>>>(kept, K, reduced, R, g, out, assign);
    } else {
        // Few targets and long sums (a bias gradient over a large batch): more threads per target.
        const unsigned ty = (K <= 2048 && R >= 256) ? 32 : 8;
        const dim3 threads(32, ty);
        const size_t shmem = sizeof(T) * 32 * ty;
        reduce_tile_kernel<target><<<grid_for(K, 32), threads, shmem, stream>>>(kept, K, reduced, R, g, out, assign);
    }
}

}  // namespace tapegrad::cuda::detail
