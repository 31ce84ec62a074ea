#pragma once
/// \file
/// `Tensor<T, Device>`: an n-dimensional array, row-major and contiguous, 64-byte aligned. A tensor of float
/// or double can record the operations applied to it for reverse-mode differentiation; a tensor of int64_t or
/// int32_t (token ids, class labels, positions) or uint8_t (a mask, `Mask<D>`: 0 or 1 per element) holds
/// data only and is never differentiable: asking one for requires_grad, grad or backward does not compile.
/// Their ops (comparisons, argmax, cast, shape ops) are in ops/integer.hpp.
///
/// A `Tensor` is a handle, like `torch::Tensor`: copying it shares the data (use `clone()` for a deep
/// copy). Views (`reshape`, `flatten`, `detach`) share storage without copying.

#include <tapegrad/autograd/tape.hpp>
#include <tapegrad/backend/cpu.hpp>
#include <tapegrad/core/device.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/random.hpp>
#include <tapegrad/core/shape.hpp>

#include <Eigen/Core>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <iomanip>
#include <memory>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

/// The sentence an autograd member of an integer or mask tensor stops the compiler with.
#define TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE                                                                    \
    "tapegrad::Tensor: integer and mask tensors (int64_t, int32_t, uint8_t) are never differentiable: they "   \
    "have no requires_grad, grad or backward. Differentiate with respect to a float or double tensor "        \
    "(cast<float>(x) converts one, detached)"

/// The sentence a member shape op stops the compiler with when ops/shape.hpp is missing.
#define TAPEGRAD_SHAPE_OPS_MESSAGE                                                                              \
    "Tensor::reshape, flatten, clone and t are recorded ops defined in <tapegrad/ops/shape.hpp>: include it "  \
    "(or <tapegrad/tapegrad.hpp>) where you call them"

/// The same sentence for an integer or mask tensor, whose shape ops are in ops/integer.hpp.
#define TAPEGRAD_INTEGER_SHAPE_OPS_MESSAGE                                                                      \
    "Tensor::reshape, flatten, clone and t of integer and mask tensors are defined in "                        \
    "<tapegrad/ops/integer.hpp>: include it (or <tapegrad/tapegrad.hpp>) where you call them"

namespace tapegrad {

template <class T, class D = Cpu>
class Tensor;

namespace detail {

/// A block of device memory holding `n` elements; frees it unless it only borrows it.
template <class T, class D>
struct Buffer {
    Buffer(T* p, int64_t count, bool own) noexcept : data(p), n(count), owned(own) {}
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() {
        if (owned && data) backend::Ops<D>::deallocate(data, n);
    }
    T* data;
    int64_t n;
    bool owned;
};

template <class T, class D>
struct TensorImpl final : ImplBase {
    std::shared_ptr<Buffer<T, D>> storage;
    int64_t offset = 0;
    Shape shape;
    std::shared_ptr<TensorImpl> grad;
    std::shared_ptr<TensorImpl> stashed_grad;  ///< see ImplBase::stash_grad

