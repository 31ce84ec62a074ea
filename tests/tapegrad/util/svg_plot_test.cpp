// Tests for tapegrad/util/svg_plot.hpp: the document is well formed (every tag closed, in order), each
// series is one <path>, text is escaped, non-finite points are skipped, ticks read well, and save() is
// atomic and reports I/O failures. Files go to a private temp folder that is removed afterwards.

#include <tapegrad/util/svg_plot.hpp>

#include "../../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using tapegrad::FormatError;
using tapegrad::ShapeError;
using tapegrad::ValueError;
using tapegrad::util::SvgPlot;

namespace {

constexpr double qnan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_d = std::numeric_limits<double>::infinity();

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
    return n;
}

/// "" when `doc` is well formed in the small XML subset SvgPlot writes (a declaration, elements, attributes
/// in double quotes, text with entities); otherwise what is wrong.
std::string xml_problem(const std::string& doc) {
    std::vector<std::string> open;
    size_t i = 0;
    if (doc.rfind("<?xml", 0) == 0) i = doc.find("?>") + 2;
    bool root_seen = false;
    while (i < doc.size()) {
        if (doc[i] != '<') {
            const size_t next = doc.find('<', i);
            const std::string text = doc.substr(i, next - i);
            if (text.find('>') != std::string::npos) return "raw '>' in text: " + text;
            for (size_t a = text.find('&'); a != std::string::npos; a = text.find('&', a + 1)) {
                const size_t semi = text.find(';', a);
                const std::string ent = text.substr(a, semi == std::string::npos ? 8 : semi - a + 1);
                if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
                    return "bad entity " + ent;
            }
            if (open.empty() && text.find_first_not_of(" \n") != std::string::npos) return "text outside the root";
            i = next == std::string::npos ? doc.size() : next;
            continue;
        }
        const size_t close = doc.find('>', i);
        if (close == std::string::npos) return "unterminated tag";
        std::string tag = doc.substr(i + 1, close - i - 1);
        // Attribute values are quoted; a raw '<' inside the tag means something was not escaped.
        if (tag.find('<') != std::string::npos) return "'<' inside tag <" + tag + ">";
        if (count(tag, "\"") % 2 != 0) return "unbalanced quotes in <" + tag + ">";
        if (tag.front() == '/') {
            const std::string name = tag.substr(1);
            if (open.empty() || open.back() != name)
                return "</" + name + "> closes " + (open.empty() ? "nothing" : open.back());
            open.pop_back();
        } else {
            const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
            if (open.empty() && root_seen) return "second root <" + name + ">";
            root_seen = true;
            if (tag.back() != '/') open.push_back(name);
        }
        i = close + 1;
    }
    if (!open.empty()) return "<" + open.back() + "> is never closed";
    if (!root_seen) return "no root element";
    return "";
}

/// The `d` attribute of the n-th series path.
std::string path_data(const std::string& doc, size_t n) {
    size_t at = 0;
    for (size_t k = 0; k <= n; ++k) at = doc.find("<path class=\"series\"", k == 0 ? 0 : at + 1);
    REQUIRE(at != std::string::npos);
    const size_t d = doc.find(" d=\"", at) + 4;
    return doc.substr(d, doc.find('"', d) - d);
}

/// The texts of the tick labels, x axis first.
std::vector<std::string> tick_labels(const std::string& doc) {
    const size_t begin = doc.find("<g class=\"tick-labels\"");
    REQUIRE(begin != std::string::npos);
    const std::string group = doc.substr(begin, doc.find("</g>", begin) - begin);
    std::vector<std::string> out;
    for (size_t at = group.find("<text"); at != std::string::npos; at = group.find("<text", at + 1)) {
        const size_t text = group.find('>', at) + 1;
        out.push_back(group.substr(text, group.find("</text>", text) - text));
    }
    return out;
}

