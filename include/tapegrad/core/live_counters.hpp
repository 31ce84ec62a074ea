#pragma once
/// \file
/// Process-wide counters of live objects (recorded nodes, backend bytes) that cost no locked instruction to
/// update. Tests read them to prove that memory and the tape return to their baseline after every step; the
/// hot path updates them on every tensor and every op, where an atomic read-modify-write on one shared cache
/// line was measured at about 16% of a small op's cost.
///
/// Each thread counts into its own slots (a relaxed load and store of its own atomic: an ordinary add, never
/// contended). Reading sums the slots of every live thread plus what exited threads left behind, under a
/// mutex; only tests and diagnostics read. An object created on one thread and freed on another leaves +1 on
/// the first and -1 on the second, so the sum stays exact.

#include <atomic>
#include <cstdint>
#include <mutex>

namespace tapegrad::detail {

/// The quantities counted. Add an entry to count something new.
enum class Live : int { nodes = 0, cpu_bytes = 1, cuda_bytes = 2, count = 3 };

struct LiveSlots {
    static constexpr int n = static_cast<int>(Live::count);
    std::atomic<int64_t> value[n];
    LiveSlots* next;
    LiveSlots* prev;
    bool registered;
    bool dead;  ///< the thread is exiting: its slots were folded into the registry's totals
};

/// Every live thread's slots, and the totals left by threads that have exited. Never destroyed (it is
/// reachable from a static pointer), so threads and static destructors that run late can still count.
struct LiveRegistry {
    std::mutex mutex;
    LiveSlots* head = nullptr;
    std::atomic<int64_t> retired[LiveSlots::n]{};

    static LiveRegistry& get() {
        static LiveRegistry* r = new LiveRegistry;
        return *r;
    }
};

/// This thread's slots: constant-initialised, trivially destructible, so they stay usable to the end of the
/// thread; `LiveSlotsReaper` folds them into the registry when the thread exits.
inline LiveSlots& live_slots() noexcept {
    thread_local constinit LiveSlots slots{};
    return slots;
}

struct LiveSlotsReaper {
    LiveSlotsReaper() = default;
    LiveSlotsReaper(const LiveSlotsReaper&) = delete;
    LiveSlotsReaper& operator=(const LiveSlotsReaper&) = delete;
    ~LiveSlotsReaper() {
        LiveSlots& s = live_slots();
        LiveRegistry& r = LiveRegistry::get();
        const std::lock_guard<std::mutex> lock(r.mutex);
        for (int i = 0; i < LiveSlots::n; ++i) {
            r.retired[i].fetch_add(s.value[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
            s.value[i].store(0, std::memory_order_relaxed);
        }
        if (s.prev) s.prev->next = s.next;
        else r.head = s.next;
        if (s.next) s.next->prev = s.prev;
        s.dead = true;
    }
};

/// Links this thread's slots into the registry (first use on a thread).
inline void register_live_slots(LiveSlots& s) {
    thread_local LiveSlotsReaper reaper;  // constructed here, so it is destroyed at thread exit
    (void)reaper;
    LiveRegistry& r = LiveRegistry::get();
    const std::lock_guard<std::mutex> lock(r.mutex);
    s.prev = nullptr;
    s.next = r.head;
    if (r.head) r.head->prev = &s;
    r.head = &s;
    s.registered = true;
}

/// A process-wide count: `add` from any thread, `load` the total.
template <Live What>
struct LiveCounter {
    static constexpr int index = static_cast<int>(What);

    static void add(int64_t delta) noexcept {
        LiveSlots& s = live_slots();
        if (s.registered && !s.dead) [[likely]] {
            std::atomic<int64_t>& v = s.value[index];
            v.store(v.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
            return;
        }
        add_slow(s, delta);
    }
    /// The current total over all threads.
    [[nodiscard]] static int64_t load() noexcept {
        LiveRegistry& r = LiveRegistry::get();
        const std::lock_guard<std::mutex> lock(r.mutex);
        int64_t total = r.retired[index].load(std::memory_order_relaxed);
        for (const LiveSlots* s = r.head; s != nullptr; s = s->next) total += s->value[index].load(std::memory_order_relaxed);
        return total;
    }

private:
    static void add_slow(LiveSlots& s, int64_t delta) noexcept {
        if (!s.dead) {
            try {
                register_live_slots(s);
                add(delta);
                return;
            } catch (...) {  // no memory for the thread-exit hook, or the mutex failed: count globally
            }
        }
        LiveRegistry::get().retired[index].fetch_add(delta, std::memory_order_relaxed);
    }
};

}  // namespace tapegrad::detail
