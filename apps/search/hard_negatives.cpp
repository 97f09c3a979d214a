#include "apps/search/hard_negatives.h"

#include <cmath>
#include <fstream>
#include <map>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/progress.h"

namespace massmap::search {

nlohmann::json HardNegativeSettings::to_json() const {
  return {{"at", at}, {"per_image", per_image}, {"nms_radius_mm", nms_radius_mm}};
}

HardNegativeSettings HardNegativeSettings::from_json(const nlohmann::json& j) {
  HardNegativeSettings s;
  if (!j.is_object()) throw BadConfig("hard_negatives: expected a JSON object");
  for (const auto& [key, value] : j.items())
    if (key != "at" && key != "per_image" && key != "nms_radius_mm")
      throw BadConfig("hard_negatives: unknown key '" + key + "' (at, per_image, nms_radius_mm)");
  try {
    s.at = j.value("at", s.at);
    s.per_image = j.value("per_image", s.per_image);
    s.nms_radius_mm = j.value("nms_radius_mm", s.nms_radius_mm);
  } catch (const nlohmann::json::exception& e) {
    throw BadConfig(std::string("hard_negatives: ") + e.what());
  }
  s.validate();
  return s;
}

void HardNegativeSettings::validate() const {
  if (!(at >= 0 && at < 1)) throw BadConfig("hard_negatives.at must be in [0, 1) (0: no mining)");
  if (per_image < 1 || per_image > 10000) throw BadConfig("hard_negatives.per_image must be in 1..10000");
  if (!(nms_radius_mm >= 0 && nms_radius_mm <= 1000))
    throw BadConfig("hard_negatives.nms_radius_mm must be in 0..1000");
}

int64_t HardNegativeSettings::iteration(int64_t iterations) const {
  if (at <= 0) return -1;
  const int64_t it = int64_t(std::llround(at * double(iterations)));
  return it >= 1 && it < iterations ? it : -1;
}

namespace {

// Whether the size x size patch centred at (cx, cy), cut as extract_patch cuts it, overlaps `box`.
bool overlaps(int cx, int cy, int size, const data::Box& box) {
  const int x0 = cx - size / 2, y0 = cy - size / 2;
  return x0 < box.x + box.width && box.x < x0 + size && y0 < box.y + box.height && box.y < y0 + size;
}

}  // namespace

std::vector<data::PatchSpec> mine_hard_negatives(Localizer& localizer, const data::PatchSet& set, int per_image,
                                                 bool progress) {
  std::vector<data::PatchSpec> mined;
  Progress bar("hard negatives", int64_t(set.images.size()));
  for (size_t k = 0; k < set.images.size(); ++k) {
    data::PreparedImage p = set.images[k]->copy(set.ids[k]);
    const std::vector<data::Box> rois = p.rois;
    const int width = p.width, height = p.height;
    const MapResult r = localizer.map_prepared(std::move(p), width, height, set.images[k]->spacing_mm());
    int kept = 0;
    for (const Detection& d : r.detections) {  // strongest first
      if (kept == per_image) break;
      const int cx = int(std::lround(std::floor(d.prepared_x + 0.5))),
                cy = int(std::lround(std::floor(d.prepared_y + 0.5)));
      bool clear = true;
      for (const data::Box& b : rois) clear = clear && !overlaps(cx, cy, set.patch_size, b);
      if (!clear) continue;
      data::PatchSpec s;
      s.image = int(k);
      s.cx = cx;
      s.cy = cy;
      s.label = data::PatchLabel::non_mass;
      s.source = data::PatchSource::breast;
      mined.push_back(s);
      ++kept;
    }
    if (progress) bar.update(int64_t(k + 1), set.ids[k]);
  }
  if (progress) bar.finish();
  return mined;
}

void write_hard_negatives(const std::string& path, const data::PatchSet& set,
                          const std::vector<data::PatchSpec>& negatives) {
  nlohmann::json list = nlohmann::json::array();
  for (const data::PatchSpec& s : negatives)
    list.push_back({{"image", set.ids[size_t(s.image)]}, {"x", s.cx}, {"y", s.cy}});
  const nlohmann::json j = {{"patch_size", set.patch_size}, {"negatives", list}};
  write_file_atomic(path, [&](std::ostream& o) { o << j.dump(1) << "\n"; });
}

std::vector<data::PatchSpec> read_hard_negatives(const std::string& path, const data::PatchSet& set) {
  std::ifstream in(path);
  if (!in) throw BadInput(path + ": cannot read the mined hard negatives (needed to resume past the mining)");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object() || !j.contains("negatives") || !j["negatives"].is_array())
    throw BadInput(path + ": not a list of mined hard negatives");
  std::map<std::string, int> index;
  for (size_t k = 0; k < set.ids.size(); ++k) index[set.ids[k]] = int(k);
  std::vector<data::PatchSpec> out;
  for (const nlohmann::json& e : j["negatives"]) {
    if (!e.is_object() || !e.contains("image") || !e["image"].is_string() || !e.contains("x") ||
        !e["x"].is_number_integer() || !e.contains("y") || !e["y"].is_number_integer())
      throw BadInput(path + ": an entry is not {image, x, y}: " + e.dump());
    const auto it = index.find(e["image"].get<std::string>());
    if (it == index.end())
      throw BadInput(path + ": image '" + e["image"].get<std::string>() + "' is not in the training part");
    data::PatchSpec s;
    s.image = it->second;
    s.cx = e["x"].get<int>();
    s.cy = e["y"].get<int>();
    s.label = data::PatchLabel::non_mass;
    s.source = data::PatchSource::breast;
    out.push_back(s);
  }
  return out;
}

}  // namespace massmap::search
