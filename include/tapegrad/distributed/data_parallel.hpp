#pragma once
/// \file
/// dist::DataParallel: the same model on every rank, each rank on its own share of every batch, gradients
/// averaged over the ranks during backward -- PyTorch's DistributedDataParallel, over a dist::Communicator.
///
/// At construction it checks that every rank holds a model with the same parameter and buffer names and
/// shapes (if not, every rank throws the same DistributedError, naming the first difference per rank) and
/// copies rank 0's parameters and buffers to the others. It then sorts the parameters into buckets in
/// reverse registration order -- roughly the order backward produces their gradients -- the first bucket up
/// to `first_bucket_cap_mb`, the others up to `bucket_cap_mb` (a bucket is closed once it reaches its cap).
/// Each parameter carries a post-accumulate-grad hook: when backward has finished a parameter's gradient,
/// the gradient is copied into its bucket, and a bucket whose gradients are all in starts a non-blocking
/// allreduce while backward goes on with the earlier layers. Buckets start in bucket order on every rank
/// (a bucket that fills early waits for the ones before it), so the collectives match across ranks whatever
/// order the gradients come in. When the last bucket has started, backward waits for what is still
/// outstanding and writes the averaged gradients back into `grad()`: when `loss.backward()` returns, every
/// rank holds the same averaged gradients, and `opt.step()` needs no extra call.
///
/// Every rank must run the same number of backward passes over the same parameters. A parameter that gets
/// no gradient in a pass (a branch not taken on every rank) keeps its bucket from starting: call
/// `finish_gradient_synchronization()` after backward then (it treats missing gradients as zero); a
/// forward after an unfinished pass throws, rather than training on half-averaged gradients.

#include <tapegrad/autograd/record.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/distributed/communicator.hpp>
#include <tapegrad/nn/module.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tapegrad::dist {

/// What happens to the model's buffers (batch-norm running statistics) in a training-mode forward.
enum class BufferSync {
    broadcast,  ///< rank 0's buffers are copied to every rank before each forward (PyTorch's default)
    average,    ///< the buffers are averaged over the ranks before each forward
    none,       ///< each rank keeps its own
};

struct DataParallelOptions {
    double bucket_cap_mb = 25.0;       ///< MiB of gradients per bucket (PyTorch's default)
    double first_bucket_cap_mb = 1.0;  ///< a small first bucket, so that communication starts early
    BufferSync buffers = BufferSync::broadcast;
};

/// Counters of gradient synchronisation (since construction or reset_stats()).
struct SyncStats {
    int64_t passes = 0;         ///< synchronised backward passes
    int64_t allreduces = 0;     ///< buckets reduced
    int64_t bytes = 0;          ///< gradient bytes reduced per rank
    double wait_seconds = 0.0;  ///< time blocked waiting for allreduces once every bucket had started
};

template <Scalar T = float, Device D = Cpu>
class DataParallel final : public nn::Module<T, D> {
    static_assert(std::is_same_v<D, Cpu>, "dist::DataParallel works on CPU tensors: the communicators move host "
                                          "memory (a GPU communicator would sit beside MpiCommunicator).");

public:
    using TensorT = Tensor<T, D>;
    using ModuleT = nn::Module<T, D>;

