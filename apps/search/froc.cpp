#include "apps/search/froc.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

namespace massmap::search {

Froc froc_curve(const std::vector<JudgedImage>& images, const std::vector<int>& pick) {
  Froc f;
  f.images = int64_t(pick.size());
  std::vector<std::pair<float, bool>> events;  // (events) probability, is a false positive
  for (int i : pick) {
    const JudgedImage& im = images[size_t(i)];
    f.masses += int64_t(im.mass_best.size());
    for (float b : im.mass_best)
      if (b >= 0) events.emplace_back(b, false);
    for (float p : im.false_positives) events.emplace_back(p, true);
  }
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  int64_t fp = 0, hits = 0;
  for (size_t k = 0; k < events.size();) {
    const float t = events[k].first;
    for (; k < events.size() && events[k].first == t; ++k) (events[k].second ? fp : hits) += 1;
    FrocPoint p;
    p.threshold = t;
    p.false_positives = fp;
    p.hits = hits;
    p.fp_per_image = f.images ? double(fp) / double(f.images) : 0;
    p.sensitivity = f.masses ? double(hits) / double(f.masses) : 0;
    f.points.push_back(p);
  }
  return f;
}

Froc froc_curve(const std::vector<JudgedImage>& images) {
  std::vector<int> all(images.size());
  std::iota(all.begin(), all.end(), 0);
  return froc_curve(images, all);
}

FrocPoint froc_at(const Froc& froc, double fp_per_image) {
  FrocPoint best;
  best.threshold = std::numeric_limits<double>::infinity();
  // Sensitivity never falls as FP/image grows, so the last point within the budget is the best one.
  for (const FrocPoint& p : froc.points) {
    if (p.fp_per_image > fp_per_image + 1e-12) break;
    best = p;
  }
  return best;
}

double cpm(const Froc& froc) {
  double sum = 0;
  for (double level : kCpmLevels) sum += froc_at(froc, level).sensitivity;
  return sum / double(std::size(kCpmLevels));
}

nlohmann::json froc_points_json(const Froc& froc) {
  nlohmann::json points = nlohmann::json::array();
  for (const FrocPoint& p : froc.points)
    points.push_back({{"threshold", p.threshold},
                      {"fp_per_image", p.fp_per_image},
                      {"sensitivity", p.sensitivity},
                      {"false_positives", p.false_positives},
                      {"hits", p.hits}});
  return points;
}

}  // namespace massmap::search
