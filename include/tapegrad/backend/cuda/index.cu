/// \file
/// The CUDA backend's index kernels. Semantics are those of backend/cpu/index.hpp; every backward gives
/// each gradient element to one thread, which adds its contributions in the CPU's order (no atomics), so
/// both devices produce the same bits on every run.

#include <tapegrad/backend/cuda/common.cuh>
#include <tapegrad/backend/cuda/index.cuh>

#include <cub/device/device_radix_sort.cuh>

namespace tapegrad::cuda {
namespace detail {

// ---- conversions, comparisons, arg-reductions, strided copies --------------------------------------------

template <class S, class U>
__global__ void convert_kernel(int64_t n, const S* x, U* out) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = static_cast<U>(x[i]);
}

template <class T>
__global__ void compare_kernel(Walk w, int64_t n, backend::CompareOp op, const T* a, const T* b, uint8_t* out) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        w.locate(i, off);
        out[off[0]] = backend::compare_values(op, a[off[1]], b[off[2]]) ? 1 : 0;
    }
}

template <class T>
__global__ void arg_reduce_kernel(int64_t outer, int64_t n, int64_t inner, bool is_min, const T* x, int64_t* out) {
    const int64_t m = outer * inner;
    for (int64_t t = global_thread(); t < m; t += grid_threads()) {
        const int64_t o = t / inner, i = t - o * inner;
        const T* src = x + o * n * inner + i;
        T best = src[0];
        int64_t bi = 0;
        for (int64_t k = 1; k < n; ++k) {
            const T v = src[k * inner];
            const bool better = is_min ? v < best : v > best;
            if (better || (v != v && best == best)) {
                best = v;
                bi = k;
            }
        }
        out[t] = bi;
    }
}

template <class T>
__global__ void copy_strided_kernel(Walk w, int64_t n, const T* x, T* out) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        w.locate(i, off);
        out[off[0]] = x[off[1]];
    }
}

__global__ void set_kernel(int64_t* p, int64_t v) { *p = v; }

__global__ void out_of_range_kernel(int64_t n, const int64_t* ids, int64_t lo, int64_t hi, int64_t* first) {
    for (int64_t i = global_thread(); i < n; i += grid_threads())
        if (ids[i] < lo || ids[i] >= hi)
            atomicMin(reinterpret_cast<unsigned long long*>(first), static_cast<unsigned long long>(i));
}

// ---- embedding ----------------------------------------------------------------------------------------------

template <class T>
__global__ void embedding_kernel(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, const T* w, T* out) {
    const int64_t total = n * dim;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t p = t / dim, c = t - p * dim;
        const int64_t r = ids[p];
        out[t] = (r >= 0 && r < rows) ? w[r * dim + c] : T(0);
    }
}

/// keys[p] = ids[p] when it is a row that takes gradient, else `rows` (sorted last, skipped); vals[p] = p.
__global__ void embedding_keys_kernel(int64_t n, int64_t rows, const int64_t* ids, int64_t padding_idx,
                                      unsigned long long* keys, int64_t* vals) {
    for (int64_t p = global_thread(); p < n; p += grid_threads()) {
        const int64_t r = ids[p];
        keys[p] = static_cast<unsigned long long>((r >= 0 && r < rows && r != padding_idx) ? r : rows);
        vals[p] = p;
    }
}

/// One thread per (sorted position i that starts a run of equal ids, column c): adds dy of the run's
/// positions (ascending, the radix sort being stable) into dw[id, c], starting from its current value.
template <class T>
__global__ void embedding_segments_kernel(int64_t n, int64_t dim, int64_t rows, const unsigned long long* keys,
                                          const int64_t* pos, const T* dy, T* dw) {
    const int64_t total = n * dim;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t i = t / dim, c = t - i * dim;
        const unsigned long long r = keys[i];
        if (r >= static_cast<unsigned long long>(rows) || (i > 0 && keys[i - 1] == r)) continue;
        T* dst = dw + static_cast<int64_t>(r) * dim + c;
        T acc = *dst;
        for (int64_t j = i; j < n && keys[j] == r; ++j) acc += dy[pos[j] * dim + c];
        *dst = acc;
    }
}

// ---- index_select and gather --------------------------------------------------------------------------------

