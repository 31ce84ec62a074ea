#pragma once
/// \file
/// Repeated float products with one fixed right operand: C[M, N] = alpha A[M, K] P[K, N] + beta C, for the
/// per-step products of a recurrent layer (a batch of B states times the recurrent weights, T times in a
/// row, forward and backward: ops/rnn.hpp). A BLAS library copies ("packs") its operands into its own
/// layout on every call; at B = 16 rows that copy of the weights costs about as much as the product itself.
/// Here P is packed once per sequence (`pack_panels`) and every step's product (`gemm_panels`) reads it
/// as it lies; A is read in place.
///
/// Layout of a packed P: column blocks of NR = 2 vectors of columns, each a contiguous K x NR panel (so a
/// product streams through it in order, free of the cache-set conflicts that reading a column block of a
/// row-major P with a power-of-two row length runs into), then the columns left at the right edge, row-major
/// [K, N mod NR]. It holds exactly K * N values.
///
/// The kernel: C is cut into tiles of MR rows by NR columns (MR = 8 with AVX-512's 32 registers, 6 below).
/// A tile's MR x NR sums stay in registers; each k loads the panel's NR values of row k, broadcasts A[i, k]
/// for each row and does MR x 2 fused multiply-adds. K runs in chunks of 256 rows of the panel (32 KB, an
/// L1 cache), and the tiles walk down M inside a chunk, so the panel is read from memory once per product.
/// Vectors are GCC/clang vector types of the widest float vector of the target (16 floats with AVX-512,
/// 8 with AVX, 4 otherwise); edge columns use a scalar loop. Each C element sums its products in k order,
/// as a BLAS kernel does within a block. On an AMD EPYC (Zen 4, AVX-512) core the step products of the lstm
/// benchmarks (16 x 128 x 512 both ways, 64 x 256 x 1024 both ways) ran at 111-114 GFLOP/s, near the core's
/// peak, against 64-96 for OpenBLAS 0.3.21's sgemm on the same operands.
///
/// Threads: column blocks are split between threads (OpenMP, when the program is built with it) under
/// detail::product_threads's rule, but with 128K multiply-adds per thread instead of a BLAS product's 4M:
/// the split starts one OpenMP team and nothing else (no BLAS team, no repacking), so a 16 x 128 x 512 step
/// product already gains from a second core. A core that other programs keep busy is not used, as for every
/// product. Each thread owns its columns: the result does not depend on the thread count.
///
/// `panel_layout` says whether CpuBlas packs floats this way: on targets with FMA and vectors of 8 floats or
/// more (-mavx2 -mfma, -march=native), in programs built with OpenMP (-fopenmp; tapegrad's own programs are).
/// Without FMA (a default build is SSE2 only) OpenBLAS's run-time selected kernels are faster; without
/// OpenMP the kernel would run on one thread where OpenBLAS splits a large step product (64 x 256 x 1024:
/// 191 us on 2 threads against the kernel's 300 us on one). There the packed form is the plain row-major P
/// and the product is gemm's.
/// The kernel is still compiled, and tested, in every build (at that build's width). As with Eigen, every
/// translation unit of one program must be compiled for the same target: the layout is chosen at compile
/// time, and pack_right and gemm_packed of two different targets would disagree on it.

#include <tapegrad/backend/cpu/threads.hpp>
#include <tapegrad/backend/cpu_threads.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tapegrad::backend::cpu {

