#include "nets/mapnet.h"

#include <algorithm>
#include <string>

#include "base/errors.h"
#include "nets/architectures.h"
#include "nets/layers.h"

namespace massmap::nets {

namespace {

// The side after the layers up to the last conv: conv1 5x5, then per further stage a 3x3/2 pool that must tile
// its input (an odd side) and a 3x3 conv. Returns 0 where a pool would leave a partial window or a side falls
// below 1.
// `later_shrink`: what the convolutions of each later stage take off the side (2: one 3x3, 4: two).
int last_conv_side(int n, int stages, int later_shrink = 2) {
  n -= 4;  // conv1 5x5, or two 3x3
  for (int s = 1; s < stages; ++s) {
    if (n < 3 || n % 2 == 0) return 0;  // pool 3x3/2 tiles exactly an odd side
    n = (n - 3) / 2 + 1 - later_shrink;
  }
  return n >= 1 ? n : 0;
}

// Inputs that tile: 2^(stages-1) k + c for one residue c; the smallest is the least n with a side left.
void check_side(const char* net, const char* what, int n, int stages, int later_shrink = 2) {
  auto side = [&](int m) { return last_conv_side(m, stages, later_shrink); };
  if (side(n) > 0) return;
  int below = n, above = n;
  while (below > 0 && side(below) == 0) --below;
  while (side(above) == 0) ++above;
  std::string nearest = below > 0 ? std::to_string(below) + " or " + std::to_string(above) : std::to_string(above);
  const int period = 1 << (stages - 1);
  int smallest = 1;
  while (side(smallest) == 0) ++smallest;
  throw BadConfig(std::string(net) + ": an input " + what + " of " + std::to_string(n) +
                  " leaves a partial pooling window (the map would differ from the classifier); inputs of " +
                  std::to_string(period) + "k + " + std::to_string(smallest % period) + " pixels, at least " +
                  std::to_string(smallest) + ", tile every window: " + nearest);
}

Graph build(const char* name, const NetOptions& o, int stages, int nominal) {
  detail::check_options(name, o);
  const int height = o.input > 0 ? o.input : nominal;
  const int width = o.input_width > 0 ? o.input_width : height;
  check_side(name, "height", height, stages);
  check_side(name, "width", width, stages);
  Graph g;
  LayerBuilder b(g);
  Filler filler;  // msra keeps activations at a healthy scale for a net this small
  filler.weight.init.type = "msra";
  const int c1 = scaled_channels(16, o.width);
  ValueId x = g.add_input("data", {o.batch, o.channels, height, width});
  x = b.relu("relu1", b.conv("conv1", x, c1, 5, 1, 0, 1, filler));
  for (int s = 2; s <= stages; ++s) {
    const std::string k = std::to_string(s);
    const int channels = c1 * (s == 2 ? 2 : 4);
    x = b.max_pool("pool" + std::to_string(s - 1), x, 3, 2);
    x = b.relu("relu" + k, b.conv("conv" + k, x, channels, 3, 1, 0, 1, filler));
  }
  const std::string fc = std::to_string(stages + 1), out = std::to_string(stages + 2);
  x = b.flatten("flatten", x);
  x = b.relu("relu" + fc, b.linear("fc" + fc, x, 8 * c1, filler));
  x = b.dropout("drop" + fc, x, 0.5, detail::dropout_seed(o, 0));
  x = b.linear("fc" + out, x, o.classes, filler);
  detail::classifier_end(b, x, o, "loss", "prob");
  g.metadata = net_metadata(name, o);
  return g;
}

// A fine net's stem (3x3 conv, then 3x3 stride 2) turns an input of n pixels into the (n - 3) / 2 that conv1 of the
// plain net makes from (n + 1) / 2: the rest of the net sees what it sees at twice the spacing. n must be odd so
// the strided conv tiles it.
void check_fine_side(const char* name, const char* what, int n) {
  if (n % 2 == 1 && n >= 5 && last_conv_side((n + 1) / 2, 3, 4) > 0) return;
  int above = n + 1;
  while (above % 2 == 0 || last_conv_side((above + 1) / 2, 3, 4) == 0) ++above;
  throw BadConfig(std::string(name) + ": an input " + what + " of " + std::to_string(n) +
                  " leaves a partial stride-2 or pooling window (the map would differ from the classifier); inputs "
                  "of 8k + 5 pixels, at least 69, tile every window: " +
                  std::to_string(above));
}

// The batch-normalised variant: per stage two unpadded 3x3 convolutions, each followed by batch_norm and ReLU.
// `fine`: the first convolution becomes a stem at twice the resolution (3x3 with half the filters, then 3x3 stride 2).
Graph build_bn(const char* name, const NetOptions& o, int nominal, bool fine = false) {
  detail::check_options(name, o);
  const int stages = 3;
  const int height = o.input > 0 ? o.input : nominal;
  const int width = o.input_width > 0 ? o.input_width : height;
  if (fine) {
    check_fine_side(name, "height", height);
    check_fine_side(name, "width", width);
  } else {
    check_side(name, "height", height, stages, 4);
    check_side(name, "width", width, stages, 4);
  }
  Graph g;
  LayerBuilder b(g);
  Filler filler;
  filler.weight.init.type = "msra";
  const int c1 = scaled_channels(32, o.width);
  ValueId x = g.add_input("data", {o.batch, o.channels, height, width});
  if (fine) {
    x = b.relu("relu0", b.batch_norm("bn0", b.conv("conv0", x, std::max(1, c1 / 2), 3, 1, 0, 1, filler, false)));
  }
  int layer = 0;
  for (int s = 1; s <= stages; ++s) {
    if (s > 1) x = b.max_pool("pool" + std::to_string(s - 1), x, 3, 2);
    for (int k = 0; k < 2; ++k) {
      const std::string id = std::to_string(++layer);
      const int stride = fine && layer == 1 ? 2 : 1;
      x = b.conv("conv" + id, x, c1 << (s - 1), 3, stride, 0, 1, filler, /*bias=*/false);
      x = b.relu("relu" + id, b.batch_norm("bn" + id, x));
    }
  }
  x = b.flatten("flatten", x);
  for (int k = 0; k < 2; ++k) {
    const std::string id = std::to_string(++layer);
    x = b.relu("relu" + id, b.linear("fc" + id, x, 8 * c1, filler));
    x = b.dropout("drop" + id, x, 0.5, detail::dropout_seed(o, k));
  }
  x = b.linear("fc" + std::to_string(++layer), x, o.classes, filler);
  detail::classifier_end(b, x, o, "loss", "prob");
  g.metadata = net_metadata(name, o);
  return g;
}

}  // namespace

Graph build_mapnet(const NetOptions& o) {
  return build("mapnet", o, 3, 47);
}

Graph build_mapnet4(const NetOptions& o) {
  return build("mapnet4", o, 4, 95);
}

Graph build_mapnet_bn(const NetOptions& o) {
  return build_bn("mapnet_bn", o, 47);
}

Graph build_mapnet_bn_fine(const NetOptions& o) {
  return build_bn("mapnet_bn_fine", o, 93, /*fine=*/true);
}

}  // namespace massmap::nets
