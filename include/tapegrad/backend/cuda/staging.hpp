#pragma once
/// \file
/// The CUDA backend's pinned staging buffers (`cuda::PinnedStaging`), through which every host-to-device
/// copy goes so that it does not wait for the GPU.

#include <tapegrad/backend/cuda/context.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstring>
#include <mutex>

namespace tapegrad::cuda {

/// Page-locked (pinned) host memory, through which every host-to-device copy goes, so that a copy is
/// asynchronous: the host values are copied into a pinned slot and the DMA transfer is queued on the
/// stream, and the caller may reuse its own memory at once, without waiting for the GPU. (From ordinary
/// pageable memory the driver would stage the copy itself and may wait for the stream to drain first.)
/// A ring of `slots` slots of `slot_bytes` each; a slot is reused once the transfer that last read it has
/// finished (an event per slot); larger copies go through the ring in pieces. Allocated at first use.
class PinnedStaging {
public:
    static constexpr size_t slot_bytes = size_t{4} << 20;
    static constexpr int slots = 4;

    static PinnedStaging& get() {
        static PinnedStaging* s = new PinnedStaging;  // never destroyed, as the allocator
        return *s;
    }

    /// dst (device) = host[0, bytes), enqueued on the stream; `host` may be reused when this returns.
    void upload(const void* host, void* dst, size_t bytes) {
        check_not_capturing("copying host values to the device");
        const std::lock_guard<std::mutex> lock(mutex_);
        init();
        const auto* src = static_cast<const unsigned char*>(host);
        auto* out = static_cast<unsigned char*>(dst);
        while (bytes > 0) {
            const size_t n = bytes < slot_bytes ? bytes : slot_bytes;
            Slot& s = slot_[next_];
            next_ = (next_ + 1) % slots;
            check(cudaEventSynchronize(s.done), "cudaEventSynchronize (pinned staging slot)");
            std::memcpy(s.host, src, n);
            check(cudaMemcpyAsync(out, s.host, n, cudaMemcpyHostToDevice, stream()), "cudaMemcpyAsync (host to device)");
            check(cudaEventRecord(s.done, stream()), "cudaEventRecord (pinned staging slot)");
            src += n;
            out += n;
            bytes -= n;
        }
    }

private:
    struct Slot {
        void* host = nullptr;
        cudaEvent_t done = nullptr;
    };
    PinnedStaging() = default;
    void init() {
        if (ready_) return;
        (void)Context::get();
        for (Slot& s : slot_) {
            if (!s.host) check(cudaHostAlloc(&s.host, slot_bytes, cudaHostAllocDefault), "cudaHostAlloc (pinned staging)");
            if (!s.done) check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "cudaEventCreateWithFlags");
        }
        ready_ = true;
    }
    std::mutex mutex_;
    Slot slot_[slots];
    int next_ = 0;
    bool ready_ = false;
};

}  // namespace tapegrad::cuda
