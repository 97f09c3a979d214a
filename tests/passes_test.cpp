// Graph passes (engine/passes.h): the validator names the node that breaks a graph; for_inference drops the loss,
// GoogLeNet's auxiliary heads and dropout; convolutionalize gives the classifier's probabilities at crop size for
// the three nets (cpu and simt) and, on a test net without padding or partial pooling windows, the classifier's
// probabilities on each cell's crop at every cell of a larger input; fuse_conv_bias_relu is bit-identical to the
// unfused graph on cpu, forward and backward.
#include "engine/passes.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/executor.h"
#include "engine/map_geometry.h"
#include "engine/op.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "engine/validate.h"
#include "nets/layers.h"
#include "nets/registry.h"
#include "tests/support/check.h"
#include "tests/support/net_weights.h"

using namespace massmap;
using testing_support::expect_close;
using testing_support::he_weights;
using testing_support::random_vector;

namespace {

std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const BadConfig& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<std::string> node_names(const Graph& g) {
  std::vector<std::string> names;
  for (const Node& n : g.nodes()) names.push_back(n.name);
  return names;
}

// Runs g on x with He weights (seed 7) and returns the host copy of "prob".
std::vector<float> probabilities(const Graph& g, const Tensor& x, Device device) {
  ExecutorOptions eo;
  eo.device = device;
  Executor ex(g, eo);
  he_weights(ex, 7);
  ex.set_input("data", x);
  RunContext run;
  ex.forward(run);
  return ex.read("prob").to_vector();
}

Tensor random_images(const Shape& shape, uint64_t seed) {
  return Tensor::from(shape, random_vector(size_t(shape_numel(shape)), seed));
}

// A conv net with no padding and pools that tile the input exactly at its 18 x 18 crop: conv 3x3 -> 16, max pool
// 2/2 -> 8, conv 3x3 -> 6, avg pool 2/2 -> 3, fc, fc, loss. Stride 4; an input of 18 + 4a x 18 + 4b gives a map of
// (a + 1) x (b + 1) cells, each exactly the classifier on its crop.
Graph tiling_net(int batch, int height, int width) {
  Graph g;
  nets::LayerBuilder b(g);
  ValueId x = g.add_input("data", {batch, 2, height, width});
  x = b.relu("relu1", b.conv("conv1", x, 4, 3));
  x = b.max_pool("pool1", x, 2, 2);
  x = b.relu("relu2", b.conv("conv2", x, 6, 3));
  x = b.avg_pool("pool2", x, 2, 2);
  x = b.linear("fc3", b.flatten("flatten", x), 8);
  x = b.dropout("drop3", b.relu("relu3", x), 0.5, 3);
  x = b.linear("fc4", x, 3);
  b.softmax_loss("loss", x, g.add_input("label", {batch}));
  g.metadata["builder"] = "tiling test net";
  return g;
}

}  // namespace

TEST_CASE("validator: a broken graph names the node and the value") {
  auto base = [] {
    Graph g;
    nets::LayerBuilder b(g);
    ValueId x = g.add_input("data", {1, 1, 6, 6});
    b.relu("relu1", b.conv("conv1", x, 2, 3));
    return g;
  };
  validate_graph(base());
  {  // a node reading a value before its producer runs
    Graph g;
    ValueId x = g.add_input("data", {1, 1, 4, 4});
    ValueId later = g.new_value("later", {1, 1, 4, 4}, ValueKind::activation);
    Node n;
    n.name = "early";
    n.op = ops::relu;
    n.inputs = {later};
    n.outputs = {g.new_value("early", {1, 1, 4, 4}, ValueKind::activation)};
    g.append_node(n);
    Node p;
    p.name = "producer";
    p.op = ops::relu;
    p.inputs = {x};
    p.outputs = {later};
    g.append_node(p);
    const std::string m = config_error([&] { validate_graph(g); });
    CHECK(contains(m, "'early'"));
    CHECK(contains(m, "'later' before any node produces it"));
  }
  {  // two producers of one value
    Graph g = base();
    Node n;
    n.name = "again";
    n.op = ops::relu;
    n.inputs = {g.at("data")};
    n.outputs = {g.at("relu1")};
    g.append_node(n);
    const std::string m = config_error([&] { validate_graph(g); });
    CHECK(contains(m, "'again'"));
    CHECK(contains(m, "'relu1', which another node already produced"));
  }
  {  // a parameter nothing reads
    Graph g = base();
    g.add_param("orphan.weight", {3});
    CHECK(contains(config_error([&] { validate_graph(g); }), "parameter 'orphan.weight' is read by no node"));
  }
  {  // a stored shape the op's rule disagrees with
    Graph g = base();
    g.value(g.at("conv1")).shape = {1, 2, 5, 5};
    const std::string m = config_error([&] { validate_graph(g); });
    CHECK(contains(m, "'conv1' (conv2d)"));
    CHECK(contains(m, "(1, 2, 4, 4)"));
  }
  CHECK(contains(config_error([] { find_pass("convolutionalise"); }), "known: for_inference, convolutionalize"));
}

