#pragma once
// Reading a CSV file into a table of text cells, and picking numbers out of it.
//
// The format: the first non-blank line is the header (column names); every other non-blank line is one row
// with as many fields as the header. Fields are separated by commas; a field may be quoted ("a, b"), with
// "" for a quote inside; spaces around a field are dropped; Windows line ends are fine. Anything else -- a
// row with too few or too many fields, a number that is not a number, an empty cell, a column that is not
// there -- is a CsvError whose message names the file, the line and the column, so the user can fix it.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace project {

/// A problem with a CSV file or with a column asked of it; the message says where.
class CsvError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A CSV file as text: the header and the rows, each row with its line number in the file.
struct CsvTable {
    std::string name;                             ///< the file name, for messages
    std::vector<std::string> header;              ///< column names
    std::vector<std::vector<std::string>> rows;   ///< rows[i][j]: row i, column j
    std::vector<int64_t> lines;                   ///< lines[i]: the line of the file that holds row i (from 1)
};

namespace detail {

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

/// Splits one line into fields; `where` ("file.csv:7") prefixes errors.
inline std::vector<std::string> split_fields(std::string_view line, const std::string& where) {
    std::vector<std::string> fields;
    size_t i = 0;
    for (;;) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        std::string field;
        if (i < line.size() && line[i] == '"') {  // quoted: up to the closing quote, "" is a quote
            ++i;
            bool closed = false;
            while (i < line.size()) {
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    closed = true;
                    ++i;
                    break;
                }
                field += line[i++];
            }
            if (!closed) throw CsvError(where + ": a quoted field is not closed (a missing \")");
            const size_t comma = line.find(',', i);
            if (!trim(line.substr(i, comma == std::string_view::npos ? line.npos : comma - i)).empty())
                throw CsvError(where + ": text after the closing quote of field " + std::to_string(fields.size() + 1));
            fields.push_back(std::move(field));
            if (comma == std::string_view::npos) break;
            i = comma + 1;
        } else {
            const size_t comma = line.find(',', i);
            fields.emplace_back(trim(line.substr(i, comma == std::string_view::npos ? line.npos : comma - i)));
            if (comma == std::string_view::npos) break;
            i = comma + 1;
        }
    }
    return fields;
}

}  // namespace detail

/// Parses CSV text (see the file comment). `name` names the source in error messages.
inline CsvTable parse_csv(std::string_view text, const std::string& name) {
    CsvTable t;
    t.name = name;
    int64_t line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (detail::trim(line).empty()) continue;
        const std::string where = name + ":" + std::to_string(line_no);
        std::vector<std::string> fields = detail::split_fields(line, where);
        if (t.header.empty()) {
            for (size_t j = 0; j < fields.size(); ++j) {
                if (fields[j].empty())
                    throw CsvError(where + ": column " + std::to_string(j + 1) + " of the header has no name");
                if (std::find(fields.begin(), fields.begin() + static_cast<std::ptrdiff_t>(j), fields[j]) !=
                    fields.begin() + static_cast<std::ptrdiff_t>(j))
                    throw CsvError(where + ": the header names column '" + fields[j] + "' twice");
            }
            t.header = std::move(fields);
            continue;
        }
        if (fields.size() != t.header.size())
            throw CsvError(where + ": " + std::to_string(fields.size()) + " fields, but the header has " +
                           std::to_string(t.header.size()) + " columns");
        t.rows.push_back(std::move(fields));
        t.lines.push_back(line_no);
    }
    if (t.header.empty()) throw CsvError(name + ": the file is empty (expected a header row of column names)");
    if (t.rows.empty()) throw CsvError(name + ": a header but no rows of data");
    return t;
}

/// Reads and parses a CSV file.
inline CsvTable read_csv(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CsvError("cannot open '" + path + "'");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw CsvError("cannot read '" + path + "'");
    return parse_csv(text.str(), path);
}

/// The column called `name_or_index`, or else, if it is a whole number, the column at that 0-based index.
/// Throws CsvError listing the columns when there is none.
inline size_t find_column(const CsvTable& t, const std::string& name_or_index) {
    const auto it = std::find(t.header.begin(), t.header.end(), name_or_index);
    if (it != t.header.end()) return static_cast<size_t>(it - t.header.begin());
    size_t index = 0;
    const char* end = name_or_index.data() + name_or_index.size();
    const auto [p, ec] = std::from_chars(name_or_index.data(), end, index);
    if (!name_or_index.empty() && ec == std::errc() && p == end && index < t.header.size()) return index;
    std::string names;
    for (const std::string& h : t.header) names += (names.empty() ? "'" : ", '") + h + "'";
    throw CsvError(t.name + ": no column '" + name_or_index + "' (the columns are " + names + ", or an index 0 to " +
                   std::to_string(t.header.size() - 1) + ")");
}

/// The cell as a number; CsvError naming the file, the line and the column when it is empty or not a number.
inline double cell_number(const CsvTable& t, size_t row, size_t col) {
    const std::string& s = t.rows[row][col];
    const std::string where = t.name + ":" + std::to_string(t.lines[row]) + ": column '" + t.header[col] + "'";
    if (s.empty()) throw CsvError(where + " is empty (fill in or remove the row: missing values are not supported)");
    double v = 0;
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    const auto [p, ec] = std::from_chars(begin, s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
        throw CsvError(where + " holds '" + s + "', which is not a number");
    return v;
}

}  // namespace project
