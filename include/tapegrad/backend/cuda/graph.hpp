#pragma once
/// \file
/// `cuda::Graph`: one training step (or any CUDA work with fixed shapes) captured once and replayed.

#include <tapegrad/backend/cuda/allocator.hpp>
#include <tapegrad/backend/cuda/context.hpp>
#include <tapegrad/core/error.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace tapegrad::cuda {

/// One training step (or any sequence of CUDA work with fixed shapes) captured once and replayed: the
/// whole step becomes one cudaGraphLaunch instead of dozens of kernel launches, which is where a small
/// network spends most of its time on a GPU.
///
///     data::DeviceLoader<float, Cuda> loader(train, {.batch_size = 64, .drop_last = true});
///     optim::SGD<float, Cuda> opt(net.parameters(), {.lr = 0.1});
///     cuda::Graph graph;
///     auto loss = graph.capture([&] {             // records; nothing runs yet
///         loader.next();                          // gathers the batch on the device
///         opt.zero_grad();
///         auto l = nn::cross_entropy(net(loader.x()), loader.y());
///         l.backward();
///         opt.step();
///         return l;
///     });
///     for (int epoch = 0; epoch < epochs; ++epoch) {
///         loader.start_epoch();                   // new order (outside the graph)
///         for (int64_t b = 0; b < loader.num_batches(); ++b) graph.replay();
///         std::printf("last loss %f\n", loss.item());  // `loss` is rewritten by every replay
///     }
///
/// What a replay does is exactly the device work of the capture, on the same memory: the host code of the
/// step (the tape, the optimizer's bookkeeping) ran once, during capture. So:
///  - Shapes, hyper-parameters (the learning rate...) and the choice of kernels are frozen at capture;
///    capture again after changing them.
///  - Inputs are read from where they were at capture: refresh them on the device between replays (a
///    DeviceLoader's next() inside the step does that), never with new host tensors.
///  - Nothing in the step may read values back to the host or copy from the host (item(), to<Cpu>, host
///    labels, the indices of max() over an axis): these throw DeviceError naming the operation, and the
///    capture is abandoned. Dropout in training mode throws too: each call draws its mask's seed on the host,
///    so a replay would repeat the captured mask instead of drawing a new one. So does batch norm with
///    momentum=None in training (it reads num_batches_tracked back); with a momentum it captures, and every
///    replay updates the running statistics and the count.
///  - Every tensor the step uses that was made before the capture (parameters, optimizer state, the
///    loader's buffers) must outlive the graph, and keep its buffer: an optimizer's load_state() replaces
///    its buffers, so call it before capturing.
///  - SGD with momentum must have taken one step before a capture (its first step differs from the others),
///    and Adam cannot be captured (its bias correction is computed on the host each step); both throw.
/// Memory: blocks the captured work uses are reserved for the graph (cuda::MemoryStats::graph_bytes) and
/// return to the cache when the graph is destroyed or captures again (while other graphs live, only once
/// they are gone too: their captures may have used the same blocks). A capture may take blocks the eager
/// cache held, so the first eager step after a capture may call cudaMalloc again.
class Graph {
public:
    Graph() = default;
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    ~Graph() { reset(); }