    [[nodiscard]] T* data() const noexcept { return storage->data + offset; }
    void drop_grad() override { grad.reset(); }
    void stash_grad() override { stashed_grad = std::move(grad); }
    void unstash_grad() override {
        if (!stashed_grad) return;
        if constexpr (Scalar<T>) {  // integer tensors never have a gradient
            if (grad)
                backend::Ops<D>::axpy(shape.numel(), T(1), stashed_grad->data(), grad->data());
            else
                grad = std::move(stashed_grad);
        }
        stashed_grad.reset();
    }
    [[nodiscard]] bool has_grad() const override { return grad != nullptr; }
};

/// Tensor's member shape ops call the free functions of ops/shape.hpp, found by argument-dependent lookup
/// where a member is used; `has_shape_ops` tells whether that header was included.
template <class X>
concept has_shape_ops = requires(const X& x, const Shape& s) {
    reshape(x, s);
    flatten(x);
    clone(x);
    transpose(x, 0, 1);
};
template <class X>
X call_reshape(const X& x, const Shape& s) {
    return reshape(x, s);
}
template <class X>
X call_flatten(const X& x) {
    return flatten(x);
}
template <class X>
X call_clone(const X& x) {
    return clone(x);
}
template <class X>
X call_transpose(const X& x, int a, int b) {
    return transpose(x, a, b);
}

/// Tensors and their buffers come from the thread's host pool (see backend/cpu/host_pool.hpp).
template <class T, class D>
std::shared_ptr<TensorImpl<T, D>> make_impl() {
    return std::allocate_shared<TensorImpl<T, D>>(backend::PoolAllocator<TensorImpl<T, D>>{});
}
template <class T, class D>
std::shared_ptr<Buffer<T, D>> make_buffer(T* p, int64_t n, bool owned) {
    return std::allocate_shared<Buffer<T, D>>(backend::PoolAllocator<Buffer<T, D>>{}, p, n, owned);
}

}  // namespace detail

/// Options for `Tensor::backward`.
struct BackwardOptions {
    /// Keep the record after backward so it can be run again (gradients then accumulate).
    bool retain_graph = false;
};

template <class T, class D>
class Tensor {
    static_assert(Element<T>, "tapegrad::Tensor<T, D>: the element type T must be float or double (differentiable), "
                              "int64_t or int32_t (indices), or uint8_t (a mask).");
    static_assert(Device<D>, "tapegrad::Tensor<T, D>: D must be a device tag such as tapegrad::Cpu.");

public:
    using value_type = T;
    using device_type = D;
    using Impl = detail::TensorImpl<T, D>;
    using B = backend::Ops<D>;