template <class T>
__global__ void index_select_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx,
                                    const T* x, T* out) {
    const int64_t total = outer * k * inner;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t i = t % inner, oj = t / inner, j = oj % k, o = oj / k;
        const int64_t r = idx[j];
        out[t] = (r >= 0 && r < n) ? x[(o * n + r) * inner + i] : T(0);
    }
}

template <class T>
__global__ void index_select_backward_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx,
                                             const T* dy, T* dx) {
    const int64_t total = outer * n * inner;
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        const int64_t i = t % inner, orow = t / inner, r = orow % n, o = orow / n;
        T acc = dx[t];
        bool any = false;
        for (int64_t j = 0; j < k; ++j)
            if (idx[j] == r) {
                acc += dy[(o * k + j) * inner + i];
                any = true;
            }
        if (any) dx[t] = acc;
    }
}

/// GatherPlan as plain data with both tensors' row-major strides.
struct GatherWalk {
    int rank = 0;
    int dim = 0;
    int64_t dx[backend::max_rank] = {};
    int64_t di[backend::max_rank] = {};
    int64_t xs[backend::max_rank] = {};
    int64_t is[backend::max_rank] = {};
};
inline GatherWalk gather_walk(const backend::GatherPlan& g) {
    GatherWalk w;
    w.rank = g.rank;
    w.dim = g.dim;
    int64_t ax = 1, ai = 1;
    for (int d = g.rank - 1; d >= 0; --d) {
        const auto u = static_cast<size_t>(d);
        w.dx[d] = g.dx[u];
        w.di[d] = g.di[u];
        w.xs[d] = ax;
        w.is[d] = ai;
        ax *= g.dx[u];
        ai *= g.di[u];
    }
    return w;
}

template <class T>
__global__ void gather_kernel(GatherWalk g, int64_t total, const int64_t* idx, const T* x, T* out) {
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        int64_t rest = t, off = 0;
        for (int d = g.rank - 1; d >= 0; --d) {
            const int64_t q = rest / g.di[d], m = rest - q * g.di[d];
            if (d != g.dim) off += m * g.xs[d];
            rest = q;
        }
        const int64_t r = idx[t];
        out[t] = (r >= 0 && r < g.dx[g.dim]) ? x[off + r * g.xs[g.dim]] : T(0);
    }
}

template <class T>
__global__ void gather_backward_kernel(GatherWalk g, int64_t total, const int64_t* idx, const T* dy, T* dx) {
    for (int64_t t = global_thread(); t < total; t += grid_threads()) {
        int64_t rest = t, base = 0, r = 0;
        bool inside = true;
        for (int d = g.rank - 1; d >= 0; --d) {
            const int64_t q = rest / g.dx[d], m = rest - q * g.dx[d];
            if (d == g.dim) {
                r = m;
            } else {
                inside = inside && m < g.di[d];
                base += m * g.is[d];
            }
            rest = q;
        }
        if (!inside) continue;
        T acc = dx[t];
        bool any = false;
        for (int64_t k = 0; k < g.di[g.dim]; ++k) {
            const int64_t o = base + k * g.is[g.dim];
            if (idx[o] == r) {
                acc += dy[o];
                any = true;
            }
        }
        if (any) dx[t] = acc;
    }
}

// ---- where and masked_fill -----------------------------------------------------------------------------------

template <class T>
__global__ void where_kernel(Walk w, int64_t n, const uint8_t* mask, const T* a, const T* b, T* out) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        w.locate(i, off);
        out[off[0]] = mask[off[1]] ? a[off[0]] : b[off[0]];
    }
}
template <class T>
__global__ void masked_fill_kernel(Walk w, int64_t n, const uint8_t* mask, const T* x, T v, T* out) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        w.locate(i, off);
        out[off[0]] = mask[off[1]] ? v : x[off[0]];
    }
}
template <class T>
__global__ void where_backward_kernel(Walk w, int64_t n, const uint8_t* mask, const T* dy, T* da, T* db) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        int64_t off[3] = {0, 0, 0};
        w.locate(i, off);
        const bool m = mask[off[1]] != 0;
        if (m && da) da[off[0]] += dy[off[0]];
        if (!m && db) db[off[0]] += dy[off[0]];
    }
}

/// The bits a radix sort of keys in [0, rows] needs.
inline int key_bits(int64_t rows) {
    int bits = 1;
    while (bits < 63 && (int64_t{1} << bits) <= rows) ++bits;
    return bits;
}
inline size_t align_up(size_t b) { return (b + 255) / 256 * 256; }

}  // namespace detail