namespace small_gemm_detail {

#if defined(__AVX512F__)
inline constexpr int kWidth = 16;
inline constexpr int kRows = 8;  // MR: 16 sums + 2 panel vectors + 1 broadcast of 32 registers
#elif defined(__AVX__)
inline constexpr int kWidth = 8;
inline constexpr int kRows = 6;  // 12 + 2 + 1 of 16
#else
inline constexpr int kWidth = 4;
inline constexpr int kRows = 6;
#endif
inline constexpr int kVectors = 2;
inline constexpr int64_t kPanelWidth = kVectors * kWidth;  // NR
inline constexpr int64_t kChunk = 256;                     // rows of a panel per pass: 256 x NR x 4 B <= 32 KB
/// Multiply-adds per thread before a product is split: the split costs one OpenMP team start (a few
/// microseconds), no BLAS team and no repacking, so 128K multiply-adds (about 2 microseconds of one core)
/// already pay for it: a 16 x 128 x 512 step product runs on two cores.
inline constexpr double kWorkPerThread = 128.0 * 1024;

using Vec = float __attribute__((vector_size(kWidth * sizeof(float))));

inline Vec load(const float* p) noexcept {
    Vec v;
    std::memcpy(&v, p, sizeof v);  // an unaligned vector load
    return v;
}
inline void store(float* p, Vec v) noexcept { std::memcpy(p, &v, sizeof v); }
/// x in every lane: one broadcast instruction (`Vec{} + x` adds 0 first, to keep -0's sign, and a lane-by-lane
/// fill compiles to one masked insert per lane).
inline Vec splat(float x) noexcept {
#if defined(__AVX512F__)
    return _mm512_set1_ps(x);
#elif defined(__AVX__)
    return _mm256_set1_ps(x);
#elif defined(__SSE__)
    return _mm_set1_ps(x);
#else
    return Vec{} + x;
#endif
}

/// acc[i] += sum over k in [0, K) of A[i, k] P[k, :] for the MR rows of a tile and the NR columns of one
/// panel: `a` is the tile's first row of A (row stride lda; with TransA, A is stored transposed, [K, M],
/// and `a` is its column of the tile's first row), `panel` the panel's rows (p[k * ldp + j]: NR for the
/// packed layout, a matrix's row stride where the panel is read in place). Each k loads the panel's NR
/// values once, broadcasts A[i, k] for each row and does MR x 2 fused multiply-adds. The one inner loop of
/// every kernel below, inlined into each so that the sums stay in registers.
template <int MR, bool TransA>
[[gnu::always_inline]] inline void accumulate(Vec (&acc)[MR][kVectors], int64_t K, const float* __restrict a,
                                              int64_t lda, const float* __restrict panel, int64_t ldp) noexcept {
    for (int64_t k = 0; k < K; ++k) {
        Vec p[kVectors];
        for (int v = 0; v < kVectors; ++v) p[v] = load(panel + k * ldp + v * kWidth);
        for (int i = 0; i < MR; ++i) {
            const Vec x = splat(TransA ? a[k * lda + i] : a[i * lda + k]);
            for (int v = 0; v < kVectors; ++v) acc[i][v] += x * p[v];
        }
    }
}

/// One tile: MR rows of C (row stride ldc) by the NR columns of one panel, over k in [0, K) (A and the panel
/// as for accumulate). C = alpha A P + beta C.
template <int MR, bool TransA>
inline void tile(int64_t K, const float* __restrict a, int64_t lda, const float* __restrict panel, int64_t ldp,
                 float* __restrict C, int64_t ldc, float alpha, float beta) noexcept {
    Vec acc[MR][kVectors];
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < kVectors; ++v) acc[i][v] = Vec{};
    accumulate<MR, TransA>(acc, K, a, lda, panel, ldp);
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < kVectors; ++v) {
            float* c = C + i * ldc + v * kWidth;
            Vec r = alpha * acc[i][v];
            if (beta != 0.0f) r += beta * load(c);  // beta = 0 never reads C (it may hold NaN)
            store(c, r);
        }
}

/// One tile of C = bias + A1 P1 + A2 P2 (two panels, packed layout, read whole: no chunks of K): MR rows of
/// C by NR columns; bias null for 0. Each element's sum starts at its bias, then adds A1's terms, then A2's.
template <int MR>
inline void tile_pair(int64_t K1, const float* __restrict a1, int64_t lda1, const float* __restrict p1, int64_t K2,
                      const float* __restrict a2, int64_t lda2, const float* __restrict p2,
                      const float* __restrict bias, float* __restrict C, int64_t ldc) noexcept {
    Vec acc[MR][kVectors];
    for (int v = 0; v < kVectors; ++v) {
        const Vec b = bias ? load(bias + v * kWidth) : Vec{};
        for (int i = 0; i < MR; ++i) acc[i][v] = b;
    }
    accumulate<MR, false>(acc, K1, a1, lda1, p1, kPanelWidth);
    accumulate<MR, false>(acc, K2, a2, lda2, p2, kPanelWidth);
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < kVectors; ++v) store(C + i * ldc + v * kWidth, acc[i][v]);
}