    /// An undefined tensor (no data); `defined()` is false.
    Tensor() = default;
    explicit Tensor(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

    // ---- factories ----------------------------------------------------------------------------------
    /// Uninitialised storage of the given shape.
    static Tensor empty(const Shape& shape) {
        TAPEGRAD_CHECK(shape.is_valid(), ShapeError, "Tensor: invalid shape ", shape, " (dimensions must be >= 0)");
        auto impl = detail::make_impl<T, D>();
        const int64_t n = shape.numel();
        impl->storage = detail::make_buffer<T, D>(B::template allocate<T>(n), n, true);
        impl->shape = shape;
        return Tensor(std::move(impl));
    }
    static Tensor full(const Shape& shape, T value) {
        Tensor t = empty(shape);
        B::fill(t.numel(), value, t.data_ptr());
        return t;
    }
    static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
    static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
    /// A rank-0 tensor holding `value`.
    static Tensor scalar(T value) { return full(Shape{}, value); }
    /// A tensor of the given shape from row-major values; their count must equal the shape's.
    /// On another device than the CPU the values are uploaded.
    static Tensor from(const Shape& shape, std::span<const T> values) {
        TAPEGRAD_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), ShapeError, "Tensor::from: shape ", shape,
                       " holds ", shape.numel(), " elements but ", values.size(), " values were given");
        Tensor t = empty(shape);
        B::upload(t.numel(), values.data(), t.data_ptr());
        return t;
    }
    static Tensor from(const Shape& shape, std::initializer_list<T> values) {
        return from(shape, std::span<const T>(values.begin(), values.size()));
    }
    static Tensor from(const Shape& shape, const std::vector<T>& values) {
        return from(shape, std::span<const T>(values));
    }
    /// [start, start + step, ...) up to but excluding `end`, as a 1-D tensor.
    static Tensor arange(T start, T end, T step = T(1))
        requires HostAccessible<D>
    {
        const char* bad = !finite(start) ? "start is not finite"
                          : !finite(end)   ? "end is not finite"
                          : !finite(step)  ? "step is not finite"
                          : step == T(0)   ? "step is zero"
                                           : nullptr;
        TAPEGRAD_CHECK(bad == nullptr, ValueError, "arange: ", bad, " (start ", +start, ", end ", +end, ", step ", +step,
                       ")");
        const double count = std::ceil((static_cast<double>(end) - static_cast<double>(start)) / static_cast<double>(step));
        // 2^63 is exact in double; a count at or above it has no int64 (and no memory).
        TAPEGRAD_CHECK(count < 9223372036854775808.0, ShapeError, "arange: ", count, " elements (start ", +start,
                       ", end ", +end, ", step ", +step, ") are more than int64 can count");
        const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
        Tensor t = empty(Shape{n});
        for (int64_t i = 0; i < n; ++i) t.data_ptr()[i] = static_cast<T>(start + static_cast<T>(i) * step);
        return t;
    }
    static Tensor arange(int64_t n)
        requires HostAccessible<D>
    {
        return arange(T(0), static_cast<T>(n));
    }
    /// Independent draws, uniform in [lo, hi), from `gen`.
    /// (Drawn on the host, from the same stream of numbers on every device, then uploaded.)
    static Tensor uniform(const Shape& shape, T lo, T hi, Generator& gen)
        requires Scalar<T>
    {
        if constexpr (!HostAccessible<D>) {
            const Tensor<T, Cpu> h = Tensor<T, Cpu>::uniform(shape, lo, hi, gen);
            return from(shape, std::span<const T>(h.data_ptr(), static_cast<size_t>(h.numel())));
        } else {
            TAPEGRAD_CHECK(lo <= hi, ValueError, "uniform: lower bound ", lo, " is above upper bound ", hi);
            Tensor t = empty(shape);
            for (int64_t i = 0; i < t.numel(); ++i) t.data_ptr()[i] = lo + (hi - lo) * gen.template uniform01<T>();
            return t;
        }
    }
    /// Independent normal draws with the given mean and standard deviation, from `gen`.
    static Tensor normal(const Shape& shape, T mean, T stddev, Generator& gen)
        requires Scalar<T>
    {
        if constexpr (!HostAccessible<D>) {
            const Tensor<T, Cpu> h = Tensor<T, Cpu>::normal(shape, mean, stddev, gen);
            return from(shape, std::span<const T>(h.data_ptr(), static_cast<size_t>(h.numel())));
        } else {
            TAPEGRAD_CHECK(stddev >= T(0), ValueError, "normal: standard deviation ", stddev, " is negative");
            Tensor t = empty(shape);
            for (int64_t i = 0; i < t.numel(); ++i) t.data_ptr()[i] = mean + stddev * static_cast<T>(gen.normal());
            return t;
        }
    }
    /// Wraps memory the caller owns, without copying (zero-copy interop with Eigen or any row-major array).
    /// The memory must outlive the tensor and every view of it.
    static Tensor from_blob(T* data, const Shape& shape) {
        TAPEGRAD_CHECK(data != nullptr || shape.numel() == 0, ValueError, "from_blob: null data for shape ", shape);
        auto impl = detail::make_impl<T, D>();
        impl->storage = detail::make_buffer<T, D>(data, shape.numel(), false);
        impl->shape = shape;
        return Tensor(std::move(impl));
    }
    /// Copies any Eigen matrix or array (either storage order) into a 2-D [rows, cols] tensor.
    template <class Derived>
    static Tensor from_eigen(const Eigen::DenseBase<Derived>& m)
        requires HostAccessible<D>
    {
        Tensor t = empty(Shape{m.rows(), m.cols()});
        t.matrix() = m.derived().template cast<T>().matrix();
        return t;
    }

    // ---- shape and data -----------------------------------------------------------------------------
    [[nodiscard]] bool defined() const noexcept { return impl_ != nullptr; }
    [[nodiscard]] const Shape& shape() const { return checked().shape; }
    [[nodiscard]] int dim() const { return shape().rank(); }
    /// Size along `axis`; negative counts from the end.
    [[nodiscard]] int64_t size(int axis) const { return shape().size(axis); }
    [[nodiscard]] int64_t numel() const { return shape().numel(); }
    [[nodiscard]] static constexpr const char* device_name() noexcept { return D::name; }