template <class S, class U>
void convert(int64_t n, const S* x, U* out, cudaStream_t stream) {
    if (n <= 0) return;
    detail::convert_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, x, out);
}

template <class T>
void compare(const backend::Strided& p, backend::CompareOp op, const T* a, const T* b, uint8_t* out,
             cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0) return;
    detail::compare_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(detail::walk_of(p, true), n, op, a,
                                                                                     b, out);
}

template <class T>
void arg_reduce_axis(int64_t outer, int64_t n, int64_t inner, bool is_min, const T* x, int64_t* out,
                     cudaStream_t stream) {
    const int64_t m = outer * inner;
    if (m <= 0 || n <= 0) return;
    detail::arg_reduce_kernel<<<detail::grid_for(m), detail::block_size, 0, stream>>>(outer, n, inner, is_min, x, out);
}

template <class T>
void copy_strided(const backend::Strided& p, const T* x, T* out, cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0) return;
    detail::copy_strided_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(detail::walk_of(p, false), n,
                                                                                          x, out);
}

void find_out_of_range(int64_t n, const int64_t* ids, int64_t lo, int64_t hi, int64_t* first, cudaStream_t stream) {
    detail::set_kernel<<<1, 1, 0, stream>>>(first, n);
    if (n <= 0) return;
    detail::out_of_range_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, ids, lo, hi, first);
}

template <class T>
void embedding(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, const T* w, T* out, cudaStream_t stream) {
    const int64_t total = n * dim;
    if (total <= 0) return;
    detail::embedding_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(n, dim, rows, ids, w, out);
}

size_t embedding_backward_scratch(int64_t n, int64_t rows) {
    size_t temp = 0;
    cub::DeviceRadixSort::SortPairs(nullptr, temp, static_cast<const unsigned long long*>(nullptr),
                                    static_cast<unsigned long long*>(nullptr), static_cast<const int64_t*>(nullptr),
                                    static_cast<int64_t*>(nullptr), n, 0, detail::key_bits(rows));
    const size_t each = detail::align_up(static_cast<size_t>(n) * 8);
    return 4 * each + detail::align_up(temp);
}

template <class T>
void embedding_backward(int64_t n, int64_t dim, int64_t rows, const int64_t* ids, int64_t padding_idx, const T* dy,
                        T* dw, void* scratch, size_t scratch_bytes, cudaStream_t stream) {
    if (n <= 0 || dim <= 0) return;
    const size_t each = detail::align_up(static_cast<size_t>(n) * 8);
    auto* base = static_cast<char*>(scratch);
    auto* keys_in = reinterpret_cast<unsigned long long*>(base);
    auto* keys_out = reinterpret_cast<unsigned long long*>(base + each);
    auto* vals_in = reinterpret_cast<int64_t*>(base + 2 * each);
    auto* vals_out = reinterpret_cast<int64_t*>(base + 3 * each);
    void* temp = base + 4 * each;
    size_t temp_bytes = scratch_bytes - 4 * each;
    detail::embedding_keys_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(n, rows, ids, padding_idx,
                                                                                            keys_in, vals_in);
    cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, vals_in, vals_out, n, 0,
                                    detail::key_bits(rows), stream);
    const int64_t total = n * dim;
    detail::embedding_segments_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(
        n, dim, rows, keys_out, vals_out, dy, dw);
}

template <class T>
void index_select_axis(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx, const T* x, T* out,
                       cudaStream_t stream) {
    const int64_t total = outer * k * inner;
    if (total <= 0) return;
    detail::index_select_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(outer, n, inner, k, idx, x,
                                                                                              out);
}

template <class T>
void index_select_axis_backward(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* idx, const T* dy,
                                T* dx, cudaStream_t stream) {
    const int64_t total = outer * n * inner;
    if (total <= 0 || k <= 0) return;
    detail::index_select_backward_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(outer, n, inner,
                                                                                                       k, idx, dy, dx);
}

template <class T>
void gather_axis(const backend::GatherPlan& g, const int64_t* idx, const T* x, T* out, cudaStream_t stream) {
    const detail::GatherWalk w = detail::gather_walk(g);
    int64_t total = 1;
    for (int d = 0; d < w.rank; ++d) total *= w.di[d];
    if (total <= 0) return;
    detail::gather_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(w, total, idx, x, out);
}

