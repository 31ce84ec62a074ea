#pragma once
/// \file
/// The tapegrad exception hierarchy and the checking macros every public function uses.
///
/// Every error a user can cause is thrown as a `tapegrad::Error` subclass, in Release builds too: the
/// library never asserts on user input, never prints and never exits. Messages name the function, what is
/// wrong and the values, e.g. `matmul: inner dimensions differ (4x3 and 2x5)`. The message is built only
/// on failure, so a check costs one predictable branch on the hot path.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tapegrad {

/// Base of every exception tapegrad throws.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Tensor shapes that do not fit together (matmul, broadcasting, reshape, state dicts...).
class ShapeError : public Error {
public:
    using Error::Error;
};

/// An index, axis or label outside its valid range.
class IndexError : public Error {
public:
    using Error::Error;
};

/// A value outside its domain: a negative learning rate, a non-scalar backward, a freed graph...
class ValueError : public Error {
public:
    using Error::Error;
};

/// A file or byte stream that does not follow its format (IDX, safetensors), or cannot be read or written.
class FormatError : public Error {
public:
    using Error::Error;
};

/// Tensors on different devices mixed in one operation, or a device that is not available.
class DeviceError : public Error {
public:
    using Error::Error;
};

/// A broken internal invariant: a bug in tapegrad, never the user's fault.
class InternalError : public Error {
public:
    using Error::Error;
};

namespace detail {

/// Concatenates its arguments with `operator<<`. Only called on the failure path.
template <class... Args>
[[nodiscard]] std::string concat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}

template <class E, class... Args>
[[noreturn]] void raise(Args&&... args) {
    throw E(concat(std::forward<Args>(args)...));
}

}  // namespace detail
}  // namespace tapegrad

/// Throws `ErrorType` with the streamed message parts when `cond` is false. The parts are evaluated only
/// on failure. Usage: `TAPEGRAD_CHECK(a == b, ShapeError, "add: shapes ", sa, " and ", sb, " differ");`
#define TAPEGRAD_CHECK(cond, ErrorType, ...)                                   \
    do {                                                                       \
        if (!(cond)) [[unlikely]] {                                            \
            ::tapegrad::detail::raise<::tapegrad::ErrorType>(__VA_ARGS__);     \
        }                                                                      \
    } while (0)

/// Internal invariant: on failure throws `InternalError` naming the file and line (kept in Release, since
/// a silent wrong gradient is worse than an exception).
#define TAPEGRAD_ASSERT(cond)                                                           \
    do {                                                                                \
        if (!(cond)) [[unlikely]] {                                                     \
            ::tapegrad::detail::raise<::tapegrad::InternalError>(                       \
                "tapegrad internal error: '" #cond "' failed at ", __FILE__, ":", __LINE__); \
        }                                                                               \
    } while (0)