using tapegrad::testing::TempDir;

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("svg plot: a well-formed document with one <path> per series and a legend entry each") {
    std::vector<double> x, y1, y2, y3;
    for (int i = 0; i <= 50; ++i) {
        x.push_back(-2.5 + 0.1 * i);
        y1.push_back(std::sin(x.back()));
        y2.push_back(x.back() * x.back());
        y3.push_back(-x.back());
    }
    SvgPlot plot({.title = "Three curves", .x_label = "x", .y_label = "f(x)"});
    plot.add_series("sin", x, y1).add_series("square", x, y2, {.dashed = true}).add_scatter("neg", x, y3);
    CHECK(plot.num_series() == 3);
    const std::string doc = plot.str();
    CHECK(xml_problem(doc) == "");
    CHECK(doc.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
    CHECK(doc.find("width=\"720\" height=\"450\"") != std::string::npos);
    CHECK(count(doc, "<path") == 3);
    CHECK(count(doc, "<path class=\"series\"") == 3);
    CHECK(count(doc, "stroke-dasharray") == 2);  // the dashed path and its legend swatch
    for (const char* name : {">sin</text>", ">square</text>", ">neg</text>", ">Three curves</text>", ">x</text>",
                             ">f(x)</text>"})
        CHECK(doc.find(name) != std::string::npos);
    // Distinct colours, in palette order.
    CHECK(path_data(doc, 0).rfind("M", 0) == 0);
    const size_t c0 = doc.find(SvgPlot::palette[0]), c1 = doc.find(SvgPlot::palette[1]),
                 c2 = doc.find(SvgPlot::palette[2]);
    CHECK(c0 != std::string::npos);
    CHECK(c1 != std::string::npos);
    CHECK(c2 != std::string::npos);
    CHECK(c0 < c1);
    CHECK(c1 < c2);
    // A line is one M then L's; a scatter is a dot (M x y h0) per point.
    CHECK(count(path_data(doc, 0), "M") == 1);
    CHECK(count(path_data(doc, 0), "L") == 50);
    CHECK(count(path_data(doc, 2), "h0") == 51);
    CHECK(doc.find("nan") == std::string::npos);
}

TEST_CASE("svg plot: title, labels and series names are XML-escaped") {
    SvgPlot plot({.title = "a < b & \"c\" > 'd'", .x_label = "<x>", .y_label = "y & z"});
    plot.add_series("loss <train> & \"test\"", std::vector<double>{0, 1}, std::vector<double>{1, 0});
    plot.add_series(std::string("bell\x07") + "s", std::vector<double>{0, 1}, std::vector<double>{0, 1});
    const std::string doc = plot.str();
    CHECK(xml_problem(doc) == "");
    CHECK(doc.find("a &lt; b &amp; &quot;c&quot; &gt; &apos;d&apos;") != std::string::npos);
    CHECK(doc.find("&lt;x&gt;") != std::string::npos);
    CHECK(doc.find("y &amp; z") != std::string::npos);
    CHECK(doc.find("loss &lt;train&gt; &amp; &quot;test&quot;") != std::string::npos);
    CHECK(doc.find("bell?s") != std::string::npos);  // a control character XML forbids
    CHECK(doc.find("<train>") == std::string::npos);
    CHECK(tapegrad::util::detail::svg_escape("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;");
}

TEST_CASE("svg plot: NaN and infinite points are skipped and break the line") {
    const std::vector<double> x = {0, 1, 2, 3, 4, 5, 6};
    const std::vector<double> y = {0, 1, qnan, 3, inf_d, 5, -inf_d};
    SvgPlot plot;
    plot.add_series("gappy", x, y);
    const std::vector<double> xs = {qnan, 1, 2};
    plot.add_scatter("dots", xs, std::vector<double>{1, qnan, 2});
    const std::string doc = plot.str();
    CHECK(xml_problem(doc) == "");
    CHECK(count(doc, "<path class=\"series\"") == 2);
    const std::string d = path_data(doc, 0);
    CHECK(count(d, "M") == 3);  // runs {0, 1}, {3}, {5}
    CHECK(count(d, "L") == 1);
    CHECK(count(path_data(doc, 1), "h0") == 1);
    CHECK(doc.find("nan") == std::string::npos);
    CHECK(doc.find("inf") == std::string::npos);
    // The ranges come from finite points only: y spans [0, 5] plus the margin.
    const auto labels = tick_labels(doc);
    REQUIRE_FALSE(labels.empty());
    CHECK(std::find(labels.begin(), labels.end(), "5") != labels.end());
    CHECK(std::find(labels.begin(), labels.end(), "6") == labels.end());  // x = 6 has y = -inf: not in range

    SvgPlot all_nan;
    all_nan.add_series("nothing", std::vector<double>{qnan, qnan}, std::vector<double>{1, 2});
    const std::string empty_doc = all_nan.str();
    CHECK(xml_problem(empty_doc) == "");
    CHECK(path_data(empty_doc, 0).empty());

    SvgPlot none({.title = "no data yet"});
    CHECK(xml_problem(none.str()) == "");
    CHECK(count(none.str(), "<path") == 0);
}

TEST_CASE("svg plot: ticks are nice round numbers with just enough digits") {
    using tapegrad::util::detail::svg_tick_label;
    CHECK(svg_tick_label(0.5, 0.1) == "0.5");
    CHECK(svg_tick_label(0.25, 0.05) == "0.25");
    CHECK(svg_tick_label(-2, 1) == "-2");
    CHECK(svg_tick_label(1000, 200) == "1000");
    CHECK(svg_tick_label(1.0, 0.2) == "1");
    CHECK(svg_tick_label(0.5, 0.25) == "0.5");
    CHECK(svg_tick_label(-1e-17, 0.2) == "0");  // a multiple of 0.2 that rounding left just below zero
    CHECK(svg_tick_label(2e6, 5e5) == "2e+06");
    CHECK(svg_tick_label(2.5e-5, 5e-6) == "2.5e-05");
    CHECK(tapegrad::util::detail::svg_nice_step(10.0, 5) == 2.0);
    CHECK(tapegrad::util::detail::svg_nice_step(1.0, 4) == doctest::Approx(0.2));
    CHECK(tapegrad::util::detail::svg_nice_step(700.0, 5) == 100.0);

    SvgPlot plot;
    plot.add_series("line", std::vector<double>{0, 1}, std::vector<double>{0, 1});
    const auto labels = tick_labels(plot.str());
    for (const std::string want : {"0", "0.2", "0.4", "0.6", "0.8", "1"}) {
        CAPTURE(want);
        CHECK(std::find(labels.begin(), labels.end(), want) != labels.end());
    }
    for (const auto& l : labels) CHECK(l.size() <= 4);
    CHECK(std::find(labels.begin(), labels.end(), "-0") == labels.end());

    // A constant series gets a range around its value instead of a zero span.
    SvgPlot flat;
    flat.add_series("flat", std::vector<double>{0, 1, 2}, std::vector<double>{3, 3, 3});
    const std::string doc = flat.str();
    CHECK(xml_problem(doc) == "");
    CHECK(doc.find("nan") == std::string::npos);
    const auto flat_labels = tick_labels(doc);
    CHECK(std::find(flat_labels.begin(), flat_labels.end(), "3") != flat_labels.end());
}

TEST_CASE("svg plot: fixed ranges clip the data") {
    SvgPlot plot({.y_min = -1.0, .y_max = 1.0});
    plot.add_series("big", std::vector<double>{0, 1, 2}, std::vector<double>{0, 1e300, -5});
    const std::string doc = plot.str();
    CHECK(xml_problem(doc) == "");
    CHECK(doc.find("clip-path=\"url(#plot-area)\"") != std::string::npos);
    const auto labels = tick_labels(doc);
    CHECK(std::find(labels.begin(), labels.end(), "-1") != labels.end());
    CHECK(std::find(labels.begin(), labels.end(), "1") != labels.end());
    CHECK(path_data(doc, 0).size() < 100);  // the huge value is pulled in, not printed with 300 digits
}

TEST_CASE("svg plot: float data is accepted as it is") {
    const std::vector<float> x = {0.f, 1.f, 2.f}, y = {1.f, 4.f, 9.f};
    SvgPlot plot;
    plot.add_series("floats", x, y).add_scatter("float dots", x, y);
    CHECK(count(plot.str(), "<path class=\"series\"") == 2);
}

TEST_CASE("svg plot: bad series and options throw, naming the series and the values") {
    SvgPlot plot;
    CHECK_THROWS_WITH_AS(plot.add_series("e", std::vector<double>{}, std::vector<double>{}),
                         "SvgPlot::add_series: series 'e' is empty", ValueError);
    CHECK_THROWS_WITH_AS(plot.add_series("m", std::vector<double>{1, 2}, std::vector<double>{1}),
                         "SvgPlot::add_series: series 'm' has 2 x values but 1 y values", ShapeError);
    CHECK_THROWS_WITH_AS(plot.add_series("c", std::vector<double>{1}, std::vector<double>{1}, {.color = 10}),
                         "SvgPlot::add_series: colour index 10 of series 'c' is out of range [0, 10) (or -1 for the "
                         "next colour)",
                         ValueError);
    CHECK(plot.num_series() == 0);
    CHECK_THROWS_WITH_AS(SvgPlot({.width = 100}), "SvgPlot: size 100x450 is too small (at least 200x150)", ValueError);
    CHECK_THROWS_WITH_AS(SvgPlot({.x_min = 2.0, .x_max = 1.0}), "SvgPlot: x_min 2 is not below x_max 1", ValueError);
    CHECK_THROWS_WITH_AS(SvgPlot({.y_max = qnan}), "SvgPlot: y_max is nan; it must be finite", ValueError);
}

TEST_CASE("svg plot: save writes str() atomically and reports failures as FormatError") {
    TempDir dir;
    SvgPlot plot({.title = "saved"});
    plot.add_series("a", std::vector<double>{0, 1, 2}, std::vector<double>{2, 0, 1});
    const fs::path out = dir.path / "plot.svg";
    {
        std::ofstream old(out);
        old << "old content";
    }
    plot.save(out);
    CHECK(read_text(out) == plot.str());
    // Only the plot is left: the temporary file was renamed over it.
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

    const fs::path missing = dir.path / "no" / "such" / "dir" / "plot.svg";
    CHECK_THROWS_AS(plot.save(missing), FormatError);
    try {
        plot.save(missing);
    } catch (const FormatError& e) {
        const std::string msg = e.what();
        CHECK(msg.find("SvgPlot::save: '" + missing.string() + "': cannot create temporary file") == 0);
        CHECK(msg.find("No such file or directory") != std::string::npos);
    }
    CHECK_THROWS_WITH_AS(plot.save(dir.path / ""), doctest::Contains("the path names no file"), FormatError);

    // A directory in the way of the rename: the error names it, and no temporary file is left behind.
    const fs::path blocked = dir.path / "blocked.svg";
    fs::create_directories(blocked / "inside");
    CHECK_THROWS_WITH_AS(plot.save(blocked), doctest::Contains("cannot rename temporary file"), FormatError);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);
}
