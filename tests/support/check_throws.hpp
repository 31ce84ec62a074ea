#pragma once
/// \file
/// `check_throws<E>(f, needle)`: a doctest check that `f()` throws an E whose message contains `needle`
/// (tapegrad's errors name the function and the values, so tests check the words, not just the type), and
/// `message_of<E>(f)`, the message itself, for the tests that compare it whole.

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace tapegrad::testing {

/// Checks that `f()` throws E with a message containing `needle`; reports the message otherwise.
template <class E, class F>
void check_throws(F&& f, const std::string& needle) {
    try {
        f();
        FAIL("no exception; expected one containing '" << needle << "'");
    } catch (const E& e) {
        CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, "message was: ", e.what());
    }
}

/// Whether `s` contains `part`.
inline bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

/// The message of the E that `f` throws, or "" if it throws nothing (other exceptions propagate, and doctest
/// reports them).
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "";
}

}  // namespace tapegrad::testing
