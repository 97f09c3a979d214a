#include "engine/map_geometry.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/errors.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/concat.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/lrn.h"
#include "engine/ops/pool.h"
#include "engine/ops/softmax.h"
#include "engine/passes.h"

namespace massmap {

namespace {

// One axis of one value: its cells are `jump` input pixels apart, and cell 0 sees input pixels [begin, end).
struct Axis {
  int64_t jump = 1, begin = 0, end = 1;
};

// A window op (conv, pool): cell 0 of the output reads input cells [-pad, kernel - pad).
Axis window(const Axis& in, int64_t kernel, int64_t stride, int64_t pad) {
  return {in.jump * stride, in.begin - pad * in.jump, in.end + (kernel - 1 - pad) * in.jump};
}

bool per_location(const std::string& op) {
  return op == ops::relu || op == ops::lrn || op == ops::dropout || op == ops::softmax || op == ops::bias ||
         op == ops::copy || op == ops::batch_norm;
}

}  // namespace

MapGeometry map_geometry(const Graph& g) {
  if (g.crop.size() != 2)
    throw BadConfig("map geometry: the graph is not fully convolutional (no crop recorded); run convolutionalize");
  const ValueId image = image_input(g);
  std::vector<Axis> ys(size_t(g.num_values())), xs(size_t(g.num_values()));  // (values) per axis
  std::vector<bool> known(size_t(g.num_values()), false);                    // (values) downstream of the image
  known[size_t(image)] = true;
  for (const Node& n : g.nodes()) {
    if (n.forward_of >= 0) continue;
    const ValueId x = n.inputs.front();
    if (!known[size_t(x)]) continue;  // not downstream of the image
    const Shape& in = g.value(x).shape;
    Axis y_axis = ys[size_t(x)], x_axis = xs[size_t(x)];
    if (n.op == ops::conv2d) {
      const Shape& w = g.value(n.inputs[1]).shape;  // (K, C/groups, R, S)
      const auto a = read_attrs<ConvAttrs>(n);
      y_axis = window(y_axis, w[2], a.stride, a.pad);
      x_axis = window(x_axis, w[3], a.stride, a.pad);
    } else if (n.op == ops::pool) {
      const auto a = read_attrs<PoolAttrs>(n);
      const int64_t stride = a.global ? 1 : a.stride, pad = a.global ? 0 : a.pad;
      y_axis = window(y_axis, a.global ? in[2] : a.kernel, stride, pad);
      x_axis = window(x_axis, a.global ? in[3] : a.kernel, stride, pad);
    } else if (n.op == ops::concat) {
      for (ValueId v : n.inputs) {
        if (ys[size_t(v)].jump != y_axis.jump || xs[size_t(v)].jump != x_axis.jump)
          throw BadConfig("map geometry: concat '" + n.name + "' joins maps of different strides");
        y_axis.begin = std::min(y_axis.begin, ys[size_t(v)].begin);
        y_axis.end = std::max(y_axis.end, ys[size_t(v)].end);
        x_axis.begin = std::min(x_axis.begin, xs[size_t(v)].begin);
        x_axis.end = std::max(x_axis.end, xs[size_t(v)].end);
      }
    } else if (!per_location(n.op) || in.size() != 4) {
      throw BadConfig("map geometry: node '" + n.name + "' (" + n.op + ") on " + shape_str(in) +
                      " is not convolutional; run convolutionalize first");
    }
    for (ValueId v : n.outputs) {
      if (g.value(v).shape.size() != 4) continue;  // not a map: a batch norm's per-channel batch statistics
      ys[size_t(v)] = y_axis;
      xs[size_t(v)] = x_axis;
      known[size_t(v)] = true;
    }
  }
  ValueId out = -1;
  for (ValueId v = 0; v < g.num_values(); ++v) {
    if (!known[size_t(v)] || g.value(v).kind != ValueKind::activation || !g.consumers(v).empty()) continue;
    if (out >= 0)
      throw BadConfig("map geometry: the graph has two output maps, '" + g.value(out).name + "' and '" +
                      g.value(v).name + "'");
    out = v;
  }
  if (out < 0) throw BadConfig("map geometry: the graph has no output map");
  const Shape& map = g.value(out).shape;
  if (map.size() != 4) throw BadConfig("map geometry: output '" + g.value(out).name + "' is not a map (N, K, h, w)");
  MapGeometry m;
  m.map = g.value(out).name;
  auto axis = [&](const Axis& a, int64_t crop, int64_t cells) {
    AxisGeometry r;
    r.stride = a.jump;
    r.crop = crop;
    r.field_begin = a.begin;
    r.field_end = a.end;
    r.cells = cells;
    return r;
  };
  m.y = axis(ys[size_t(out)], g.crop[0], map[2]);
  m.x = axis(xs[size_t(out)], g.crop[1], map[3]);
  return m;
}

std::string geometry_report(const MapGeometry& m) {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line, "map '%s': %lld x %lld cells, stride %lld x %lld px\n", m.map.c_str(),
                (long long)m.y.cells, (long long)m.x.cells, (long long)m.y.stride, (long long)m.x.stride);
  o << line;
  std::snprintf(line, sizeof line,
                "cell (i, j) stands for the crop rows [%lld i, %lld i + %lld), columns [%lld j, %lld j + %lld), "
                "placed at its centre (%lld i + %g, %lld j + %g)\n",
                (long long)m.y.stride, (long long)m.y.stride, (long long)m.y.crop, (long long)m.x.stride,
                (long long)m.x.stride, (long long)m.x.crop, (long long)m.y.stride, m.y.crop_centre(0),
                (long long)m.x.stride, m.x.crop_centre(0));
  o << line;
  std::snprintf(line, sizeof line,
                "theoretical receptive field %lld x %lld px: rows [%lld, %lld), columns [%lld, %lld) for cell (0, 0), "
                "centre (%g, %g)\n",
                (long long)m.y.field_size(), (long long)m.x.field_size(), (long long)m.y.field_begin,
                (long long)m.y.field_end, (long long)m.x.field_begin, (long long)m.x.field_end, m.y.field_centre(0),
                m.x.field_centre(0));
  o << line;
  return o.str();
}

nlohmann::json geometry_json(const MapGeometry& m) {
  return {{"map", m.map},
          {"cells", {m.y.cells, m.x.cells}},
          {"stride", {m.y.stride, m.x.stride}},
          {"crop", {m.y.crop, m.x.crop}},
          {"first_crop_centre", {m.y.crop_centre(0), m.x.crop_centre(0)}},
          {"field", {{m.y.field_begin, m.y.field_end}, {m.x.field_begin, m.x.field_end}}}};
}

}  // namespace massmap
