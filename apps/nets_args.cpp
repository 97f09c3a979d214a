#include "apps/nets_args.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "base/errors.h"
#include "base/text.h"
#include "engine/npy.h"

namespace massmap::cli {

std::pair<int, int> parse_size(const std::string& option, const std::string& text) {
  return parse_int_pair(option, text, 1, nets::kMaxInputSide, true, "S or HxW (positive integers)");
}

NetChoice parse_net(Args& a, const std::string& name, const std::string& subcommand) {
  bool old_input = false;
  try {
    old_input = !a.list("input").empty();
  } catch (const UsageError&) {  // --input without a value
    old_input = true;
  }
  if (old_input)
    throw UsageError("nets " + subcommand +
                     " has no option --input: the images file is --images FILE, the input size --input-size S or HxW");
  NetChoice c;
  if (name.empty()) throw UsageError("missing the net's NAME\n\n" + a.usage());
  nets::find_net(name);  // UsageError listing the known names
  c.name = name;
  c.options.channels = a.integer32("channels", c.options.channels, 1, nets::kMaxChannels);
  c.options.classes = a.integer32("classes", c.options.classes, 1, nets::kMaxClasses);
  const std::string size = a.str("input-size", "");
  if (!size.empty()) {
    const auto [h, w] = parse_size("input-size", size);
    c.options.input = h;
    c.options.input_width = w == h ? 0 : w;
    c.size_given = true;
  }
  c.options.width = a.number("width", c.options.width, 1e-3, nets::kMaxWidth);
  const int64_t batch = a.integer("batch", 0, 1, nets::kMaxBatch);
  c.batch_given = batch != 0;
  if (c.batch_given) c.options.batch = int(batch);
  c.options.aux = a.flag("aux");
  if (c.options.aux && !nets::find_net(name).aux_heads)
    throw UsageError("--aux: " + name + " has no auxiliary heads (googlenet has two)");
  const std::string device = a.str("device", "");
  if (c.options.channels < 1) throw UsageError("--channels must be at least 1");
  if (c.options.classes < 1) throw UsageError("--classes must be at least 1");
  if (!(c.options.width > 0) || !std::isfinite(c.options.width)) throw UsageError("--width must be positive");
  if (c.options.batch < 1) throw UsageError("--batch must be at least 1");
  c.device = device.empty() ? default_device() : parse_device(device);
  return c;
}

std::pair<int, int> input_size(const NetChoice& c) {
  return nets::input_size(c.name, c.options);
}

std::string describe(const NetChoice& c) {
  char buf[256];
  const auto [h, w] = input_size(c);
  const std::string size = h == w ? std::to_string(h) : std::to_string(h) + "x" + std::to_string(w);
  std::snprintf(buf, sizeof buf, "%s: channels %d, classes %d, input %s, width %g, batch %d%s", c.name.c_str(),
                c.options.channels, c.options.classes, size.c_str(), c.options.width, c.options.batch,
                c.options.aux ? ", auxiliary heads" : "");
  return buf;
}

Tensor read_images(const std::string& path, NetChoice& c, int height, int width) {
  NpyArray a = read_npy(path);
  if (a.dtype != "<f4")
    throw BadInput(path + ": dtype " + a.dtype + ", expected float32 (<f4) images (numpy: x.astype(np.float32))");
  if (a.shape.size() != 4)
    throw BadInput(path + ": shape " + shape_str(a.shape) + ", expected 4 dimensions (N, C, H, W)");
  const int64_t n = a.shape[0], ch = a.shape[1], h = a.shape[2], w = a.shape[3];
  const std::string shape = " (shape " + shape_str(a.shape) + ")";
  if (n < 1) throw BadInput(path + ": no images" + shape);
  if (ch != c.options.channels)
    throw BadInput(path + ": " + plural(ch, "channel") + shape + ", but the net has " +
                   std::to_string(c.options.channels) + " (--channels)");
  if (height > 0 && (h != height || w != width))
    throw BadInput(path + ": images of " + std::to_string(h) + "x" + std::to_string(w) + shape +
                   ", but the net's input is " + std::to_string(height) + "x" + std::to_string(width) +
                   (h != height ? " (height" : " (width") + " differs; --input-size)");
  if (c.batch_given && n != c.options.batch)
    throw BadInput(path + ": " + plural(n, "image") + shape + ", but --batch is " + std::to_string(c.options.batch));
  c.options.batch = int(n);
  Tensor t(a.shape);  // (N, C, H, W)
  std::memcpy(t.data(), a.bytes.data(), size_t(t.numel()) * sizeof(float));
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t.at(i))) throw BadInput(path + ": element " + std::to_string(i) + " is not finite");
  return t;
}

Tensor read_labels(const std::string& path, const NetChoice& c) {
  NpyArray a = read_npy(path);
  if (a.dtype != "<i8" && a.dtype != "<i4")
    throw BadInput(path + ": dtype " + a.dtype + ", expected int64 (<i8) or int32 (<i4) class labels");
  if (a.shape.size() != 1 || a.shape[0] != c.options.batch)
    throw BadInput(path + ": shape " + shape_str(a.shape) + ", expected (" + std::to_string(c.options.batch) +
                   ",): one label per image of the input");
  Tensor t({a.shape[0]});  // (N) class ids as floats
  for (int64_t i = 0; i < a.shape[0]; ++i) {
    int64_t v = 0;
    if (a.dtype == "<i8") {
      std::memcpy(&v, a.bytes.data() + 8 * i, 8);
    } else {
      int32_t v32 = 0;
      std::memcpy(&v32, a.bytes.data() + 4 * i, 4);
      v = v32;
    }
    if (v < 0 || v >= c.options.classes)
      throw BadInput(path + ": label " + std::to_string(v) + " at index " + std::to_string(i) +
                     " is outside the classes 0.." + std::to_string(c.options.classes - 1) + " (--classes)");
    t.at(i) = float(v);
  }
  return t;
}

TensorFile read_weights_file(const std::string& path, const NetChoice& c) {
  TensorFile file = read_safetensors(path);
  auto builder = file.metadata.find("builder");
  if (builder != file.metadata.end() && builder->second != c.name)
    throw BadInput(path + ": weights of '" + builder->second + "' (its __metadata__ builder), not of '" + c.name + "'");
  return file;
}

std::set<std::string> training_parameters(const NetChoice& c, const TensorFile& weights) {
  nets::NetOptions o = c.options;
  o.with_loss = true;
  auto aux = weights.metadata.find("aux");
  o.aux = o.aux || (aux != weights.metadata.end() && aux->second == "1");
  std::set<std::string> names;
  const Graph g = nets::build_net(c.name, o);
  for (ValueId p : g.params()) names.insert(g.value(p).name);
  return names;
}

}  // namespace massmap::cli