TEST_CASE("for_inference: GoogLeNet with auxiliary heads becomes the classifier ending in prob, without dropout") {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = 1.0 / 16;
  o.aux = true;
  std::vector<PassLog> log;
  const Graph g = run_passes(nets::build_net("googlenet", o), {"for_inference"}, &log);
  o.aux = false;
  o.with_loss = false;
  const Graph plain = nets::build_net("googlenet", o);  // ends in softmax "prob", has the dropout
  std::vector<std::string> want = node_names(plain);
  want.erase(std::find(want.begin(), want.end(), "pool5/drop_7x7_s1"));
  CHECK(node_names(g) == want);
  for (const Node& n : g.nodes()) CHECK(!op_def(n.op).is_loss);
  CHECK(g.find("label") < 0);
  CHECK(g.find("loss1/fc.weight") < 0);
  CHECK(g.num_parameters() == plain.num_parameters());
  CHECK(g.value(g.at("prob")).shape == Shape{1, 2});
  // The flatten reads the pool directly: no copy in place of the dropout.
  CHECK(g.node(g.value(g.at("loss3/flatten")).producer).inputs[0] == g.at("pool5/7x7_s1"));
  REQUIRE(log.size() == 1);
  std::string changes;
  for (const std::string& line : log[0].changes) changes += line + "\n";
  CHECK(contains(changes, "loss 'loss' (softmax_loss) -> prob"));
  CHECK(contains(changes, "dropout 'pool5/drop_7x7_s1' removed"));
  CHECK(contains(changes, "loss1/ave_pool"));
  CHECK(contains(changes, "inputs dropped: label"));
}

TEST_CASE("convolutionalize: the three nets equal their classifier at crop size, on cpu and simt") {
  // Width 1/16; AlexNet and VGG-16 at 67 and at a rectangular 67 x 99 crop (pool5 (1, 1) and (1, 2): the fc6
  // kernel is rectangular), GoogLeNet at its 224 (its 7x7 pool needs it).
  struct Case {
    std::string net;
    int height, width;
    Device device;
  };
  const Case cases[] = {
      {"alexnet", 67, 67, Device::cpu}, {"alexnet", 67, 99, Device::cpu},      {"vgg16", 67, 67, Device::cpu},
      {"vgg16", 67, 99, Device::cpu},   {"googlenet", 224, 224, Device::cpu},  {"alexnet", 67, 99, Device::simt},
      {"vgg16", 67, 67, Device::simt},  {"googlenet", 224, 224, Device::simt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.net);
    CAPTURE(c.height);
    CAPTURE(c.width);
    const std::string device_label = device_name(c.device);
    CAPTURE(device_label);
    nets::NetOptions o;
    o.channels = 1;
    o.classes = 3;
    o.width = 1.0 / 16;
    o.batch = 2;
    o.input = c.height;
    o.input_width = c.width;
    o.aux = c.net == "googlenet";
    const Graph fcn = run_passes(nets::build_net(c.net, o), {"for_inference", "convolutionalize"});
    CHECK(fcn.crop == std::vector<int64_t>{c.height, c.width});
    CHECK(fcn.value(fcn.at("prob")).shape == Shape{2, 3, 1, 1});
    for (const Node& n : fcn.nodes()) CHECK(n.op != ops::linear);
    o.with_loss = false;
    o.aux = false;
    const Graph classifier = nets::build_net(c.net, o);
    const Tensor x = random_images({2, 1, c.height, c.width}, 3);
    const std::vector<float> want = probabilities(classifier, x, c.device);
    expect_close(probabilities(fcn, x, c.device), want, 0.f, 1e-5f, c.net + " map at crop size");
    // Not a trivially uniform answer: the probabilities differ between the classes.
    CHECK(std::fabs(want[0] - want[1]) > 1e-4f);
  }
}

