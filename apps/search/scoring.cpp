#include "apps/search/scoring.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "apps/search/patch_metrics.h"

namespace massmap::search {

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

const ScoredMap& pick_map(const ImageRecord& r, bool dog) {
  return dog ? r.dog : r.cnn;
}

std::string size_bin(double diameter_mm) {
  return diameter_mm < 10 ? "<10mm" : diameter_mm <= 20 ? "10-20mm" : ">20mm";
}

// Sensitivity over the masses in each group at threshold t: {group: {masses, found, sensitivity}}.
nlohmann::json breakdown(const std::vector<ImageRecord>& records, bool dog, double t,
                         const std::function<std::string(const ImageRecord&, const MassInfo&)>& group) {
  std::map<std::string, std::pair<int64_t, int64_t>> counts;  // group -> (masses, found)
  for (const ImageRecord& r : records) {
    const JudgedImage& j = pick_map(r, dog).on_mask;
    for (size_t m = 0; m < r.masses.size(); ++m) {
      auto& c = counts[group(r, r.masses[m])];
      ++c.first;
      c.second += j.mass_best[m] >= 0 && double(j.mass_best[m]) >= t;
    }
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [g, c] : counts)
    out[g] = {{"masses", c.first}, {"found", c.second}, {"sensitivity", double(c.second) / double(c.first)}};
  return out;
}

nlohmann::json roc_points(const std::vector<float>& score, const std::vector<int>& label) {
  std::vector<size_t> order(score.size());  // (images) by descending score
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  int64_t pos = 0, neg = 0, tp = 0, fp = 0;
  for (int l : label) (l ? pos : neg) += 1;
  nlohmann::json points = nlohmann::json::array({{{"fpr", 0.0}, {"tpr", 0.0}}});
  for (size_t k = 0; k < order.size();) {
    const float t = score[order[k]];
    for (; k < order.size() && score[order[k]] == t; ++k) (label[order[k]] ? tp : fp) += 1;
    points.push_back({{"threshold", t},
                      {"fpr", neg ? double(fp) / double(neg) : 0.0},
                      {"tpr", pos ? double(tp) / double(pos) : 0.0}});
  }
  return points;
}

nlohmann::json roi_json(const std::vector<float>& values) {
  std::vector<double> thresholds;
  for (int k = 0; k <= 20; ++k) thresholds.push_back(k / 20.0);
  return {{"threshold", kPaperThreshold},
          {"sensitivity", fraction_at_or_above(values, {kPaperThreshold})[0]},
          {"by_threshold", {{"thresholds", thresholds}, {"sensitivity", fraction_at_or_above(values, thresholds)}}},
          {"values", values}};
}

}  // namespace

data::DatasetImage boxes_as_masks(const data::DatasetImage& meta, int width, int height) {
  data::DatasetImage boxed = meta;
  for (data::DatasetLesion& l : boxed.lesions) {
    l.box = data::lesion_roi(l, width, height);
    l.has_box = true;
    l.mask_path.clear();
    l.has_circle = false;
  }
  return boxed;
}

std::vector<std::vector<uint8_t>> lesion_masks(const data::DatasetImage& meta, int width, int height) {
  std::vector<std::vector<uint8_t>> masks;  // (lesions) (height, width)
  for (const data::DatasetLesion& l : meta.lesions) masks.push_back(data::lesion_mask(l, width, height));
  return masks;
}

std::vector<MassInfo> mass_info(const data::DatasetImage& meta, const std::vector<std::vector<uint8_t>>& masks,
                                double spacing_mm) {
  std::vector<MassInfo> out;
  for (size_t l = 0; l < meta.lesions.size(); ++l) {
    if (meta.lesions[l].type != "mass") continue;
    int64_t area = 0;
    for (uint8_t v : masks[l]) area += v != 0;
    MassInfo m;
    m.lesion_id = meta.id + "#" + std::to_string(l);
    m.diameter_mm = 2 * std::sqrt(double(area) / M_PI) * spacing_mm;
    m.subtlety = meta.lesions[l].subtlety;
    out.push_back(m);
  }
  return out;
}

ScoredMap score_map(const std::vector<float>& map, const ImageGeometry& g, const std::vector<Detection>& detections,
                    const data::DatasetImage& meta, const std::vector<std::vector<uint8_t>>& masks) {
  const int w = g.original_width, h = g.original_height;
  ScoredMap s;
  s.on_mask = judge_detections(detections, meta, masks, w, h);
  s.on_box = judge_detections(detections, boxes_as_masks(meta, w, h), w, h);
  for (size_t l = 0; l < meta.lesions.size(); ++l)
    if (meta.lesions[l].type == "mass") s.roi.push_back(roi_stats(map, g, masks[l]));
  s.image_max = map.empty() ? 0.f : *std::max_element(map.begin(), map.end());
  return s;
}

ScoredMap score_map(const std::vector<float>& map, const ImageGeometry& g, const std::vector<Detection>& detections,
                    const data::DatasetImage& meta) {
  return score_map(map, g, detections, meta, lesion_masks(meta, g.original_width, g.original_height));
}

