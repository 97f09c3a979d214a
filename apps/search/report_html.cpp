#include "apps/search/report_html.h"

#include <algorithm>
#include <cstdio>

#include "apps/search/report_svg.h"

namespace massmap::search {

namespace {

using nlohmann::json;

constexpr int kExampleWidth = 420;  // overlays shown at this width whatever their pixels (a small image is upscaled)

std::string fmt(double v, const char* f = "%.3f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string percent(const json& v) {
  return v.is_number() ? fmt(100 * v.get<double>(), "%.1f%%") : "n/a";
}

std::string interval(const json& ci) {
  return ci.is_array() && ci.size() == 2 ? "[" + percent(ci[0]) + ", " + percent(ci[1]) + "]" : "n/a";
}

bool has_dog(const json& m) {
  return m.contains("baseline_dog") && m["baseline_dog"].is_object();
}

// The FROC as a step series from the origin, clipped to the plot's FP/image range.
SvgSeries froc_series(const json& points, const std::string& name, const std::string& colour, bool dashed) {
  SvgSeries s;
  s.name = name;
  s.colour = colour;
  s.step = true;
  s.dashed = dashed;
  s.x.push_back(1.0 / 16);
  s.y.push_back(0);
  for (const json& p : points) {
    s.x.push_back(std::max(1.0 / 16, p["fp_per_image"].get<double>()));
    s.y.push_back(p["sensitivity"].get<double>());
  }
  s.x.push_back(8);
  s.y.push_back(s.y.back());
  return s;
}

std::string froc_plot(const json& m) {
  SvgAxes a;
  a.title = "FROC (hits on the mask), 95% bootstrap band";
  a.x_label = "false positives per image";
  a.y_label = "sensitivity";
  a.x_log2 = true;
  a.x_min = 1.0 / 16;
  a.x_max = 8;
  a.x_ticks = {0.125, 0.25, 0.5, 0.9, 2, 4, 8};
  a.y_ticks = {0, 0.2, 0.4, 0.6, 0.8, 1};
  std::vector<SvgSeries> s = {froc_series(m["froc"], "CNN", "#c0392b", false)};
  if (has_dog(m)) s.push_back(froc_series(m["baseline_dog"]["froc"], "DoG baseline", "#2c3e50", true));
  SvgSeries paper;
  paper.name = "paper: 85% at 0.9";
  paper.colour = "#27ae60";
  paper.markers = true;
  paper.x = {0.9};
  paper.y = {0.85};
  s.push_back(paper);
  SvgBand band;
  band.name = "CNN 95% interval";
  band.colour = "#c0392b";
  band.step = true;
  const json& b = m["froc_band"];
  band.x = b["fp_per_image"].get<std::vector<double>>();
  band.lo = b["lo"].get<std::vector<double>>();
  band.hi = b["hi"].get<std::vector<double>>();
  return svg_plot(a, s, {band});
}

std::string roi_threshold_plot(const json& m) {
  SvgAxes a;
  a.title = "Paper replication: masses whose ROI max / mean >= threshold";
  a.x_label = "threshold on the map";
  a.y_label = "fraction of masses";
  a.x_ticks = {0, 0.2, 0.4, 0.6, 0.8, 1};
  a.y_ticks = a.x_ticks;
  std::vector<SvgSeries> s;
  auto add = [&](const json& roi, const std::string& name, const std::string& colour, bool dashed) {
    SvgSeries l;
    l.name = name;
    l.colour = colour;
    l.dashed = dashed;
    l.x = roi["by_threshold"]["thresholds"].get<std::vector<double>>();
    l.y = roi["by_threshold"]["sensitivity"].get<std::vector<double>>();
    s.push_back(l);
  };
  add(m["paper_roi_max"], "CNN ROI max", "#c0392b", false);
  add(m["paper_roi_mean"], "CNN ROI mean", "#e67e22", false);
  if (has_dog(m)) add(m["baseline_dog"]["paper_roi_max"], "DoG ROI max", "#2c3e50", true);
  return svg_plot(a, s, {});
}

std::string roi_histograms(const json& m) {
  SvgAxes a;
  a.title = "ROI max and mean of the CNN map over each mass (histogram)";
  a.x_label = "map probability";
  a.y_label = "masses";
  const auto max = m["paper_roi_max"]["values"].get<std::vector<double>>();
  const auto mean = m["paper_roi_mean"]["values"].get<std::vector<double>>();
  const std::vector<double> hmax = histogram(max, 0, 1, 10), hmean = histogram(mean, 0, 1, 10);
  double top = 1;
  for (size_t k = 0; k < hmax.size(); ++k) top = std::max({top, hmax[k], hmean[k]});
  a.y_max = top;
  a.x_ticks = {0, 0.2, 0.4, 0.6, 0.8, 1};
  a.y_ticks = {0, top / 2, top};
  SvgSeries smax, smean;
  smax.name = "ROI max";
  smax.colour = "#c0392b";
  smean.name = "ROI mean";
  smean.colour = "#e67e22";
  smax.step = smean.step = true;
  for (int k = 0; k <= 10; ++k) {
    smax.x.push_back(k / 10.0);
    smean.x.push_back(k / 10.0);
    smax.y.push_back(hmax[size_t(std::min(k, 9))]);
    smean.y.push_back(hmean[size_t(std::min(k, 9))]);
  }
  SvgAxes sc;
  sc.title = "ROI mean against ROI max, per mass";
  sc.x_label = "ROI max";
  sc.y_label = "ROI mean";
  sc.x_ticks = sc.y_ticks = {0, 0.2, 0.4, 0.6, 0.8, 1};
  SvgSeries pts;
  pts.name = "masses";
  pts.colour = "#8e44ad";
  pts.markers = true;
  pts.x = max;
  pts.y = mean;
  return svg_plot(a, {smax, smean}, {}) + svg_plot(sc, {pts}, {});
}

std::string roc_plot(const json& m) {
  SvgAxes a;
  a.title = "Image level: mass / no mass from the map maximum (ROC)";
  a.x_label = "false positive rate";
  a.y_label = "true positive rate";
  a.x_ticks = a.y_ticks = {0, 0.2, 0.4, 0.6, 0.8, 1};
  std::vector<SvgSeries> s;
  auto add = [&](const json& roc, const std::string& name, const std::string& colour, bool dashed) {
    SvgSeries l;
    l.name = name;
    l.colour = colour;
    l.dashed = dashed;
    for (const json& p : roc) {
      l.x.push_back(p["fpr"].get<double>());
      l.y.push_back(p["tpr"].get<double>());
    }
    s.push_back(l);
  };
  add(m["image_roc"], "CNN, AUC " + fmt(m["image_auc"].get<double>()), "#c0392b", false);
  if (has_dog(m))
    add(m["baseline_dog"]["image_roc"], "DoG, AUC " + fmt(m["baseline_dog"]["image_auc"].get<double>()), "#2c3e50",
        true);
  return svg_plot(a, s, {});
}

std::string breakdown_table(const json& m) {
  std::string s = "<table><tr><th>group</th><th>masses</th><th>CNN found</th><th>CNN sensitivity</th>";
  if (has_dog(m)) s += "<th>DoG found</th><th>DoG sensitivity</th>";
  s += "</tr>\n";
  for (const char* kind : {"density", "size", "subtlety"})
    for (const auto& [g, v] : m["breakdowns"][kind].items()) {
      s += "<tr><td>" + std::string(kind) + " " + html_escape(g) + "</td><td>" +
           std::to_string(v["masses"].get<int>()) + "</td><td>" + std::to_string(v["found"].get<int>()) + "</td><td>" +
           percent(v["sensitivity"]) + "</td>";
      if (has_dog(m)) {
        const json& d = m["baseline_dog"]["breakdowns"][kind];
        s += d.contains(g) ? "<td>" + std::to_string(d[g]["found"].get<int>()) + "</td><td>" +
                                 percent(d[g]["sensitivity"]) + "</td>"
                           : "<td></td><td></td>";
      }
      s += "</tr>\n";
    }
  return s + "</table>\n";
}

std::string headline_rows(const json& m, const std::string& name) {
  return "<tr><td>" + name + "</td><td><b>" + percent(m["headline"]["sensitivity"]) + "</b> " +
         interval(m["headline"]["ci95"]) + "</td><td>" + fmt(m["cpm"]["value"].get<double>()) + " " +
         interval(m["cpm"]["ci95"]) + "</td><td>" + percent(m["on_box"]["headline"]["sensitivity"]) + " " +
         interval(m["on_box"]["headline"]["ci95"]) + "</td><td>" +
         fmt(m["fp_per_image_mass_images"].get<double>(), "%.2f") + "</td><td>" +
         fmt(m["fp_per_cm2"].get<double>(), "%.4f") + "</td><td>" + percent(m["paper_roi_max"]["sensitivity"]) +
         "</td><td>" + fmt(m["image_auc"].get<double>()) + "</td></tr>\n";
}

std::string reliability_plot(const json& patches) {
  SvgAxes a;
  a.title = "Calibration of patch probabilities (reliability)";
  a.x_label = "mean P(mass) in the bin";
  a.y_label = "fraction of mass patches";
  a.x_ticks = a.y_ticks = {0, 0.2, 0.4, 0.6, 0.8, 1};
  SvgSeries diagonal, bins;
  diagonal.name = "perfect calibration";
  diagonal.colour = "#999999";
  diagonal.dashed = true;
  diagonal.x = diagonal.y = {0, 1};
  bins.name = "CNN, per bin";
  bins.colour = "#c0392b";
  bins.markers = true;
  for (const json& b : patches["reliability"])
    if (b["count"].get<int64_t>() > 0) {
      bins.x.push_back(b["mean_p"].get<double>());
      bins.y.push_back(b["fraction_mass"].get<double>());
    }
  return svg_plot(a, {diagonal, bins}, {});
}

std::string training_plot(const json& curve) {
  SvgAxes a;
  a.title = "Training: loss and validation patch accuracy";
  a.x_label = "iteration";
  a.y_label = "loss / accuracy";
  const auto it = curve["iteration"].get<std::vector<double>>();
  const auto loss = curve["loss"].get<std::vector<double>>();
  a.x_min = 0;
  a.x_max = std::max(1.0, it.back());
  a.y_max = std::max(1.0, *std::max_element(loss.begin(), loss.end()));
  a.x_ticks = {0, a.x_max / 2, a.x_max};
  a.y_ticks = {0, a.y_max / 2, a.y_max};
  SvgSeries l, v;
  l.name = "training loss";
  l.colour = "#c0392b";
  l.x = it;
  l.y = loss;
  v.name = "validation accuracy";
  v.colour = "#2980b9";
  v.markers = true;
  for (const json& p : curve["validation"]) {
    v.x.push_back(p["iteration"].get<double>());
    v.y.push_back(p["accuracy"].get<double>());
  }
  return svg_plot(a, {l, v}, {});
}

}  // namespace

std::string base64(const std::string& bytes) {
  static const char* const table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += table[(v >> k) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string render_report(const json& m, const std::vector<ReportExample>& examples) {
  const json& c = m["counts"];
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>massmap evaluation</title>\n"
      "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse;"
      "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}svg{margin:4px}"
      "img{margin:4px;border:1px solid #ccc}figure{margin:4px}.note{background:#fdf6e3;padding:8px}</style>\n"
      "</head><body>\n<h1>massmap evaluation</h1>\n";
  s += "<p>" + html_escape(m["source"]["net"].get<std::string>()) + " from " +
       html_escape(m["source"]["checkpoint"].get<std::string>()) + " on the " +
       html_escape(m["source"]["part"].get<std::string>()) + " part of " +
       html_escape(m["source"]["dataset"]["root"].get<std::string>()) + ": " + std::to_string(c["images"].get<int>()) +
       " images (" + std::to_string(c["normals"].get<int>()) + " without lesions), " +
       std::to_string(c["patients"].get<int>()) + " patients, " + std::to_string(c["masses"].get<int>()) +
       " masses.</p>\n";
  s += "<h2>Headline: sensitivity at 0.9 false positives per image</h2>\n<table><tr><th></th><th>sensitivity at 0.9 "
       "FP/image, 95% CI</th><th>CPM, 95% CI</th><th>on the loose box</th><th>FP/image, mass images</th><th>FP per "
       "cm&sup2;</th><th>paper ROI max &ge; 0.4</th><th>image AUC</th></tr>\n";
  s += headline_rows(m, "CNN");
  if (has_dog(m)) s += headline_rows(m["baseline_dog"], "DoG baseline");
  s += "<tr><td>paper (Ertosun &amp; Rubin 2015)</td><td>85% (no interval)</td><td></td><td></td><td></td><td></td>"
       "<td></td><td></td></tr>\n</table>\n";
  const json& op = m["operating_point"];
  if (op.is_object())
    s += "<p>At the operating threshold " + fmt(op["threshold"].get<double>(), "%.4g") + " (" +
         html_escape(op.value("source", std::string())) + "): sensitivity " + percent(op["sensitivity"]) + ", " +
         fmt(op["fp_per_image"].get<double>(), "%.2f") + " false positives per image.</p>\n";
  s += "<p>A <b>hit</b> is a peak of the map (one per plateau, on breast, kept by non-maximum suppression within " +
       fmt(m["parameters"]["nms_radius_mm"].get<double>(), "%g") +
       " mm) whose cell centre lies inside a mass's mask; each mass counts once; peaks inside other lesions are "
       "neither hits nor false positives; every other peak is a false positive. The FROC lowers a threshold over "
       "every peak of every image of the part (normals included); sensitivity at F FP/image is the best point with "
       "at most F. CPM averages it at 1/8 .. 8. Intervals: " +
       std::to_string(m["parameters"]["bootstrap"]["replicates"].get<int>()) +
       " bootstrap replicates over patients, 2.5 and 97.5 percentiles.</p>\n";
  s += froc_plot(m);
  s += "<h2>The paper's measures (a replication, not a detection rule)</h2>\n<p class=\"note\">The paper counts a "
       "mass found when the maximum of the map over its ROI reaches 0.4. That says nothing about false positives: a "
       "constant map of 0.5 would &quot;find&quot; every mass. It is reported here only to compare with the paper; "
       "the headline above is peak-based.</p>\n";
  s += roi_threshold_plot(m) + roi_histograms(m);
  s += "<h2>Image level</h2>\n" + roc_plot(m);
  s += "<h2>Breakdowns at the headline's threshold</h2>\n" + breakdown_table(m);
  s += "<h2>Examples (CNN map over the prepared image; findings circled, other peaks crossed, ROI boxes green)</h2>\n";
  for (const ReportExample& e : examples)
    s += "<figure style=\"display:inline-block\"><img alt=\"" + html_escape(e.title) +
         "\" style=\"width:" + std::to_string(kExampleWidth) + "px;aspect-ratio:" + std::to_string(e.width) + "/" +
         std::to_string(e.height) + "\" src=\"data:image/png;base64," + base64(e.png) + "\"><figcaption>" +
         html_escape(e.title) + "</figcaption></figure>\n";
  const json& pa = m["patch_accuracy"];
  s += "<h2>Patch level and training</h2>\n<p>Patch accuracy on the part's patches (the paper's Table I): " +
       (pa.contains("accuracy")
            ? percent(pa["accuracy"]) + " of " + std::to_string(pa["patches"].get<int>()) + " patches, ROC AUC " +
                  (pa["roc_auc"].is_number() ? fmt(pa["roc_auc"].get<double>()) : std::string("n/a")) + " (" +
                  html_escape(pa["source"].get<std::string>()) + ")"
            : "not available: " + html_escape(pa.value("reason", std::string()))) +
       ".</p>\n";
  const json& pt = m["patches"];
  if (pt.is_object())
    s += "<p>On patches sampled here from the part's images as training samples them (" +
         std::to_string(pt["per_mass"].get<int>()) + " per mass, as many non-mass; " +
         std::to_string(pt["patches"].get<int>()) + " patches), centre crops through the classifier: accuracy " +
         percent(pt["accuracy"]) + ", ROC AUC " + fmt(pt["roc_auc"].get<double>()) +
         ". The probabilities are posteriors under the training prior (balanced patches).</p>\n";
  if (pt.is_object()) s += reliability_plot(pt);
  if (m.contains("training_curve") && m["training_curve"].is_object()) s += training_plot(m["training_curve"]);
  s += "<h2>Configuration and timings</h2>\n<pre>" + html_escape(m["parameters"].dump(2)) + "\n" +
       html_escape(m["timings"].dump(2)) + "</pre>\n";
  s += "</body></html>\n";
  return s;
}

}  // namespace massmap::search