// Convolutionalizes build(batch, crop, crop), maps an image of cells_y x cells_x cells, and checks every cell
// against the classifier run on the crop the geometry names for it (and that crop against stride * cell by hand).
void check_cells_are_crops(const std::function<Graph(int, int, int)>& build, int channels, int classes, int crop,
                           int stride, int cells_y, int cells_x) {
  for (Device device : {Device::cpu, Device::simt}) {
    const std::string device_label = device_name(device);
    CAPTURE(device_label);
    const int batch = 2, height = crop + stride * (cells_y - 1), width = crop + stride * (cells_x - 1);
    std::vector<PassLog> log;
    const Graph fcn = with_input_size(run_passes(build(batch, crop, crop), {"for_inference", "convolutionalize"}, &log),
                                      height, width);
    validate_graph(fcn);
    REQUIRE(fcn.value(fcn.at("prob")).shape == Shape{batch, classes, cells_y, cells_x});
    const MapGeometry geo = map_geometry(fcn);
    CHECK(geo.y.stride == stride);
    CHECK(geo.x.crop == crop);
    CHECK(geo.x.cells == cells_x);
    CHECK(geo.y.field_size() == crop);  // no padding, every pool window full: the field is the crop
    const Tensor x = random_images({batch, channels, height, width}, 5);
    const std::vector<float> map = probabilities(fcn, x, device);  // (N, K, cells_y, cells_x)
    const Graph classifier = run_passes(build(batch, crop, crop), {"for_inference"});
    for (int i = 0; i < cells_y; ++i)
      for (int j = 0; j < cells_x; ++j) {
        const int64_t top = geo.y.crop_begin(i), left = geo.x.crop_begin(j);
        CHECK(top == stride * i);
        CHECK(left == stride * j);
        Tensor cut({batch, channels, crop, crop});  // (N, C, crop, crop)
        for (int n = 0; n < batch; ++n)
          for (int ch = 0; ch < channels; ++ch)
            for (int r = 0; r < crop; ++r)
              for (int q = 0; q < crop; ++q)
                cut.at(((n * channels + ch) * crop + r) * crop + q) =
                    x.at(((int64_t(n) * channels + ch) * height + top + r) * width + left + q);
        const std::vector<float> want = probabilities(classifier, cut, device);  // (N, K)
        std::vector<float> cell;                                                 // (N, K) of the map at (i, j)
        for (int n = 0; n < batch; ++n)
          for (int k = 0; k < classes; ++k)
            cell.push_back(map[size_t(((n * classes + k) * cells_y + i) * cells_x + j)]);
        expect_close(cell, want, 0.f, 1e-5f, "cell (" + std::to_string(i) + ", " + std::to_string(j) + ")");
      }
  }
}

TEST_CASE("convolutionalize: a net without padding or partial pools gives the classifier on each cell's crop") {
  check_cells_are_crops(tiling_net, 2, 3, 18, 4, 3, 4);
}

namespace {

// A quarter-width, one-channel, two-class builder of net `name` (mapnet or mapnet4) for check_cells_are_crops.
std::function<Graph(int, int, int)> quarter_width(const std::string& name) {
  return [name](int batch, int height, int width) {
    nets::NetOptions o;
    o.channels = 1;
    o.classes = 2;
    o.batch = batch;
    o.input = height;
    o.input_width = width;
    o.width = 0.25;
    return nets::build_net(name, o);
  };
}

}  // namespace