    /// Pointer to the first element (row-major, contiguous).
    [[nodiscard]] T* data_ptr() const { return checked().data(); }
    [[nodiscard]] T* data() const
        requires HostAccessible<D>
    {
        return data_ptr();
    }
    [[nodiscard]] std::span<T> span() const
        requires HostAccessible<D>
    {
        return {data_ptr(), static_cast<size_t>(numel())};
    }
    /// The values, row-major, copied to the host (from a GPU this waits for the ops that produce them).
    [[nodiscard]] std::vector<T> to_vector() const {
        std::vector<T> v(static_cast<size_t>(numel()));
        B::download(numel(), data_ptr(), v.data());
        return v;
    }
    /// The value of a one-element tensor (from a GPU this waits for the ops that produce it).
    [[nodiscard]] T item() const {
        TAPEGRAD_CHECK(numel() == 1, ShapeError, "item: tensor of shape ", shape(), " has ", numel(),
                       " elements, not one");
        T v{};
        B::download(1, data_ptr(), &v);
        return v;
    }
    /// Bounds-checked element access by a full multi-index: `x.at({1, 2})`.
    [[nodiscard]] T& at(std::initializer_list<int64_t> index) const
        requires HostAccessible<D>
    {
        return data_ptr()[flat_index(index.begin(), static_cast<int>(index.size()))];
    }
    /// Bounds-checked element access: `x(1, 2)`.
    template <std::integral... I>
    [[nodiscard]] T& operator()(I... index) const
        requires HostAccessible<D>
    {
        const int64_t idx[] = {static_cast<int64_t>(index)..., 0};
        return data_ptr()[flat_index(idx, static_cast<int>(sizeof...(I)))];
    }

    /// Zero-copy Eigen view of a 2-D tensor as a row-major matrix (writes go to the tensor).
    [[nodiscard]] Eigen::Map<backend::RowMat<T>> matrix() const
        requires HostAccessible<D>
    {
        TAPEGRAD_CHECK(dim() == 2, ShapeError, "matrix: needs a 2-D tensor, got shape ", shape());
        return {data_ptr(), size(0), size(1)};
    }
    /// Zero-copy Eigen view of all elements as a flat column array.
    [[nodiscard]] Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> array() const
        requires HostAccessible<D>
    {
        return {data_ptr(), numel()};
    }

    // ---- in-place, outside autograd -----------------------------------------------------------------
    /// Sets every element to `value`. Not recorded; refused on a leaf that requires grad while recording.
    Tensor& fill_(T value) {
        check_inplace("fill_");
        B::fill(numel(), value, data_ptr());
        return *this;
    }
    Tensor& zero_() { return fill_(T(0)); }
    /// Copies `src`'s values (same shape) into this tensor's storage. Not recorded.
    Tensor& copy_(const Tensor& src) {
        check_inplace("copy_");
        TAPEGRAD_CHECK(src.shape() == shape(), ShapeError, "copy_: source shape ", src.shape(),
                       " differs from destination shape ", shape());
        B::copy(numel(), src.data_ptr(), data_ptr());
        return *this;
    }

