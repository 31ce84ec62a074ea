#pragma once
/// \file
/// Lists of tensors for the multi-tensor primitives (`Ops<D>::step_many`, `fill_many`, `scale_many`,
/// `norm_many`), which apply one update to every tensor of a list in one call: on the GPU in one kernel
/// launch instead of one per tensor, which is what a training step of a small network costs (a launch is
/// 3-5 us of host time, more than the update of a 100k-element tensor) and what a CUDA Graph replays.
///
/// Also the plan a multi-tensor kernel launch follows (`BlockMap`, `plan_launches`): the grid is cut into
/// blocks of `multi_tensor_chunk` elements, each block working on one chunk of one tensor, so large and
/// small tensors share one grid. The plan is plain data, passed to the kernel by value, and built on the
/// host here so the CPU test suite can check that it covers every element exactly once.
///
/// Plain data and no Eigen, so CUDA kernels (backend/cuda/optim.cu) can include it.

#include <tapegrad/backend/common/host_device.hpp>

#include <cstdint>

namespace tapegrad::backend {

/// One tensor of a multi-tensor optimizer step (`Ops<D>::step_many`, with an update rule of
/// common/optim_math.hpp): n elements at p with gradient grad, up to three state buffers of its own (which
/// ones, the rule says; unused ones are null), two scalars of its own (the rule says which: Adam's
/// lr / bc1 and sqrt(bc2) for its own step count; Adagrad's decayed learning rate), and whether its state
/// was just created (SGD's momentum buffer then takes the gradient as it is).
template <class T>
struct StepParam {
    int64_t n = 0;
    T* p = nullptr;
    const T* grad = nullptr;
    T* s0 = nullptr;
    T* s1 = nullptr;
    T* s2 = nullptr;
    T a = T(0);
    T b = T(0);
    bool first_step = false;
};

/// n elements at data: one tensor's memory, without its shape, in the lists of `fill_many`, `scale_many`
/// and `norm_many`.
template <class T>
struct TensorSpan {
    int64_t n = 0;
    T* data = nullptr;
};

// ---- the launch plan of a multi-tensor kernel ---------------------------------------------------------------

/// Elements per block of a multi-tensor kernel: block b updates elements [c * chunk, (c + 1) * chunk) of
/// one tensor, c being b's chunk within that tensor.
inline constexpr int64_t multi_tensor_chunk = 2048;
/// Blocks one launch may have (CUDA's limit on gridDim.x).
inline constexpr int64_t multi_tensor_max_blocks = 2147483647;

/// Which blocks of one launch work on which of its (at most `Capacity`, non-empty) tensors: tensor t has
/// n[t] elements and blocks [first_block[t], first_block[t + 1]), one per chunk. Plain data: a member of
/// the table a kernel takes by value.
template <int Capacity>
struct BlockMap {
    static constexpr int capacity = Capacity;
    int count = 0;                          ///< tensors in this launch
    int64_t n[Capacity] = {};               ///< elements of each tensor
    uint32_t first_block[Capacity + 1] = {};  ///< first_block[0] = 0; first_block[count] = blocks()

    /// The launch's grid size.
    [[nodiscard]] TAPEGRAD_HD uint32_t blocks() const { return first_block[count]; }

    /// The tensor block b (< blocks()) works on: the last t with first_block[t] <= b, by binary search.
    [[nodiscard]] TAPEGRAD_HD int tensor_of(uint32_t b) const {
        int lo = 0, hi = count - 1;  // invariant: first_block[lo] <= b < first_block[hi + 1]
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (first_block[mid] <= b)
                lo = mid;
            else
                hi = mid - 1;
        }
        return lo;
    }
    /// The element range [begin, end) of tensor `t` that block b (one of t's blocks) works on.
    TAPEGRAD_HD void range_of(uint32_t b, int t, int64_t& begin, int64_t& end) const {
        begin = static_cast<int64_t>(b - first_block[t]) * multi_tensor_chunk;
        const int64_t stop = begin + multi_tensor_chunk;
        end = stop < n[t] ? stop : n[t];
    }
};

/// Cuts a list of `count` tensors into launches. For each tensor i with `size_of(i)` > 0 elements (empty
/// ones are skipped), in order, calls `put(slot, i, offset)` to store at position `slot` of the current
/// launch's table the pointers of tensor i advanced by `offset` elements, and records the piece in `map`
/// (the table's block map); calls `launch()` whenever the table is full (Capacity pieces, or `max_blocks`
/// blocks) and after the last piece. A piece is the whole tensor unless the tensor needs more blocks than
/// the launch has left (2^31 - 1 blocks of 2048 elements: 4.4e12 elements), when it is split there.
/// Returns the number of launches: 0 when every tensor is empty, 1 for a list that fits one table.
template <int Capacity, class SizeOf, class Put, class Launch>
int64_t plan_launches(int64_t count, BlockMap<Capacity>& map, SizeOf&& size_of, Put&& put, Launch&& launch,
                      int64_t max_blocks = multi_tensor_max_blocks) {
    int64_t launches = 0;
    map.count = 0;
    map.first_block[0] = 0;
    for (int64_t i = 0; i < count; ++i) {
        const int64_t n = size_of(i);
        for (int64_t offset = 0; offset < n;) {
            if (map.count == Capacity || static_cast<int64_t>(map.blocks()) == max_blocks) {
                launch();
                ++launches;
                map.count = 0;
            }
            const int64_t room = max_blocks - static_cast<int64_t>(map.blocks());  // > 0
            const int64_t need = (n - offset + multi_tensor_chunk - 1) / multi_tensor_chunk;
            const int64_t chunks = need < room ? need : room;
            const int64_t len = need <= room ? n - offset : chunks * multi_tensor_chunk;
            put(map.count, i, offset);
            map.n[map.count] = len;
            map.first_block[map.count + 1] = static_cast<uint32_t>(map.first_block[map.count] + chunks);
            ++map.count;
            offset += len;
        }
    }
    if (map.count > 0) {
        launch();
        ++launches;
    }
    return launches;
}

}  // namespace tapegrad::backend