TEST_CASE("mapnet: its map is the classifier slid over the image; inputs that leave a partial pool are refused") {
  const auto mapnet = quarter_width("mapnet");
  check_cells_are_crops(mapnet, 1, 2, 47, 4, 2, 3);
  check_cells_are_crops(mapnet, 1, 2, 39, 4, 3, 2);
  const std::string e = config_error([&] { mapnet(1, 48, 48); });
  CHECK(contains(e, "mapnet"));
  CHECK(contains(e, "48"));
  CHECK(contains(e, "47 or 51"));
  CHECK(contains(config_error([&] { mapnet(1, 20, 47); }), "4k + 3 pixels, at least 23"));
  check_cells_are_crops(mapnet, 1, 2, 23, 4, 2, 2);  // the smallest: conv3 leaves one pixel
}

TEST_CASE("mapnet_bn: batch-normalised, its map is still exactly the classifier slid over the image") {
  const auto mapnet_bn = quarter_width("mapnet_bn");
  check_cells_are_crops(mapnet_bn, 1, 2, 47, 4, 2, 3);
  const std::string e = config_error([&] { mapnet_bn(1, 45, 45); });
  CHECK(contains(e, "mapnet_bn"));
  CHECK(contains(e, "4k + 3 pixels, at least 35"));
  CHECK(contains(e, "43 or 47"));
}

TEST_CASE("mapnet_bn_fine: its stride-2 stem keeps the map exactly the classifier slid over the image, at stride 8") {
  const auto fine = quarter_width("mapnet_bn_fine");
  check_cells_are_crops(fine, 1, 2, 69, 8, 2, 3);  // the smallest input: conv6 leaves one pixel
  const std::string e = config_error([&] { fine(1, 93, 92); });
  CHECK(contains(e, "mapnet_bn_fine"));
  CHECK(contains(e, "width of 92"));
  CHECK(contains(e, "8k + 5 pixels, at least 69"));
  CHECK(contains(e, ": 93"));
  CHECK(contains(config_error([&] { fine(1, 61, 69); }), "height of 61"));
}

TEST_CASE("mapnet4: a fourth stage keeps the map exactly the classifier slid over the image, at stride 8") {
  const auto mapnet4 = quarter_width("mapnet4");
  check_cells_are_crops(mapnet4, 1, 2, 47, 8, 2, 3);
  check_cells_are_crops(mapnet4, 1, 2, 55, 8, 3, 2);
  const std::string e = config_error([&] { mapnet4(1, 95, 51); });
  CHECK(contains(e, "mapnet4"));
  CHECK(contains(e, "width of 51"));
  CHECK(contains(e, "8k + 7 pixels, at least 47"));
  CHECK(contains(e, "47 or 55"));
  CHECK(contains(config_error([&] { mapnet4(1, 39, 47); }), "at least 47, tile every window: 47"));
}

TEST_CASE("convolutionalize: errors name the net, the node and the minimum input") {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = 1.0 / 16;
  const Graph fcn = run_passes(nets::build_net("alexnet", o), {"for_inference", "convolutionalize"});
  CHECK(fcn.crop == std::vector<int64_t>{227, 227});
  const std::string small = config_error([&] { with_input_size(fcn, 226, 400); });
  CHECK(contains(small, "alexnet"));
  CHECK(contains(small, "smallest input it accepts is 227x227"));
  const Graph wide = with_input_size(fcn, 227, 227 + 32 * 5);
  CHECK(wide.value(wide.at("prob")).shape == Shape{1, 2, 1, 6});
  CHECK(contains(config_error([&] { convolutionalize(nets::build_net("alexnet", o)); }),
                 "node 'loss' (softmax_loss) is a training loss; run for_inference first"));
  CHECK(contains(config_error([&] { convolutionalize(fcn); }), "nothing to convert"));
}

