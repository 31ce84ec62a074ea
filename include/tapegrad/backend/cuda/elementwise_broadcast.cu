/// \file
/// The CUDA backend's broadcasting primitives: zip / zip_backward through the binary functors (instantiated
/// for every one of backend/common/functor_list.hpp), and strided_copy / strided_add (transpose, permute,
/// expand and their adjoint). The plan is turned into a `Walk` (common.cuh); sums over broadcast dimensions go through the
/// deterministic reductions of broadcast_reduce.cuh. Kernels, then launchers, then the explicit
/// instantiations for float and double. Semantics are those of backend/cpu/elementwise.hpp.

#include <tapegrad/backend/cuda/broadcast_reduce.cuh>
#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/common/functor_list.hpp>
#include <tapegrad/backend/cuda/elementwise.cuh>

namespace tapegrad::cuda {
namespace detail {

/// out[i] = f(a[i], b[i])  (both operands have the output's shape)
template <class T, class F>
__global__ void zip_contig_kernel(int64_t n, const T* a, const T* b, T* out, F f) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = f(a[i], b[i]);
}

/// out[j] = f(a[j's a offset], b[j's b offset])
template <class T, class F>
__global__ void zip_kernel(Walk w, int64_t n, const T* a, const T* b, T* out, F f) {
    for (int64_t j = global_thread(); j < n; j += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        w.locate(j, off);
        out[off[0]] = f(a[off[1]], b[off[2]]);
    }
}

/// db[i] += f.db(a[i], b[i], y[i], dy[i]); da[i] (+)= f.da(...)  (both operands have the output's shape).
/// Both terms are computed from dy[i] before either write, so da may be dy (with assign_a) and da may be db
/// (a and b the same tensor: then both terms add up in it).
template <class T, class F>
__global__ void zip_backward_contig_kernel(int64_t n, const T* a, const T* b, const T* y, const T* dy, T* da, T* db,
                                           F f, bool assign_a) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const T av = a[i], bv = b[i], yv = y[i], g = dy[i];
        const T ga = f.da(av, bv, yv, g), gb = f.db(av, bv, yv, g);
        if (db) db[i] += gb;
        if (da) da[i] = assign_a ? ga : da[i] + ga;
    }
}

/// The term f.da(a, b, y, dy) of one output element, for reduce_into (off: output, a, b offsets).
template <class T, class F>
struct ZipDa {
    const T *a, *b, *y, *dy;
    F f;
    __device__ T operator()(const int64_t off[3]) const { return f.da(a[off[1]], b[off[2]], y[off[0]], dy[off[0]]); }
};
/// The term f.db(a, b, y, dy) of one output element, for reduce_into.
template <class T, class F>
struct ZipDb {
    const T *a, *b, *y, *dy;
    F f;
    __device__ T operator()(const int64_t off[3]) const { return f.db(a[off[1]], b[off[2]], y[off[0]], dy[off[0]]); }
};

/// out[j] = in[j's offset under p.sa]
template <class T>
__global__ void strided_copy_kernel(Walk w, int64_t n, const T* in, T* out) {
    for (int64_t j = global_thread(); j < n; j += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        w.locate(j, off);
        out[off[0]] = in[off[1]];
    }
}

}  // namespace detail

// ---- launchers -----------------------------------------------------------------------------------------

template <class T, class F>
void zip(const backend::Strided& p, const T* a, const T* b, T* out, F f, cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0) return;
    if (p.a_contig && p.b_contig) {
        detail::zip_contig_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, a, b, out, f);
        return;
    }
    const detail::Walk w = detail::walk_of(p, true);
    detail::zip_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(w, n, a, b, out, f);
}

/// Each operand's gradient is its own kernel (or one fused kernel when neither is broadcast), db's first:
/// da may be dy itself (assign_a), and db's terms need dy intact. A broadcast operand is summed by
/// detail::reduce_into, one owner per element, so no atomics.
template <class T, class F>
void zip_backward(const backend::Strided& p, const T* a, const T* b, const T* y, const T* dy, T* da, T* db, F f,
                  bool assign_a, cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0 || (!da && !db)) return;
    if (p.a_contig && p.b_contig) {
        detail::zip_backward_contig_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(
            n, a, b, y, dy, da, db, f, assign_a);
        return;
    }
    const detail::Walk w = detail::walk_of(p, true);
    if (db) detail::reduce_into<2>(w, detail::ZipDb<T, F>{a, b, y, dy, f}, db, false, stream);
    if (da) detail::reduce_into<1>(w, detail::ZipDa<T, F>{a, b, y, dy, f}, da, assign_a, stream);
}

template <class T>
void strided_copy(const backend::Strided& p, const T* in, T* out, cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0) return;
    const detail::Walk w = detail::walk_of(p, false);
    detail::strided_copy_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(w, n, in, out);
}

/// out[j's offset under p.sa] += in[j], summed over the dimensions where p.sa is 0 (detail::reduce_into).
template <class T>
void strided_add(const backend::Strided& p, const T* in, T* out, cudaStream_t stream) {
    if (p.numel() <= 0) return;
    detail::reduce_into<1>(detail::walk_of(p, false), detail::Take<T>{in}, out, false, stream);
}

// ---- explicit instantiations ---------------------------------------------------------------------------

#define TAPEGRAD_CUDA_STRIDED(T)                                                          \
    template void strided_copy<T>(const backend::Strided&, const T*, T*, cudaStream_t); \
    template void strided_add<T>(const backend::Strided&, const T*, T*, cudaStream_t);
TAPEGRAD_CUDA_STRIDED(float)
TAPEGRAD_CUDA_STRIDED(double)
#undef TAPEGRAD_CUDA_STRIDED

// zip and zip_backward for every binary functor of backend/common/functor_list.hpp (add new functors there, not here).
#define TAPEGRAD_CUDA_ZIP_T(T, F)                                                                          \
    template void zip<T, fn::F>(const backend::Strided&, const T*, const T*, T*, fn::F, cudaStream_t);     \
    template void zip_backward<T, fn::F>(const backend::Strided&, const T*, const T*, const T*, const T*, \
                                         T*, T*, fn::F, bool, cudaStream_t);
#define TAPEGRAD_CUDA_ZIP(F)      \
    TAPEGRAD_CUDA_ZIP_T(float, F) \
    TAPEGRAD_CUDA_ZIP_T(double, F)
TAPEGRAD_BINARY_FUNCTORS(TAPEGRAD_CUDA_ZIP)
#undef TAPEGRAD_CUDA_ZIP
#undef TAPEGRAD_CUDA_ZIP_T

}  // namespace tapegrad::cuda