    // ---- autograd -----------------------------------------------------------------------------------
    [[nodiscard]] bool requires_grad() const {
        static_assert(Scalar<T>, TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE);
        return checked().requires_grad;
    }
    /// Marks a leaf as a parameter whose gradient backward computes (`requires_grad_(true)`).
    Tensor& requires_grad_(bool on = true) {
        static_assert(Scalar<T>, TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE);
        TAPEGRAD_CHECK(is_leaf(), ValueError, "requires_grad_: only leaf tensors can change requires_grad; this one "
                                              "was produced by '", impl_->grad_fn->name, "' (use detach() first)");
        impl_->requires_grad = on;
        return *this;
    }
    /// True for tensors not produced by a recorded op (inputs, parameters, constants).
    [[nodiscard]] bool is_leaf() const { return checked().grad_fn == nullptr; }
    /// The gradient accumulated by backward (undefined if none yet). Shares storage with the tensor's grad.
    [[nodiscard]] Tensor grad() const {
        static_assert(Scalar<T>, TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE);
        return Tensor(checked().grad);
    }
    /// Zeroes the gradient in place (keeping its buffer, so a training step does not allocate).
    void zero_grad() {
        static_assert(Scalar<T>, TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE);
        if (checked().grad) B::fill(numel(), T(0), impl_->grad->data());
    }
    /// Drops the gradient buffer entirely.
    void reset_grad() { checked().grad.reset(); }
    /// Keeps this intermediate's gradient after backward (leaves always keep theirs).
    void retain_grad() {
        static_assert(Scalar<T>, TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE);
        checked().retains_grad = true;
    }
    /// The name of the op that produced this tensor, or null for a leaf.
    [[nodiscard]] const char* grad_fn_name() const { return is_leaf() ? nullptr : impl_->grad_fn->name; }

    /// Backpropagates from this one-element tensor: accumulates d(this)/d(leaf) into every leaf's grad().
    void backward(const BackwardOptions& opt = {}) const {
        static_assert(Scalar<T>, TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE);
        TAPEGRAD_CHECK(numel() == 1, ShapeError, "backward: called on a tensor of shape ", shape(),
                       "; only a one-element output can start backward without an explicit gradient");
        backward(Tensor::full(shape(), T(1)), opt);
    }
    /// Backpropagates with an explicit output gradient of this tensor's shape.
    void backward(const Tensor& gradient, const BackwardOptions& opt = {}) const {
        static_assert(Scalar<T>, TAPEGRAD_NOT_DIFFERENTIABLE_MESSAGE);
        Impl& self = checked();
        TAPEGRAD_CHECK(self.requires_grad, ValueError,
                       "backward: tensor of shape ", self.shape, " does not require grad and has no grad_fn");
        TAPEGRAD_CHECK(gradient.shape() == self.shape, ShapeError, "backward: gradient of shape ", gradient.shape(),
                       " given for a tensor of shape ", self.shape);
        if (self.grad_fn) {
            TAPEGRAD_CHECK(!self.grad_fn->released, ValueError,
                           "backward: trying to backward through the graph a second time (the record of '",
                           self.grad_fn->name, "' was freed by an earlier backward). Call ",
                           "backward({.retain_graph = true}) the first time if you need to backpropagate twice");
        }
        if (self.grad_fn && self.retains_grad) self.stash_grad();
        detail_accumulate(self, gradient);
        detail::run_backward(self, opt.retain_graph);
    }
    /// A tensor sharing this one's data that records nothing and requires no grad.
    [[nodiscard]] Tensor detach() const {
        const Impl& self = checked();
        auto impl = detail::make_impl<T, D>();
        impl->storage = self.storage;
        impl->offset = self.offset;
        impl->shape = self.shape;
        return Tensor(std::move(impl));
    }

