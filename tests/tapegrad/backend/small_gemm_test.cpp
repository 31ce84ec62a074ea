// Tests for tapegrad/backend/cpu/small_gemm.hpp, the packed-panel float product that runs every time step of
// a recurrent layer: against a double-precision reference on sizes that exercise every tile height, the
// scalar right edge (N not a multiple of the panel width), K = 1 and K past one 256-row chunk, and
// alpha/beta, with the error held to the bound of a K-term float sum; beta = 0 must ignore C even when it
// holds NaN; and the backend's pack_right + gemm_packed (whichever layout the build packs) must equal gemm.

#include <tapegrad/tapegrad.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

using tapegrad::Generator;
namespace cpu = tapegrad::backend::cpu;

/// P [K, N] in the kernel's panel layout.
std::vector<float> packed(int64_t K, int64_t N, const std::vector<float>& P) {
    std::vector<float> out(P.size());
    cpu::pack_panels(K, N, P.data(), out.data());
    return out;
}

std::vector<float> uniform_values(int64_t n, Generator& g) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = static_cast<float>(-1.0 + 2.0 * g.uniform01<double>());
    return v;
}

/// Checks C (from a float kernel) against alpha A P + beta C0 in double: each element within
/// 2 (K + 2) eps (sum |alpha a p| + |beta c0|), the bound of a K-term float sum plus the scaling.
void check_product(int64_t M, int64_t N, int64_t K, float alpha, float beta, const std::vector<float>& A,
                   const std::vector<float>& P, const std::vector<float>& C0, const std::vector<float>& C) {
    const double eps = std::numeric_limits<float>::epsilon();
    int bad = 0;
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double exact = 0, magnitude = 0;
            for (int64_t k = 0; k < K; ++k) {
                const double t =
                    static_cast<double>(A[static_cast<size_t>(i * K + k)]) * P[static_cast<size_t>(k * N + j)];
                exact += t;
                magnitude += std::abs(t);
            }
            exact *= alpha;
            magnitude *= std::abs(alpha);
            if (beta != 0.0f) {
                exact += static_cast<double>(beta) * C0[static_cast<size_t>(i * N + j)];
                magnitude += std::abs(static_cast<double>(beta) * C0[static_cast<size_t>(i * N + j)]);
            }
            const double got = C[static_cast<size_t>(i * N + j)];
            if (!(std::abs(got - exact) <= 2.0 * static_cast<double>(K + 2) * eps * magnitude + 1e-30)) {
                if (++bad <= 3)
                    FAIL_CHECK("M=" << M << " N=" << N << " K=" << K << " alpha=" << alpha << " beta=" << beta
                                    << ": C[" << i << "," << j << "] = " << got << ", exact " << exact);
            }
        }
    CHECK(bad == 0);
}

}  // namespace

TEST_CASE("small_gemm: equals a double reference for every tile height, the right edge, alpha and beta") {
    Generator g(2024);
    const int64_t w = cpu::small_gemm_width();
    CHECK((w == 4 || w == 8 || w == 16));
    const int64_t Ns[] = {2 * w, 2 * w + 1, 6 * w, 6 * w - 3, 1, 7, 512};
    const int64_t Ks[] = {1, 3, 128, 300};
    const float alphas[] = {1.0f, -0.5f};
    const float betas[] = {0.0f, 1.0f, 0.25f};
    int cases = 0;
    for (int64_t M = 1; M <= 17; ++M)
        for (const int64_t N : Ns)
            for (const int64_t K : Ks) {
                const float alpha = alphas[(M + K) % 2], beta = betas[(M + N + K) % 3];
                const auto A = uniform_values(M * K, g), P = uniform_values(K * N, g), C0 = uniform_values(M * N, g);
                std::vector<float> C = C0;
                cpu::gemm_panels(M, N, K, alpha, A.data(), packed(K, N, P).data(), beta, C.data());
                check_product(M, N, K, alpha, beta, A, P, C0, C);
                ++cases;
            }
    // the recurrent layers' shapes: B = 16 and 64 states, forward [B, H] x [H, 4H] and backward [B, 4H] x [4H, H]
    for (const auto& [M, N, K] : {std::array<int64_t, 3>{16, 512, 128}, {16, 128, 512}, {64, 1024, 256},
                                  {64, 256, 1024}, {200, 96, 40}}) {
        const auto A = uniform_values(M * K, g), P = uniform_values(K * N, g), C0 = uniform_values(M * N, g);
        std::vector<float> C = C0;
        cpu::gemm_panels(M, N, K, 1.0f, A.data(), packed(K, N, P).data(), 1.0f, C.data());
        check_product(M, N, K, 1.0f, 1.0f, A, P, C0, C);
        ++cases;
    }
    CHECK(cases == 17 * 7 * 4 + 5);
}

