// massmap nets: the net catalogue from the command line. `show` prints a net's layer table, `init` writes
// initialised weights, `forward` runs a batch of images through a net and writes the class probabilities (and,
// with --dump, every layer's output), `grad` writes the loss and every parameter's gradient of one batch. Every
// file is checked before use: a missing, extra or mis-shaped tensor, a .npy of the wrong dtype or shape, or a label
// outside the classes is a BadInput naming the file and what is wrong.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "engine/autograd.h"
#include "engine/errors.h"
#include "engine/executor.h"
#include "engine/init.h"
#include "engine/npy.h"
#include "engine/safetensors.h"
#include "nets/registry.h"

namespace massmap::cli {

namespace {

#define MASSMAP_NET_OPTIONS                                                                                  \
  "net options (every subcommand; a weights file only fits the options it was made with):\n"                 \
  "  NAME               alexnet, vgg16, googlenet or smallnet (massmap nets show --help lists them)\n"       \
  "  --channels C       input channels: 1 for mammograms, 3 for photographs (default 3)\n"                   \
  "  --classes K        number of classes: 2 for mass / no mass (default 1000)\n"                            \
  "  --input S          input height and width (default: the net's nominal size, 227 for alexnet, 224 for\n" \
  "                     vgg16 and googlenet)\n"                                                              \
  "  --width W          multiplies every layer's channel count but the classifier's (default 1)\n"           \
  "  --batch B          batch size (default 1; forward and grad take it from the input's first dimension)\n" \
  "  --aux              googlenet's two auxiliary heads (loss weight 0.3)\n"                                 \
  "  --device D         cpu, cuda (our CUDA kernels on a GPU) or simt (the CUDA kernels run on the host:\n"  \
  "                     slow, for checking); default: cuda when a GPU is present, else cpu\n"

const char* const show_usage =
    "usage: massmap nets show NAME [net options]\n\n"
    "Prints the layer table of the net (name, op, output shape, parameters, multiply-adds per layer) and the\n"
    "totals, as built for training (with its loss layers).\n\n" MASSMAP_NET_OPTIONS;

const char* const init_usage =
    "usage: massmap nets init NAME --out W.safetensors [--seed S] [net options]\n\n"
    "Writes the net's parameters, initialised as its builder specifies (seeded per parameter name, so a\n"
    "parameter's values depend only on the seed, its name and its shape), as safetensors with the builder and\n"
    "its options in __metadata__.\n\n"
    "options:\n"
    "  --out FILE         the weights file to write (atomically)\n"
    "  --seed S           initialisation seed (default 1)\n\n" MASSMAP_NET_OPTIONS;

const char* const forward_usage =
    "usage: massmap nets forward NAME --weights W.safetensors --input X.npy --output Y.npy [--dump DIR]\n"
    "                           [net options]\n\n"
    "Runs images through the net at test time (dropout off) and writes the class probabilities.\n\n"
    "options:\n"
    "  --weights FILE     the parameters (from nets init or training); missing, extra or mis-shaped tensors\n"
    "                     are named\n"
    "  --input FILE       float32 .npy of shape (N, C, S, S): N images of C channels; N sets the batch\n"
    "  --output FILE      float32 .npy of the class probabilities, one row per image\n"
    "  --dump DIR         also write every layer's output as DIR/<layer>.npy ('/' in layer names becomes '_')\n\n"
    "note: --input here is the images; the input size is --input-size S for this subcommand.\n\n" MASSMAP_NET_OPTIONS;

const char* const grad_usage =
    "usage: massmap nets grad NAME --weights W.safetensors --input X.npy --labels L.npy --output G.safetensors\n"
    "                        [net options]\n\n"
    "One forward and backward pass with dropout off (deterministic): writes the loss as a scalar tensor 'loss'\n"
    "and the gradient of the loss with respect to every parameter under the parameter's name. No update.\n\n"
    "options:\n"
    "  --weights FILE     the parameters\n"
    "  --input FILE       float32 .npy of shape (N, C, S, S)\n"
    "  --labels FILE      int64 or int32 .npy of shape (N,), classes 0 .. K-1\n"
    "  --output FILE      the safetensors file to write\n\n"
    "note: --input here is the images; the input size is --input-size S for this subcommand.\n\n" MASSMAP_NET_OPTIONS;

struct NetChoice {
  std::string name;
  nets::NetOptions options;
  Device device = Device::cpu;
  bool batch_given = false;
};

// The net options every subcommand takes. `size_option` is "input" for show and init, "input-size" for forward and
// grad (where --input names the images).
NetChoice parse_net(Args& a, const std::string& name, const std::string& size_option) {
  NetChoice c;
  if (name.empty()) throw UsageError("missing the net's NAME\n\n" + a.usage());
  nets::find_net(name);  // UsageError listing the known names
  c.name = name;
  c.options.channels = int(a.integer("channels", c.options.channels));
  c.options.classes = int(a.integer("classes", c.options.classes));
  c.options.input = int(a.integer(size_option, c.options.input));
  c.options.width = a.number("width", c.options.width);
  const int64_t batch = a.integer("batch", 0);
  c.batch_given = batch != 0;
  if (c.batch_given) c.options.batch = int(batch);
  c.options.aux = a.flag("aux");
  const std::string device = a.str("device", "");
  if (c.options.channels < 1) throw UsageError("--channels must be at least 1");
  if (c.options.classes < 1) throw UsageError("--classes must be at least 1");
  if (c.options.input < 0) throw UsageError("--" + size_option + " must be positive (or 0: the nominal size)");
  if (!(c.options.width > 0) || !std::isfinite(c.options.width)) throw UsageError("--width must be positive");
  if (c.options.batch < 1) throw UsageError("--batch must be at least 1");
  c.device = device.empty() ? default_device() : parse_device(device);
  return c;
}

int input_size(const NetChoice& c) {
  return c.options.input > 0 ? c.options.input : nets::find_net(c.name).nominal_input;
}

std::string describe(const NetChoice& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: channels %d, classes %d, input %d, width %g, batch %d%s", c.name.c_str(),
                c.options.channels, c.options.classes, input_size(c), c.options.width, c.options.batch,
                c.options.aux ? ", auxiliary heads" : "");
  return buf;
}

std::map<std::string, Shape> parameter_shapes(const Graph& g) {
  std::map<std::string, Shape> shapes;
  for (ValueId p : g.params()) shapes[g.value(p).name] = g.value(p).shape;
  return shapes;
}

// A float32 .npy of images (N, C, H, W) checked against the net's options; sets the batch from N.
Tensor read_images(const std::string& path, NetChoice& c) {
  NpyArray a = read_npy(path);
  if (a.dtype != "<f4")
    throw BadInput(path + ": dtype " + a.dtype + ", expected float32 (<f4) images (numpy: x.astype(np.float32))");
  if (a.shape.size() != 4)
    throw BadInput(path + ": shape " + shape_str(a.shape) + ", expected 4 dimensions (N, C, H, W)");
  const int64_t n = a.shape[0], ch = a.shape[1], h = a.shape[2], w = a.shape[3], s = input_size(c);
  const std::string shape = " (shape " + shape_str(a.shape) + ")";
  if (n < 1) throw BadInput(path + ": no images" + shape);
  if (ch != c.options.channels)
    throw BadInput(path + ": " + std::to_string(ch) + " channels" + shape + ", but the net has " +
                   std::to_string(c.options.channels) + " (--channels)");
  if (h != s || w != s)
    throw BadInput(path + ": images of " + std::to_string(h) + "x" + std::to_string(w) + shape +
                   ", but the net's input is " + std::to_string(s) + "x" + std::to_string(s) +
                   (h != s ? " (height" : " (width") + " differs; --input-size)");
  if (c.batch_given && n != c.options.batch)
    throw BadInput(path + ": " + std::to_string(n) + " images" + shape + ", but --batch is " +
                   std::to_string(c.options.batch));
  c.options.batch = int(n);
  Tensor t(a.shape);
  std::memcpy(t.data(), a.bytes.data(), size_t(t.numel()) * sizeof(float));
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t.at(i))) throw BadInput(path + ": element " + std::to_string(i) + " is not finite");
  return t;
}

