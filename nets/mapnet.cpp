#include "nets/mapnet.h"

#include <string>

#include "base/errors.h"
#include "nets/architectures.h"
#include "nets/layers.h"

namespace massmap::nets {

namespace {

// After conv1 (5x5) a side of n is n - 4; a 3x3/2 pool tiles it when (n - 4 - 3) is even, giving (n - 5) / 2;
// conv2 (3x3) and pool2 tile likewise when (n - 5) / 2 - 2 - 3 is even, that is n = 4k + 3. conv3 needs a side of
// at least 3 after pool2: n >= 35.
bool tiles(int n) {
  return n >= 35 && n % 4 == 3;
}

void check_side(const char* what, int n) {
  if (tiles(n)) return;
  const int below = n < 35 ? 35 : n - ((n - 3) % 4 + 4) % 4;
  const int above = below == n ? n + 4 : (n < 35 ? 35 : below + 4);
  throw BadConfig("mapnet: an input " + std::string(what) + " of " + std::to_string(n) +
                  " leaves a partial pooling window (the map would differ from the classifier); inputs of 4k + 3 "
                  "pixels, at least 35, tile every window: " +
                  (n < 35 ? std::to_string(above) : std::to_string(below) + " or " + std::to_string(above)));
}

}  // namespace

Graph build_mapnet(const NetOptions& o) {
  detail::check_options("mapnet", o);
  const int height = o.input > 0 ? o.input : 47;
  const int width = o.input_width > 0 ? o.input_width : height;
  check_side("height", height);
  check_side("width", width);
  Graph g;
  LayerBuilder b(g);
  Filler filler;  // msra keeps activations at a healthy scale for a net this small
  filler.weight.init.type = "msra";
  const int c1 = scaled_channels(16, o.width);
  ValueId x = g.add_input("data", {o.batch, o.channels, height, width});
  x = b.relu("relu1", b.conv("conv1", x, c1, 5, 1, 0, 1, filler));
  x = b.max_pool("pool1", x, 3, 2);
  x = b.relu("relu2", b.conv("conv2", x, 2 * c1, 3, 1, 0, 1, filler));
  x = b.max_pool("pool2", x, 3, 2);
  x = b.relu("relu3", b.conv("conv3", x, 4 * c1, 3, 1, 0, 1, filler));
  x = b.flatten("flatten", x);
  x = b.relu("relu4", b.linear("fc4", x, 8 * c1, filler));
  x = b.dropout("drop4", x, 0.5, detail::dropout_seed(o, 0));
  x = b.linear("fc5", x, o.classes, filler);
  detail::classifier_end(b, x, o, "loss", "prob");
  g.metadata = net_metadata("mapnet", o);
  return g;
}

}  // namespace massmap::nets
