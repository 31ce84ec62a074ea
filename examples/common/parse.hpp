#pragma once
// Strict text-to-number parsing for the programs' flags and file metadata (not part of the library):
// the whole text must be the number, and every item of a list must be present ("32,,16" is an error,
// not "32,16"). Errors are std::invalid_argument with a sentence that quotes the text.

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace examples {

/// A number as the programs print it: "0.001", "1e+30", "65536" (never 309 digits).
template <class V>
std::string number_text(V v) {
    if constexpr (std::is_floating_point_v<V>) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
        return buf;
    } else {
        return std::to_string(v);
    }
}

/// `text` as a V in [lo, hi]; throws std::invalid_argument saying what is wrong. Accepts nothing but the
/// number (no spaces, no trailing characters, no "nan").
template <class V>
V parse_number(std::string_view text, V lo, V hi) {
    V v{};
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    const bool parsed = !text.empty() && ec == std::errc() && p == end;
    if (!parsed) {
        const bool too_big = ec == std::errc::result_out_of_range;
        const char* kind = std::is_integral_v<V> ? "an integer" : "a number";
        throw std::invalid_argument("'" + std::string(text) + "' is " + (too_big ? "out of range" : "not " + std::string(kind)) +
                                    " (expected " + kind + " in [" + number_text(lo) + ", " + number_text(hi) + "])");
    }
    if (!(v >= lo && v <= hi))  // also false for NaN
        throw std::invalid_argument(std::string(text) + " is outside [" + number_text(lo) + ", " + number_text(hi) + "]");
    return v;
}

/// A comma-separated list of integers in [lo, hi], such as "256,128". An empty list, an empty item
/// ("32,,16", "32,") or a bad number is an error naming the item.
inline std::vector<int64_t> parse_int_list(std::string_view text, int64_t lo, int64_t hi) {
    if (text.empty()) throw std::invalid_argument("the list is empty (expected sizes such as 256,128)");
    std::vector<int64_t> out;
    size_t start = 0;
    for (;;) {
        const size_t comma = text.find(',', start);
        const std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
        if (item.empty())
            throw std::invalid_argument("'" + std::string(text) + "' has an empty item at position " +
                                        std::to_string(out.size() + 1) + " (expected sizes such as 256,128)");
        out.push_back(parse_number<int64_t>(item, lo, hi));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

/// "256,128": the inverse of parse_int_list.
inline std::string int_list_text(const std::vector<int64_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s;
}

}  // namespace examples
