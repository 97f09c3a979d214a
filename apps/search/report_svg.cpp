#include "apps/search/report_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace massmap::search {

namespace {

// The legend sits right of the plot area, so it never hides a curve.
constexpr double kWidth = 600, kHeight = 300, kLeft = 56, kRight = 164, kTop = 28, kBottom = 44;

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string label(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

struct Frame {
  const SvgAxes& a;
  double fx(double x) const {
    const auto t = [&](double v) { return a.x_log2 ? std::log2(std::max(v, 1e-12)) : v; };
    const double u = (t(x) - t(a.x_min)) / (t(a.x_max) - t(a.x_min));
    return kLeft + std::clamp(u, 0.0, 1.0) * (kWidth - kLeft - kRight);
  }
  double fy(double y) const {
    const double u = (y - a.y_min) / (a.y_max - a.y_min);
    return kHeight - kBottom - std::clamp(u, 0.0, 1.0) * (kHeight - kTop - kBottom);
  }
};

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

std::vector<double> histogram(const std::vector<double>& values, double lo, double hi, int bins) {
  std::vector<double> counts(size_t(bins), 0);
  for (double v : values) {
    if (v < lo || v > hi) continue;
    counts[size_t(std::min(bins - 1, int((v - lo) / (hi - lo) * bins)))] += 1;
  }
  return counts;
}

std::string svg_plot(const SvgAxes& a, const std::vector<SvgSeries>& series, const std::vector<SvgBand>& bands) {
  const Frame f{a};
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" + num(kHeight) +
                  "\" viewBox=\"0 0 " + num(kWidth) + " " + num(kHeight) +
                  "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s += "<text x=\"" + num(kWidth / 2) + "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">" + html_escape(a.title) +
       "</text>\n";
  s += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(kWidth - kLeft - kRight) +
       "\" height=\"" + num(kHeight - kTop - kBottom) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (double x : a.x_ticks)
    s += "<line x1=\"" + num(f.fx(x)) + "\" x2=\"" + num(f.fx(x)) + "\" y1=\"" + num(kTop) + "\" y2=\"" +
         num(kHeight - kBottom) + "\" stroke=\"#eee\"/><text x=\"" + num(f.fx(x)) + "\" y=\"" +
         num(kHeight - kBottom + 14) + "\" text-anchor=\"middle\">" + label(x) + "</text>\n";
  for (double y : a.y_ticks)
    s += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kWidth - kRight) + "\" y1=\"" + num(f.fy(y)) + "\" y2=\"" +
         num(f.fy(y)) + "\" stroke=\"#eee\"/><text x=\"" + num(kLeft - 4) + "\" y=\"" + num(f.fy(y) + 4) +
         "\" text-anchor=\"end\">" + label(y) + "</text>\n";
  s += "<text x=\"" + num((kLeft + kWidth - kRight) / 2) + "\" y=\"" + num(kHeight - 8) + "\" text-anchor=\"middle\">" +
       html_escape(a.x_label) + "</text>\n";
  s += "<text transform=\"translate(14," + num((kTop + kHeight - kBottom) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(a.y_label) + "</text>\n";
  for (const SvgBand& b : bands) {
    std::string pts;
    for (size_t k = 0; k < b.x.size(); ++k) {
      if (b.step && k > 0) pts += num(f.fx(b.x[k])) + "," + num(f.fy(b.hi[k - 1])) + " ";
      pts += num(f.fx(b.x[k])) + "," + num(f.fy(b.hi[k])) + " ";
    }
    for (size_t k = b.x.size(); k-- > 0;) {
      if (b.step && k + 1 < b.x.size()) pts += num(f.fx(b.x[k + 1])) + "," + num(f.fy(b.lo[k])) + " ";
      pts += num(f.fx(b.x[k])) + "," + num(f.fy(b.lo[k])) + " ";
    }
    s += "<polygon points=\"" + pts + "\" fill=\"" + b.colour + "\" fill-opacity=\"0.2\" stroke=\"none\"/>\n";
  }
  int legend = 0;
  for (const SvgSeries& l : series) {
    if (l.markers) {
      for (size_t k = 0; k < l.x.size(); ++k)
        s += "<circle cx=\"" + num(f.fx(l.x[k])) + "\" cy=\"" + num(f.fy(l.y[k])) + "\" r=\"3\" fill=\"" + l.colour +
             "\"/>\n";
    } else {
      std::string pts;
      for (size_t k = 0; k < l.x.size(); ++k) {
        if (l.step && k > 0) pts += num(f.fx(l.x[k])) + "," + num(f.fy(l.y[k - 1])) + " ";
        pts += num(f.fx(l.x[k])) + "," + num(f.fy(l.y[k])) + " ";
      }
      s += "<polyline points=\"" + pts + "\" fill=\"none\" stroke=\"" + l.colour + "\" stroke-width=\"1.8\"" +
           (l.dashed ? " stroke-dasharray=\"5,3\"" : "") + "/>\n";
    }
    const double ly = kTop + 14 + 14 * legend++;
    s += "<rect x=\"" + num(kWidth - kRight + 8) + "\" y=\"" + num(ly - 8) + "\" width=\"10\" height=\"10\" fill=\"" +
         l.colour + "\"/><text x=\"" + num(kWidth - kRight + 22) + "\" y=\"" + num(ly + 1) + "\">" +
         html_escape(l.name) + "</text>\n";
  }
  for (const SvgBand& b : bands) {
    const double ly = kTop + 14 + 14 * legend++;
    s += "<rect x=\"" + num(kWidth - kRight + 8) + "\" y=\"" + num(ly - 8) + "\" width=\"10\" height=\"10\" fill=\"" +
         b.colour + "\" fill-opacity=\"0.2\"/><text x=\"" + num(kWidth - kRight + 22) + "\" y=\"" + num(ly + 1) +
         "\">" + html_escape(b.name) + "</text>\n";
  }
  return s + "</svg>\n";
}

}  // namespace massmap::search