TEST_CASE("small_gemm: beta = 0 never reads C (NaN there does not leak into the result)") {
    Generator g(7);
    const int64_t M = 7, N = 4 * cpu::small_gemm_width() + 3, K = 9;
    const auto A = uniform_values(M * K, g), P = uniform_values(K * N, g);
    std::vector<float> C(static_cast<size_t>(M * N), std::numeric_limits<float>::quiet_NaN());
    cpu::gemm_panels(M, N, K, 1.0f, A.data(), packed(K, N, P).data(), 0.0f, C.data());
    for (const float c : C) REQUIRE(std::isfinite(c));
    check_product(M, N, K, 1.0f, 0.0f, A, P, std::vector<float>(C.size(), 0.0f), C);
}

TEST_CASE("pack_right + gemm_packed: the product gemm gives, for float and double") {
    Generator g(11);
    using Ops = tapegrad::backend::Ops<tapegrad::Cpu>;
    for (const auto& [M, N, K] : {std::array<int64_t, 3>{16, 512, 128}, {5, 40, 33}, {32, 64, 300}, {1, 7, 1}}) {
        const auto A = uniform_values(M * K, g), P = uniform_values(K * N, g), C0 = uniform_values(M * N, g);
        std::vector<float> packed_p(P.size()), C = C0;
        Ops::pack_right(K, N, P.data(), packed_p.data());
        Ops::gemm_packed(M, N, K, 1.0f, A.data(), packed_p.data(), 1.0f, C.data());
        check_product(M, N, K, 1.0f, 1.0f, A, P, C0, C);

        const std::vector<double> Ad(A.begin(), A.end()), Pd(P.begin(), P.end());
        std::vector<double> packed_d(Pd.size()), Cd(static_cast<size_t>(M * N), 7.0), Cg(Cd.size(), 0.0);
        Ops::pack_right(K, N, Pd.data(), packed_d.data());
        Ops::gemm_packed(M, N, K, 2.0, Ad.data(), packed_d.data(), 0.0, Cd.data());
        Ops::gemm(false, false, M, N, K, 2.0, Ad.data(), Pd.data(), 0.0, Cg.data());
        for (size_t i = 0; i < Cd.size(); ++i) REQUIRE(Cd[i] == doctest::Approx(Cg[i]).epsilon(1e-12));
    }
}