TEST_CASE("convolutionalize: a classifier checkpoint loads into the result; ignored tensors are returned") {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = 1.0 / 16;
  o.aux = true;
  o.input = 224;
  const Graph training = nets::build_net("googlenet", o);
  ExecutorOptions train_options;
  train_options.training = true;
  Executor trainer(training, train_options);
  he_weights(trainer, 9);
  Solver solver(trainer, SolverConfig{});
  const std::string path = "passes_test_checkpoint.safetensors";
  save_checkpoint(path, trainer, &solver);
  const TensorFile file = read_safetensors(path);
  std::set<std::string> ignorable;
  for (ValueId p : training.params()) ignorable.insert(training.value(p).name);
  Executor fcn(run_passes(training, {"for_inference", "convolutionalize"}));
  const std::vector<std::string> ignored = load_inference_weights(path, file, fcn, ignorable);
  // fc weights of the aux heads, their classifiers and the history of every parameter are ignored; the main
  // classifier's (K, 1024) weight loaded as the (K, 1024, 1, 1) conv weight.
  CHECK(std::count(ignored.begin(), ignored.end(), "loss1/fc.weight") == 1);
  CHECK(std::count(ignored.begin(), ignored.end(), "history/loss3/classifier.weight") == 1);
  CHECK(std::count(ignored.begin(), ignored.end(), "loss3/classifier.weight") == 0);
  CHECK(fcn.read("loss3/classifier.weight").to_vector() == file.tensors.at("loss3/classifier.weight").to_vector());
  // A tensor nobody expects is still an error, and so is a missing one.
  TensorFile extra = file;
  extra.tensors["stray"] = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(load_inference_weights(path, extra, fcn, ignorable), doctest::Contains("stray"), BadInput);
  TensorFile missing = file;
  missing.tensors.erase("conv1/7x7_s2.bias");
  CHECK_THROWS_WITH_AS(load_inference_weights(path, missing, fcn, ignorable), doctest::Contains("conv1/7x7_s2.bias"),
                       BadInput);
  std::remove(path.c_str());
}

namespace {

// The fused graph's training step against the plain one's: bit for bit on cpu, within rounding on simt.
void check_fused_step(const Graph& plain, const Graph& fused, const Tensor& x, const Tensor& labels) {
  auto cpu_plain = testing_support::training_step(plain, Device::cpu, x, labels, false),
       cpu_fused = testing_support::training_step(fused, Device::cpu, x, labels, false);
  auto simt_fused = testing_support::training_step(fused, Device::simt, x, labels, false);
  CHECK(cpu_fused->read("loss.prob").to_vector() == cpu_plain->read("loss.prob").to_vector());
  for (ValueId p : plain.params()) {
    const std::string grad = gradient_name(plain.value(p).name);
    CAPTURE(grad);
    CHECK(cpu_fused->read(grad).to_vector() == cpu_plain->read(grad).to_vector());
    expect_close(simt_fused->read(grad).to_vector(), cpu_plain->read(grad).to_vector(), 1e-5f, 1e-3f, grad);
  }
  expect_close(simt_fused->read("loss.prob").to_vector(), cpu_plain->read("loss.prob").to_vector(), 1e-6f, 1e-5f,
               "simt probabilities");
}

}  // namespace