/// f(std::integral_constant<int, MR>{}, i) for the tiles of rows [0, M): whole tiles of kRows rows from
/// i = 0, then one tile of the rows left (fewer than kRows), each with its height as a compile-time MR.
template <class F>
inline void for_row_tiles(int64_t M, const F& f) {
    int64_t i = 0;
    for (; i + kRows <= M; i += kRows) f(std::integral_constant<int, kRows>{}, i);
    switch (M - i) {
        case 7: f(std::integral_constant<int, 7>{}, i); break;
        case 6: f(std::integral_constant<int, 6>{}, i); break;
        case 5: f(std::integral_constant<int, 5>{}, i); break;
        case 4: f(std::integral_constant<int, 4>{}, i); break;
        case 3: f(std::integral_constant<int, 3>{}, i); break;
        case 2: f(std::integral_constant<int, 2>{}, i); break;
        case 1: f(std::integral_constant<int, 1>{}, i); break;
        default: break;
    }
}

/// Rows [0, M) of tile_pair's product. Not inlined, as column_block.
[[gnu::noinline]] inline void column_block_pair(int64_t M, int64_t K1, const float* A1, int64_t lda1, const float* P1,
                                                int64_t K2, const float* A2, int64_t lda2, const float* P2,
                                                const float* bias, float* C, int64_t ldc) noexcept {
    for_row_tiles(M, [&](auto mr, int64_t i) {
        tile_pair<mr()>(K1, A1 + i * lda1, lda1, P1, K2, A2 + i * lda2, lda2, P2, bias, C + i * ldc, ldc);
    });
}

/// Rows [0, M) of C for one panel, over panel rows [0, K) in chunks; A row-major with row stride lda (with
/// TransA: A^T, A stored [K, M]), the panel's rows ldp apart.
/// Not inlined: on its own the compiler keeps a tile's sums and row pointers in registers.
template <bool TransA>
[[gnu::noinline]] void column_block(int64_t M, int64_t K, const float* A, int64_t lda, const float* panel, int64_t ldp,
                                    float* C, int64_t ldc, float alpha, float beta) noexcept {
    for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
        const int64_t kc = std::min(kChunk, K - k0);
        const float b = k0 == 0 ? beta : 1.0f;  // later chunks add to the sums so far
        const float* p = panel + k0 * ldp;
        for_row_tiles(M, [&](auto mr, int64_t i) {
            tile<mr(), TransA>(kc, TransA ? A + k0 * lda + i : A + i * lda + k0, lda, p, ldp, C + i * ldc, ldc,
                               alpha, b);
        });
    }
}

/// C = alpha A P + beta C with P in panels (and the edge columns row-major after them).
inline void run_panels(int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* packed, float beta,
                       float* C) noexcept {
    constexpr int64_t nr = kPanelWidth;
    const int64_t blocks = N / nr, edge = N - blocks * nr;
    int threads = 1;
#ifdef _OPENMP
    if (blocks >= 2 && !omp_in_parallel())
        threads = static_cast<int>(std::min<int64_t>({tapegrad::detail::product_threads(M, N, K, kWorkPerThread),
                                                      blocks, static_cast<int64_t>(omp_get_max_threads())}));
#endif
    if (threads > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t b = 0; b < blocks; ++b)
            column_block<false>(M, K, A, K, packed + b * K * nr, nr, C + b * nr, N, alpha, beta);
#endif
    } else {
        for (int64_t b = 0; b < blocks; ++b)
            column_block<false>(M, K, A, K, packed + b * K * nr, nr, C + b * nr, N, alpha, beta);
    }
    if (edge > 0) {
        const float* e = packed + blocks * K * nr;
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < edge; ++j) {
                float s = 0.0f;
                for (int64_t k = 0; k < K; ++k) s += A[i * K + k] * e[k * edge + j];
                float& c = C[i * N + blocks * nr + j];
                c = beta == 0.0f ? alpha * s : alpha * s + beta * c;
            }
    }
}

}  // namespace small_gemm_detail

/// The float vector width the kernel was compiled for (4, 8 or 16).
[[nodiscard]] constexpr int small_gemm_width() noexcept { return small_gemm_detail::kWidth; }