TEST_CASE("small_gemm: gemm_at (A stored transposed, P read in place with its own row stride) equals the reference") {
    // C rows and P columns inside larger matrices (the strides of a recurrent layer's dW = dG^T Z, one part's
    // rows), every tile height, whole panels and the right edge, K within and past one 256-row chunk.
    Generator g(99);
    const int64_t w = cpu::small_gemm_width();
    int cases = 0;
    for (int64_t M = 1; M <= 17; M += 3)
        for (const int64_t N : {2 * w, 4 * w + 5, int64_t{3}})
            for (const int64_t K : {int64_t{1}, int64_t{16}, int64_t{300}, int64_t{513}}) {
                const int64_t lda = M + 4, ldp = N + 2, ldc = N + 3;
                const float alpha = K % 2 ? 1.0f : -0.5f, beta = (M + K) % 3 == 0 ? 0.0f : 0.5f;
                const auto At = uniform_values(K * lda, g), Pw = uniform_values(K * ldp, g);
                const auto Cw0 = uniform_values(M * ldc, g);
                std::vector<float> Cw = Cw0;
                if (beta == 0.0f)
                    for (int64_t i = 0; i < M; ++i)
                        for (int64_t j = 0; j < N; ++j) Cw[static_cast<size_t>(i * ldc + j)] = std::nanf("");
                cpu::gemm_at(M, N, K, alpha, At.data(), lda, Pw.data(), ldp, beta, Cw.data(), ldc);
                // the same product in the contiguous form check_product reads
                std::vector<float> A(static_cast<size_t>(M * K)), P(static_cast<size_t>(K * N)),
                    C0(static_cast<size_t>(M * N)), C(static_cast<size_t>(M * N));
                for (int64_t i = 0; i < M; ++i)
                    for (int64_t k = 0; k < K; ++k) A[static_cast<size_t>(i * K + k)] = At[static_cast<size_t>(k * lda + i)];
                for (int64_t k = 0; k < K; ++k)
                    for (int64_t j = 0; j < N; ++j) P[static_cast<size_t>(k * N + j)] = Pw[static_cast<size_t>(k * ldp + j)];
                for (int64_t i = 0; i < M; ++i)
                    for (int64_t j = 0; j < N; ++j) {
                        C0[static_cast<size_t>(i * N + j)] = Cw0[static_cast<size_t>(i * ldc + j)];
                        C[static_cast<size_t>(i * N + j)] = Cw[static_cast<size_t>(i * ldc + j)];
                    }
                check_product(M, N, K, alpha, beta, A, P, C0, C);
                for (int64_t i = 0; i < M; ++i)  // the columns between N and ldc are not C's: untouched
                    for (int64_t j = N; j < ldc; ++j)
                        REQUIRE(Cw[static_cast<size_t>(i * ldc + j)] == Cw0[static_cast<size_t>(i * ldc + j)]);
                ++cases;
            }
    CHECK(cases == 6 * 3 * 4);
}

TEST_CASE("small_gemm: a panel packed from W^T, and rows packed in parts, give pack_panels's layout") {
    Generator g(5);
    const int64_t nr = cpu::panel_width();
    for (const int64_t K : {int64_t{1}, int64_t{17}, int64_t{128}}) {
        // W [3 nr, K] (row stride K + 1): its rows nr .. 2 nr - 1 are columns nr .. 2 nr - 1 of P = W^T [K, 3 nr]
        const int64_t ldw = K + 1;
        const auto W = uniform_values(3 * nr * ldw, g);
        std::vector<float> P(static_cast<size_t>(K * 3 * nr));
        for (int64_t k = 0; k < K; ++k)
            for (int64_t j = 0; j < 3 * nr; ++j) P[static_cast<size_t>(k * 3 * nr + j)] = W[static_cast<size_t>(j * ldw + k)];
        const std::vector<float> whole = packed(K, 3 * nr, P);
        std::vector<float> panel(static_cast<size_t>(K * nr));
        cpu::pack_panel_transposed(K, W.data() + nr * ldw, ldw, panel.data());
        for (int64_t i = 0; i < K * nr; ++i)
            REQUIRE(panel[static_cast<size_t>(i)] == whole[static_cast<size_t>(K * nr + i)]);
    }
    for (const int64_t N : {2 * nr, 2 * nr + 5, int64_t{3}}) {  // whole panels, and the row-major right edge
        const int64_t K = 37;
        const auto P = uniform_values(K * N, g);
        std::vector<float> parts(P.size(), -1.0f);
        for (const auto& [k0, k1] : {std::array<int64_t, 2>{0, 10}, {10, 11}, {11, 11}, {11, K}})
            cpu::pack_panel_rows(K, N, P.data(), parts.data(), k0, k1);
        REQUIRE(parts == packed(K, N, P));
    }
}

