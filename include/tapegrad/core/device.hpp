#pragma once
/// \file
/// Devices and element types: the two type parameters of `Tensor<T, Device>`.

#include <concepts>
#include <cstdint>
#include <type_traits>

namespace tapegrad {

/// The host CPU, where tensors live by default; computation goes through Eigen.
struct Cpu {
    static constexpr const char* name = "cpu";
    static constexpr bool host_accessible = true;  ///< see HostAccessible
};

/// An element type tapegrad computes in: `float` or `double`. (Half precision, integers and complex are
/// not supported: their gradients would need different accumulation rules.)
template <class T>
concept Scalar = std::same_as<T, float> || std::same_as<T, double>;

/// An integer element type of index tensors: `int64_t` (token ids, class labels, positions; what argmax
/// returns and what the index ops take) or `int32_t` (compact storage; convert with `cast`).
template <class T>
concept Integer = std::same_as<T, int64_t> || std::same_as<T, int32_t>;

/// The element type of masks: `uint8_t`, each element 0 (false) or 1 (true). (Not `bool`: a
/// `std::vector<bool>` has no contiguous storage for `to_vector` and `from`.) See `Mask<D>` in core/tensor.hpp.
using MaskElement = uint8_t;

/// Every element type a `Tensor` may hold: a Scalar (float, double: differentiable), an Integer (int64_t,
/// int32_t) or the mask element uint8_t. Integer and mask tensors never record: no gradients.
template <class T>
concept Element = Scalar<T> || Integer<T> || std::same_as<T, MaskElement>;

/// The element types that hold data only, never gradients: the integers and the mask element.
template <class T>
concept Discrete = Integer<T> || std::same_as<T, MaskElement>;

/// A device tag: a type with a static `name`, for which a backend exists.
template <class D>
concept Device = requires {
    { D::name } -> std::convertible_to<const char*>;
};

/// A device whose memory the host reads and writes directly, like the CPU: element access (`x(i, j)`,
/// `data()`, `span()`), Eigen views and printing are offered on tensors of such devices only. A device tag
/// says so with `static constexpr bool host_accessible = true`; a GPU's tag does not.
template <class D>
concept HostAccessible = Device<D> && requires {
    requires D::host_accessible;
};

namespace detail {
/// For static_asserts that fire only when two different devices meet (ops on mixed operands).
template <class DA, class DB>
inline constexpr bool same_device = std::same_as<DA, DB>;
}  // namespace detail

}  // namespace tapegrad
