#pragma once
/// \file
/// Device helpers shared by the CUDA kernels (the .cu files beside this header, which nvcc compiles; host
/// code includes the launcher declarations of each family, cuda/<family>.cuh, instead): launch configurations, grid-stride ranges, warp and block
/// reductions, and `Walk`, the plain-data form of a broadcasting plan that kernels take by value.
///
/// Launch conventions: 64-bit indices everywhere, grid-stride loops, grids capped at `max_grid` blocks, and
/// launchers return before launching anything when there is no work (a zero-sized grid is a launch error).

#include <tapegrad/backend/common/strided.hpp>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace tapegrad::cuda::detail {

/// Threads per block of the one-dimensional kernels.
inline constexpr int block_size = 256;
/// Upper bound on the blocks of a launch; grid-stride loops cover the rest.
inline constexpr int64_t max_grid = 65535;

/// Blocks for `items` work items handed out `per_block` at a time (items > 0), capped at `max_grid`.
inline unsigned grid_for(int64_t items, int64_t per_block = block_size) {
    const int64_t g = (items + per_block - 1) / per_block;
    return static_cast<unsigned>(g < max_grid ? g : max_grid);
}

/// Threads per block for one block per row of `n` elements: a whole number of warps, from 32 up to 256.
inline unsigned row_block_for(int64_t n) {
    const int64_t t = (n + 31) / 32 * 32;
    return static_cast<unsigned>(t < 32 ? 32 : (t > 256 ? 256 : t));
}

/// The first global thread index and the grid's thread count, as 64-bit values for grid-stride loops.
__device__ inline int64_t global_thread() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- reductions ------------------------------------------------------------------------------------------

/// a + b
struct SumOp {
    template <class T> __device__ T operator()(T a, T b) const { return a + b; }
    template <class T> __device__ static T identity() { return T(0); }
};
/// max(a, b), NaN if either is NaN (so a NaN anywhere in a row reaches the result)
struct MaxOp {
    template <class T> __device__ T operator()(T a, T b) const { return (a > b || a != a) ? a : b; }
    template <class T> __device__ static T identity() { return -static_cast<T>(INFINITY); }
};

/// Reduces v over the 32 lanes of a warp; lane 0 gets the result. A fixed tree, so the result does not
/// vary between runs.
template <class T, class Op>
__device__ T warp_reduce(T v, Op op) {
    for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
    return v;
}

/// Reduces v over the block (blockDim.x a multiple of 32, blockDim.y = 1) and returns the result to every
/// thread. `scratch` holds at least 32 values of shared memory; it may be reused by the next call.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T* scratch) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned warps = blockDim.x >> 5;
    v = warp_reduce(v, op);
    __syncthreads();  // every thread has read the previous call's result from scratch[0]
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? scratch[lane] : Op::template identity<T>();
        v = warp_reduce(v, op);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

/// Dynamic shared memory as an array of T (declared once as bytes, since `extern __shared__ T x[]` may not
/// be declared with two element types in one program).
template <class T>
__device__ T* shared_array() {
    extern __shared__ __align__(16) unsigned char tapegrad_shared_bytes[];
    return reinterpret_cast<T*>(tapegrad_shared_bytes);
}

// ---- Walk: a broadcasting plan as plain data ------------------------------------------------------------

/// A row-major walk over `rank` dimensions with three sets of strides (in elements, 0 on broadcast
/// dimensions): by convention st[0] is the contiguous output (or input of a strided copy), st[1] operand a
/// and st[2] operand b. Plain data, passed to kernels by value; `backend::Strided` holds std::arrays, which
/// device code cannot call into without --expt-relaxed-constexpr.
struct Walk {
    int rank = 0;
    int64_t dims[backend::max_rank] = {};
    int64_t st[3][backend::max_rank] = {};

    /// Adds to off[k] the offset, under strides st[k], of the element with row-major index `lin`
    /// (0 <= lin < the product of dims).
    __host__ __device__ void locate(int64_t lin, int64_t off[3]) const {
        for (int d = rank - 1; d > 0; --d) {
            const int64_t q = lin / dims[d];
            const int64_t i = lin - q * dims[d];
            off[0] += i * st[0][d];
            off[1] += i * st[1][d];
            off[2] += i * st[2][d];
            lin = q;
        }
        if (rank > 0) {
            off[0] += lin * st[0][0];
            off[1] += lin * st[1][0];
            off[2] += lin * st[2][0];
        }
    }
    /// The number of elements walked (1 for rank 0).
    __host__ __device__ int64_t numel() const {
        int64_t n = 1;
        for (int d = 0; d < rank; ++d) n *= dims[d];
        return n;
    }
};

/// `w` with its extent-1 dimensions dropped and neighbours merged wherever every stride set steps through
/// both as one run (outer stride == inner stride * inner extent): same elements, same row-major order,
/// usually rank 1 or 2, so fewer divisions per element in `locate`. No extent may be 0.
inline Walk simplified(const Walk& w) {
    Walk out;
    for (int d = 0; d < w.rank; ++d) {
        const int64_t n = w.dims[d];
        if (n == 1) continue;
        const int l = out.rank - 1;
        if (l >= 0 && out.st[0][l] == w.st[0][d] * n && out.st[1][l] == w.st[1][d] * n &&
            out.st[2][l] == w.st[2][d] * n) {
            out.dims[l] *= n;
            for (int k = 0; k < 3; ++k) out.st[k][l] = w.st[k][d];
            continue;
        }
        out.dims[out.rank] = n;
        for (int k = 0; k < 3; ++k) out.st[k][out.rank] = w.st[k][d];
        ++out.rank;
    }
    return out;
}

/// The walk of a plan: st[0] the output's contiguous strides, st[1] = p.sa, st[2] = p.sb (or zeros without
/// `with_b`, for the one-operand strided copies, whose sb is unused). Simplified; p.numel() must be > 0.
inline Walk walk_of(const backend::Strided& p, bool with_b) {
    Walk w;
    w.rank = p.rank;
    int64_t contiguous = 1;
    for (int d = p.rank - 1; d >= 0; --d) {
        const auto i = static_cast<size_t>(d);
        w.dims[d] = p.dims[i];
        w.st[0][d] = contiguous;
        w.st[1][d] = p.sa[i];
        w.st[2][d] = with_b ? p.sb[i] : 0;
        contiguous *= p.dims[i];
    }
    return simplified(w);
}

/// Splits a (simplified) walk by the strides st[target]: `kept` walks the dimensions where they are non-zero
/// (one step per distinct target element), `reduced` those where they are 0 (the broadcast dimensions
/// summed into each target element). The offset of output element (e, r) is kept.locate(e) +
/// reduced.locate(r).
inline void split_walk(const Walk& w, int target, Walk& kept, Walk& reduced) {
    Walk k, r;
    for (int d = 0; d < w.rank; ++d) {
        Walk& to = w.st[target][d] != 0 ? k : r;
        to.dims[to.rank] = w.dims[d];
        for (int s = 0; s < 3; ++s) to.st[s][to.rank] = w.st[s][d];
        ++to.rank;
    }
    kept = simplified(k);
    reduced = simplified(r);
}

}  // namespace tapegrad::cuda::detail