/// One panel of the layout, for the NR columns of P = W^T that are rows 0 .. NR-1 of W (row-major, row stride
/// ldw, K columns): panel[k * NR + j] = W[j * ldw + k]. For callers that pack only the panels they use
/// (cpu/rnn.hpp: each thread its own units' columns of W_ih^T and W_hh^T, read from the weights as stored).
inline void pack_panel_transposed(int64_t K, const float* __restrict W, int64_t ldw, float* __restrict panel) noexcept {
    constexpr int64_t nr = small_gemm_detail::kPanelWidth, kb = 16;
    for (int64_t k0 = 0; k0 < K; k0 += kb) {  // 16 columns of W at a time: rows read in runs, panel rows warm
        const int64_t k1 = std::min(K, k0 + kb);
        for (int64_t j = 0; j < nr; ++j)
            for (int64_t k = k0; k < k1; ++k) panel[k * nr + j] = W[j * ldw + k];
    }
}
/// One panel of the layout from P itself (row-major, row stride ldp): panel[k * NR + j] = P[k * ldp + j].
inline void pack_panel(int64_t K, const float* __restrict P, int64_t ldp, float* __restrict panel) noexcept {
    constexpr int64_t nr = small_gemm_detail::kPanelWidth;
    for (int64_t k = 0; k < K; ++k) std::memcpy(panel + k * nr, P + k * ldp, nr * sizeof(float));
}

/// Rows [k0, k1) of P [K, N] (row-major) into their places in the panel layout of the whole P, so that
/// threads can pack one P together, each its own rows.
inline void pack_panel_rows(int64_t K, int64_t N, const float* P, float* packed, int64_t k0, int64_t k1) noexcept {
    constexpr int64_t nr = small_gemm_detail::kPanelWidth;
    const int64_t blocks = N / nr, edge = N - blocks * nr;
    if (k1 <= k0) return;
    for (int64_t b = 0; b < blocks; ++b) pack_panel(k1 - k0, P + k0 * N + b * nr, N, packed + (b * K + k0) * nr);
    float* e = packed + blocks * K * nr;
    if (edge > 0)
        for (int64_t k = k0; k < k1; ++k)
            std::memcpy(e + k * edge, P + k * N + blocks * nr, static_cast<size_t>(edge) * sizeof(float));
}
/// Packs P [K, N] (row-major) into the panel layout (see the file comment); `packed` holds K * N values.
inline void pack_panels(int64_t K, int64_t N, const float* P, float* packed) noexcept {
    pack_panel_rows(K, N, P, packed, 0, K);
}

/// The columns of one panel of the layout (NR): 2 vectors.
[[nodiscard]] constexpr int64_t panel_width() noexcept { return small_gemm_detail::kPanelWidth; }

/// Multiply-adds per thread before the packed products are split (see the file comment).
[[nodiscard]] constexpr double panel_work_per_thread() noexcept { return small_gemm_detail::kWorkPerThread; }

/// The product with ONE panel, on the calling thread: C[M, NR] (row stride ldc) = alpha A[M, K] (row stride
/// lda) P_b + beta C, where panel = packed + b K NR is panel b of a P packed by pack_panels. For callers that
/// split a product's columns between threads themselves (cpu/rnn.hpp). K > 0.
inline void gemm_panel(int64_t M, int64_t K, float alpha, const float* A, int64_t lda, const float* panel, float beta,
                       float* C, int64_t ldc) noexcept {
    if (M > 0) small_gemm_detail::column_block<false>(M, K, A, lda, panel, panel_width(), C, ldc, alpha, beta);
}

/// C[M, NR] (row stride ldc) = bias + A1[M, K1] P1 + A2[M, K2] P2 on the calling thread, for one panel of
/// each of two packed right operands (panel pointers as for gemm_panel; K1 or K2 may be 0, its A and P then
/// unread), bias NR values or null for 0; C is written, never read. A recurrent step's pre-activations in
/// one pass (cpu/rnn.hpp): x_t W_ih^T + b + h_prev W_hh^T, where three passes over C cost as much again as
/// the input projection. K1 + K2 rows of panel are read for every tile of rows, from the L2 cache when
/// they do not fit L1.
inline void gemm_panel_pair(int64_t M, int64_t K1, const float* A1, int64_t lda1, const float* P1, int64_t K2,
                            const float* A2, int64_t lda2, const float* P2, const float* bias, float* C,
                            int64_t ldc) noexcept {
    if (M > 0) small_gemm_detail::column_block_pair(M, K1, A1, lda1, P1, K2, A2, lda2, P2, bias, C, ldc);
}