    /// Records the device work of `step()` into this graph (replacing what it held) and returns what step
    /// returned (e.g. the loss tensor, whose buffer each replay rewrites). Nothing runs: replay() runs it.
    /// Waits for earlier work first, so that its errors are reported here and not inside the graph. If
    /// step throws, or did something a graph cannot hold, the capture is abandoned and the error thrown.
    template <class F>
    auto capture(F&& step) -> std::invoke_result_t<F&> {
        using R = std::invoke_result_t<F&>;
        static_assert(!std::is_reference_v<R>, "cuda::Graph::capture: the step must return a value (e.g. the loss "
                                               "tensor) or nothing, not a reference.");
        TAPEGRAD_CHECK(!capturing(), DeviceError, "cuda::Graph::capture: another capture is in progress (captures ",
                       "cannot nest)");
        reset();
        const cudaStream_t st = stream();
        check(cudaStreamSynchronize(st), "cudaStreamSynchronize (before graph capture)");
        pool_ = std::make_shared<DeviceAllocator::Pool>();
        DeviceAllocator::get().begin_capture(pool_);
        const cudaError_t began = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
        if (began != cudaSuccess) {
            DeviceAllocator::get().end_capture();
            reset();
            check(began, "cudaStreamBeginCapture");
        }
        capture_flag().store(true);
        std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result;
        try {
            if constexpr (std::is_void_v<R>) {
                step();
                result.emplace(0);
            } else {
                result.emplace(step());
            }
        } catch (...) {
            cudaGraph_t partial = nullptr;
            (void)cudaStreamEndCapture(st, &partial);
            if (partial) (void)cudaGraphDestroy(partial);
            (void)cudaGetLastError();
            capture_flag().store(false);
            DeviceAllocator::get().end_capture();
            reset();
            throw;
        }
        cudaGraph_t graph = nullptr;
        const cudaError_t ended = cudaStreamEndCapture(st, &graph);
        capture_flag().store(false);
        DeviceAllocator::get().end_capture();
        cudaError_t s = ended;
        const char* call = "cudaStreamEndCapture";
        size_t nodes = 0;
        cudaGraphExec_t exec = nullptr;
        if (s == cudaSuccess) {
            call = "cudaGraphGetNodes";
            s = cudaGraphGetNodes(graph, nullptr, &nodes);
        }
        if (s == cudaSuccess) {
            call = "cudaGraphInstantiate";
            s = cudaGraphInstantiate(&exec, graph, 0);
            if (s != cudaSuccess) exec = nullptr;
        }
        if (graph) (void)cudaGraphDestroy(graph);
        if (s == cudaSuccess) {  // the graph's one-time setup now, so that the first replay costs what others do
            call = "cudaGraphUpload";
            s = cudaGraphUpload(exec, st);
        }
        if (s != cudaSuccess) {
            (void)cudaGetLastError();
            if (exec) (void)cudaGraphExecDestroy(exec);
            reset();
            TAPEGRAD_CHECK(ended != cudaErrorStreamCaptureInvalidated && ended != cudaErrorStreamCaptureUnsupported,
                           DeviceError, "cuda::Graph::capture: the captured work was invalidated (",
                           cudaGetErrorString(ended), "): something in the step called a CUDA function that cannot ",
                           "be captured, or another thread used the GPU during the capture");
            check(s, call);
        }
        exec_ = exec;
        nodes_ = nodes;
        if constexpr (!std::is_void_v<R>) return std::move(*result);
    }

    /// Runs the captured work once more, enqueued on the stream like any op (does not wait).
    void replay() {
        TAPEGRAD_CHECK(exec_ != nullptr, DeviceError, "cuda::Graph::replay: nothing has been captured");
        check_not_capturing("replaying a graph");
        check(cudaGraphLaunch(exec_, stream()), "cudaGraphLaunch");
    }

    /// Whether capture() has succeeded (and reset() not been called since).
    [[nodiscard]] bool captured() const noexcept { return exec_ != nullptr; }
    /// Kernels, copies and other nodes in the captured graph (0 before a capture).
    [[nodiscard]] size_t node_count() const noexcept { return nodes_; }

    /// Drops the captured graph and gives its memory back to the cache.
    void reset() noexcept {
        if (exec_) {
            (void)cudaGraphExecDestroy(exec_);
            exec_ = nullptr;
        }
        if (pool_) {
            DeviceAllocator::get().close_pool(*pool_);
            pool_.reset();
        }
        nodes_ = 0;
    }

private:
    cudaGraphExec_t exec_ = nullptr;
    std::shared_ptr<DeviceAllocator::Pool> pool_;
    size_t nodes_ = 0;
};

}  // namespace tapegrad::cuda