template <class T>
void gather_axis_backward(const backend::GatherPlan& g, const int64_t* idx, const T* dy, T* dx, cudaStream_t stream) {
    const detail::GatherWalk w = detail::gather_walk(g);
    int64_t total = 1, itotal = 1;
    for (int d = 0; d < w.rank; ++d) {
        total *= w.dx[d];
        itotal *= w.di[d];
    }
    if (total <= 0 || itotal <= 0) return;
    detail::gather_backward_kernel<<<detail::grid_for(total), detail::block_size, 0, stream>>>(w, total, idx, dy, dx);
}

template <class T>
void where(const backend::Strided& p, const uint8_t* mask, const T* a, const T* b, T* out, cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0) return;
    detail::where_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(detail::walk_of(p, false), n, mask, a,
                                                                                   b, out);
}
template <class T>
void masked_fill(const backend::Strided& p, const uint8_t* mask, const T* x, T v, T* out, cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0) return;
    detail::masked_fill_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(detail::walk_of(p, false), n,
                                                                                         mask, x, v, out);
}
template <class T>
void where_backward(const backend::Strided& p, const uint8_t* mask, const T* dy, T* da, T* db, cudaStream_t stream) {
    const int64_t n = p.numel();
    if (n <= 0 || (!da && !db)) return;
    detail::where_backward_kernel<<<detail::grid_for(n), detail::block_size, 0, stream>>>(detail::walk_of(p, false), n,
                                                                                            mask, dy, da, db);
}

// ---- instantiations -------------------------------------------------------------------------------------------

#define TAPEGRAD_CONVERT_TO(S)                                                                                   \
    template void convert<S, float>(int64_t, const S*, float*, cudaStream_t);                                  \
    template void convert<S, double>(int64_t, const S*, double*, cudaStream_t);                                \
    template void convert<S, int64_t>(int64_t, const S*, int64_t*, cudaStream_t);                              \
    template void convert<S, int32_t>(int64_t, const S*, int32_t*, cudaStream_t);                              \
    template void convert<S, uint8_t>(int64_t, const S*, uint8_t*, cudaStream_t);
#define TAPEGRAD_INDEX_ANY(T)                                                                                    \
    TAPEGRAD_CONVERT_TO(T)                                                                                      \
    template void compare<T>(const backend::Strided&, backend::CompareOp, const T*, const T*, uint8_t*,          \
                             cudaStream_t);                                                                     \
    template void arg_reduce_axis<T>(int64_t, int64_t, int64_t, bool, const T*, int64_t*, cudaStream_t);        \
    template void copy_strided<T>(const backend::Strided&, const T*, T*, cudaStream_t);
#define TAPEGRAD_INDEX_GRAD(T)                                                                                   \
    template void embedding<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, T*, cudaStream_t);          \
    template void embedding_backward<T>(int64_t, int64_t, int64_t, const int64_t*, int64_t, const T*, T*, void*, \
                                        size_t, cudaStream_t);                                                  \
    template void index_select_axis<T>(int64_t, int64_t, int64_t, int64_t, const int64_t*, const T*, T*,        \
                                       cudaStream_t);                                                           \
    template void index_select_axis_backward<T>(int64_t, int64_t, int64_t, int64_t, const int64_t*, const T*, T*, \
                                                cudaStream_t);                                                  \
    template void gather_axis<T>(const backend::GatherPlan&, const int64_t*, const T*, T*, cudaStream_t);       \
    template void gather_axis_backward<T>(const backend::GatherPlan&, const int64_t*, const T*, T*, cudaStream_t); \
    template void where<T>(const backend::Strided&, const uint8_t*, const T*, const T*, T*, cudaStream_t);      \
    template void masked_fill<T>(const backend::Strided&, const uint8_t*, const T*, T, T*, cudaStream_t);       \
    template void where_backward<T>(const backend::Strided&, const uint8_t*, const T*, T*, T*, cudaStream_t);

TAPEGRAD_INDEX_ANY(float)
TAPEGRAD_INDEX_ANY(double)
TAPEGRAD_INDEX_ANY(int64_t)
TAPEGRAD_INDEX_ANY(int32_t)
TAPEGRAD_INDEX_ANY(uint8_t)
TAPEGRAD_INDEX_GRAD(float)
TAPEGRAD_INDEX_GRAD(double)

}  // namespace tapegrad::cuda
