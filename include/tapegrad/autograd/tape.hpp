#pragma once
/// \file
/// The tape: what an operation records when its inputs require grad, and the engine that replays it.
///
/// Every differentiable op that runs while grad mode is on creates one `Node` holding its backward closure
/// and a sequence number from a per-thread counter. The output tensor owns the node; the node's closure
/// owns the inputs it needs. So the record is a graph owned by the tensors themselves: a forward pass that
/// is never differentiated is freed with its tensors and never piles up, and two threads never share a
/// record. `backward()` collects the nodes reachable from the root with an explicit stack (no recursion,
/// so a chain of a million ops works), sorts them by decreasing sequence number -- reverse creation order,
/// which is a valid reverse topological order because an op's inputs always exist before it -- and runs
/// each closure once. Each closure adds (`+=`) into its inputs' gradients, so a value used twice receives
/// both contributions.

#include <tapegrad/core/error.hpp>
#include <tapegrad/core/live_counters.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace tapegrad {

namespace detail {

struct Node;

/// The autograd-facing part of every tensor, whatever its element type and device.
struct ImplBase {
    ImplBase() = default;
    ImplBase(const ImplBase&) = delete;
    ImplBase& operator=(const ImplBase&) = delete;
    virtual ~ImplBase();

    std::shared_ptr<Node> grad_fn;  ///< the op that produced this tensor; null for leaves and constants
    bool requires_grad = false;
    bool retains_grad = false;  ///< keep the gradient of a non-leaf after backward
    /// Frees this tensor's gradient buffer (called for intermediates once their node has run).
    virtual void drop_grad() = 0;
    /// For an intermediate that retains its gradient: sets the gradient of an earlier backward aside, so
    /// this pass propagates only its own contribution, then adds the two back together afterwards.
    virtual void stash_grad() = 0;
    virtual void unstash_grad() = 0;
    [[nodiscard]] virtual bool has_grad() const = 0;

    /// For a leaf: called by backward as soon as this pass has added every contribution to the leaf's
    /// gradient (each op that uses it has run), while the rest of the backward is still to come. Data
    /// parallelism starts sending a gradient from here. Empty: none.
    std::function<void()> post_accumulate_grad_hook;
    uint64_t hook_mark = 0;  ///< engine bookkeeping: the pass that counted hook_pending
    int hook_pending = 0;    ///< engine bookkeeping: ops of this pass that still have to add into the gradient
};

/// One recorded operation.
struct Node {
    static constexpr int inline_inputs = 8;  ///< edges held without the heap (a recurrent layer has 7 inputs)

    explicit Node(const char* op_name);
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    virtual ~Node();

    /// Reads the output's gradient and adds each input's share into that input's gradient.
    virtual void backward() = 0;
    /// Frees what backward needed (saved tensors, edges). Afterwards backward through this node throws.
    virtual void release() noexcept = 0;

    /// The inputs that require grad: the edges the engine follows. Owned by the closure, not here.
    void add_edge(ImplBase* input) {
        if (n_inputs_ < inline_inputs)
            inputs_[n_inputs_] = input;
        else
            more_inputs_.push_back(input);
        ++n_inputs_;
    }
    [[nodiscard]] int num_edges() const noexcept { return n_inputs_; }
    [[nodiscard]] ImplBase* edge(int i) const noexcept {
        return i < inline_inputs ? inputs_[i] : more_inputs_[static_cast<size_t>(i - inline_inputs)];
    }
    void clear_edges() noexcept {
        n_inputs_ = 0;
        more_inputs_.clear();
    }

