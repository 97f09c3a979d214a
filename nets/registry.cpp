#include "nets/registry.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/errors.h"
#include "base/parse_number.h"
#include "base/text.h"
#include "nets/architectures.h"
#include "nets/mapnet.h"
#include "nets/presets.h"
#include "nets/smallnet.h"

namespace massmap::nets {

namespace detail {

ValueId classifier_end(LayerBuilder& b, ValueId logits, const NetOptions& o, const std::string& loss_name,
                       const std::string& prob_name, double loss_weight) {
  Graph& g = b.graph();
  if (!o.with_loss) return b.softmax(prob_name, logits);
  ValueId label = g.find("label");  // shared by GoogLeNet's three heads
  if (label < 0) label = g.add_input("label", {o.batch});
  return b.softmax_loss(loss_name, logits, label, loss_weight);
}

int64_t dropout_seed(const NetOptions& o, int k) {
  // Room for 64 dropout layers per seed; masked to stay a non-negative int64 attribute.
  return int64_t((o.seed * 64u + uint64_t(k)) & 0x7fffffffffffffffull);
}

void check_options(const std::string& net, const NetOptions& o) {
  auto fail = [&](const std::string& what) { throw BadConfig(net + ": " + what); };
  if (o.channels < 1) fail("channels must be at least 1, got " + std::to_string(o.channels));
  if (o.classes < 1) fail("classes must be at least 1, got " + std::to_string(o.classes));
  if (o.batch < 1) fail("batch must be at least 1, got " + std::to_string(o.batch));
  if (o.input < 0) fail("input must be positive (or 0 for the nominal size), got " + std::to_string(o.input));
  if (o.input_width < 0) fail("input width must be positive (or 0: the height), got " + std::to_string(o.input_width));
  if (!(o.width > 0) || !std::isfinite(o.width)) fail("width must be a positive number");
}

}  // namespace detail

namespace {

Graph build_smallnet_from(const NetOptions& o) {
  detail::check_options("smallnet", o);
  SmallNetOptions s;
  s.channels = o.channels;
  s.classes = o.classes;
  if (o.input > 0) s.input = o.input;
  s.input_width = o.input_width;
  s.batch = o.batch;
  s.width = scaled_channels(s.width, o.width);  // conv1 filters: 16 at width 1
  s.seed = o.seed;
  s.with_loss = o.with_loss;
  Graph g = build_smallnet(s);
  g.metadata = net_metadata("smallnet", o);
  return g;
}

}  // namespace

const std::vector<NetInfo>& net_catalogue() {
  static const std::vector<NetInfo> catalogue = {
      {"alexnet", "AlexNet (BVLC Caffe): 5 conv (groups 2 on conv2/4/5), LRN, 3 fc; 61M parameters at 1000 classes",
       227, build_alexnet, alexnet_solver, false},
      {"vgg16", "VGG-16 (configuration D): 13 conv 3x3, 5 max pools, 3 fc; 138M parameters at 1000 classes", 224,
       build_vgg16, vgg16_solver, false},
      {"googlenet", "GoogLeNet (BVLC Caffe, Inception v1): 9 inception modules, aux heads with --aux; 7.0M parameters",
       224, build_googlenet, googlenet_solver, true},
      {"smallnet", "a small CNN with every op family (conv, LRN, pools, fc, dropout) that trains on a CPU in seconds",
       24, build_smallnet_from, smallnet_solver, false},
      {"mapnet", "a small CNN without padding: its whole-image map is exactly the classifier slid over the image", 47,
       build_mapnet, smallnet_solver, false},
      {"mapnet4", "mapnet with a fourth conv stage, for finer pixel spacings (map stride 8)", 95, build_mapnet4,
       smallnet_solver, false},
      {"mapnet_bn", "mapnet with two convolutions per stage, each batch-normalised: the demo's net", 47,
       build_mapnet_bn, smallnet_solver, false},
      {"mapnet_bn_fine", "mapnet_bn with a stride-2 stem, for half the spacing (map stride 8)", 93,
       build_mapnet_bn_fine, smallnet_solver, false},
  };
  return catalogue;
}

const NetInfo& find_net(const std::string& name) {
  std::string known;
  for (const NetInfo& info : net_catalogue()) {
    if (info.name == name) return info;
    known += (known.empty() ? "" : ", ") + info.name;
  }
  throw UsageError("unknown net '" + name + "' (known: " + known + ")");
}

Graph build_net(const std::string& name, const NetOptions& options) {
  const NetInfo& info = find_net(name);
  if (options.aux && !info.aux_heads) throw BadConfig(name + " has no auxiliary heads (aux is for googlenet)");
  return info.build(options);
}

std::map<std::string, std::string> net_metadata(const std::string& name, const NetOptions& o) {
  const NetInfo& info = find_net(name);
  std::map<std::string, std::string> m = {
      {"builder", name},
      {"channels", std::to_string(o.channels)},
      {"classes", std::to_string(o.classes)},
      {"input", std::to_string(o.input > 0 ? o.input : info.nominal_input)},
      {"width", decimal_text(o.width)},
  };
  if (name == "googlenet") m["aux"] = o.aux ? "1" : "0";
  const auto [h, w] = input_size(name, o);
  if (w != h) m["input_width"] = std::to_string(w);
  return m;
}

std::pair<int, int> input_size(const std::string& name, const NetOptions& o) {
  const int h = o.input > 0 ? o.input : find_net(name).nominal_input;
  return {h, o.input_width > 0 ? o.input_width : h};
}

NetOptions net_options_from_metadata(const std::map<std::string, std::string>& m, std::string* name) {
  auto it = m.find("builder");
  if (it == m.end()) throw BadInput("metadata has no 'builder' (the net's name)");
  find_net(it->second);  // an unknown builder is a usage error listing the known nets
  if (name) *name = it->second;
  NetOptions o;
  // Whole strings in range: a checkpoint is data from elsewhere ("1e3" or "-5" channels must not build a net).
  auto integer = [&](const char* key, int fallback, int64_t lo, int64_t hi) {
    auto k = m.find(key);
    if (k == m.end()) return fallback;
    const auto v = parse_integer(k->second, lo, hi);
    if (!v)
      throw BadInput(std::string("metadata '") + key + "' is not an integer in " + range_text(lo, hi) + ": '" +
                     k->second + "'");
    return int(*v);
  };
  o.channels = integer("channels", o.channels, 1, kMaxChannels);
  o.classes = integer("classes", o.classes, 1, kMaxClasses);
  o.input = integer("input", o.input, 1, kMaxInputSide);
  o.input_width = integer("input_width", o.input_width, 1, kMaxInputSide);
  o.aux = integer("aux", 0, 0, 1) != 0;
  auto width = m.find("width");
  if (width != m.end()) {
    const auto v = parse_decimal(width->second);
    if (!v || !(*v > 0) || *v > kMaxWidth)
      throw BadInput("metadata 'width' is not a number in (0, " + std::to_string(int(kMaxWidth)) + "]: '" +
                     width->second + "'");
    o.width = *v;
  }
  return o;
}

}  // namespace massmap::nets