// Class labels: an int32 or int64 .npy of shape (N,) with values in [0, classes).
Tensor read_labels(const std::string& path, const NetChoice& c) {
  NpyArray a = read_npy(path);
  if (a.dtype != "<i8" && a.dtype != "<i4")
    throw BadInput(path + ": dtype " + a.dtype + ", expected int64 (<i8) or int32 (<i4) class labels");
  if (a.shape.size() != 1 || a.shape[0] != c.options.batch)
    throw BadInput(path + ": shape " + shape_str(a.shape) + ", expected (" + std::to_string(c.options.batch) +
                   ",): one label per image of the input");
  Tensor t({a.shape[0]});
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

// The weights file, checked against the parameters of the net as built for training (its full parameter set:
// GoogLeNet's auxiliary heads are absent from the inference graph but part of its weights).
TensorFile read_weights(const std::string& path, const NetChoice& c) {
  TensorFile file = read_safetensors(path);
  auto builder = file.metadata.find("builder");
  if (builder != file.metadata.end() && builder->second != c.name)
    throw BadInput(path + ": weights of '" + builder->second + "' (its __metadata__ builder), not of '" + c.name + "'");
  nets::NetOptions training = c.options;
  training.with_loss = true;
  check_tensor_set(path, parameter_shapes(nets::build_net(c.name, training)), file.tensors);
  return file;
}

void load_weights(Executor& ex, const TensorFile& file) {
  const Graph& g = ex.graph();
  for (ValueId p : g.params()) ex.tensor(p).copy_from(file.tensors.at(g.value(p).name));
}

// Layer (value) names as file names: '/' would make directories.
std::string safe_file_name(std::string name) {
  for (char& ch : name)
    if (ch == '/' || ch == '\\') ch = '_';
  return name;
}

int show(Args& a, const std::string& name) {
  NetChoice c = parse_net(a, name, "input");
  a.finish();
  Graph g = nets::build_net(c.name, c.options);
  std::printf("%s\n\n%s\n", describe(c).c_str(), g.layer_table().c_str());
  return 0;
}

int init(Args& a, const std::string& name) {
  const std::string out = a.required("out");
  const int64_t seed = a.integer("seed", 1);
  NetChoice c = parse_net(a, name, "input");
  a.finish();
  if (seed < 0) throw UsageError("--seed must not be negative");
  c.options.seed = uint64_t(seed);
  Graph g = nets::build_net(c.name, c.options);
  TensorFile file;
  file.metadata = nets::net_metadata(c.name, c.options);
  file.metadata["init_seed"] = std::to_string(seed);
  for (ValueId p : g.params()) {
    const Value& v = g.value(p);
    Tensor t(v.shape);
    initialise(t, v.param.init, uint64_t(seed), v.name);
    file.tensors[v.name] = t;
  }
  write_safetensors(out, file);
  std::printf("%s\n%lld parameters in %zu tensors written to %s\n", describe(c).c_str(), (long long)g.num_parameters(),
              file.tensors.size(), out.c_str());
  return 0;
}

int forward(Args& a, const std::string& name) {
  const std::string weights = a.required("weights"), input = a.required("input"), output = a.required("output");
  const std::string dump = a.str("dump", "");
  NetChoice c = parse_net(a, name, "input-size");
  a.finish();
  Tensor x = read_images(input, c);
  TensorFile file = read_weights(weights, c);
  nets::NetOptions o = c.options;
  o.with_loss = false;
  ExecutorOptions eo;
  eo.device = c.device;
  eo.training = false;
  eo.keep_all = !dump.empty();     // every value its own buffer, readable after the run
  eo.share_memory = dump.empty();  // no in-place ReLU: relu1 and conv1 are both dumped as computed
  Executor ex(nets::build_net(c.name, o), eo);
  load_weights(ex, file);
  ex.set_input("data", x);
  RunContext run;
  run.training = false;
  ex.forward(run);
  Tensor prob = ex.read("prob");
  const int64_t classes = prob.numel() / c.options.batch;
  Tensor y = prob.reshape({int64_t(c.options.batch), classes});
  write_npy(output, y);
  std::printf("%s\nprobabilities %s written to %s\n", describe(c).c_str(), shape_str(y.shape()).c_str(),
              output.c_str());
  if (!dump.empty()) {
    std::filesystem::create_directories(dump);
    const Graph& g = ex.graph();
    std::set<std::string> written;
    for (const Node& n : g.nodes()) {
      if (n.forward_of >= 0) continue;
      for (ValueId v : n.outputs) {
        const std::string file_name = safe_file_name(g.value(v).name) + ".npy";
        if (!written.insert(file_name).second)
          throw BadConfig("--dump: two layers map to the file name " + file_name + " (layer " + g.value(v).name + ")");
        write_npy(dump + "/" + file_name, ex.read(g.value(v).name));
      }
    }
    std::printf("%zu layer outputs written to %s\n", written.size(), dump.c_str());
  }
  return 0;
}

int grad(Args& a, const std::string& name) {
  const std::string weights = a.required("weights"), input = a.required("input"), labels = a.required("labels"),
                    output = a.required("output");
  NetChoice c = parse_net(a, name, "input-size");
  a.finish();
  Tensor x = read_images(input, c);
  Tensor label = read_labels(labels, c);
  TensorFile file = read_weights(weights, c);
  ExecutorOptions eo;
  eo.device = c.device;
  eo.training = true;  // backward steps (and update steps, which are not run)
  Executor ex(nets::build_net(c.name, c.options), eo);
  load_weights(ex, file);
  ex.set_input("data", x);
  ex.set_input("label", label);
  RunContext run;
  run.training = false;  // dropout off in forward and backward: the gradient of a deterministic function
  ex.forward(run);
  const double loss = ex.loss();
  if (!std::isfinite(loss))
    throw NumericalError("the loss is " + std::to_string(loss) + " for " + input + " with " + weights);
  ex.backward(run);
  TensorFile out;
  out.metadata = nets::net_metadata(c.name, c.options);
  out.metadata["weights"] = weights;
  out.tensors["loss"] = Tensor::filled({}, float(loss));
  const Graph& g = ex.graph();
  for (ValueId p : g.params()) {
    const ValueId gv = gradient_of(g, p);
    out.tensors[g.value(p).name] = gv >= 0 ? ex.read(g.value(gv).name) : Tensor::zeros(g.value(p).shape);
  }
  write_safetensors(output, out);
  std::printf("%s\nloss %.9g; gradients of %zu parameters written to %s\n", describe(c).c_str(), loss,
              out.tensors.size() - 1, output.c_str());
  return 0;
}

}  // namespace

