// massmap nets: the net catalogue from the command line. `show` prints a net's layer table (after graph passes
// with --passes), `init` writes initialised weights, `forward` (apps/nets_forward_cmd.cpp) runs images through a
// net, `grad` writes the loss and every parameter's gradient of one batch. Every file is checked before use: a
// missing, extra or mis-shaped tensor, a .npy of the wrong dtype or shape, or a label outside the classes is a
// BadInput naming the file and what is wrong.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "apps/nets_args.h"
#include "base/errors.h"
#include "base/memory_limit.h"
#include "base/text.h"
#include "engine/autograd.h"
#include "engine/executor.h"
#include "engine/init.h"
#include "engine/map_geometry.h"
#include "engine/npy.h"
#include "engine/passes.h"
#include "engine/safetensors.h"
#include "nets/registry.h"

namespace massmap::cli {

namespace {

const char* const show_usage =
    "usage: massmap nets show NAME [--passes P1,P2,...] [net options]\n\n"
    "Prints the layer table of the net (name, op, output shape, parameters, multiply-adds per layer) and the\n"
    "totals, as built for training (with its loss layers), or after graph passes.\n\n"
    "options:\n"
    "  --passes LIST      graph passes to run in order, each followed by the validator; prints what each\n"
    "                     changed: for_inference (drop loss, auxiliary heads, dropout), convolutionalize (fc\n"
    "                     layers as convolutions: then the net is built at its crop, --crop, and run on\n"
    "                     --input-size, and the map's geometry is printed), fuse_conv_bias_relu,\n"
    "                     fuse_batch_norm_relu\n"
    "  --crop S           with convolutionalize: the classifier's input size, S or HxW (default: "
    "nominal)\n\n" MASSMAP_NET_OPTIONS;

const char* const init_usage =
    "usage: massmap nets init NAME --out W.safetensors [--seed S] [net options]\n\n"
    "Writes the net's parameters, initialised as its builder specifies (seeded per parameter name, so a\n"
    "parameter's values depend only on the seed, its name and its shape), as safetensors with the builder and\n"
    "its options in __metadata__.\n\n"
    "options:\n"
    "  --out FILE         the weights file to write (atomically)\n"
    "  --seed S           initialisation seed (default 1)\n\n" MASSMAP_NET_OPTIONS;

const char* const grad_usage =
    "usage: massmap nets grad NAME --weights W.safetensors --images X.npy --labels L.npy --output G.safetensors\n"
    "                        [net options]\n\n"
    "One forward and backward pass with dropout off (deterministic): writes the loss as a scalar tensor 'loss'\n"
    "and the gradient of the loss with respect to every parameter under the parameter's name. No update.\n\n"
    "options:\n"
    "  --weights FILE     the parameters\n"
    "  --images FILE      float32 .npy of shape (N, C, H, W)\n"
    "  --labels FILE      int64 or int32 .npy of shape (N,), classes 0 .. K-1\n"
    "  --output FILE      the safetensors file to write\n\n" MASSMAP_NET_OPTIONS;

// The weights file, checked against the parameters of the net as built for training (its full parameter set:
// GoogLeNet's auxiliary heads are part of the training graph's weights).
TensorFile read_weights(const std::string& path, const NetChoice& c) {
  TensorFile file = read_weights_file(path, c);
  nets::NetOptions training = c.options;
  training.with_loss = true;
  std::map<std::string, Shape> shapes;
  const Graph g = nets::build_net(c.name, training);
  for (ValueId p : g.params()) shapes[g.value(p).name] = g.value(p).shape;
  check_tensor_set(path, shapes, file.tensors);
  return file;
}

void load_weights(Executor& ex, const TensorFile& file) {
  const Graph& g = ex.graph();
  for (ValueId p : g.params()) ex.tensor(p).copy_from(file.tensors.at(g.value(p).name));
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    if (comma > begin) out.push_back(text.substr(begin, comma - begin));
    begin = comma + 1;
  }
  return out;
}

int show(Args& a, const std::string& name) {
  NetChoice c = parse_net(a, name, "show");
  const std::vector<std::string> passes = split_list(a.str("passes", ""));
  const std::string crop = a.str("crop", "");
  a.finish();
  for (const std::string& p : passes) find_pass(p);  // an unknown name fails before any work
  const bool convolutional = std::find(passes.begin(), passes.end(), "convolutionalize") != passes.end();
  if (!crop.empty() && !convolutional) throw UsageError("--crop is for --passes ...,convolutionalize");
  nets::NetOptions o = c.options;
  if (convolutional) {  // the classifier at its crop; the result then runs on --input-size
    const auto [h, w] = crop.empty() ? nets::input_size(c.name, {}) : parse_size("crop", crop);
    o.input = h;
    o.input_width = w;
  }
  std::vector<PassLog> log;
  Graph g = run_passes(nets::build_net(c.name, o), passes, &log);
  if (convolutional && c.size_given) {
    const auto [h, w] = input_size(c);
    g = with_input_size(g, h, w);
  }
  std::printf("%s\n\n", describe(c).c_str());
  for (const PassLog& entry : log) {
    std::printf("pass %s:\n", entry.pass.c_str());
    for (const std::string& line : entry.changes) std::printf("  %s\n", line.c_str());
  }
  if (!log.empty()) std::printf("\n");
  std::printf("%s", g.layer_table().c_str());
  if (!g.crop.empty()) std::printf("\n%s", geometry_report(map_geometry(g)).c_str());
  std::printf("\n");
  return 0;
}

int init(Args& a, const std::string& name) {
  const std::string out = a.required("out");
  const int64_t seed = a.integer("seed", 1, 0, INT64_MAX);
  NetChoice c = parse_net(a, name, "init");
  a.finish();
  check_output_file("out", out);
  c.options.seed = uint64_t(seed);
  Graph g = nets::build_net(c.name, c.options);
  // The parameters, then their serialised copy.
  check_memory(2 * g.num_parameters() * int64_t(sizeof(float)),
               "nets init " + c.name + "'s " + std::to_string(g.num_parameters()) + " parameters");
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

int grad(Args& a, const std::string& name) {
  NetChoice c = parse_net(a, name, "grad");
  const std::string weights = a.required("weights"), images = a.required("images"), labels = a.required("labels"),
                    output = a.required("output");
  a.finish();
  check_output_file("output", output);
  check_output_not_input("output", output, {{"--weights", weights}, {"--images", images}, {"--labels", labels}});
  const auto [h, w] = input_size(c);
  Tensor x = read_images(images, c, h, w);
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
    throw NumericalError("the loss is " + decimal_text(loss) + " for " + images + " with " + weights);
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
    "The paper's nets by name: alexnet, vgg16, googlenet; smallnet (the tests' small CNN), mapnet (no padding:\n"
    "its map is the classifier slid over the image), mapnet4 (mapnet with a fourth stage, for finer spacings),\n"
    "mapnet_bn (two batch-normalised convolutions per stage) and mapnet_bn_fine (mapnet_bn with a stride-2 stem,\n"
    "for half the spacing).\n\n"
    "subcommands:\n"
    "  show      the layer table: name, op, output shape, parameters and multiply-adds per layer, and totals\n"
    "  init      initialised weights as safetensors, with the builder and its options in __metadata__\n"
    "  forward   class probabilities of float32 NCHW images (.npy); --dump writes every layer's output;\n"
    "            --fully-convolutional writes the map of class probabilities over any input size\n"
    "  grad      the loss and every parameter's gradient of one batch with labels, dropout off\n"
    "  gap       fully convolutional map cells against the classifier on each cell's crop (random weights)\n\n"
    "examples:\n"
    "  massmap nets show alexnet --channels 1 --classes 2\n"
    "  massmap nets init alexnet --channels 1 --classes 2 --seed 1 --out alexnet.safetensors\n"
    "  massmap nets forward alexnet --channels 1 --classes 2 --weights alexnet.safetensors --images x.npy "
    "--output y.npy\n"
    "  massmap nets show alexnet --passes for_inference,convolutionalize --input-size 451x707\n";

int run_nets(Args& a) {
  const std::string sub = a.shift_positional();
  struct Sub {
    const char* name;
    const char* usage;
    int (*run)(Args&, const std::string&);
  };
  static const Sub subs[] = {{"show", show_usage, show},
                             {"init", init_usage, init},
                             {"forward", nets_forward_usage, run_nets_forward},
                             {"gap", nets_gap_usage, run_nets_gap},
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
  throw UsageError("unknown nets subcommand '" + sub + "' (show, init, forward, grad, gap)\n\n" + nets_usage);
}

}  // namespace massmap::cli
