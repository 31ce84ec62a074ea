#pragma once
// An SVG heat map of a matrix with a label per row and per column (the seq2seq lesson draws its attention
// weights with it: one row per output character, one column per input character). Not part of the library.

#include <tapegrad/util/atomic_file.hpp>
#include <tapegrad/util/svg_plot.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

/// The document: cell (i, j) is shaded from white (0) to dark blue (the largest value), with its value
/// printed when the cell is dark enough to matter (>= 0.1 of the largest).
inline std::string heatmap_svg(const std::string& title, const std::vector<std::string>& row_labels,
                               const std::vector<std::string>& col_labels, const std::vector<std::vector<double>>& v,
                               const std::string& row_axis, const std::string& col_axis) {
    if (v.size() != row_labels.size()) throw std::invalid_argument("heatmap_svg: one row label per row is needed");
    double top = 1e-12;
    for (const auto& row : v) {
        if (row.size() != col_labels.size()) throw std::invalid_argument("heatmap_svg: one column label per column is needed");
        for (const double x : row) top = std::max(top, x);
    }
    constexpr int cell = 26, left = 90, up = 70;
    const int w = left + cell * static_cast<int>(col_labels.size()) + 20;
    const int h = up + cell * static_cast<int>(row_labels.size()) + 50;
    std::string s;
    const auto esc = [&s](const std::string& t) { tapegrad::util::detail::svg_escape_to(s, t); };
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"monospace\" "
                  "font-size=\"13\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                  w, h);
    s += buf;
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">", left);
    s += buf;
    esc(title);
    s += "</text>\n";
    for (size_t j = 0; j < col_labels.size(); ++j) {
        std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", left + cell * static_cast<int>(j) + cell / 2, up - 8);
        s += buf;
        esc(col_labels[j] == " " ? "\xe2\x90\xa3" : col_labels[j]);  // a visible space
        s += "</text>\n";
    }
    for (size_t i = 0; i < row_labels.size(); ++i) {
        const int y = up + cell * static_cast<int>(i);
        std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + cell / 2 + 5);
        s += buf;
        esc(row_labels[i]);
        s += "</text>\n";
        for (size_t j = 0; j < col_labels.size(); ++j) {
            const double a = std::clamp(v[i][j] / top, 0.0, 1.0);
            const int r = static_cast<int>(255 - a * (255 - 8)), g = static_cast<int>(255 - a * (255 - 48)),
                      b = static_cast<int>(255 - a * (255 - 107));
            const int x = left + cell * static_cast<int>(j);
            std::snprintf(buf, sizeof buf,
                          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" stroke=\"#eeeeee\">"
                          "<title>%.3f</title></rect>\n",
                          x, y, cell, cell, r, g, b, v[i][j]);
            s += buf;
        }
    }
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\">", left, up + cell * static_cast<int>(row_labels.size()) + 30);
    s += buf;
    esc("rows: " + row_axis + "; columns: " + col_axis + "; darker = more weight");
    s += "</text>\n</svg>\n";
    return s;
}

/// Writes heatmap_svg(...) to `path` atomically.
inline void save_heatmap(const std::filesystem::path& path, const std::string& svg) {
    tapegrad::util::write_file_atomically(
        path, std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(svg.data()), svg.size()),
        "save_heatmap: '" + path.string() + "'");
}

}  // namespace examples