TEST_CASE("convolutionalize_for_training: one step on a tile is the step on every cell's crop, weighted by labels") {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = 0.25;
  o.input = 23;
  o.batch = 2;
  const Graph classifier = nets::build_net("mapnet", o);
  const int crop = 23, stride = 4, cells_y = 3, cells_x = 2;
  const int height = crop + stride * (cells_y - 1), width = crop + stride * (cells_x - 1);
  const Graph dense = convolutionalize_for_training(classifier, height, width);
  validate_graph(dense);
  CHECK(dense.value(dense.at("label")).shape == Shape{2, cells_y, cells_x});
  CHECK(dense.value(dense.at("loss.prob")).shape == Shape{2, 2, cells_y, cells_x});
  for (ValueId p : classifier.params())
    CHECK(dense.value(dense.at(classifier.value(p).name)).file_shape() == classifier.value(p).shape);
  CHECK_THROWS_AS(convolutionalize_for_training(run_passes(classifier, {"for_inference"}), height, width), BadConfig);

  const Tensor x = random_images({2, 1, height, width}, 12);                 // (N, 1, H, W)
  const std::vector<float> labels = {1, 0, -1, 1, 0, 0, 0, 1, 1, -1, 0, 1};  // (N, cells_y, cells_x)
  for (Device device : {Device::cpu, Device::simt}) {
    const std::string device_label = device_name(device);
    CAPTURE(device_label);
    ExecutorOptions eo;
    eo.device = device;
    eo.training = true;
    Executor cell_net(classifier, eo), tile_net(dense, eo);
    he_weights(cell_net, 4);
    for (ValueId p : dense.params()) {
      const std::string& name = dense.value(p).name;
      tile_net.set_input(name, cell_net.read(name).reshape(dense.value(p).shape));
    }
    RunContext run;  // dropout off: a deterministic function
    tile_net.set_input("data", x);
    tile_net.set_input("label", Tensor::from({2, cells_y, cells_x}, labels));
    tile_net.forward(run);
    tile_net.backward(run);
    // The reference: every cell's crop through the classifier, its mean loss and gradients weighted by the
    // number of labelled samples in that cell.
    double loss = 0, counted = 0;
    std::map<std::string, std::vector<double>> grads;
    for (int i = 0; i < cells_y; ++i)
      for (int j = 0; j < cells_x; ++j) {
        Tensor cut({2, 1, crop, crop});  // (N, 1, crop, crop)
        for (int n = 0; n < 2; ++n)
          for (int r = 0; r < crop; ++r)
            for (int q = 0; q < crop; ++q)
              cut.at((n * crop + r) * crop + q) = x.at((int64_t(n) * height + stride * i + r) * width + stride * j + q);
        const std::vector<float> cell_labels = {labels[size_t(i * cells_x + j)],
                                                labels[size_t((cells_y + i) * cells_x + j)]};
        const double v = (cell_labels[0] >= 0) + (cell_labels[1] >= 0);
        if (v == 0) continue;
        cell_net.set_input("data", cut);
        cell_net.set_input("label", Tensor::from({2}, cell_labels));
        cell_net.forward(run);
        cell_net.backward(run);
        loss += cell_net.loss() * v;
        counted += v;
        for (ValueId p : classifier.params()) {
          const std::string g = gradient_name(classifier.value(p).name);
          const std::vector<float> gv = cell_net.read(g).to_vector();
          std::vector<double>& sum = grads[g];
          sum.resize(gv.size());
          for (size_t k = 0; k < gv.size(); ++k) sum[k] += gv[k] * v;
        }
      }
    CHECK(counted == 10);
    CHECK(tile_net.loss() == doctest::Approx(loss / counted).epsilon(1e-5));
    for (const auto& [g, sum] : grads) {
      std::vector<float> want;
      for (double s : sum) want.push_back(float(s / counted));
      expect_close(tile_net.read(g).to_vector(), want, 1e-6f, 1e-4f, g);
    }
  }
}

TEST_CASE("fuse_conv_bias_relu: bit-identical to conv + relu on cpu (forward and backward), close on simt") {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 3;
  o.width = 1.0 / 16;
  o.input = 67;
  o.batch = 2;
  const Graph plain = nets::build_net("alexnet", o);
  std::vector<PassLog> log;
  const Graph fused = run_passes(plain, {"fuse_conv_bias_relu"}, &log);
  REQUIRE(log.size() == 1);
  CHECK(log[0].changes.size() == 5);  // conv1 ... conv5
  CHECK(log[0].changes[0] == "conv1 + relu1 -> conv1 (bias and ReLU in the conv's epilogue)");
  int relus = 0;
  for (const Node& n : fused.nodes()) relus += n.op == ops::relu;
  CHECK(relus == 2);  // relu6, relu7 follow linear layers
  check_fused_step(plain, fused, random_images({2, 1, 67, 67}, 8), Tensor::from({2}, {0.f, 2.f}));
}

TEST_CASE("fuse_conv_bias_relu: GoogLeNet, whose fused convs write into concat slices and feed two readers") {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 3;
  o.width = 1.0 / 16;
  o.aux = true;
  const Graph plain = nets::build_net("googlenet", o);
  const Graph fused = run_passes(plain, {"fuse_conv_bias_relu"});
  for (const Node& n : fused.nodes()) {
    const bool after_linear = n.name.find("fc") != std::string::npos;  // the aux heads' relu_fc
    CHECK_MESSAGE((n.op != ops::relu || after_linear), n.name);
  }
  check_fused_step(plain, fused, random_images({1, 1, 224, 224}, 9), Tensor::from({1}, {1.f}));
}