    const char* name;          ///< the op, for error messages: "matmul", "add", ...
    uint64_t seq;              ///< creation order within the recording thread
    uint64_t visit_mark = 0;   ///< engine bookkeeping
    ImplBase* output = nullptr;  ///< the tensor this node produced (it owns the node)
    bool released = false;

private:
    ImplBase* inputs_[inline_inputs]{};
    int n_inputs_ = 0;
    std::vector<ImplBase*> more_inputs_;
};

/// Live nodes across all threads, for tests and diagnostics.
using LiveNodes = LiveCounter<Live::nodes>;

struct ThreadState {
    uint64_t next_seq = 0;
    uint64_t visit_epoch = 0;
    bool grad_enabled = true;
    bool draining = false;
    std::vector<std::shared_ptr<Node>> graveyard;  ///< nodes waiting to be destroyed, see bury()
    std::vector<Node*> order;                       ///< engine scratch, reused between backward calls
    std::vector<Node*> stack;
};
inline ThreadState& thread_state() noexcept {
    thread_local ThreadState s;
    return s;
}

inline Node::Node(const char* op_name) : name(op_name), seq(thread_state().next_seq++) {
    LiveNodes::add(1);
}
inline Node::~Node() { LiveNodes::add(-1); }

/// Destroys a node without recursion. Destroying a node destroys its closure, which drops its inputs, whose
/// nodes die in turn: done naively that recursion overflows the stack on a long chain. Instead, a dying
/// tensor hands its node here; only the outermost call destroys, in a loop.
inline void bury(std::shared_ptr<Node>&& node) noexcept {
    ThreadState& ts = thread_state();
    if (!node) return;
    if (node.use_count() > 1) {  // someone else still holds it: just drop our reference
        node.reset();
        return;
    }
    try {
        ts.graveyard.push_back(std::move(node));
    } catch (...) {
        node.reset();  // out of memory: fall back to plain (recursive) destruction
        return;
    }
    if (ts.draining) return;
    ts.draining = true;
    while (!ts.graveyard.empty()) {
        std::shared_ptr<Node> n = std::move(ts.graveyard.back());
        ts.graveyard.pop_back();
        n.reset();
    }
    ts.draining = false;
}

inline ImplBase::~ImplBase() { bury(std::move(grad_fn)); }

/// Runs backward from `root`, whose gradient the caller has already seeded. Frees the record afterwards
/// unless `retain_graph`.
inline void run_backward(ImplBase& root, bool retain_graph) {
    ThreadState& ts = thread_state();
    const uint64_t mark = ++ts.visit_epoch;
    std::vector<Node*> order;  // taken from the thread's scratch so steady-state steps do not allocate
    std::vector<Node*> stack;
    order.swap(ts.order);
    stack.swap(ts.stack);
    order.clear();
    stack.clear();
    struct Restore {
        ThreadState& ts;
        std::vector<Node*>& order;
        std::vector<Node*>& stack;
        ~Restore() {
            order.clear();
            stack.clear();
            ts.order.swap(order);
            ts.stack.swap(stack);
        }
    } restore{ts, order, stack};

    Node* const root_node = root.grad_fn.get();
    if (root_node == nullptr) {  // a leaf: its gradient is the seed itself
        if (root.post_accumulate_grad_hook) root.post_accumulate_grad_hook();
        return;
    }
    root_node->visit_mark = mark;
    stack.push_back(root_node);
    bool hooks = false;  // some leaf reached has a post-accumulate-grad hook: count the ops that feed it
    while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        TAPEGRAD_CHECK(!n->released, ValueError, "backward: trying to backward through the graph a second time ",
                       "(the record of '", n->name, "' was freed by an earlier backward). Call ",
                       "backward({.retain_graph = true}) the first time if you need to backpropagate twice");
        order.push_back(n);
        for (int i = 0; i < n->num_edges(); ++i) {
            ImplBase* e = n->edge(i);
            Node* in = e->grad_fn.get();
            if (in != nullptr && in->visit_mark != mark) {
                in->visit_mark = mark;
                stack.push_back(in);
            } else if (in == nullptr && e->post_accumulate_grad_hook) {
                if (e->hook_mark != mark) e->hook_pending = 0;
                e->hook_mark = mark;
                ++e->hook_pending;
                hooks = true;
            }
        }
    }
    std::sort(order.begin(), order.end(), [](const Node* a, const Node* b) { return a->seq > b->seq; });
    for (Node* n : order)
        if (n->output->retains_grad && n->output != &root) n->output->stash_grad();
    for (Node* n : order) {
        if (n->output->has_grad()) n->backward();
        if (!n->output->retains_grad) n->output->drop_grad();
        if (hooks)  // a leaf whose last op has now run holds its final gradient for this pass
            for (int i = 0; i < n->num_edges(); ++i) {
                ImplBase* e = n->edge(i);
                if (e->grad_fn == nullptr && e->post_accumulate_grad_hook && e->hook_mark == mark &&
                    --e->hook_pending == 0)
                    e->post_accumulate_grad_hook();
            }
    }
    for (Node* n : order)
        if (n->output->retains_grad) n->output->unstash_grad();
    if (!retain_graph) {
        // Ascending creation order: freeing a node's closure can only destroy older nodes, which have
        // already been released, so no pointer in `order` dangles when we reach it.
        std::reverse(order.begin(), order.end());
        for (Node* n : order) {
            n->released = true;
            n->clear_edges();
            n->release();
        }
    }
}

}  // namespace detail

/// Whether operations record onto the tape on this thread.
[[nodiscard]] inline bool is_grad_enabled() noexcept { return detail::thread_state().grad_enabled; }

/// Turns recording off (or on) for this thread until it goes out of scope, restoring the previous mode:
/// `{ NoGradGuard g; auto y = model.forward(x); }` evaluates without building a graph.
class NoGradGuard {
public:
    explicit NoGradGuard(bool enabled = false) noexcept : prev_(detail::thread_state().grad_enabled) {
        detail::thread_state().grad_enabled = enabled;
    }
    ~NoGradGuard() { detail::thread_state().grad_enabled = prev_; }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool prev_;
};

/// Number of recorded nodes alive in the process (all threads). Returns to its baseline after each
/// training step; tests use it to prove that nothing piles up.
[[nodiscard]] inline int64_t live_nodes() noexcept {
    return detail::LiveNodes::load();
}

}  // namespace tapegrad
