#pragma once
/// \file
/// Devices and element types: the two type parameters of `Tensor<T, Device>`.

#include <concepts>
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
