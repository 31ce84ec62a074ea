#pragma once
/// \file
/// `util::SvgPlot`: a small line-plot writer with no dependencies, so an example can show a loss curve, a
/// fitted function or the activation functions without Python or gnuplot. Open the file in any browser.
///
///     util::SvgPlot plot({.title = "Training loss", .x_label = "epoch", .y_label = "loss"});
///     plot.add_series("train", epochs, train_loss);
///     plot.add_series("test", epochs, test_loss, {.dashed = true});
///     plot.save("loss.svg");
///
/// Ranges are found from the data (y with a 5% margin) unless fixed in the options; ticks fall on "nice"
/// values (multiples of 1, 2 or 5 times a power of ten) and are labelled with just enough digits. NaN and
/// infinite points are skipped and break the line there. Each series is one `<path>`, in one of ten
/// distinct colours, named in a legend to the right of the plot. Text is XML-escaped.

#include <tapegrad/core/error.hpp>
#include <tapegrad/util/atomic_file.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


namespace tapegrad::util {

/// The figure: labels, size in pixels, and optional fixed axis ranges (unset: from the data).
struct SvgPlotOptions {
    std::string title{};
    std::string x_label{};
    std::string y_label{};
    int width = 720;   ///< whole image, legend included; >= 200
    int height = 450;  ///< >= 150
    std::optional<double> x_min{}, x_max{}, y_min{}, y_max{};  ///< fixed limits; points outside are clipped
};

/// How one series is drawn.
struct SeriesStyle {
    bool points = false;  ///< a dot at each point instead of a line through them (scatter plot)
    bool dashed = false;  ///< dashed line
    int color = -1;       ///< index into the 10-colour palette; -1 takes the next unused one
    double stroke_width = 2.0;
};

namespace detail {

/// Appends `s` with the five XML special characters escaped. Control characters that XML 1.0 forbids
/// (all below 0x20 except tab, newline and carriage return) become '?'.
inline void svg_escape_to(std::string& out, std::string_view s) {
    for (const char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
                    out += '?';
                else
                    out += c;
        }
    }
}
[[nodiscard]] inline std::string svg_escape(std::string_view s) {
    std::string out;
    svg_escape_to(out, s);
    return out;
}

/// A pixel coordinate: fixed, two decimals, locale-independent.
inline void svg_num_to(std::string& out, double v) {
    std::array<char, 64> buf{};
    if (std::abs(v) < 0.005) v = 0.0;  // no "-0.00"
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, 2);
    out.append(buf.data(), r.ptr);
}

/// A tick label: `v` with at most the decimals a tick `step` needs and no trailing zeros (0.25 -> "0.25",
/// 1.0 -> "1", 1000 -> "1000"), in scientific notation for very large or small magnitudes ("1e+06",
/// "2.5e-05"). Never "-0".
[[nodiscard]] inline std::string svg_tick_label(double v, double step) {
    std::array<char, 64> buf{};
    if (std::abs(v) < step * 1e-6) v = 0.0;
    const double mag = std::max(std::abs(v), step);
    std::to_chars_result r;
    if (mag >= 1e6 || step < 1e-4) {
        r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::general, 4);
    } else {
        // Decimals of the step (a nice step 1, 2 or 5 x 10^k has max(0, -k) of them).
        const int decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 10);
        r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, decimals);
        if (decimals > 0) {
            while (r.ptr[-1] == '0') --r.ptr;
            if (r.ptr[-1] == '.') --r.ptr;
        }
    }
    std::string label(buf.data(), r.ptr);
    return label == "-0" ? "0" : label;
}

/// The nice tick step for about `target` intervals over a span: 1, 2 or 5 times a power of ten.
[[nodiscard]] inline double svg_nice_step(double span, int target) {
    const double raw = span / target;
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / p;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * p;
}

/// An axis: its limits and tick step. Limits not fixed by the user are the data's, widened by `pad` (a
/// fraction of the span) on each side; the ticks are the multiples of a nice step inside them.
struct SvgAxis {
    double lo = 0.0, hi = 1.0, step = 0.2;
};
[[nodiscard]] inline SvgAxis svg_axis(double data_lo, double data_hi, std::optional<double> fix_lo,
                                      std::optional<double> fix_hi, double pad, int target_ticks) {
    SvgAxis a;
    if (!(data_lo <= data_hi)) {  // no finite data at all
        data_lo = fix_lo.value_or(fix_hi ? *fix_hi - 1.0 : 0.0);
        data_hi = fix_hi.value_or(data_lo + 1.0);
    }
    double span = data_hi - data_lo;
    if (!(span > std::abs(data_hi) * 1e-12) || !std::isfinite(span)) {  // a single value (or a span too big)
        const double half = data_lo == 0.0 || !std::isfinite(span) ? 1.0 : std::abs(data_lo) * 0.1;
        data_lo -= half;
        data_hi = data_lo + 2.0 * half;
        span = 2.0 * half;
        pad = 0.0;
    }
    a.lo = fix_lo.value_or(data_lo - pad * span);
    a.hi = fix_hi.value_or(data_hi + pad * span);
    if (!(a.lo < a.hi)) {  // one limit fixed beyond the data on the other side
        if (fix_lo) a.hi = a.lo + span;
        else a.lo = a.hi - span;
    }
    a.step = svg_nice_step(a.hi - a.lo, target_ticks);
    return a;
}

