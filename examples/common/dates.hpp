#pragma once
// The seq2seq lesson's data: dates written the ways people write them, and the ISO form they mean.
//   "Tuesday, 5 March 2019", "03/05/19", "5 mar 2019", "TUE 05 MAR 2019", "05-Mar-19", ... -> "2019-03-05"
// Generated from a seed (no download), dates from 1950-01-01 to 2049-12-31, so a two-digit year is never
// ambiguous (50-99: 19xx, 00-49: 20xx); slashes are month/day/year, dots day.month.year. Not part of the
// library and free of flags, so tests/examples/common/dates_test.cpp checks it.

#include <tapegrad/core/random.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace examples {

struct DatePair {
    std::string source;  ///< as written: "Tuesday, 5 March 2019"
    std::string target;  ///< ISO 8601: "2019-03-05"
};

inline constexpr std::array<const char*, 12> month_names = {"January", "February", "March",     "April",   "May",      "June",
                                                            "July",    "August",   "September", "October", "November", "December"};
inline constexpr std::array<const char*, 7> day_names = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                         "Thursday", "Friday", "Saturday"};
inline constexpr int date_formats = 10;

inline bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
inline int days_in_month(int y, int m) {
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}
/// 0 = Sunday (Sakamoto's method).
inline int day_of_week(int y, int m, int d) {
    static constexpr int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3) y -= 1;
    return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

inline std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    return s;
}
inline std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return s;
}

/// The date y-m-d written in format `f` (0 to date_formats - 1).
inline std::string format_date(int y, int m, int d, int f) {
    const std::string month = month_names[static_cast<size_t>(m - 1)], mon = month.substr(0, 3);
    const std::string day = day_names[static_cast<size_t>(day_of_week(y, m, d))];
    char buf[64];
    switch (f) {
        case 0: std::snprintf(buf, sizeof buf, "%s, %d %s %d", day.c_str(), d, month.c_str(), y); break;
        case 1: std::snprintf(buf, sizeof buf, "%02d/%02d/%02d", m, d, y % 100); break;
        case 2: std::snprintf(buf, sizeof buf, "%d %s %d", d, lower(mon).c_str(), y); break;
        case 3: std::snprintf(buf, sizeof buf, "%s %d, %d", month.c_str(), d, y); break;
        case 4: std::snprintf(buf, sizeof buf, "%d.%d.%d", d, m, y); break;
        case 5: std::snprintf(buf, sizeof buf, "%s %02d %s %d", upper(day.substr(0, 3)).c_str(), d, upper(mon).c_str(), y); break;
        case 6: std::snprintf(buf, sizeof buf, "%s %d %d", mon.c_str(), d, y); break;
        case 7: std::snprintf(buf, sizeof buf, "%02d-%s-%02d", d, mon.c_str(), y % 100); break;
        case 8: std::snprintf(buf, sizeof buf, "%d/%d/%d", m, d, y); break;
        case 9: std::snprintf(buf, sizeof buf, "%s %d %s %d", lower(day).c_str(), d, lower(month).c_str(), y); break;
        default: throw std::invalid_argument("format_date: no format " + std::to_string(f));
    }
    return buf;
}

/// A uniformly random date in 1950-2049, written in a uniformly random format.
inline DatePair random_date(tapegrad::Generator& gen) {
    const int y = 1950 + static_cast<int>(gen.below(100));
    const int m = 1 + static_cast<int>(gen.below(12));
    const int d = 1 + static_cast<int>(gen.below(static_cast<uint64_t>(days_in_month(y, m))));
    char iso[48];
    std::snprintf(iso, sizeof iso, "%04d-%02d-%02d", y, m, d);
    return {format_date(y, m, d, static_cast<int>(gen.below(date_formats))), iso};
}

/// `train` pairs and `test` pairs from `seed`; no test source appears among the training sources (a
/// held-out input is one the network has not seen), and the test sources are distinct.
inline void make_date_sets(int64_t train, int64_t test, uint64_t seed, std::vector<DatePair>& train_set,
                           std::vector<DatePair>& test_set) {
    tapegrad::Generator gen(seed);
    train_set.clear();
    test_set.clear();
    std::unordered_set<std::string> seen;
    for (int64_t i = 0; i < train; ++i) {
        train_set.push_back(random_date(gen));
        seen.insert(train_set.back().source);
    }
    while (static_cast<int64_t>(test_set.size()) < test) {
        DatePair p = random_date(gen);
        if (seen.insert(p.source).second) test_set.push_back(std::move(p));
    }
}

/// The characters a source can hold, in a fixed order; index + 1 is the token (0 is padding).
inline const std::string& date_source_chars() {
    static const std::string chars =
        " ,-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    return chars;
}
/// Source tokens: 0 is padding, c -> 1 + its place in date_source_chars().
inline std::vector<int64_t> encode_source(const std::string& s) {
    std::vector<int64_t> ids;
    for (const char c : s) {
        const size_t at = date_source_chars().find(c);
        if (at == std::string::npos) throw std::invalid_argument(std::string("encode_source: character '") + c + "' is not in the vocabulary");
        ids.push_back(static_cast<int64_t>(at) + 1);
    }
    return ids;
}
/// Target tokens: '0'-'9' -> 0-9, '-' -> 10, then the start (11) and end (12) tokens.
inline constexpr int64_t target_start = 11, target_end = 12, target_vocab = 13;
inline std::vector<int64_t> encode_target(const std::string& s) {
    std::vector<int64_t> ids;
    for (const char c : s) ids.push_back(c == '-' ? 10 : c - '0');
    return ids;
}
inline std::string decode_target(const std::vector<int64_t>& ids) {
    std::string s;
    for (const int64_t t : ids) s += t == 10 ? '-' : t >= 0 && t < 10 ? static_cast<char>('0' + t) : '?';
    return s;
}

}  // namespace examples