    // Shape ops as members, for convenience. They are recorded ops, so they live with the others in
    // ops/shape.hpp (reshape, flatten, clone, transpose); these forward to them and, if that header is not
    // included, stop the compiler with a sentence saying to include it (instead of failing to link).
    /// `reshape(*this, shape)`: a view with another shape (one dimension may be -1).
    template <class Self = Tensor>
    [[nodiscard]] Self reshape(const Shape& shape) const {
        static_assert(!Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_SHAPE_OPS_MESSAGE);
        static_assert(Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_INTEGER_SHAPE_OPS_MESSAGE);
        return detail::call_reshape(static_cast<const Self&>(*this), shape);
    }
    /// `flatten(*this)`: a 1-D view of all elements.
    template <class Self = Tensor>
    [[nodiscard]] Self flatten() const {
        static_assert(!Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_SHAPE_OPS_MESSAGE);
        static_assert(Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_INTEGER_SHAPE_OPS_MESSAGE);
        return detail::call_flatten(static_cast<const Self&>(*this));
    }
    /// `clone(*this)`: a deep copy that stays in the graph.
    template <class Self = Tensor>
    [[nodiscard]] Self clone() const {
        static_assert(!Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_SHAPE_OPS_MESSAGE);
        static_assert(Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_INTEGER_SHAPE_OPS_MESSAGE);
        return detail::call_clone(static_cast<const Self&>(*this));
    }
    /// The transpose of a 2-D tensor (a copy): `transpose(*this, 0, 1)`.
    template <class Self = Tensor>
    [[nodiscard]] Self t() const {
        static_assert(!Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_SHAPE_OPS_MESSAGE);
        static_assert(Scalar<T> || detail::has_shape_ops<Self>, TAPEGRAD_INTEGER_SHAPE_OPS_MESSAGE);
        TAPEGRAD_CHECK(dim() == 2, ShapeError, "t: needs a 2-D tensor, got shape ", shape());
        return detail::call_transpose(static_cast<const Self&>(*this), 0, 1);
    }

    // ---- internals (used by ops, optimizers and backends) --------------------------------------------
    [[nodiscard]] Impl* impl() const noexcept { return impl_.get(); }
    [[nodiscard]] const std::shared_ptr<Impl>& impl_ptr() const noexcept { return impl_; }
    [[nodiscard]] bool same_as(const Tensor& o) const noexcept { return impl_ == o.impl_; }

    /// Prints `tensor([[1, 2], [3, 4]], shape=[2, 2])`, eliding the middle of long dimensions.
    friend std::ostream& operator<<(std::ostream& os, const Tensor& t)
        requires HostAccessible<D>
    {
        if (!t.defined()) return os << "tensor(undefined)";
        std::ostringstream buf;
        buf << std::setprecision(6);
        buf << "tensor(";
        t.print_rec(buf, 0, 0);
        buf << ", shape=" << t.shape();
        if constexpr (Scalar<T>) {
            if (t.requires_grad()) buf << ", requires_grad=true";
            if (!t.is_leaf()) buf << ", grad_fn=" << t.grad_fn_name();
        } else {
            buf << ", dtype=" << dtype_name();
        }
        buf << ')';
        return os << buf.str();
    }
    [[nodiscard]] std::string str() const
        requires HostAccessible<D>
    {
        std::ostringstream os;
        os << *this;
        return os.str();
    }