const char* const nets_usage =
    "usage: massmap nets <subcommand> NAME [options]      massmap nets <subcommand> --help\n\n"
    "The paper's nets by name: alexnet, vgg16, googlenet (and smallnet, the demo's small CNN).\n\n"
    "subcommands:\n"
    "  show      the layer table: name, op, output shape, parameters and multiply-adds per layer, and totals\n"
    "  init      initialised weights as safetensors, with the builder and its options in __metadata__\n"
    "  forward   class probabilities of float32 NCHW images (.npy); --dump writes every layer's output\n"
    "  grad      the loss and every parameter's gradient of one batch with labels, dropout off\n\n"
    "examples:\n"
    "  massmap nets show alexnet --channels 1 --classes 2\n"
    "  massmap nets init alexnet --channels 1 --classes 2 --seed 1 --out alexnet.safetensors\n"
    "  massmap nets forward alexnet --channels 1 --classes 2 --weights alexnet.safetensors --input x.npy "
    "--output y.npy\n";

int run_nets(Args& a) {
  const std::string sub = a.shift_positional();
  struct Sub {
    const char* name;
    const char* usage;
    int (*run)(Args&, const std::string&);
  };
  static const Sub subs[] = {{"show", show_usage, show},
                             {"init", init_usage, init},
                             {"forward", forward_usage, forward},
                             {"grad", grad_usage, grad}};
  if (sub.empty()) {
    if (a.help()) {
      std::printf("%s", nets_usage);
      return 0;
    }
    throw UsageError(std::string("missing the subcommand\n\n") + nets_usage);
  }
  for (const Sub& s : subs) {
    if (sub != s.name) continue;
    a.set_usage(s.usage);
    if (a.help()) {
      std::printf("%s", s.usage);
      if (sub == "show") {
        std::printf("\nnets:\n");
        for (const auto& info : nets::net_catalogue())
          std::printf("  %-10s %s (nominal input %d)\n", info.name.c_str(), info.summary.c_str(), info.nominal_input);
      }
      return 0;
    }
    return s.run(a, a.shift_positional());
  }
  throw UsageError("unknown nets subcommand '" + sub + "' (show, init, forward, grad)\n\n" + nets_usage);
}

}  // namespace massmap::cli
