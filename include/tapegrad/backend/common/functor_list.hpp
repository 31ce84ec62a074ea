#pragma once
/// \file
/// The one list of elementwise functors: every functor of functors.hpp, activation_functors.hpp and
/// loss_functors.hpp, joined from the list each header keeps beside its functors. Both devices read it:
///  - the CPU primitives (`Ops<Cpu>::map`, `zip` and their backwards) static_assert that their functor is
///    listed, so a functor missing from its header's list fails to compile on the CPU, in every CI job;
///  - the CUDA backend instantiates map / map_backward for every unary functor and zip / zip_backward for
///    every binary one, for float and double, from these macros (backend/cuda/elementwise*.cu);
///  - the CPU test suite checks every listed functor's derivative against finite differences.
/// Adding a functor is therefore: the struct and its X(Name) entry, in one header.

#include <tapegrad/backend/common/activation_functors.hpp>
#include <tapegrad/backend/common/functors.hpp>
#include <tapegrad/backend/common/loss_functors.hpp>

#include <type_traits>
#include <utility>

/// X(name) for every unary functor (fn::name has operator()(T) and backward(x, y, dy)).
#define TAPEGRAD_UNARY_FUNCTORS(X) TAPEGRAD_MATH_UNARY_FUNCTORS(X) TAPEGRAD_ACTIVATION_UNARY_FUNCTORS(X)
/// X(name) for every binary functor (fn::name has operator()(T, T), da and db).
#define TAPEGRAD_BINARY_FUNCTORS(X) \
    TAPEGRAD_MATH_BINARY_FUNCTORS(X) TAPEGRAD_ACTIVATION_BINARY_FUNCTORS(X) TAPEGRAD_LOSS_BINARY_FUNCTORS(X)

namespace tapegrad::fn {

#define TAPEGRAD_FN_IS(Name) || std::is_same_v<F, Name>
/// Whether F is in TAPEGRAD_UNARY_FUNCTORS.
template <class F>
inline constexpr bool listed_unary = false TAPEGRAD_UNARY_FUNCTORS(TAPEGRAD_FN_IS);
/// Whether F is in TAPEGRAD_BINARY_FUNCTORS.
template <class F>
inline constexpr bool listed_binary = false TAPEGRAD_BINARY_FUNCTORS(TAPEGRAD_FN_IS);
#undef TAPEGRAD_FN_IS

/// Found by argument-dependent lookup for the types of namespace tapegrad::fn only (declared, never defined).
template <class F>
std::true_type library_functor_tag(const F&);

namespace detail {
std::false_type library_functor_tag(...);
/// An unqualified call, so that argument-dependent lookup sees fn::library_functor_tag for fn's types.
template <class F>
inline constexpr bool library_functor = decltype(library_functor_tag(std::declval<const F&>()))::value;
}  // namespace detail

/// Whether F is one of the library's functors (a type of namespace tapegrad::fn), which must be listed. A
/// functor of the user's own, elsewhere, runs on the CPU unlisted (the CUDA backend cannot instantiate it).
template <class F>
inline constexpr bool library_functor = detail::library_functor<F>;

/// What the CPU primitives accept: a listed functor, or one that is not the library's.
template <class F>
inline constexpr bool usable_unary = !library_functor<F> || listed_unary<F>;
template <class F>
inline constexpr bool usable_binary = !library_functor<F> || listed_binary<F>;

}  // namespace tapegrad::fn
