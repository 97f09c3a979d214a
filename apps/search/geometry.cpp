#include "apps/search/geometry.h"

namespace massmap::search {

nlohmann::json ImageGeometry::to_json() const {
  using nlohmann::json;
  const PlaneAxis &y = plane.y, &x = plane.x;
  const double sy = scale_y(), sx = scale_x();
  // A length of prepared pixels in the three units, as [rows, columns].
  auto lengths = [&](double ly, double lx) {
    return json{{"prepared_px", {ly, lx}},
                {"original_px", {ly * sy, lx * sx}},
                {"mm", {ly * sy * original_spacing_mm, lx * sx * original_spacing_mm}}};
  };
  auto points = [&](double py, double px) {
    const double oy = original_y(py), ox = original_x(px);
    return json{{"prepared_px", {py, px}}, {"original_px", {oy, ox}}, {"mm", {mm(oy), mm(ox)}}};
  };
  json j;
  j["cells"] = {y.cells, x.cells};
  j["shift"] = plane.shift;
  j["views"] = plane.views;
  j["stride"] = lengths(double(y.stride), double(x.stride));
  j["first_cell_centre"] = points(y.first, x.first);
  j["cell_centre_rule"] = "cell (i, j) is at first_cell_centre + (i, j) * stride, in every unit";
  j["crop"] = lengths(double(y.crop), double(x.crop));
  j["first_cell_crop_begin"] = points(double(y.crop_begin(0)), double(x.crop_begin(0)));
  j["receptive_field"] = {{"size", lengths(double(y.field_end - y.field_begin), double(x.field_end - x.field_begin))},
                          {"first_cell_begin_prepared_px", {y.field_begin, x.field_begin}},
                          {"first_cell_end_prepared_px", {y.field_end, x.field_end}}};
  j["padding_prepared_px"] = {y.pad, x.pad};
  j["net_input"] = {y.input, x.input};
  j["net_stride_prepared_px"] = {y.net_stride, x.net_stride};
  j["original"] = {{"width", original_width}, {"height", original_height}, {"spacing_mm", original_spacing_mm}};
  j["prepared"] = {{"width", prepared_width},
                   {"height", prepared_height},
                   {"spacing_mm", prepared_spacing_mm},
                   {"original_px_per_prepared_px", {sy, sx}}};
  j["coordinates"] =
      "[row, column]; pixel centres at integers; mm from the image's top-left corner: (px + 0.5) * spacing_mm";
  return j;
}

}  // namespace massmap::search