    /// Wraps `module` (registered as the child "module", so parameters() are its parameters). Collective:
    /// every rank of `comm` must construct its DataParallel at the same point. `comm` must outlive this.
    DataParallel(std::shared_ptr<ModuleT> module, Communicator& comm, DataParallelOptions opt = {})
        : comm_(&comm), opt_(opt) {
        TAPEGRAD_CHECK(module != nullptr, ValueError, "DataParallel: the module is null");
        TAPEGRAD_CHECK(opt.bucket_cap_mb > 0 && opt.first_bucket_cap_mb > 0, ValueError,
                       "DataParallel: bucket caps must be positive, got bucket_cap_mb=", opt.bucket_cap_mb,
                       " first_bucket_cap_mb=", opt.first_bucket_cap_mb);
        module_ = this->register_module("module", std::move(module));
        params_ = module_->named_parameters();
        buffers_ = module_->named_buffers();
        check_same_model();
        for (auto& [name, t] : params_) comm_->broadcast(t.data(), t.numel(), 0);
        for (auto& [name, t] : buffers_) comm_->broadcast(t.data(), t.numel(), 0);
        build_buckets();
        for (size_t i = 0; i < params_.size(); ++i) {
            tapegrad::detail::ImplBase* impl = params_[i].second.impl();
            if (!params_[i].second.requires_grad()) continue;
            TAPEGRAD_CHECK(!impl->post_accumulate_grad_hook, ValueError, "DataParallel: parameter '", params_[i].first,
                           "' already has a gradient hook (is the module wrapped twice?)");
            impl->post_accumulate_grad_hook = [this, i] { gradient_ready(i); };
        }
    }
    DataParallel(const DataParallel&) = delete;
    DataParallel& operator=(const DataParallel&) = delete;
    DataParallel(DataParallel&&) = delete;  // the hooks point at this object
    DataParallel& operator=(DataParallel&&) = delete;
    ~DataParallel() override {
        for (auto& [name, t] : params_) t.impl()->post_accumulate_grad_hook = nullptr;
    }

    /// Synchronises the buffers (see BufferSync; in training mode), then runs the wrapped module.
    TensorT forward(const TensorT& x) override {
        if (round_started()) {
            std::string missing;
            for (size_t i = 0; i < params_.size(); ++i)
                if (params_[i].second.requires_grad() && !ready_[i]) {
                    missing = params_[i].first;
                    break;
                }
            throw DistributedError("DataParallel: the last backward left the gradient averaging unfinished "
                                   "(parameter '" + missing + "' got no gradient); call "
                                   "finish_gradient_synchronization() after backward when some parameters are "
                                   "not used");
        }
        if (this->is_training() && comm_->size() > 1 && opt_.buffers != BufferSync::none && !buffers_.empty())
            sync_buffers();
        return module_->forward(x);
    }

    /// Finishes averaging the gradients of the last backward: starts the buckets that have not started (a
    /// parameter without a gradient counts as zero) and waits for all. Backward does this by itself when
    /// every parameter got a gradient, so this is needed only when some did not; otherwise it returns at
    /// once. Collective when it has work to do.
    void finish_gradient_synchronization() {
        if (!round_started()) return;
        for (size_t i = 0; i < params_.size(); ++i)
            if (params_[i].second.requires_grad() && !ready_[i]) mark_ready(i);
        launch_ready_buckets();
        finish_round();
    }

    /// Turns gradient averaging off until destroyed (gradient accumulation): backward passes inside only
    /// add into the local gradients; the first backward after it averages everything accumulated.
    class NoSync {
    public:
        explicit NoSync(DataParallel& dp) : dp_(&dp), prev_(dp.sync_) { dp.sync_ = false; }
        NoSync(const NoSync&) = delete;
        NoSync& operator=(const NoSync&) = delete;
        ~NoSync() { dp_->sync_ = prev_; }

    private:
        DataParallel* dp_;
        bool prev_;
    };
    /// `{ auto guard = model.no_sync(); loss.backward(); }`
    [[nodiscard]] NoSync no_sync() { return NoSync(*this); }

    [[nodiscard]] ModuleT& module() const noexcept { return *module_; }
    [[nodiscard]] Communicator& communicator() const noexcept { return *comm_; }
    [[nodiscard]] const DataParallelOptions& options() const noexcept { return opt_; }
    /// The buckets, each as its parameters' names in the order they were packed.
    [[nodiscard]] std::vector<std::vector<std::string>> buckets() const {
        std::vector<std::vector<std::string>> out;
        for (const Bucket& b : buckets_) {
            out.emplace_back();
            for (size_t i : b.members) out.back().push_back(params_[i].first);
        }
        return out;
    }
    [[nodiscard]] const SyncStats& stats() const noexcept { return stats_; }
    void reset_stats() noexcept { stats_ = {}; }

    [[nodiscard]] std::string describe() const override {
        std::ostringstream os;
        os << "DataParallel(ranks=" << comm_->size() << ", backend=" << comm_->backend() << ", buckets=" << buckets_.size()
           << ")";
        return os.str();
    }

private:
    struct Bucket {
        std::vector<size_t> members;  ///< indices into params_
        std::vector<int64_t> offsets;
        int64_t numel = 0;
        std::vector<T> flat;
        int pending = 0;  ///< members whose gradient is not in yet
        std::unique_ptr<Work> work;
        bool done = false;
    };