nlohmann::json scorer_metrics(const std::vector<ImageRecord>& records, bool dog, const ScoringOptions& options,
                              std::vector<std::string>* warnings) {
  std::vector<JudgedImage> on_mask, on_box;  // (images)
  std::vector<std::string> patients;         // (images)
  for (const ImageRecord& r : records) {
    on_mask.push_back(pick_map(r, dog).on_mask);
    on_box.push_back(pick_map(r, dog).on_box);
    patients.push_back(r.patient);
  }
  const Froc froc = froc_curve(on_mask), froc_box = froc_curve(on_box);
  const FrocPoint head = froc_at(froc, kHeadlineFpPerImage), head_box = froc_at(froc_box, kHeadlineFpPerImage);

  // One bootstrap for every interval: headline and CPM on masks and boxes, then the band's grid.
  std::vector<double> grid;  // (29) FP/image, 1/16 .. 8 in quarter octaves
  for (int k = -16; k <= 12; ++k) grid.push_back(std::pow(2.0, k / 4.0));
  const auto groups = patient_groups(patients);
  const auto intervals =
      bootstrap_intervals(groups, options.replicates, options.seed, [&](const std::vector<int>& pick) {
        const Froc f = froc_curve(on_mask, pick), fb = froc_curve(on_box, pick);
        std::vector<double> s = {froc_at(f, kHeadlineFpPerImage).sensitivity, cpm(f),
                                 froc_at(fb, kHeadlineFpPerImage).sensitivity, cpm(fb)};
        for (double x : grid) s.push_back(froc_at(f, x).sensitivity);
        return s;
      });
  auto ci = [&](size_t c) {
    return intervals.size() > c ? nlohmann::json::array({intervals[c].lo, intervals[c].hi}) : nlohmann::json();
  };
  if (warnings && int(groups.size()) < kFewPatients)
    warnings->push_back(std::to_string(groups.size()) + " patient(s) in the part: the bootstrap interval of " +
                        std::to_string(options.replicates) + " replicates over so few patients is unreliable");

  nlohmann::json m;
  m["headline"] = {{"fp_per_image", kHeadlineFpPerImage},
                   {"sensitivity", head.sensitivity},
                   {"ci95", ci(0)},
                   {"threshold", number_or_null(head.threshold)},
                   {"fp_per_image_reached", head.fp_per_image}};
  std::vector<double> levels(std::begin(kCpmLevels), std::end(kCpmLevels)), at_levels;
  for (double l : levels) at_levels.push_back(froc_at(froc, l).sensitivity);
  m["cpm"] = {{"value", cpm(froc)}, {"ci95", ci(1)}, {"fp_per_image", levels}, {"sensitivity", at_levels}};
  m["froc"] = froc_points_json(froc);
  nlohmann::json lo = nlohmann::json::array(), hi = nlohmann::json::array(), at = nlohmann::json::array();
  for (size_t k = 0; k < grid.size(); ++k) {
    at.push_back(froc_at(froc, grid[k]).sensitivity);
    lo.push_back(intervals.size() > 4 + k ? intervals[4 + k].lo : 0.0);
    hi.push_back(intervals.size() > 4 + k ? intervals[4 + k].hi : 0.0);
  }
  m["froc_band"] = {{"fp_per_image", grid}, {"sensitivity", at}, {"lo", lo}, {"hi", hi}};
  m["on_box"] = {{"headline", {{"sensitivity", head_box.sensitivity}, {"ci95", ci(2)}}},
                 {"cpm", {{"value", cpm(froc_box)}, {"ci95", ci(3)}}},
                 {"froc", froc_points_json(froc_box)}};

  // False positives at the headline's threshold: on images holding a mass, and per cm^2 of breast.
  int64_t fp_mass_images = 0, mass_images = 0, fp_all = 0;
  double breast_cm2 = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    int64_t n = 0;
    for (float p : on_mask[i].false_positives) n += double(p) >= head.threshold;
    fp_all += n;
    breast_cm2 += records[i].breast_cm2;
    if (!records[i].masses.empty()) {
      ++mass_images;
      fp_mass_images += n;
    }
  }
  m["fp_per_image_mass_images"] = mass_images ? double(fp_mass_images) / double(mass_images) : 0.0;
  m["fp_per_cm2"] = breast_cm2 > 0 ? double(fp_all) / breast_cm2 : 0.0;

  if (options.operating_threshold >= 0) {
    const double t = options.operating_threshold;
    int64_t fp = 0, found = 0, masses = 0;
    for (const JudgedImage& j : on_mask) {
      for (float p : j.false_positives) fp += double(p) >= t;
      for (float b : j.mass_best) found += b >= 0 && double(b) >= t;
      masses += int64_t(j.mass_best.size());
    }
    m["operating_point"] = {{"threshold", t},
                            {"sensitivity", masses ? double(found) / double(masses) : 0.0},
                            {"fp_per_image", records.empty() ? 0.0 : double(fp) / double(records.size())}};
  } else {
    m["operating_point"] = nullptr;
  }

  std::vector<float> roi_max, roi_mean, image_max;  // (masses), (masses), (images)
  std::vector<int> has_mass;                        // (images)
  for (const ImageRecord& r : records) {
    for (const RoiStats& s : pick_map(r, dog).roi) {
      roi_max.push_back(s.max);
      roi_mean.push_back(s.mean);
    }
    image_max.push_back(pick_map(r, dog).image_max);
    has_mass.push_back(!r.masses.empty());
  }
  m["paper_roi_max"] = roi_json(roi_max);
  m["paper_roi_mean"] = roi_json(roi_mean);
  m["image_auc"] = patch_metrics(image_max, has_mass).auc;
  m["image_roc"] = roc_points(image_max, has_mass);

  const double t = head.threshold;
  m["breakdowns"] = {
      {"threshold", number_or_null(t)},
      {"density",
       breakdown(records, dog, t,
                 [](const ImageRecord& r, const MassInfo&) { return r.density.empty() ? "unknown" : r.density; })},
      {"size",
       breakdown(records, dog, t, [](const ImageRecord&, const MassInfo& mi) { return size_bin(mi.diameter_mm); })},
      {"subtlety", breakdown(records, dog, t, [](const ImageRecord&, const MassInfo& mi) {
         return mi.subtlety > 0 ? std::to_string(mi.subtlety) : std::string("unknown");
       })}};
  return m;
}

}  // namespace massmap::search
