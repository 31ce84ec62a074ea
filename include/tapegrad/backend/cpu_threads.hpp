#pragma once
/// \file
/// How the CPU runs matrix products: on how many threads, and (with TAPEGRAD_BLAS) on which OpenBLAS
/// kernels. Public: `set_num_threads`, `get_num_threads` and `blas_info`. Ops<Cpu>::gemm opens a
/// `detail::ProductThreads` around every product.
///
/// **Threads.** Up to three pools may run a product: Eigen's (OpenMP, in programs compiled with -fopenmp),
/// OpenMP's, from which the OpenMP build of OpenBLAS takes its count, and the pthread build of OpenBLAS.
/// `set_num_threads(n)` sets all three; the library finds the OpenMP and OpenBLAS functions at run time, so
/// this header compiles and links alike with or without OpenMP and with or without OpenBLAS.
///
/// The default never makes a product slower than one thread would:
///  - A product of M N K multiply-adds uses at most one thread per `product_work_per_thread` (4M) of them.
///    Starting a team costs microseconds on an idle machine, but when the OS has descheduled one of its
///    threads (another program runs on that core) the product waits for it, often milliseconds; and
///    OpenMP's idle threads spin after each team (libgomp: about 300,000 pauses unless OMP_WAIT_POLICY or
///    GOMP_SPINCOUNT say otherwise), taking the core from the program that needs it. A small network's
///    products (512x32x32 for a 32-unit MLP on 512 points) gain nothing from threads and, before this
///    rule, ran 20-60x slower with two threads than with one on a busy 2-core machine. (OpenBLAS's own
///    threshold, 262,144 multiply-adds for sgemm and 9,216 elements for sgemv, is 16-400x lower.)
///  - Without an explicit count (set_num_threads, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS or
///    GOTO_NUM_THREADS), the most threads is the number of cores this process may run on, less the cores
///    that other programs keep busy: on Linux, the running tasks in /proc/stat that are not this
///    process's threads, sampled at most every 0.2 s and smoothed. An explicit count is kept as given
///    (the size rule above still applies to each product).
///  - Libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it starts, before any library code runs,
///    so tapegrad cannot change them; on a shared machine OMP_WAIT_POLICY=passive also stops the spinning
///    of the teams that large products still start.
///
/// **BLAS kernels.** OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels for the CPU when it
/// loads. An OpenBLAS older than the CPU does not know it and falls back to a generic kernel (Debian 12's
/// 0.3.21 runs Prescott, SSE3, on Emerald Rapids: 30 GFLOP/s instead of 146 for a 1024^3 float product).
/// When OpenBLAS reports a core without AVX2 kernels on a CPU (and OS) that has AVX2 and FMA, tapegrad
/// re-runs OpenBLAS's own kernel selection once (its exported gotoblas_dynamic_quit / gotoblas_dynamic_init,
/// with OPENBLAS_CORETYPE set for that call only) for SkylakeX on AVX-512 CPUs, Zen on other AMD CPUs and
/// Haswell on other Intel CPUs, the kernels OpenBLAS itself picks for the CPUs it knows with those
/// instruction sets. It never does so when the environment sets OPENBLAS_CORETYPE (some machines set it
/// because older kernels compute wrong results on them) nor when OpenBLAS chose AVX2 or AVX-512 kernels
/// itself. This happens when the program starts (static initialisation, before other threads run products)
/// or at the first product, whichever comes first. `blas_info()` says, in one line, what was chosen.

#include <tapegrad/core/error.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#include <unistd.h>
#define TAPEGRAD_CPU_THREADS_POSIX 1
#else
#define TAPEGRAD_CPU_THREADS_POSIX 0
#endif
#if defined(__linux__)
#include <dirent.h>
#include <sched.h>
#endif

