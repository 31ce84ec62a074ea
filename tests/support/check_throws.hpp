#pragma once
/// \file
/// `check_throws<E>(f, needle)`: a doctest check that `f()` throws an E whose message contains `needle`
/// (tapegrad's errors name the function and the values, so tests check the words, not just the type).

#include <doctest/doctest.h>

#include <string>

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

}  // namespace tapegrad::testing