    /// Same names, shapes and element type on every rank, or a DistributedError on every rank.
    void check_same_model() {
        std::ostringstream os;
        os << "dtype " << sizeof(T) << "\n";
        for (const auto& [name, t] : params_) os << "parameter " << name << ' ' << t.shape() << '\n';
        for (const auto& [name, t] : buffers_) os << "buffer " << name << ' ' << t.shape() << '\n';
        const std::string mine = os.str();
        // Rank 0's description to everyone (its length first), then each rank's verdict to everyone: so
        // all ranks take the same decision and throw together, none is left waiting.
        int64_t len = static_cast<int64_t>(mine.size());
        comm_->broadcast(&len, 1, 0);
        std::string root(static_cast<size_t>(len), '\0');
        if (comm_->rank() == 0) root = mine;
        comm_->broadcast(reinterpret_cast<uint8_t*>(root.data()), len, 0);
        constexpr int64_t msg_bytes = 240;
        char verdict[msg_bytes] = {};
        if (mine != root) {
            const std::string d = first_difference(mine, root);
            std::snprintf(verdict, msg_bytes, "rank %d: %s", comm_->rank(), d.c_str());
        }
        std::vector<char> all(static_cast<size_t>(msg_bytes * comm_->size()));
        comm_->allgather(verdict, all.data(), msg_bytes);
        std::string problems;
        for (int r = 0; r < comm_->size(); ++r) {
            const char* m = all.data() + static_cast<size_t>(r) * msg_bytes;
            if (m[0] == '\0') continue;
            if (!problems.empty()) problems += "; ";
            problems.append(m, std::find(m, m + msg_bytes, '\0'));
        }
        TAPEGRAD_CHECK(problems.empty(), DistributedError,
                       "DataParallel: the ranks hold different models (every rank needs rank 0's parameter and "
                       "buffer names and shapes): ", problems);
    }
    static std::string first_difference(const std::string& mine, const std::string& root) {
        std::istringstream a(mine), b(root);
        std::string la, lb;
        while (true) {
            const bool ga = static_cast<bool>(std::getline(a, la)), gb = static_cast<bool>(std::getline(b, lb));
            if (!ga && !gb) return "the models differ";
            if (!ga) return "rank 0 has '" + lb + "' that is missing here";
            if (!gb) return "'" + la + "' is not on rank 0";
            if (la != lb) return "'" + la + "' where rank 0 has '" + lb + "'";
        }
    }

    void build_buckets() {
        ready_.assign(params_.size(), false);
        bucket_of_.assign(params_.size(), 0);
        pos_in_bucket_.assign(params_.size(), 0);
        const double mib = 1024.0 * 1024.0;
        Bucket cur;
        int64_t bytes = 0;
        for (size_t k = params_.size(); k-- > 0;) {
            const TensorT& p = params_[k].second;
            if (!p.requires_grad()) continue;
            cur.members.push_back(k);
            cur.offsets.push_back(cur.numel);
            cur.numel += p.numel();
            bytes += p.numel() * static_cast<int64_t>(sizeof(T));
            const double cap = (buckets_.empty() ? opt_.first_bucket_cap_mb : opt_.bucket_cap_mb) * mib;
            if (static_cast<double>(bytes) >= cap) {
                buckets_.push_back(std::move(cur));
                cur = Bucket{};
                bytes = 0;
            }
        }
        if (!cur.members.empty()) buckets_.push_back(std::move(cur));
        for (size_t b = 0; b < buckets_.size(); ++b) {
            Bucket& bk = buckets_[b];
            bk.flat.assign(static_cast<size_t>(bk.numel), T(0));
            bk.pending = static_cast<int>(bk.members.size());
            for (size_t m = 0; m < bk.members.size(); ++m) {
                bucket_of_[bk.members[m]] = b;
                pos_in_bucket_[bk.members[m]] = m;
            }
        }
    }