/// 1 where float products use tapegrad's own panel kernel (backend/cpu/small_gemm.hpp: the recurrent
/// layers' time loop, and CpuBlas::gemm's products of whole panels under 8M multiply-adds): targets with FMA
/// and 8-float vectors or wider, in programs built with OpenMP. Else 0.
#if defined(__FMA__) && defined(__AVX__) && defined(_OPENMP)
#define TAPEGRAD_PANEL_KERNEL 1
#else
#define TAPEGRAD_PANEL_KERNEL 0
#endif

namespace tapegrad {

namespace detail {

// ---- functions found at run time ---------------------------------------------------------------------------

/// The address of the function `name` in the program or any library it loaded, or null. Used for OpenMP and
/// OpenBLAS, so that one definition of this header serves every build (with or without -fopenmp, with any
/// BLAS or none).
template <class Fn>
[[nodiscard]] Fn runtime_function(const char* name) noexcept {
    Fn fn = nullptr;
#if TAPEGRAD_CPU_THREADS_POSIX
    void* p = ::dlsym(RTLD_DEFAULT, name);
    static_assert(sizeof(fn) == sizeof(p), "function and data pointers differ in size on this platform");
    std::memcpy(&fn, &p, sizeof fn);
#else
    static_cast<void>(name);
#endif
    return fn;
}

/// The OpenMP runtime's functions, when one is loaded (by -fopenmp or by the OpenMP build of OpenBLAS).
struct OmpApi {
    int (*get_max_threads)() = nullptr;
    void (*set_num_threads)(int) = nullptr;
    int (*in_parallel)() = nullptr;
    [[nodiscard]] bool present() const noexcept { return get_max_threads && set_num_threads && in_parallel; }
};

[[nodiscard]] inline const OmpApi& omp_api() noexcept {
    static const OmpApi api = [] {
        OmpApi a;
        a.get_max_threads = runtime_function<int (*)()>("omp_get_max_threads");
        a.set_num_threads = runtime_function<void (*)(int)>("omp_set_num_threads");
        a.in_parallel = runtime_function<int (*)()>("omp_in_parallel");
        return a;
    }();
    return api;
}

/// OpenBLAS's functions, when products go to a BLAS (EIGEN_USE_BLAS) and that BLAS is OpenBLAS. The last
/// two exist in its DYNAMIC_ARCH builds.
struct OpenBlasApi {
    char* (*get_corename)() = nullptr;
    char* (*get_config)() = nullptr;
    int (*get_parallel)() = nullptr;  // 0 sequential, 1 pthreads, 2 OpenMP
    void (*set_num_threads)(int) = nullptr;
    int (*get_num_threads)() = nullptr;
    void (*dynamic_quit)() = nullptr;
    void (*dynamic_init)() = nullptr;
    [[nodiscard]] bool present() const noexcept { return get_corename && set_num_threads && get_num_threads; }
};

[[nodiscard]] inline const OpenBlasApi& openblas_api() noexcept {
    static const OpenBlasApi api = [] {
        OpenBlasApi a;
#if defined(EIGEN_USE_BLAS)
        a.get_corename = runtime_function<char* (*)()>("openblas_get_corename");
        a.get_config = runtime_function<char* (*)()>("openblas_get_config");
        a.get_parallel = runtime_function<int (*)()>("openblas_get_parallel");
        a.set_num_threads = runtime_function<void (*)(int)>("openblas_set_num_threads");
        a.get_num_threads = runtime_function<int (*)()>("openblas_get_num_threads");
        a.dynamic_quit = runtime_function<void (*)()>("gotoblas_dynamic_quit");
        a.dynamic_init = runtime_function<void (*)()>("gotoblas_dynamic_init");
#endif
        return a;
    }();
    return api;
}

// ---- which OpenBLAS kernels ----------------------------------------------------------------------------------

/// The instruction sets that decide OpenBLAS's kernels, as the CPU and the OS support them (GCC's and
/// clang's __builtin_cpu_supports check the OS's XSAVE state too).
struct CpuFeatures {
    bool x86 = false;
    bool avx2_fma = false;  ///< AVX2 and FMA3
    bool avx512 = false;    ///< AVX-512 F, CD, BW, DQ and VL (Skylake-X's set)
    bool amd = false;
};

[[nodiscard]] inline CpuFeatures cpu_features() noexcept {
    CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    f.x86 = true;
    f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f.avx512 = f.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
    f.amd = __builtin_cpu_is("amd");
#endif
    return f;
}

[[nodiscard]] inline bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

/// True for OpenBLAS x86 cores whose kernels use AVX2 or AVX-512 (or are AMD's own FMA kernels):
/// the cores OpenBLAS picks for CPUs it recognises with those instruction sets.
[[nodiscard]] inline bool openblas_core_is_wide(std::string_view core) noexcept {
    for (const std::string_view wide : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Excavator"})
        if (iequals(core, wide)) return true;
    return false;
}

/// The OpenBLAS core tapegrad switches to, or "" to keep OpenBLAS's choice: a generic (pre-AVX2) core on a
/// CPU with AVX2 and FMA is replaced, unless OPENBLAS_CORETYPE is set (`coretype_from_env`).
[[nodiscard]] inline std::string better_openblas_core(std::string_view core, const CpuFeatures& cpu,
                                                      bool coretype_from_env) {
    if (coretype_from_env || !cpu.x86 || !cpu.avx2_fma || core.empty() || openblas_core_is_wide(core)) return {};
    if (cpu.avx512) return "SkylakeX";
    return cpu.amd ? "Zen" : "Haswell";
}

/// Re-runs OpenBLAS's kernel selection with OPENBLAS_CORETYPE=`core` for that call only. True when
/// OpenBLAS now reports `core`. False, changing nothing, when this OpenBLAS cannot (not a DYNAMIC_ARCH
/// build, or built without that core). No product may run meanwhile.
inline bool openblas_switch_core(const std::string& core) {
#if TAPEGRAD_CPU_THREADS_POSIX
    const OpenBlasApi& ob = openblas_api();
    if (!ob.present() || !ob.dynamic_quit || !ob.dynamic_init || core.empty()) return false;
    std::string table = "gotoblas_";  // OpenBLAS's kernel table for that core: gotoblas_SKYLAKEX
    for (const char c : core) table += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (runtime_function<void*>(table.c_str()) == nullptr) return false;
    const char* old = std::getenv("OPENBLAS_CORETYPE");
    const bool had = old != nullptr;
    const std::string saved = had ? std::string(old) : std::string();
    ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    ob.dynamic_quit();
    ob.dynamic_init();
    if (had)
        ::setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
    else
        ::unsetenv("OPENBLAS_CORETYPE");
    const char* now = ob.get_corename();
    return now != nullptr && iequals(now, core);
#else
    static_cast<void>(core);
    return false;
#endif
}

/// What the kernel check found and did.
struct CoreChoice {
    std::string found;    ///< the core OpenBLAS reported first
    std::string chosen;   ///< the core now in use
    std::string wanted;   ///< the core tapegrad wanted instead of `found`, or ""
    bool from_env = false;
    bool switched = false;
};

/// Applies the rule of this file's BLAS paragraph to the OpenBLAS in use (nothing without one).
inline CoreChoice fix_openblas_core() {
    CoreChoice r;
    const OpenBlasApi& ob = openblas_api();
    if (!ob.present()) return r;
    const char* core = ob.get_corename();
    r.found = r.chosen = core ? core : "";
    r.from_env = std::getenv("OPENBLAS_CORETYPE") != nullptr;
    r.wanted = better_openblas_core(r.found, cpu_features(), r.from_env);
    if (!r.wanted.empty() && openblas_switch_core(r.wanted)) {
        r.switched = true;
        r.chosen = ob.get_corename();
    }
    return r;
}

/// The BLAS half of blas_info()'s line, fixed once the kernel check has run.
[[nodiscard]] inline std::string describe_kernels(const CoreChoice& c) {
#if defined(EIGEN_USE_BLAS)
    const OpenBlasApi& ob = openblas_api();
    if (!ob.present()) return "a BLAS that is not OpenBLAS (EIGEN_USE_BLAS), its own kernels";
    std::string lib = "OpenBLAS";
    if (ob.get_config) {  // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...": keep the first two words
        const std::string_view cfg = ob.get_config();
        const auto first = cfg.find(' ');
        const auto second = first == std::string_view::npos ? first : cfg.find(' ', first + 1);
        lib = std::string(cfg.substr(0, second));
    }
    const int par = ob.get_parallel ? ob.get_parallel() : -1;
    lib += par == 2 ? " (OpenMP)" : par == 1 ? " (pthreads)" : par == 0 ? " (single-threaded)" : "";
    std::string s = lib + ", " + c.chosen + " kernels";
    if (c.switched)
        s += " chosen by tapegrad (OpenBLAS picked its generic " + c.found + " kernels on this " +
             (cpu_features().avx512 ? "AVX-512" : "AVX2") + " CPU)";
    else if (c.from_env)
        s += " from OPENBLAS_CORETYPE";
    else if (!c.wanted.empty())
        s += " (generic kernels on an AVX2 CPU, and this OpenBLAS cannot switch: try OPENBLAS_CORETYPE=" +
             c.wanted + ")";
    else
        s += " chosen by OpenBLAS";
    return s;
#else
    static_cast<void>(c);
    return std::string("Eigen ") + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
           "." + std::to_string(EIGEN_MINOR_VERSION) + " (" + Eigen::SimdInstructionSetsInUse() + ")";
#endif
}

/// Runs the kernel check once, and remembers its line.
[[nodiscard]] inline const std::string& blas_kernels_line() {
    static const std::string line = describe_kernels(fix_openblas_core());
    return line;
}

/// Runs the kernel check when the program starts, before its threads run products.
[[maybe_unused]] inline const bool blas_checked_at_start = (static_cast<void>(blas_kernels_line()), true);

// ---- how many threads ----------------------------------------------------------------------------------------

/// Multiply-adds each thread of a product must have: below 2x this a product runs on one thread.
inline constexpr double product_work_per_thread = 4.0 * 1024 * 1024;

/// set_num_threads's value; 0 for the default.
[[nodiscard]] inline std::atomic<int>& requested_threads() noexcept {
    static std::atomic<int> n{0};
    return n;
}

/// The first of OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and GOTO_NUM_THREADS that holds a positive count
/// (OMP_NUM_THREADS may be a list: its first entry), read once; `name` is set to the variable. 0 if none.
[[nodiscard]] inline int env_threads(const char** name = nullptr) noexcept {
    struct Found {
        int n = 0;
        const char* name = nullptr;
    };
    static const Found found = [] {
        for (const char* var : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS"}) {
            const char* v = std::getenv(var);
            if (v == nullptr) continue;
            char* end = nullptr;
            const long n = std::strtol(v, &end, 10);
            if (end != v && n > 0) return Found{static_cast<int>(std::min(n, 4096L)), var};
        }
        return Found{};
    }();
    if (name) *name = found.name;
    return found.n;
}

/// The cores this process may run on (its affinity mask on Linux).
[[nodiscard]] inline int usable_cores() noexcept {
    static const int n = [] {
#if defined(__linux__)
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
        return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    }();
    return n;
}

/// Tasks running or runnable now that are not this process's threads, or -1 if unknown (not Linux).
[[nodiscard]] inline int other_running_tasks() {
#if defined(__linux__)
    int running = -1;
    if (std::FILE* f = std::fopen("/proc/stat", "r")) {
        char line[4096];
        while (std::fgets(line, sizeof line, f))
            if (std::strncmp(line, "procs_running ", 14) == 0) {
                running = std::atoi(line + 14);
                break;
            }
        std::fclose(f);
    }
    if (running < 0) return -1;
    int own = 0;
    if (DIR* dir = opendir("/proc/self/task")) {
        while (const dirent* e = readdir(dir)) {
            if (e->d_name[0] == '.') continue;
            char path[320];  // no std::string: this runs inside training steps, which make no heap allocations
            std::snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
            if (std::FILE* f = std::fopen(path, "r")) {
                char buf[512];
                const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
                std::fclose(f);
                buf[n] = '\0';
                const char* paren = std::strrchr(buf, ')');  // "tid (name) S ...": the name may hold spaces
                if (paren && paren[1] == ' ' && paren[2] == 'R') ++own;
            }
        }
        closedir(dir);
    }
    return std::max(0, running - own);
#else
    return -1;
#endif
}

/// The most threads the default policy gives a product now: the usable cores less those that other
/// programs keep busy, sampled at most every 0.2 s and smoothed over about a second. Only when this process
/// may use every online core (with a narrower affinity mask, /proc/stat's count is not about our cores).
[[nodiscard]] inline int cores_free_of_other_work() {
    const int cores = usable_cores();
#if defined(__linux__)
    static const bool whole_machine = sysconf(_SC_NPROCESSORS_ONLN) == cores;
    if (!whole_machine || cores == 1) return cores;
    static std::atomic<int> cap{cores};
    static std::atomic<int64_t> next_sample{0};
    static std::mutex m;
    static double others = -1;  // smoothed; guarded by m
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    if (now >= next_sample.load(std::memory_order_relaxed)) {
        std::unique_lock<std::mutex> lock(m, std::try_to_lock);
        if (lock.owns_lock() && now >= next_sample.load(std::memory_order_relaxed)) {
            next_sample.store(now + 200, std::memory_order_relaxed);
            const int o = other_running_tasks();
            if (o >= 0) {
                others = others < 0 ? o : 0.6 * others + 0.4 * o;
                cap.store(std::clamp(cores - static_cast<int>(std::lround(others)), 1, cores),
                          std::memory_order_relaxed);
            }
        }
    }
    return cap.load(std::memory_order_relaxed);
#else
    return cores;
#endif
}

/// The thread count a user chose (set_num_threads, then the environment), or 0.
[[nodiscard]] inline int explicit_threads() noexcept {
    const int r = requested_threads().load(std::memory_order_relaxed);
    return r > 0 ? r : env_threads();
}

/// Threads for a product of M N K multiply-adds under the current policy (1 to the most allowed), with at
/// least `work_per_thread` multiply-adds per thread (BLAS products: product_work_per_thread; the packed
/// per-step products of cpu/small_gemm.hpp, which start no BLAS team and split evenly, ask for less).
[[nodiscard]] inline int product_threads(int64_t M, int64_t N, int64_t K,
                                         double work_per_thread = product_work_per_thread) {
    const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
    if (!(work >= 2 * work_per_thread)) return 1;
    const int by_size = static_cast<int>(std::min(work / work_per_thread, 4096.0));
    const int chosen = explicit_threads();
    return std::min(by_size, chosen > 0 ? chosen : cores_free_of_other_work());
}

/// Sets the thread count of one product (OpenMP's for the calling thread, which both Eigen and the OpenMP
/// build of OpenBLAS read; the pthread build's own) and restores it afterwards. Does nothing inside an
/// OpenMP parallel region, where products run on their caller's thread anyway.
class ProductThreads {
public:
    ProductThreads(int64_t M, int64_t N, int64_t K) {
        static_cast<void>(blas_kernels_line());  // the kernel check, if static initialisation has not run it
        const OmpApi& omp = omp_api();
        if (omp.present() && omp.in_parallel()) return;
        const int want = product_threads(M, N, K);
        if (omp.present()) {
            const int current = omp.get_max_threads();
            if (current != want) {
                omp.set_num_threads(want);
                restore_omp_ = current;
            }
        }
        const OpenBlasApi& ob = openblas_api();
        if (ob.present() && ob.get_parallel && ob.get_parallel() == 1) {
            const int current = ob.get_num_threads();
            if (current != want) {
                ob.set_num_threads(want);
                restore_openblas_ = current;
            }
        }
    }
    ~ProductThreads() {
        if (restore_omp_ > 0) omp_api().set_num_threads(restore_omp_);
        if (restore_openblas_ > 0) openblas_api().set_num_threads(restore_openblas_);
    }
    ProductThreads(const ProductThreads&) = delete;
    ProductThreads& operator=(const ProductThreads&) = delete;

private:
    int restore_omp_ = 0;
    int restore_openblas_ = 0;
};

/// True when some pool can thread products: an OpenMP runtime or the pthread build of OpenBLAS.
[[nodiscard]] inline bool products_can_thread() noexcept {
    const OpenBlasApi& ob = openblas_api();
    return omp_api().present() || (ob.present() && ob.get_parallel && ob.get_parallel() == 1);
}

}  // namespace detail

/// Sets the most threads a matrix product may use to `n`, in Eigen, OpenMP (for the calling thread, whose
/// later OpenMP regions use `n` too) and OpenBLAS together; `n = 0` restores the default (the environment's
/// OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, else every usable core less those other programs keep busy).
/// A product still uses one thread per 4M multiply-adds at most (see this file's notes), so small
/// products run on one thread whatever `n` is. Eigen is set to follow OpenMP (Eigen::setNbThreads(0)), so
/// Eigen::nbThreads() is `n` in the calling thread of a program compiled with -fopenmp.
/// Throws ValueError for n < 0 or n > 4096.
inline void set_num_threads(int n) {
    TAPEGRAD_CHECK(n >= 0 && n <= 4096, ValueError, "set_num_threads: thread count ", n,
                   " is out of range [0, 4096] (0 restores the default)");
    static_cast<void>(detail::blas_kernels_line());
    detail::requested_threads().store(n, std::memory_order_relaxed);
    const int count = n > 0 ? n : (detail::env_threads() > 0 ? detail::env_threads() : detail::usable_cores());
    Eigen::setNbThreads(0);
    if (const detail::OmpApi& omp = detail::omp_api(); omp.present()) omp.set_num_threads(count);
    if (const detail::OpenBlasApi& ob = detail::openblas_api(); ob.present()) ob.set_num_threads(count);
}

/// The most threads a matrix product may use: set_num_threads's count, else the environment's
/// (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS), else the cores this process may use
/// (the default policy then gives fewer while other programs keep cores busy). 1 when nothing can
/// thread products (no OpenMP runtime and no pthread OpenBLAS in the program).
[[nodiscard]] inline int get_num_threads() {
    if (!detail::products_can_thread()) return 1;
    const int n = detail::explicit_threads();
    return n > 0 ? n : detail::usable_cores();
}

/// One line that says how matrix products run: the BLAS or Eigen, which kernels and who chose them, and
/// the threads. For a program to print once, e.g.
/// `matrix products: OpenBLAS 0.3.21 (OpenMP), Cooperlake kernels chosen by OpenBLAS; threads: up to 2
/// (all cores, fewer while other programs keep them busy), one per 4M multiply-adds` (and, where
/// TAPEGRAD_PANEL_KERNEL, which products tapegrad's own kernel runs instead).
[[nodiscard]] inline std::string blas_info() {
    std::string s = "matrix products: " + detail::blas_kernels_line() + "; threads: ";
    if (!detail::products_can_thread()) return s + "1 (no OpenMP runtime and no threaded BLAS in this program)";
    const char* env = nullptr;
    const int requested = detail::requested_threads().load(std::memory_order_relaxed);
    const int from_env = detail::env_threads(&env);
    s += "up to " + std::to_string(get_num_threads());
    if (requested > 0)
        s += " (set_num_threads)";
    else if (from_env > 0)
        s += std::string(" (") + env + ")";
    else
        s += " (all cores, fewer while other programs keep them busy)";
    s += ", one per 4M multiply-adds";
    if constexpr (TAPEGRAD_PANEL_KERNEL != 0)
        s += "; float products of whole panels under 8M multiply-adds: tapegrad's panel kernel, one thread per 128K";
    return s;
}

}  // namespace tapegrad