TEST_CASE("small_gemm: gemm_general (CpuBlas::gemm's panel path) for every transpose, on one thread and two") {
    // the shapes CpuBlas::gemm hands it in FMA builds (whole panels of columns, under 8M multiply-adds): an
    // output layer's three products and odd sizes; the same bits on one thread and on two.
    Generator g(31);
    const int64_t nr = cpu::panel_width();
    for (const auto& shape : {std::array<int64_t, 3>{512, 2 * nr, 128}, {64, 4 * nr, 512}, {17, nr, 300},
                              {3, 3 * nr, 1}}) {
        const int64_t M = shape[0], N = shape[1], K = shape[2];  // not a structured binding: CAPTURE's lambda
        CHECK(cpu::panel_product(M, N, K));
        for (const bool ta : {false, true})
            for (const bool tb : {false, true}) {
                CAPTURE(M);
                CAPTURE(N);
                CAPTURE(K);
                CAPTURE(ta);
                CAPTURE(tb);
                const auto A = uniform_values(M * K, g), P = uniform_values(K * N, g), C0 = uniform_values(M * N, g);
                // the operands as gemm reads them when transposed
                std::vector<float> As = A, Ps = P;
                if (ta)
                    for (int64_t i = 0; i < M; ++i)
                        for (int64_t k = 0; k < K; ++k) As[static_cast<size_t>(k * M + i)] = A[static_cast<size_t>(i * K + k)];
                if (tb)
                    for (int64_t k = 0; k < K; ++k)
                        for (int64_t j = 0; j < N; ++j) Ps[static_cast<size_t>(j * K + k)] = P[static_cast<size_t>(k * N + j)];
                std::vector<float> C1 = C0, C2 = C0;
                tapegrad::set_num_threads(1);
                cpu::gemm_general(ta, tb, M, N, K, 0.5f, As.data(), Ps.data(), 1.0f, C1.data());
                tapegrad::set_num_threads(2);
                cpu::gemm_general(ta, tb, M, N, K, 0.5f, As.data(), Ps.data(), 1.0f, C2.data());
                tapegrad::set_num_threads(0);
                check_product(M, N, K, 0.5f, 1.0f, A, P, C0, C1);
                REQUIRE(C1 == C2);
            }
    }
    CHECK_FALSE(cpu::panel_product(64, nr + 1, 64));       // a partial panel: BLAS
    CHECK_FALSE(cpu::panel_product(1024, 1024, 1024));     // large: BLAS, with its own blocking and threads
}

TEST_CASE("small_gemm: gemm_panel_pair = bias + A1 P1 + A2 P2 for one panel of each, either K may be 0") {
    Generator g(77);
    const int64_t nr = cpu::panel_width();
    for (const int64_t M : {int64_t{1}, int64_t{8}, int64_t{17}})
        for (const auto& ks : {std::array<int64_t, 2>{32, 128}, {5, 300}, {0, 40}, {40, 0}})
            for (const bool with_bias : {true, false}) {
                const int64_t K1 = ks[0], K2 = ks[1];
                CAPTURE(M);
                CAPTURE(K1);
                CAPTURE(K2);
                const auto A1 = uniform_values(M * K1, g), P1 = uniform_values(K1 * nr, g);
                const auto A2 = uniform_values(M * K2, g), P2 = uniform_values(K2 * nr, g);
                const auto bias = uniform_values(nr, g);
                std::vector<float> C(static_cast<size_t>(M * nr), std::nanf(""));  // written, never read
                cpu::gemm_panel_pair(M, K1, A1.data(), K1, packed(K1, nr, P1).data(), K2, A2.data(), K2,
                                     packed(K2, nr, P2).data(), with_bias ? bias.data() : nullptr, C.data(), nr);
                // as one product: [A1 | A2 | 1] times [P1; P2; bias]
                const int64_t K = K1 + K2 + 1;
                std::vector<float> A(static_cast<size_t>(M * K)), P(static_cast<size_t>(K * nr));
                for (int64_t i = 0; i < M; ++i) {
                    for (int64_t k = 0; k < K1; ++k) A[static_cast<size_t>(i * K + k)] = A1[static_cast<size_t>(i * K1 + k)];
                    for (int64_t k = 0; k < K2; ++k) A[static_cast<size_t>(i * K + K1 + k)] = A2[static_cast<size_t>(i * K2 + k)];
                    A[static_cast<size_t>(i * K + K - 1)] = 1.0f;
                }
                std::copy(P1.begin(), P1.end(), P.begin());
                std::copy(P2.begin(), P2.end(), P.begin() + K1 * nr);
                for (int64_t j = 0; j < nr; ++j) P[static_cast<size_t>((K - 1) * nr + j)] = with_bias ? bias[static_cast<size_t>(j)] : 0.0f;
                check_product(M, nr, K, 1.0f, 0.0f, A, P, std::vector<float>(C.size(), 0.0f), C);
            }
}
