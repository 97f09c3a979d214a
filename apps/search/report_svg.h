#pragma once
// Small inline SVG plots for the report: lines (plain or as a step function), points, a shaded band, linear or
// log2 x axis, ticks and a legend. Plain text out, no script, no external reference.
#include <string>
#include <vector>

namespace massmap::search {

struct SvgSeries {
  std::string name, colour;
  std::vector<double> x, y;  // (points) each
  bool step = false;         // hold y until the next x (an FROC)
  bool dashed = false;
  bool markers = false;  // points only, no line
};

struct SvgBand {
  std::string name, colour;
  std::vector<double> x, lo, hi;  // (points) each
  bool step = false;              // hold each bound until the next x
};

struct SvgAxes {
  std::string title, x_label, y_label;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  bool x_log2 = false;
  std::vector<double> x_ticks, y_ticks;
};

std::string svg_plot(const SvgAxes& axes, const std::vector<SvgSeries>& series, const std::vector<SvgBand>& bands);

// A histogram as bars: counts per bin of `values` over [lo, hi) in `bins` bins (the last bin closed).
std::vector<double> histogram(const std::vector<double>& values, double lo, double hi, int bins);

// Text with &, <, >, " escaped for HTML.
std::string html_escape(const std::string& text);

}  // namespace massmap::search
