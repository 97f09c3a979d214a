// massmap nets forward: images through a net at test time. As a classifier it writes (N, K) class probabilities;
// with --fully-convolutional the classifier, built at its crop, goes through the for_inference and convolutionalize
// passes and runs on the whole input, writing the raw map (N, K, h, w) and printing where its cells sit.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "apps/nets_args.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "engine/checkpoint.h"
#include "engine/executor.h"
#include "engine/map_geometry.h"
#include "engine/npy.h"
#include "engine/passes.h"

namespace massmap::cli {

const char* const nets_forward_usage =
    "usage: massmap nets forward NAME --weights W.safetensors --images X.npy --output Y.npy [--dump DIR]\n"
    "                           [--fully-convolutional [--crop S] [--geometry G.json]] [net options]\n\n"
    "Runs images through the net at test time (dropout off) and writes the class probabilities. Without --dump,\n"
    "each convolution or batch norm and its ReLU run as one kernel call (the fuse_conv_bias_relu and\n"
    "fuse_batch_norm_relu passes).\n\n"
    "options:\n"
    "  --weights FILE     the parameters (nets init, training checkpoints: solver history and auxiliary heads\n"
    "                     are skipped and named on stderr); missing, unknown or mis-shaped tensors are named\n"
    "  --images FILE      float32 .npy of shape (N, C, H, W): N images of C channels; N sets the batch\n"
    "  --output FILE      float32 .npy: the class probabilities, (N, K), or with --fully-convolutional the map\n"
    "                     (N, K, h, w), raw (no preprocessing, no resampling)\n"
    "  --dump DIR         also write every layer's output as DIR/<layer>.npy ('/' in layer names becomes '_')\n"
    "  --fully-convolutional\n"
    "                     the convolutionalized net over the whole input: --input-size (default: the images'\n"
    "                     size) may be any size from the crop up; prints the map's stride, crops and field\n"
    "  --geometry FILE    with --fully-convolutional: also write the map's geometry as JSON (cells, stride,\n"
    "                     crop, first crop centre, receptive field)\n"
    "  --crop S           the classifier's input size, S or HxW (default: the weights' __metadata__ input, else\n"
    "                     the net's nominal size)\n\n" MASSMAP_NET_OPTIONS;

namespace {

// Layer (value) names as file names: '/' would make directories.
std::string safe_file_name(std::string name) {
  for (char& ch : name)
    if (ch == '/' || ch == '\\') ch = '_';
  return name;
}

// The classifier's input the weights were trained at: --crop, else the weights' metadata, else nominal.
std::pair<int, int> crop_size(const std::string& crop, const TensorFile& file, const NetChoice& c) {
  if (!crop.empty()) return parse_size("crop", crop);
  nets::NetOptions o = c.options;
  o.input = o.input_width = 0;
  auto h = file.metadata.find("input");
  if (h != file.metadata.end()) o = nets::net_options_from_metadata(file.metadata);
  return nets::input_size(c.name, o);
}

void dump_layers(Executor& ex, const std::string& dir) {
  make_output_dir(dir);
  const Graph& g = ex.graph();
  std::set<std::string> written;
  for (const Node& n : g.nodes()) {
    for (ValueId v : n.outputs) {
      const std::string file_name = safe_file_name(g.value(v).name) + ".npy";
      if (!written.insert(file_name).second)
        throw BadConfig("--dump: two layers map to the file name " + file_name + " (layer " + g.value(v).name + ")");
      write_npy(dir + "/" + file_name, ex.read(g.value(v).name));
    }
  }
  std::printf("%zu layer outputs written to %s\n", written.size(), dir.c_str());
}

}  // namespace

int run_nets_forward(Args& a, const std::string& name) {
  NetChoice c = parse_net(a, name, "forward");
  const std::string weights = a.required("weights"), images = a.required("images"), output = a.required("output");
  const std::string dump = a.str("dump", ""), crop = a.str("crop", ""), geometry = a.str("geometry", "");
  const bool fully_convolutional = a.flag("fully-convolutional");
  a.finish();
  if ((!crop.empty() || !geometry.empty()) && !fully_convolutional)
    throw UsageError("--crop and --geometry are for --fully-convolutional");
  const std::vector<std::pair<std::string, std::string>> inputs = {{"--weights", weights}, {"--images", images}};
  check_output_file("output", output);
  check_output_not_input("output", output, inputs);
  if (!geometry.empty()) check_output_file("geometry", geometry), check_output_not_input("geometry", geometry, inputs);
  const TensorFile file = read_weights_file(weights, c);
  Graph graph;
  Tensor x;  // (N, C, H, W) images
  if (fully_convolutional) {
    const auto [crop_h, crop_w] = crop_size(crop, file, c);
    const auto [h, w] = input_size(c);
    x = read_images(images, c, c.size_given ? h : 0, c.size_given ? w : 0);
    c.options.input = int(x.dim(2));
    c.options.input_width = int(x.dim(3));
    nets::NetOptions o = c.options;  // the classifier, at its crop
    o.input = crop_h;
    o.input_width = crop_w;
    o.with_loss = true;
    graph = run_passes(nets::build_net(c.name, o), {"for_inference", "convolutionalize"});
    graph = with_input_size(graph, x.dim(2), x.dim(3));
  } else {
    const auto [h, w] = input_size(c);
    x = read_images(images, c, h, w);
    nets::NetOptions o = c.options;
    o.with_loss = false;  // ends in softmax "prob"; dropout stays (identity at test time) so --dump lists it
    graph = nets::build_net(c.name, o);
  }
  if (dump.empty())
    graph = run_passes(graph, {"fuse_conv_bias_relu", "fuse_batch_norm_relu"});  // --dump lists every layer as built
  ExecutorOptions eo;
  eo.device = c.device;
  eo.keep_all = !dump.empty();     // every value its own buffer, readable after the run
  eo.share_memory = dump.empty();  // no in-place ReLU: relu1 and conv1 are both dumped as computed
  Executor ex(std::move(graph), eo);
  const std::vector<std::string> ignored = load_inference_weights(weights, file, ex, training_parameters(c, file));
  if (!ignored.empty()) {
    std::string names;
    for (const std::string& n : ignored) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "%s: %zu tensors not used for inference, ignored: %s\n", weights.c_str(), ignored.size(),
                 names.c_str());
  }
  ex.set_input("data", x);
  RunContext run;
  ex.forward(run);
  Tensor prob = ex.read("prob");
  if (!fully_convolutional) prob = prob.reshape({int64_t(c.options.batch), prob.numel() / c.options.batch});
  write_npy(output, prob);
  std::printf("%s\n", describe(c).c_str());
  if (fully_convolutional) {
    const Shape& in = ex.graph().value(ex.graph().at("data")).shape;
    const MapGeometry geo = map_geometry(ex.graph());
    std::printf("fully convolutional over %lldx%lld, crop %lldx%lld\n%s", (long long)in[2], (long long)in[3],
                (long long)ex.graph().crop[0], (long long)ex.graph().crop[1], geometry_report(geo).c_str());
    if (!geometry.empty()) {
      const std::string text = geometry_json(geo).dump(2) + "\n";
      write_file_atomic(geometry, text.data(), text.size());
      std::printf("geometry written to %s\n", geometry.c_str());
    }
  }
  std::printf("probabilities %s written to %s\n", shape_str(prob.shape()).c_str(), output.c_str());
  if (!dump.empty()) dump_layers(ex, dump);
  return 0;
}

}  // namespace massmap::cli
