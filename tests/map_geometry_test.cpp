// Map geometry (engine/map_geometry.h), computed by walking the convolutionalized graph, against values worked
// out by hand for the paper's nets: stride 32; crops 227 / 224 / 224; first crop centre 113 / 111.5 / 111.5;
// receptive field 355 / 404 / 907 px, boxes [-64, 291) / [-90, 314) / [-327, 580) (GoogLeNet's centre 126 is not
// its crop's: its unpadded CEIL pools shift the field). AlexNet's by hand: conv1 11/4 -> 11 px at jump 4; pool1
// 3/2 -> 19 at 8; conv2 5 pad 2 -> [-16, 35); pool2 3/2 -> [-16, 51) at 16; conv3-5 3 pad 1 -> [-64, 99); pool5
// 3/2 -> [-64, 131) at 32; fc6 as a 6x6 conv -> [-64, 291).
#include "engine/map_geometry.h"

#include "base/errors.h"
#include "engine/passes.h"
#include "nets/registry.h"
#include "tests/support/check.h"

using namespace massmap;

namespace {

Graph fully_convolutional(const std::string& net, int height = 0, int width = 0) {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = 1.0 / 16;  // geometry does not depend on channel counts
  o.aux = net == "googlenet";
  Graph g = run_passes(nets::build_net(net, o), {"for_inference", "convolutionalize"});
  return height > 0 ? with_input_size(g, height, width) : g;
}

}  // namespace

TEST_CASE("map geometry: stride, crop, crop centre and receptive field of the three nets match the hand values") {
  struct Want {
    std::string net;
    int64_t crop;
    double centre;
    int64_t field_begin, field_end;
    double field_centre;
  };
  const Want wants[] = {
      {"alexnet", 227, 113, -64, 291, 113},
      {"vgg16", 224, 111.5, -90, 314, 111.5},
      {"googlenet", 224, 111.5, -327, 580, 126},
  };
  for (const Want& w : wants) {
    CAPTURE(w.net);
    const MapGeometry m = map_geometry(fully_convolutional(w.net));
    CHECK(m.map == "prob");
    for (const AxisGeometry* a : {&m.y, &m.x}) {
      CHECK(a->stride == 32);
      CHECK(a->crop == w.crop);
      CHECK(a->cells == 1);
      CHECK(a->crop_centre(0) == w.centre);
      CHECK(a->crop_centre(3) == w.centre + 96);
      CHECK(a->crop_begin(2) == 64);
      CHECK(a->field_begin == w.field_begin);
      CHECK(a->field_end == w.field_end);
      CHECK(a->field_size() == w.field_end - w.field_begin);
      CHECK(a->field_centre(0) == w.field_centre);
    }
  }
}

TEST_CASE("map geometry: a rectangular input gives (H - crop) / 32 + 1 by (W - crop) / 32 + 1 cells") {
  const MapGeometry m = map_geometry(fully_convolutional("alexnet", 227 + 32 * 2, 227 + 32 * 5));
  CHECK(m.y.cells == 3);
  CHECK(m.x.cells == 6);
  CHECK(m.x.crop_centre(5) == 5 * 32 + 113);
  const std::string report = geometry_report(m);
  CHECK(report.find("3 x 6 cells, stride 32 x 32") != std::string::npos);
  CHECK(report.find("355 x 355") != std::string::npos);
}

TEST_CASE("map geometry: a classifier is not a map; the error names the node") {
  nets::NetOptions o;
  o.width = 1.0 / 16;
  Graph classifier = run_passes(nets::build_net("alexnet", o), {"for_inference"});
  CHECK_THROWS_WITH_AS(map_geometry(classifier), doctest::Contains("run convolutionalize"), BadConfig);
  classifier.crop = {227, 227};
  CHECK_THROWS_WITH_AS(map_geometry(classifier), doctest::Contains("node 'flatten' (flatten)"), BadConfig);
}