/// The tick positions of an axis: the multiples of its step inside [lo, hi].
[[nodiscard]] inline std::vector<double> svg_ticks(const SvgAxis& a) {
    std::vector<double> t;
    for (double k = std::ceil(a.lo / a.step - 1e-9); k * a.step <= a.hi + a.step * 1e-9 && t.size() < 100; k += 1.0)
        t.push_back(k * a.step);
    return t;
}

/// Builds the document: `<<` appends markup as is, numbers as coordinates, and `Text{s}` XML-escaped.
struct SvgWriter {
    struct Text {
        std::string_view s;
    };
    std::string out;

    SvgWriter& operator<<(std::string_view s) {
        out += s;
        return *this;
    }
    SvgWriter& operator<<(const char* s) { return *this << std::string_view(s); }
    SvgWriter& operator<<(char c) {
        out += c;
        return *this;
    }
    SvgWriter& operator<<(double v) {
        svg_num_to(out, v);
        return *this;
    }
    SvgWriter& operator<<(Text t) {
        svg_escape_to(out, t.s);
        return *this;
    }
    void line(double x1, double y1, double x2, double y2) {
        *this << "<line x1=\"" << x1 << "\" y1=\"" << y1 << "\" x2=\"" << x2 << "\" y2=\"" << y2 << "\"/>\n";
    }
    void text(double x, double y, std::string_view anchor, std::string_view content, std::string_view attrs = {}) {
        *this << "<text";
        if (!attrs.empty()) *this << ' ' << attrs;
        *this << " x=\"" << x << "\" y=\"" << y << "\" text-anchor=\"" << anchor << "\">" << Text{content}
              << "</text>\n";
    }
};

}  // namespace detail

/// A line plot of one or more (x, y) series, written as a standalone SVG document.
class SvgPlot {
public:
    /// Ten distinct colours (Tableau 10), used in order.
    static constexpr std::array<const char*, 10> palette = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                                            "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

    explicit SvgPlot(SvgPlotOptions opt = {}) : opt_(std::move(opt)) {
        TAPEGRAD_CHECK(opt_.width >= 200 && opt_.height >= 150, ValueError, "SvgPlot: size ", opt_.width, "x",
                       opt_.height, " is too small (at least 200x150)");
        for (const auto& [name, v] : {std::pair{"x_min", opt_.x_min}, std::pair{"x_max", opt_.x_max},
                                      std::pair{"y_min", opt_.y_min}, std::pair{"y_max", opt_.y_max}})
            TAPEGRAD_CHECK(!v || std::isfinite(*v), ValueError, "SvgPlot: ", name, " is ", *v, "; it must be finite");
        TAPEGRAD_CHECK(!(opt_.x_min && opt_.x_max && !(*opt_.x_min < *opt_.x_max)), ValueError, "SvgPlot: x_min ",
                       opt_.x_min.value_or(0), " is not below x_max ", opt_.x_max.value_or(0));
        TAPEGRAD_CHECK(!(opt_.y_min && opt_.y_max && !(*opt_.y_min < *opt_.y_max)), ValueError, "SvgPlot: y_min ",
                       opt_.y_min.value_or(0), " is not below y_max ", opt_.y_max.value_or(0));
    }

    /// Adds a series of points (xs[i], ys[i]). xs and ys must have the same, non-zero length. Points with a
    /// NaN or infinite coordinate are skipped (the line breaks there). Returns *this for chaining.
    SvgPlot& add_series(std::string name, std::span<const double> xs, std::span<const double> ys,
                        SeriesStyle style = {}) {
        check_series(name, xs.size(), ys.size(), style);
        Series s{std::move(name), style, {}};
        s.points.reserve(xs.size());
        for (size_t i = 0; i < xs.size(); ++i) s.points.emplace_back(xs[i], ys[i]);
        push(std::move(s));
        return *this;
    }
    SvgPlot& add_series(std::string name, std::span<const float> xs, std::span<const float> ys,
                        SeriesStyle style = {}) {
        check_series(name, xs.size(), ys.size(), style);
        Series s{std::move(name), style, {}};
        s.points.reserve(xs.size());
        for (size_t i = 0; i < xs.size(); ++i) s.points.emplace_back(xs[i], ys[i]);
        push(std::move(s));
        return *this;
    }
    /// A series drawn as dots (a scatter plot): `add_series` with `points = true`.
    SvgPlot& add_scatter(std::string name, std::span<const double> xs, std::span<const double> ys,
                         SeriesStyle style = {}) {
        style.points = true;
        return add_series(std::move(name), xs, ys, style);
    }
    SvgPlot& add_scatter(std::string name, std::span<const float> xs, std::span<const float> ys,
                         SeriesStyle style = {}) {
        style.points = true;
        return add_series(std::move(name), xs, ys, style);
    }