    /// The element type's name: "float", "double", "int64", "int32" or "uint8".
    [[nodiscard]] static constexpr const char* dtype_name() noexcept {
        if constexpr (std::is_same_v<T, float>) return "float";
        else if constexpr (std::is_same_v<T, double>) return "double";
        else if constexpr (std::is_same_v<T, int64_t>) return "int64";
        else if constexpr (std::is_same_v<T, int32_t>) return "int32";
        else return "uint8";
    }

private:
    static bool finite(T v) {
        if constexpr (Scalar<T>) return std::isfinite(v);
        else return (static_cast<void>(v), true);
    }
    Impl& checked() const {
        TAPEGRAD_CHECK(impl_ != nullptr, ValueError, "Tensor: operation on an undefined tensor");
        return *impl_;
    }
    void check_inplace(const char* op) const {
        const Impl& self = checked();
        TAPEGRAD_CHECK(!(is_grad_enabled() && self.requires_grad && self.grad_fn == nullptr), ValueError, op,
                       ": a leaf tensor that requires grad cannot be modified in place while recording; wrap the "
                       "update in NoGradGuard");
    }
    int64_t flat_index(const int64_t* idx, int n) const {
        const Shape& s = shape();
        TAPEGRAD_CHECK(n == s.rank(), IndexError, "at: ", n, " indices given for a tensor of rank ", s.rank(),
                       " (shape ", s, ")");
        int64_t flat = 0;
        for (int i = 0; i < n; ++i) {
            TAPEGRAD_CHECK(idx[i] >= 0 && idx[i] < s[i], IndexError, "at: index ", idx[i],
                           " out of range for dimension ", i, " of size ", s[i], " (shape ", s, ")");
            flat = flat * s[i] + idx[i];
        }
        return flat;
    }
    static void detail_accumulate(Impl& self, const Tensor& g) {
        if (!self.grad) {
            auto gi = detail::make_impl<T, D>();
            const int64_t n = self.shape.numel();
            gi->storage = detail::make_buffer<T, D>(B::template allocate<T>(n), n, true);
            gi->shape = self.shape;
            B::copy(n, g.data_ptr(), gi->data());
            self.grad = std::move(gi);
        } else {
            B::axpy(self.shape.numel(), T(1), g.data_ptr(), self.grad->data());
        }
    }
    void print_rec(std::ostream& os, int axis, int64_t offset) const {
        const Shape& s = shape();
        const T* p = data_ptr();
        if (s.rank() == 0) {
            os << +p[0];  // unary + prints a uint8_t mask element as a number
            return;
        }
        int64_t stride = 1;
        for (int i = axis + 1; i < s.rank(); ++i) stride *= s[i];
        const int64_t n = s[axis];
        const bool elide = n > 8;
        os << '[';
        for (int64_t i = 0; i < n; ++i) {
            if (elide && i == 3) {
                os << (axis + 1 == s.rank() ? ", ..." : ",\n ...");
                i = n - 3;
            }
            if (i > 0) os << (axis + 1 == s.rank() ? ", " : ",\n ");
            if (axis + 1 == s.rank())
                os << +p[offset + i];
            else
                print_rec(os, axis + 1, offset + i * stride);
        }
        os << ']';
    }

    std::shared_ptr<Impl> impl_;
};

using TensorF = Tensor<float, Cpu>;
using TensorD = Tensor<double, Cpu>;
/// Integer tensors on the CPU: int64 (ids, labels, argmax's result; `torch.long`) and int32.
using TensorL = Tensor<int64_t, Cpu>;
using TensorI = Tensor<int32_t, Cpu>;
/// A mask: uint8_t elements, 0 or 1 (what the comparisons return and where / masked_fill take).
template <Device D = Cpu>
using Mask = Tensor<MaskElement, D>;

/// Free-function factories: `tapegrad::zeros<float>({2, 3})`.
template <Element T, Device D = Cpu>
Tensor<T, D> zeros(const Shape& s) {
    return Tensor<T, D>::zeros(s);
}
template <Element T, Device D = Cpu>
Tensor<T, D> ones(const Shape& s) {
    return Tensor<T, D>::ones(s);
}
template <Element T, Device D = Cpu>
Tensor<T, D> full(const Shape& s, T v) {
    return Tensor<T, D>::full(s, v);
}
template <Scalar T, Device D = Cpu>
Tensor<T, D> uniform(const Shape& s, T lo, T hi, Generator& g) {
    return Tensor<T, D>::uniform(s, lo, hi, g);
}
template <Scalar T, Device D = Cpu>
Tensor<T, D> normal(const Shape& s, T mean, T stddev, Generator& g) {
    return Tensor<T, D>::normal(s, mean, stddev, g);
}
template <Element T, Device D>
Tensor<T, D> zeros_like(const Tensor<T, D>& x) {
    return Tensor<T, D>::zeros(x.shape());
}
template <Element T, Device D>
Tensor<T, D> ones_like(const Tensor<T, D>& x) {
    return Tensor<T, D>::ones(x.shape());
}

}  // namespace tapegrad