/// C[M, N] (row stride ldc) = alpha A^T P + beta C on the calling thread, with A stored [K, M] (row stride
/// lda) and P [K, N] (row stride ldp) read as they lie, unpacked: a weight gradient summed over many rows
/// (dW = dG^T Z, cpu/rnn.hpp), where each thread computes its own rows of C. The panel kernel, each panel
/// read from where it lies (a chunk of 256 of its rows is reused by every tile of rows from the L2 cache);
/// the columns past the last whole panel by a plain loop. beta = 0 ignores C's contents.
inline void gemm_at(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* P,
                    int64_t ldp, float beta, float* C, int64_t ldc) noexcept {
    constexpr int64_t nr = small_gemm_detail::kPanelWidth;
    if (M <= 0 || N <= 0) return;
    const int64_t blocks = K > 0 ? N / nr : 0;
    for (int64_t b = 0; b < blocks; ++b)
        small_gemm_detail::column_block<true>(M, K, A, lda, P + b * nr, ldp, C + b * nr, ldc, alpha, beta);
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = blocks * nr; j < N; ++j) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; ++k) s += A[k * lda + i] * P[k * ldp + j];
            float& c = C[i * ldc + j];
            c = beta == 0.0f ? alpha * s : alpha * s + beta * c;
        }
}

/// Whether CpuBlas::gemm runs a float product of this shape on the panel kernel (in builds where
/// panel_layout<float>() holds): whole panels of columns (N a multiple of the panel width) and fewer than
/// 2 x product_work_per_thread multiply-adds, the products a BLAS library runs on one thread. The kernel
/// packs at most one operand, one panel at a time, and splits them between threads from 128K multiply-adds
/// a thread: lstm_s's output layer (512 x 128 x 64, three products a step) ran on one core at 90 GFLOP/s.
/// The choice depends on the shape only, so a product gives the same bits on any thread count.
[[nodiscard]] inline bool panel_product(int64_t M, int64_t N, int64_t K) noexcept {
    return M > 0 && K > 0 && N > 0 && N % small_gemm_detail::kPanelWidth == 0 &&
           static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) <
               2.0 * tapegrad::detail::product_work_per_thread;
}

/// C[M, N] = alpha op(A) op(B) + beta C with gemm's arguments (row-major; op(A) [M, K], stored [K, M] when
/// trans_a; op(B) [K, N], stored [N, K] when trans_b), N a multiple of the panel width, K > 0: the panel
/// kernel over the column panels, split between threads as the per-step products are. B is read in place,
/// or with trans_b each panel is first packed (transposed) into the thread's scratch. beta = 0 ignores C.
inline void gemm_general(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                         const float* B, float beta, float* C) {
    constexpr int64_t nr = small_gemm_detail::kPanelWidth;
    const int64_t blocks = N / nr, lda = trans_a ? M : K;
    const auto block = [&](int64_t b) {
        const float* panel = B + b * nr;
        int64_t ldp = N;
        if (trans_b) {
            float* buf = scratch<float, 4>().get(K * nr);
            pack_panel_transposed(K, B + b * nr * K, K, buf);
            panel = buf;
            ldp = nr;
        }
        if (trans_a)
            small_gemm_detail::column_block<true>(M, K, A, lda, panel, ldp, C + b * nr, N, alpha, beta);
        else
            small_gemm_detail::column_block<false>(M, K, A, lda, panel, ldp, C + b * nr, N, alpha, beta);
    };
#ifdef _OPENMP
    int threads = 1;
    if (blocks >= 2 && !omp_in_parallel())
        threads = static_cast<int>(std::min<int64_t>({tapegrad::detail::product_threads(M, N, K, small_gemm_detail::kWorkPerThread),
                                                      blocks, static_cast<int64_t>(omp_get_max_threads())}));
    if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t b = 0; b < blocks; ++b) block(b);
        return;
    }
#endif
    for (int64_t b = 0; b < blocks; ++b) block(b);
}

/// C[M, N] = alpha A[M, K] P + beta C with P packed by pack_panels; A and C row-major and contiguous.
/// beta = 0 ignores C's contents.
inline void gemm_panels(int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* packed,
                        float beta, float* C) {
    if (M <= 0 || N <= 0) return;
    small_gemm_detail::run_panels(M, N, K, alpha, A, packed, beta, C);
}

/// Whether CpuBlas packs T in the panel layout (float, on a target with FMA and 8-float vectors or wider);
/// otherwise its packed form is the plain row-major matrix.
template <class T>
[[nodiscard]] constexpr bool panel_layout() noexcept {
    return TAPEGRAD_PANEL_KERNEL != 0 && std::is_same_v<T, float>;
}

}  // namespace tapegrad::backend::cpu