    [[nodiscard]] size_t num_series() const noexcept { return series_.size(); }
    [[nodiscard]] const SvgPlotOptions& options() const noexcept { return opt_; }

    /// The SVG document.
    [[nodiscard]] std::string str() const {
        using detail::SvgWriter;
        // Ranges over the finite points.
        double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
        for (const auto& s : series_)
            for (const auto& [x, y] : s.points)
                if (std::isfinite(x) && std::isfinite(y)) {
                    xlo = std::min(xlo, x);
                    xhi = std::max(xhi, x);
                    ylo = std::min(ylo, y);
                    yhi = std::max(yhi, y);
                }

        // Layout: margins for the title, tick labels, axis labels and the legend (about 7 px per character).
        const double W = opt_.width, H = opt_.height;
        size_t legend_chars = 0;
        for (const auto& s : series_) legend_chars = std::max(legend_chars, s.name.size());
        const double legend_w =
            series_.empty() ? 0.0 : std::min(W * 0.4, 40.0 + 7.0 * static_cast<double>(legend_chars));
        const double left = opt_.y_label.empty() ? 60.0 : 78.0, right = 20.0 + legend_w;
        const double top = opt_.title.empty() ? 20.0 : 44.0, bottom = opt_.x_label.empty() ? 40.0 : 58.0;
        const double pw = W - left - right, ph = H - top - bottom;

        const detail::SvgAxis ax =
            detail::svg_axis(xlo, xhi, opt_.x_min, opt_.x_max, 0.0, std::max(2, static_cast<int>(pw / 80)));
        const detail::SvgAxis ay =
            detail::svg_axis(ylo, yhi, opt_.y_min, opt_.y_max, 0.05, std::max(2, static_cast<int>(ph / 50)));
        const auto px = [&](double x) { return left + (x - ax.lo) / (ax.hi - ax.lo) * pw; };
        const auto py = [&](double y) { return top + (ay.hi - y) / (ay.hi - ay.lo) * ph; };
        const std::vector<double> xt = detail::svg_ticks(ax), yt = detail::svg_ticks(ay);

        SvgWriter w;
        w << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << std::to_string(opt_.width) << "\" height=\""
          << std::to_string(opt_.height) << "\" viewBox=\"0 0 " << std::to_string(opt_.width) << ' '
          << std::to_string(opt_.height) << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
          << "<title>" << SvgWriter::Text{opt_.title.empty() ? "plot" : opt_.title} << "</title>\n"
          << "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
          << "<defs><clipPath id=\"plot-area\"><rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw
          << "\" height=\"" << ph << "\"/></clipPath></defs>\n";

        w << "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
        for (const double x : xt) w.line(px(x), top, px(x), top + ph);
        for (const double y : yt) w.line(left, py(y), left + pw, py(y));
        w << "</g>\n";
        // The lines x = 0 and y = 0, where they fall inside the plot, a little darker than the grid.
        w << "<g class=\"zero\" stroke=\"#a0a0a0\" stroke-width=\"1\">\n";
        if (ax.lo < 0.0 && ax.hi > 0.0) w.line(px(0), top, px(0), top + ph);
        if (ay.lo < 0.0 && ay.hi > 0.0) w.line(left, py(0), left + pw, py(0));
        w << "</g>\n";

        w << "<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\" fill=\"none\">\n"
          << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph << "\"/>\n";
        for (const double x : xt) w.line(px(x), top + ph, px(x), top + ph + 5);
        for (const double y : yt) w.line(left - 5, py(y), left, py(y));
        w << "</g>\n";

        w << "<g class=\"tick-labels\" fill=\"#333333\">\n";
        for (const double x : xt) w.text(px(x), top + ph + 18, "middle", detail::svg_tick_label(x, ax.step));
        for (const double y : yt) w.text(left - 8, py(y) + 4, "end", detail::svg_tick_label(y, ay.step));
        w << "</g>\n";
        if (!opt_.title.empty())
            w.text(left + pw / 2, 26, "middle", opt_.title, "class=\"title\" font-size=\"16\" font-weight=\"bold\"");
        if (!opt_.x_label.empty()) w.text(left + pw / 2, H - 14, "middle", opt_.x_label, "class=\"x-label\"");
        if (!opt_.y_label.empty())
            w << "<text class=\"y-label\" transform=\"translate(18 " << top + ph / 2
              << ") rotate(-90)\" text-anchor=\"middle\">" << SvgWriter::Text{opt_.y_label} << "</text>\n";

        // The data, clipped to the plot area: one <path> per series.
        w << "<g clip-path=\"url(#plot-area)\" fill=\"none\">\n";
        for (const auto& s : series_) {
            const double width = s.style.points ? std::max(4.0, 2.5 * s.style.stroke_width) : s.style.stroke_width;
            w << "<path class=\"series\" stroke=\"" << palette[static_cast<size_t>(s.style.color)]
              << "\" stroke-width=\"" << width
              << (s.style.points ? "\" stroke-linecap=\"round\"" : "\" stroke-linejoin=\"round\"")
              << (s.style.dashed ? " stroke-dasharray=\"6 4\"" : "") << " d=\"";
            bool pen_down = false;
            for (const auto& [x, y] : s.points) {
                if (!std::isfinite(x) || !std::isfinite(y)) {  // skip the point and break the line
                    pen_down = false;
                    continue;
                }
                // Points far outside are pulled in (the clip hides them anyway) so coordinates stay printable.
                const double X = std::clamp(px(x), -10.0 * W, 11.0 * W), Y = std::clamp(py(y), -10.0 * H, 11.0 * H);
                if (s.style.points)  // a zero-length segment with a round cap draws a dot
                    w << 'M' << X << ' ' << Y << "h0";
                else
                    w << (pen_down ? 'L' : 'M') << X << ' ' << Y;
                pen_down = true;
            }
            w << "\"/>\n";
        }
        w << "</g>\n";

        // The legend, to the right of the plot.
        if (!series_.empty()) {
            w << "<g class=\"legend\">\n";
            const double lx = left + pw + 14;
            for (size_t i = 0; i < series_.size(); ++i) {
                const Series& s = series_[i];
                const double ly = top + 10 + 18.0 * static_cast<double>(i);
                const char* colour = palette[static_cast<size_t>(s.style.color)];
                if (s.style.points)
                    w << "<circle cx=\"" << lx + 11 << "\" cy=\"" << ly << "\" r=\"3\" fill=\"" << colour << "\"/>\n";
                else
                    w << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 22 << "\" y2=\"" << ly
                      << "\" stroke=\"" << colour << "\" stroke-width=\"2\""
                      << (s.style.dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>\n";
                w.text(lx + 28, ly + 4, "start", s.name);
            }
            w << "</g>\n";
        }
        w << "</svg>\n";
        return std::move(w.out);
    }

    /// Writes `str()` to `path` atomically: into a new temporary file in the same directory, flushed,
    /// fsync'ed and renamed over `path`, so a reader never sees half a plot. On failure the temporary file
    /// is removed, `path` keeps its old content, and FormatError names `path` and the reason.
    void save(const std::filesystem::path& path) const {
        const std::string text = str();
        write_file_atomically(path,
                              std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()),
                              tapegrad::detail::concat("SvgPlot::save: '", path.string(), "'"));
    }

private:
    struct Series {
        std::string name;
        SeriesStyle style;
        std::vector<std::pair<double, double>> points;
    };

    void check_series(const std::string& name, size_t nx, size_t ny, const SeriesStyle& style) const {
        TAPEGRAD_CHECK(nx == ny, ShapeError, "SvgPlot::add_series: series '", name, "' has ", nx, " x values but ", ny,
                       " y values");
        TAPEGRAD_CHECK(nx > 0, ValueError, "SvgPlot::add_series: series '", name, "' is empty");
        TAPEGRAD_CHECK(style.color >= -1 && style.color < static_cast<int>(palette.size()), ValueError,
                       "SvgPlot::add_series: colour index ", style.color, " of series '", name,
                       "' is out of range [0, ", palette.size(), ") (or -1 for the next colour)");
        TAPEGRAD_CHECK(std::isfinite(style.stroke_width) && style.stroke_width > 0.0, ValueError,
                       "SvgPlot::add_series: stroke width ", style.stroke_width, " of series '", name,
                       "' must be positive");
    }
    void push(Series s) {
        if (s.style.color < 0) s.style.color = static_cast<int>(next_color_++ % palette.size());
        series_.push_back(std::move(s));
    }

    SvgPlotOptions opt_;
    std::vector<Series> series_;
    size_t next_color_ = 0;
};

}  // namespace tapegrad::util
