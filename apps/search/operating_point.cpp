#include "apps/search/operating_point.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "base/errors.h"
#include "base/progress.h"

namespace massmap::search {

JudgedImage judge_detections(const std::vector<Detection>& detections, const data::DatasetImage& image, int width,
                             int height) {
  std::vector<std::vector<uint8_t>> masks;  // (lesions) (height, width) 0/1 each
  for (const data::DatasetLesion& lesion : image.lesions) masks.push_back(data::lesion_mask(lesion, width, height));
  return judge_detections(detections, image, masks, width, height);
}

JudgedImage judge_detections(const std::vector<Detection>& detections, const data::DatasetImage& image,
                             const std::vector<std::vector<uint8_t>>& masks, int width, int height) {
  if (masks.size() != image.lesions.size())
    throw BadInput(image.id + ": " + std::to_string(masks.size()) + " masks for " +
                   std::to_string(image.lesions.size()) + " lesions");
  JudgedImage judged;
  for (const data::DatasetLesion& lesion : image.lesions)
    if (lesion.type == "mass") judged.mass_best.push_back(-1.f);
  for (const Detection& d : detections) {
    const int x = int(std::lround(d.x)), y = int(std::lround(d.y));
    const bool on_image = x >= 0 && y >= 0 && x < width && y < height;
    bool in_lesion = false;
    size_t mass = 0;
    for (size_t l = 0; l < image.lesions.size(); ++l) {
      const bool is_mass = image.lesions[l].type == "mass";
      if (on_image && masks[l][size_t(y) * size_t(width) + size_t(x)]) {
        in_lesion = true;
        if (is_mass) judged.mass_best[mass] = std::max(judged.mass_best[mass], d.probability);
      }
      mass += is_mass;
    }
    if (!in_lesion) judged.false_positives.push_back(d.probability);
  }
  return judged;
}

std::vector<JudgedImage> map_and_judge(Localizer& localizer, const data::Dataset& dataset,
                                       const std::vector<int>& indices, bool skip_bad, bool progress,
                                       const std::string& label) {
  std::vector<JudgedImage> judged;
  Progress bar(label, int64_t(indices.size()));
  int64_t done = 0;
  for (int i : indices) {
    const data::DatasetImage& meta = dataset.images[size_t(i)];
    try {
      const data::Image image = data::read_image(meta.path);
      const MapResult r = localizer.map_image(image, meta);
      judged.push_back(judge_detections(r.detections, meta, image.width, image.height));
    } catch (const BadInput& e) {
      if (!skip_bad) throw;
      std::fprintf(stderr, "skipped %s (%s): %s\n", meta.id.c_str(), label.c_str(), e.what());
    }
    if (progress) bar.update(++done);
  }
  if (progress) bar.finish();
  return judged;
}

nlohmann::json OperatingPoint::to_json() const {
  return {{"threshold", threshold},
          {"fp_per_image", fp_per_image},
          {"sensitivity", sensitivity},
          {"images", images},
          {"masses", masses}};
}

OperatingPoint choose_threshold(const std::vector<JudgedImage>& images, double target_fp_per_image) {
  OperatingPoint op;
  op.images = int64_t(images.size());
  std::vector<float> fps;  // every false positive's probability, descending
  for (const JudgedImage& im : images) {
    fps.insert(fps.end(), im.false_positives.begin(), im.false_positives.end());
    op.masses += int64_t(im.mass_best.size());
  }
  std::sort(fps.begin(), fps.end(), std::greater<float>());
  // At most `allowed` false positives may reach the threshold: it must lie above the next one's probability.
  const size_t allowed = size_t(std::floor(target_fp_per_image * double(op.images) + 1e-9));
  op.threshold = allowed < fps.size() ? double(std::nextafter(fps[allowed], 2.f)) : 0.0;
  int64_t false_positives = 0, found = 0;
  for (float p : fps) false_positives += p >= op.threshold;
  for (const JudgedImage& im : images)
    for (float best : im.mass_best) found += best >= 0 && best >= op.threshold;
  op.fp_per_image = op.images ? double(false_positives) / double(op.images) : 0;
  op.sensitivity = op.masses ? double(found) / double(op.masses) : 0;
  return op;
}

}  // namespace massmap::search