    [[nodiscard]] bool round_started() const noexcept { return any_ready_; }

    /// The hook: parameter i's gradient is final for this backward pass.
    void gradient_ready(size_t i) {
        if (!sync_ || comm_->size() == 1) return;
        TAPEGRAD_CHECK(!ready_[i], DistributedError, "DataParallel: parameter '", params_[i].first,
                       "' received a gradient twice before the ranks averaged them (a parameter got no gradient in "
                       "the previous backward; call finish_gradient_synchronization() after it)");
        mark_ready(i);
        launch_ready_buckets();
        progress();
        if (next_launch_ == buckets_.size()) finish_round();
    }

    void mark_ready(size_t i) {
        Bucket& b = buckets_[bucket_of_[i]];
        T* dst = b.flat.data() + b.offsets[pos_in_bucket_[i]];
        const TensorT& p = params_[i].second;
        const TensorT g = p.grad();
        if (g.defined())
            std::memcpy(dst, g.data(), static_cast<size_t>(p.numel()) * sizeof(T));
        else
            std::fill_n(dst, p.numel(), T(0));
        ready_[i] = true;
        any_ready_ = true;
        --b.pending;
    }

    /// Starts, in bucket order, every bucket whose gradients are all in.
    void launch_ready_buckets() {
        while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
            Bucket& b = buckets_[next_launch_];
            b.work = comm_->iallreduce_sum(b.flat.data(), b.numel, dtype_of<T>());
            b.done = false;
            ++stats_.allreduces;
            stats_.bytes += b.numel * static_cast<int64_t>(sizeof(T));
            ++next_launch_;
        }
    }

    /// Lets the communication library advance the started buckets (it may have no thread of its own).
    void progress() {
        while (next_done_ < next_launch_ && buckets_[next_done_].work->test()) buckets_[next_done_++].done = true;
    }

    /// Waits for every bucket, writes the averages into the gradients, and starts a new round.
    void finish_round() {
        const auto t0 = std::chrono::steady_clock::now();
        for (Bucket& b : buckets_)
            if (b.work) b.work->wait();
        stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const T scale = T(1) / static_cast<T>(comm_->size());
        for (Bucket& b : buckets_) {
            for (size_t m = 0; m < b.members.size(); ++m) {
                const TensorT& p = params_[b.members[m]].second;
                T* g = tapegrad::detail::grad_buffer(p);
                const T* src = b.flat.data() + b.offsets[m];
                for (int64_t k = 0; k < p.numel(); ++k) g[k] = src[k] * scale;
            }
            b.work.reset();
            b.done = false;
            b.pending = static_cast<int>(b.members.size());
        }
        std::fill(ready_.begin(), ready_.end(), false);
        any_ready_ = false;
        next_launch_ = next_done_ = 0;
        ++stats_.passes;
    }

    void sync_buffers() {
        int64_t n = 0;
        for (const auto& [name, t] : buffers_) n += t.numel();
        buffer_flat_.resize(static_cast<size_t>(n));
        T* p = buffer_flat_.data();
        for (const auto& [name, t] : buffers_) p = std::copy_n(t.data(), t.numel(), p);
        if (opt_.buffers == BufferSync::broadcast) {
            comm_->broadcast(buffer_flat_.data(), n, 0);
        } else {
            comm_->allreduce_sum(buffer_flat_.data(), n);
            const T scale = T(1) / static_cast<T>(comm_->size());
            for (T& v : buffer_flat_) v *= scale;
        }
        p = buffer_flat_.data();
        for (auto& [name, t] : buffers_) {
            std::copy_n(p, t.numel(), t.data());
            p += t.numel();
        }
    }

    Communicator* comm_;
    DataParallelOptions opt_;
    std::shared_ptr<ModuleT> module_;
    typename ModuleT::Named params_, buffers_;
    std::vector<Bucket> buckets_;
    std::vector<size_t> bucket_of_, pos_in_bucket_;
    std::vector<bool> ready_;
    bool any_ready_ = false;
    size_t next_launch_ = 0, next_done_ = 0;
    bool sync_ = true;
    std::vector<T> buffer_flat_;
    SyncStats stats_;
};

}  // namespace tapegrad::dist
