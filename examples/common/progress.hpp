#pragma once
// Progress reporting for the example programs (not part of the library, which never prints).
// On a terminal: a live bar per epoch on stderr with batches/s, running loss and accuracy, and ETA.
// Otherwise (logs, CI): nothing until the epoch's summary line.

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace examples {

class ProgressBar {
public:
    ProgressBar(int epoch, int epochs, int64_t total, bool enabled = isatty(2) != 0)
        : epoch_(epoch), epochs_(epochs), total_(total), enabled_(enabled), start_(clock::now()), last_(start_) {}

    /// Whether the bar is drawn (stderr is a terminal).
    [[nodiscard]] bool enabled() const noexcept { return enabled_; }

    /// Call after each batch with the running mean loss and accuracy (a negative accuracy is not shown).
    void update(int64_t done, double loss, double acc) {
        if (!enabled_) return;
        const auto now = clock::now();
        if (done != total_ && now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        const double secs = std::chrono::duration<double>(now - start_).count();
        const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
        const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
        constexpr int width = 30;
        const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
        char bar[width + 1];
        for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        std::fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld  %.0f batch/s  loss %.4f", epoch_, epochs_, bar,
                     static_cast<long long>(done), static_cast<long long>(total_), rate, loss);
        if (acc >= 0) std::fprintf(stderr, "  acc %.4f", acc);
        std::fprintf(stderr, "  eta %.1fs ", eta);
        if (done == total_) std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
    }

private:
    using clock = std::chrono::steady_clock;
    int epoch_, epochs_;
    int64_t total_;
    bool enabled_;
    clock::time_point start_, last_;
};

}  // namespace examples
