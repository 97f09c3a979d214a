#include "apps/search/outputs.h"

#include <cmath>
#include <filesystem>

#include "apps/search/overlay.h"
#include "base/atomic_file.h"
#include "data/image_io.h"
#include "engine/npy.h"

namespace massmap::search {

namespace {

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, [&](std::ostream& o) { o << j.dump(2) << '\n'; });
}

nlohmann::json source_json(const OutputInfo& info) {
  return {{"image", info.image},
          {"checkpoint", info.checkpoint},
          {"net", info.model ? info.model->net : ""},
          {"preprocess", info.model ? info.model->preprocess.to_json() : nlohmann::json()}};
}

}  // namespace

nlohmann::json map_json(const MapResult& r, const OutputInfo& info) {
  nlohmann::json j = r.geometry.to_json();
  j["source"] = source_json(info);
  j["map_file"] = "map.npy: float32 (1, 1, cells_y, cells_x), P(mass); map.png: the same as round(P * 65535)";
  j["max_probability"] = r.max_probability;
  j["padding_fill"] = r.prepared.air;
  return j;
}

nlohmann::json detections_json(const MapResult& r, const OutputInfo& info) {
  nlohmann::json list = nlohmann::json::array();
  int findings = 0;
  for (size_t k = 0; k < r.detections.size(); ++k) {
    const Detection& d = r.detections[k];
    findings += d.finding;
    list.push_back({{"rank", k + 1},
                    {"probability", d.probability},
                    {"finding", d.finding},
                    {"cell", {d.cell_y, d.cell_x}},
                    {"original_px", {{"x", d.x}, {"y", d.y}}},
                    {"mm", {{"x", d.x_mm}, {"y", d.y_mm}}},
                    {"prepared_px", {{"x", d.prepared_x}, {"y", d.prepared_y}}},
                    {"crop_box_original_px",
                     {{"x", d.crop_x}, {"y", d.crop_y}, {"width", d.crop_width}, {"height", d.crop_height}}}});
  }
  nlohmann::json j;
  j["source"] = source_json(info);
  j["threshold"] = info.model ? info.model->threshold : 0.0;
  j["threshold_source"] = info.model ? info.model->threshold_source : "";
  j["nms_radius_mm"] = info.nms_radius_mm;
  j["rule"] =
      "local maxima of the map (one per plateau) among cells whose centre lies on breast, then greedy "
      "non-maximum suppression within nms_radius_mm; findings: probability >= threshold";
  j["max_probability"] = r.max_probability;
  j["findings"] = findings;
  j["detections"] = list;
  return j;
}

void write_outputs(const std::string& dir, const MapResult& r, const OutputInfo& info) {
  make_output_dir(dir);
  const int64_t h = r.geometry.plane.y.cells, w = r.geometry.plane.x.cells;
  write_npy(dir + "/map.npy", Tensor::from({1, 1, h, w}, r.map));
  write_json(dir + "/map.json", map_json(r, info));
  data::Image png;  // (h, w) 16-bit
  png.width = int(w);
  png.height = int(h);
  png.bits = 16;
  png.pixels.resize(r.map.size());
  for (size_t i = 0; i < r.map.size(); ++i)
    png.pixels[i] = uint16_t(std::lround(std::clamp(r.map[i], 0.f, 1.f) * 65535.f));
  data::write_png16(dir + "/map.png", png);
  write_overlay(dir + "/overlay.png", r, info.nms_radius_mm);
  write_json(dir + "/detections.json", detections_json(r, info));
}

}  // namespace massmap::search
