// The paper's nets (nets/alexnet.cpp, nets/vgg16.cpp, nets/googlenet.cpp) through the catalogue: published
// parameter counts and multiply-adds, output shapes at nominal and other input sizes, Caffe layer names, width
// scaling, one training step of each full-size net on `cpu` and of each scaled net on `simt` with gradients checked
// by central differences, and weight import (3 -> 1 channels, a new class count).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <tuple>

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/executor.h"
#include "engine/init.h"
#include "engine/op.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/linear.h"
#include "engine/ops/softmax.h"
#include "engine/safetensors.h"
#include "nets/architectures.h"
#include "nets/import.h"
#include "nets/presets.h"
#include "nets/registry.h"
#include "tests/support/check.h"

using namespace massmap;
using namespace massmap::nets;
using testing_support::random_vector;

namespace {

NetOptions imagenet(bool aux = false) {
  NetOptions o;  // 3 channels, 1000 classes, nominal input, batch 1, width 1
  o.aux = aux;
  return o;
}

// Multiply-adds of the weighted layers of one forward pass (conv2d, linear): the published figures count those.
int64_t weighted_macs(const Graph& g) {
  int64_t total = 0;
  for (const Node& n : g.nodes())
    if (n.forward_of < 0 && (n.op == ops::conv2d || n.op == ops::linear)) total += g.macs(n);
  return total;
}

Shape shape_of(const Graph& g, const std::string& name) {
  return g.value(g.at(name)).shape;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("nets: the catalogue knows the paper's nets, smallnet and mapnet, and names the known ones on a typo") {
  std::vector<std::string> names;
  for (const NetInfo& info : net_catalogue()) names.push_back(info.name);
  CHECK(names == std::vector<std::string>{"alexnet", "vgg16", "googlenet", "smallnet", "mapnet", "mapnet4", "mapnet_bn",
                                          "mapnet_bn_fine"});
  CHECK(find_net("mapnet").nominal_input == 47);
  CHECK(find_net("mapnet4").nominal_input == 95);
  CHECK(find_net("mapnet_bn").nominal_input == 47);
  CHECK(find_net("mapnet_bn_fine").nominal_input == 93);
  CHECK(find_net("alexnet").nominal_input == 227);
  CHECK(find_net("vgg16").nominal_input == 224);
  CHECK(find_net("googlenet").nominal_input == 224);
  try {
    find_net("alexnett");
    FAIL("an unknown net was found");
  } catch (const UsageError& e) {
    std::string m = e.what();
    CHECK(m.find("alexnett") != std::string::npos);
    CHECK(m.find("googlenet") != std::string::npos);
  }
  NetOptions bad;
  bad.width = 0;
  CHECK_THROWS_AS(build_net("vgg16", bad), BadConfig);
  bad = {};
  bad.classes = 0;
  CHECK_THROWS_AS(build_net("alexnet", bad), BadConfig);
}

TEST_CASE("nets: parameter counts are the published ones (3 channels, 1000 classes)") {
  CHECK(build_net("alexnet", imagenet()).num_parameters() == 60965224);
  CHECK(build_net("vgg16", imagenet()).num_parameters() == 138357544);
  CHECK(build_net("googlenet", imagenet()).num_parameters() == 6998552);
  CHECK(build_net("googlenet", imagenet(true)).num_parameters() == 13378280);
  // Inference graphs hold the same parameters (a checkpoint fits both).
  NetOptions deploy = imagenet(true);
  deploy.with_loss = false;
  CHECK(build_net("googlenet", deploy).num_parameters() == 13378280);
  // The mammography variant: conv1 loses 2/3 of its input weights, fc8 all but 2 of its 1000 outputs.
  NetOptions mammo;
  mammo.channels = 1;
  mammo.classes = 2;
  CHECK(build_net("alexnet", mammo).num_parameters() == 60965224 - 96 * 2 * 121 - 998 * 4097);
}

TEST_CASE("nets: multiply-adds of one forward pass are the published ones") {
  struct Expect {
    std::string net;
    double giga, rel;
  };
  // Conv and fc layers (the published figures count those): AlexNet 0.724 G, VGG-16 15.47 G, GoogLeNet 1.58 G.
  // Pools, LRN and the softmax add 0.6% (AlexNet), 0.04% (VGG-16) and 1.2% (GoogLeNet) in the layer table's total.
  for (const Expect& e :
       {Expect{"alexnet", 0.724, 0.01}, Expect{"vgg16", 15.47, 0.005}, Expect{"googlenet", 1.58, 0.01}}) {
    CAPTURE(e.net);
    Graph g = build_net(e.net, imagenet());
    const double weighted = double(weighted_macs(g)) / 1e9, all = double(g.total_macs()) / 1e9;
    MESSAGE(e.net << ": " << weighted << " G multiply-adds in conv/fc, " << all << " G in all layers");
    CHECK(std::fabs(weighted - e.giga) <= e.rel * e.giga);
    CHECK(all >= weighted);
    CHECK(all <= weighted * 1.02);
  }
  // The layer table's totals: every parameter, the all-layer multiply-add sum.
  Graph alexnet = build_net("alexnet", imagenet());
  std::string table = alexnet.layer_table();
  CHECK(table.find("60,965,224") != std::string::npos);
  std::string commas = std::to_string(alexnet.total_macs());
  for (int at = int(commas.size()) - 3; at > 0; at -= 3) commas.insert(size_t(at), ",");
  CHECK(table.find(" " + commas + " ") != std::string::npos);
}

TEST_CASE("nets: output shapes at nominal and other input sizes") {
  NetOptions o = imagenet();
  o.batch = 2;
  {
    Graph g = build_net("alexnet", o);
    CHECK(shape_of(g, "data") == Shape{2, 3, 227, 227});
    CHECK(shape_of(g, "conv1") == Shape{2, 96, 55, 55});
    CHECK(shape_of(g, "pool1") == Shape{2, 96, 27, 27});
    CHECK(shape_of(g, "pool2") == Shape{2, 256, 13, 13});
    CHECK(shape_of(g, "pool5") == Shape{2, 256, 6, 6});
    CHECK(shape_of(g, "fc8") == Shape{2, 1000});
    CHECK(shape_of(g, "loss.prob") == Shape{2, 1000});
  }
  // AlexNet at 256 (the paper's patch size): conv1 (256 - 11) / 4 + 1 = 62 (floor), pool1 ceil((62 - 3) / 2) + 1
  // = 31, conv2 31, pool2 ceil((31 - 3) / 2) + 1 = 15, conv3-5 15, pool5 ceil((15 - 3) / 2) + 1 = 7.
  // At 451: conv1 (451 - 11) / 4 + 1 = 111, pool1 ceil(108 / 2) + 1 = 55, pool2 ceil(52 / 2) + 1 = 27,
  // pool5 ceil(24 / 2) + 1 = 13.
  for (auto [input, conv1, pool5] : {std::tuple{256, 62, 7}, std::tuple{451, 111, 13}}) {
    CAPTURE(input);
    o.input = input;
    Graph g = build_net("alexnet", o);
    CHECK(shape_of(g, "conv1") == Shape{2, 96, conv1, conv1});
    CHECK(shape_of(g, "pool5") == Shape{2, 256, pool5, pool5});
    CHECK(shape_of(g, "fc6.weight") == Shape{4096, 256 * pool5 * pool5});
    CHECK(shape_of(g, "fc8") == Shape{2, 1000});
  }
  o.input = 0;
  {
    Graph g = build_net("vgg16", o);
    CHECK(shape_of(g, "conv1_2") == Shape{2, 64, 224, 224});
    CHECK(shape_of(g, "pool1") == Shape{2, 64, 112, 112});
    CHECK(shape_of(g, "pool3") == Shape{2, 256, 28, 28});
    CHECK(shape_of(g, "pool5") == Shape{2, 512, 7, 7});
    CHECK(shape_of(g, "fc6.weight") == Shape{4096, 25088});
    CHECK(shape_of(g, "fc8") == Shape{2, 1000});
  }
  // VGG-16 at 256: 256 -> 128 -> 64 -> 32 -> 16 -> 8.
  o.input = 256;
  CHECK(shape_of(build_net("vgg16", o), "pool5") == Shape{2, 512, 8, 8});
  o.input = 0;
  o.aux = true;
  {
    Graph g = build_net("googlenet", o);
    CHECK(shape_of(g, "conv1/7x7_s2") == Shape{2, 64, 112, 112});
    CHECK(shape_of(g, "pool1/3x3_s2") == Shape{2, 64, 56, 56});
    CHECK(shape_of(g, "conv2/3x3") == Shape{2, 192, 56, 56});
    CHECK(shape_of(g, "pool2/3x3_s2") == Shape{2, 192, 28, 28});
    CHECK(shape_of(g, "inception_3a/output") == Shape{2, 256, 28, 28});
    CHECK(shape_of(g, "inception_3b/output") == Shape{2, 480, 28, 28});
    CHECK(shape_of(g, "inception_4a/output") == Shape{2, 512, 14, 14});
    CHECK(shape_of(g, "inception_4d/output") == Shape{2, 528, 14, 14});
    CHECK(shape_of(g, "inception_4e/output") == Shape{2, 832, 14, 14});
    CHECK(shape_of(g, "inception_5b/output") == Shape{2, 1024, 7, 7});
    CHECK(shape_of(g, "pool5/7x7_s1") == Shape{2, 1024, 1, 1});
    CHECK(shape_of(g, "loss3/classifier") == Shape{2, 1000});
    CHECK(shape_of(g, "loss1/ave_pool") == Shape{2, 512, 4, 4});
    CHECK(shape_of(g, "loss2/conv") == Shape{2, 128, 4, 4});
    CHECK(shape_of(g, "loss2/fc.weight") == Shape{1024, 2048});
    CHECK(shape_of(g, "loss1/classifier") == Shape{2, 1000});
  }
  // GoogLeNet at 256: conv1 (256 + 6 - 7) / 2 + 1 = 128, pools 64, 32, 16, 8, and the 7x7/1 average pool leaves 2x2.
  o.input = 256;
  o.aux = false;
  CHECK(shape_of(build_net("googlenet", o), "pool5/7x7_s1") == Shape{2, 1024, 2, 2});
  // Rectangular: 256 high, 451 wide takes the two axes through the sizes above independently.
  o.input_width = 451;
  CHECK(shape_of(build_net("googlenet", o), "data") == Shape{2, 3, 256, 451});
  Graph wide = build_net("alexnet", o);
  CHECK(shape_of(wide, "pool5") == Shape{2, 256, 7, 13});
  CHECK(shape_of(wide, "fc6.weight") == Shape{4096, 256 * 7 * 13});
  CHECK(net_metadata("alexnet", o).at("input_width") == "451");
  CHECK(net_options_from_metadata(net_metadata("alexnet", o)).input_width == 451);
  CHECK(net_metadata("alexnet", imagenet()).count("input_width") == 0);  // square: no key
}

TEST_CASE("nets: layer and parameter names are Caffe's, with the inputs and outputs the options ask for") {
  auto has = [](const Graph& g, const std::string& name) { return g.find(name) >= 0; };
  Graph a = build_net("alexnet", imagenet());
  for (const char* n : {"data",  "label", "conv1", "relu1", "norm1",     "pool1",        "conv2",      "norm2",
                        "pool2", "conv3", "conv4", "conv5", "pool5",     "fc6",          "relu6",      "drop6",
                        "fc7",   "drop7", "fc8",   "loss",  "loss.prob", "conv1.weight", "conv2.bias", "fc8.weight"})
    CHECK_MESSAGE(has(a, n), std::string(n));
  CHECK(shape_of(a, "conv2.weight") == Shape{256, 48, 5, 5});  // groups 2: (K, C/groups, R, S)
  CHECK(shape_of(a, "conv4.weight") == Shape{384, 192, 3, 3});
  CHECK(shape_of(a, "fc7.weight") == Shape{4096, 4096});  // (out, in)
  Graph v = build_net("vgg16", imagenet());
  for (const char* n : {"conv1_1", "relu1_1", "conv1_2", "pool1", "conv3_3", "relu4_3", "conv5_3", "relu5_3", "pool5",
                        "fc6", "drop6", "fc7", "drop7", "fc8", "conv5_3.weight"})
    CHECK_MESSAGE(has(v, n), std::string(n));
  NetOptions deploy = imagenet(true);
  deploy.with_loss = false;
  Graph g = build_net("googlenet", deploy);
  for (const char* n : {"conv1/7x7_s2",
                        "conv1/relu_7x7",
                        "pool1/3x3_s2",
                        "pool1/norm1",
                        "conv2/3x3_reduce",
                        "conv2/relu_3x3_reduce",
                        "conv2/3x3",
                        "conv2/norm2",
                        "pool2/3x3_s2",
                        "inception_3a/1x1",
                        "inception_3a/3x3_reduce",
                        "inception_3a/3x3",
                        "inception_3a/5x5_reduce",
                        "inception_3a/5x5",
                        "inception_3a/pool",
                        "inception_3a/pool_proj",
                        "inception_3a/relu_pool_proj",
                        "inception_3a/output",
                        "inception_5b/output",
                        "pool3/3x3_s2",
                        "pool4/3x3_s2",
                        "pool5/7x7_s1",
                        "pool5/drop_7x7_s1",
                        "loss3/classifier",
                        "loss1/ave_pool",
                        "loss1/conv",
                        "loss1/fc",
                        "loss1/drop_fc",
                        "loss1/classifier",
                        "loss2/classifier",
                        "prob",
                        "loss1/prob",
                        "inception_4e/5x5.weight",
                        "loss3/classifier.bias"})
    CHECK_MESSAGE(has(g, n), std::string(n));
  CHECK(!has(g, "label"));
  CHECK(!has(g, "loss"));
  CHECK(shape_of(g, "inception_5b/5x5_reduce.weight") == Shape{48, 832, 1, 1});
  CHECK(shape_of(g, "inception_4b/3x3.weight") == Shape{224, 112, 3, 3});
  // Without aux, no auxiliary layer; with aux and a loss, three weighted losses sharing one label.
  CHECK(!has(build_net("googlenet", imagenet()), "loss1/conv"));
  Graph t = build_net("googlenet", imagenet(true));
  CHECK(t.inputs().size() == 2);
  for (const char* n : {"loss1/loss", "loss2/loss", "loss"}) REQUIRE_MESSAGE(has(t, n), std::string(n));
  const auto loss_weight = [&](const char* loss) {
    return read_attrs<SoftmaxLossAttrs>(t.node(t.value(t.at(loss)).producer)).loss_weight;
  };
  CHECK(loss_weight("loss1/loss") == doctest::Approx(0.3));
  CHECK(loss_weight("loss") == doctest::Approx(1.0));
  // Dropout layers draw from distinct streams.
  std::vector<int64_t> seeds;
  for (const Node& n : a.nodes())
    if (n.op == ops::dropout) seeds.push_back(read_attrs<DropoutAttrs>(n).seed);
  REQUIRE(seeds.size() == 2);
  CHECK(seeds[0] != seeds[1]);
}

TEST_CASE("nets: fillers and solver presets are Caffe's") {
  Graph a = build_net("alexnet", imagenet());
  auto spec = [](const Graph& g, const std::string& n) { return g.value(g.at(n)).param; };
  CHECK(spec(a, "conv1.weight").init.type == "gaussian");
  CHECK(spec(a, "conv1.weight").init.std == doctest::Approx(0.01));
  CHECK(spec(a, "fc6.weight").init.std == doctest::Approx(0.005));
  CHECK(spec(a, "fc7.weight").init.std == doctest::Approx(0.005));
  CHECK(spec(a, "fc8.weight").init.std == doctest::Approx(0.01));
  for (const char* n : {"conv2.bias", "conv4.bias", "conv5.bias", "fc6.bias", "fc7.bias"})
    CHECK_MESSAGE(spec(a, n).init.value == doctest::Approx(0.1), std::string(n));
  for (const char* n : {"conv1.bias", "conv3.bias", "fc8.bias"})
    CHECK_MESSAGE(spec(a, n).init.value == 0.f, std::string(n));
  CHECK(spec(a, "conv3.weight").lr_mult == 1.f);
  CHECK(spec(a, "conv3.weight").decay_mult == 1.f);
  CHECK(spec(a, "conv3.bias").lr_mult == 2.f);
  CHECK(spec(a, "conv3.bias").decay_mult == 0.f);
  Graph v = build_net("vgg16", imagenet());
  CHECK(spec(v, "conv3_2.weight").init.type == "msra");
  CHECK(spec(v, "fc7.weight").init.type == "msra");
  Graph g = build_net("googlenet", imagenet(true));
  CHECK(spec(g, "inception_4c/pool_proj.weight").init.type == "xavier");
  CHECK(spec(g, "inception_4c/pool_proj.bias").init.value == doctest::Approx(0.2));
  CHECK(spec(g, "loss1/fc.bias").init.value == doctest::Approx(0.2));
  CHECK(spec(g, "loss3/classifier.bias").init.value == 0.f);
  CHECK(spec(g, "loss3/classifier.weight").init.type == "xavier");

  SolverConfig s = alexnet_solver();
  CHECK(s.lr.type == "step");
  CHECK(s.lr.base_lr == doctest::Approx(0.01));
  CHECK(s.lr.stepsize == 100000);
  CHECK(s.lr.gamma == doctest::Approx(0.1));
  CHECK(s.momentum == doctest::Approx(0.9));
  CHECK(s.weight_decay == doctest::Approx(5e-4));
  CHECK(s.max_iter == 450000);
  s = vgg16_solver();
  CHECK(s.lr.type == "step");
  CHECK(s.lr.gamma == doctest::Approx(0.1));
  CHECK(s.weight_decay == doctest::Approx(5e-4));
  s = googlenet_solver();
  CHECK(s.lr.type == "poly");
  CHECK(s.lr.power == doctest::Approx(0.5));
  CHECK(s.lr.max_iter == 2400000);
  CHECK(s.max_iter == 2400000);
  CHECK(s.weight_decay == doctest::Approx(2e-4));
  for (const NetInfo& info : net_catalogue()) CHECK_NOTHROW(info.solver().lr.validate());
  CHECK(find_net("googlenet").solver().lr.type == "poly");
}

TEST_CASE("nets: the width multiplier scales every layer but the classifier and keeps groups whole") {
  NetOptions o = imagenet();
  o.width = 0.25;
  Graph a = build_net("alexnet", o);
  CHECK(shape_of(a, "conv1.weight") == Shape{24, 3, 11, 11});
  CHECK(shape_of(a, "conv2.weight") == Shape{64, 12, 5, 5});
  CHECK(shape_of(a, "fc6.weight") == Shape{1024, 64 * 36});
  CHECK(shape_of(a, "fc8.weight") == Shape{1000, 1024});
  o.width = 1.0 / 100;  // 96 / 100 rounds to 1 per group: at least one channel per group
  Graph tiny = build_net("alexnet", o);
  CHECK(shape_of(tiny, "conv1.weight") == Shape{2, 3, 11, 11});
  CHECK(shape_of(tiny, "conv2.weight") == Shape{2, 1, 5, 5});
  for (const Node& n : tiny.nodes())
    if (n.op == ops::conv2d)
      CHECK_MESSAGE(tiny.value(n.outputs[0]).shape[1] % read_attrs<ConvAttrs>(n).groups == 0, n.name);
  CHECK(scaled_channels(96, 1.0 / 16, 2) == 6);
  CHECK(scaled_channels(64, 1.0 / 16) == 4);
  CHECK(scaled_channels(16, 1.0 / 16) == 1);
  CHECK(scaled_channels(3, 0.01) == 1);
  CHECK(scaled_channels(5, 1.0, 2) == 6);  // 2.5 groups round to 3
  o.width = 1.0 / 16;
  Graph g = build_net("googlenet", o);
  CHECK(shape_of(g, "inception_3a/output")[1] == 4 + 8 + 2 + 2);
  CHECK(shape_of(g, "loss3/classifier.weight") == Shape{1000, 64});
}

TEST_CASE("nets: metadata names the builder and its options and reads back") {
  NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = 0.1;
  o.aux = true;
  auto m = net_metadata("googlenet", o);
  CHECK(m.at("builder") == "googlenet");
  CHECK(m.at("channels") == "1");
  CHECK(m.at("classes") == "2");
  CHECK(m.at("input") == "224");
  CHECK(m.at("width") == "0.1");
  CHECK(m.at("aux") == "1");
  CHECK(build_net("googlenet", o).metadata == m);
  std::string name;
  NetOptions back = net_options_from_metadata(m, &name);
  CHECK(name == "googlenet");
  CHECK(back.channels == 1);
  CHECK(back.classes == 2);
  CHECK(back.input == 224);
  CHECK(back.width == 0.1);
  CHECK(back.aux);
  m["width"] = "wide";
  CHECK_THROWS_AS(net_options_from_metadata(m), BadInput);
  CHECK_THROWS_AS(net_options_from_metadata({}), BadInput);
  // smallnet through the catalogue: width 1 is its 16 filters.
  NetOptions s;
  s.channels = 1;
  s.classes = 2;
  s.width = 0.5;
  Graph sg = build_net("smallnet", s);
  CHECK(shape_of(sg, "conv1.weight") == Shape{8, 1, 5, 5});
  CHECK(shape_of(sg, "data") == Shape{1, 1, 24, 24});
  CHECK(sg.metadata.at("builder") == "smallnet");
}

namespace {

// Fills the inputs and parameters of an executor with seeded values: data uniform in [-1, 1], labels the last class
// , weights msra (so activations and gradients keep an O(1) scale through every layer, whatever the net's
// own fillers) except the classifiers' (gaussian 0.01, so the softmax is not saturated), biases small.
void fill_for_check(Executor& ex, int classes, uint64_t seed) {
  Tensor x = ex.tensor("data");  // tensors of any device: filled through host copies
  x.copy_from(Tensor::from(x.shape(), random_vector(size_t(x.numel()), seed)));
  if (ex.graph().find("label") >= 0) {
    Tensor l = ex.tensor("label");
    // One class for the whole batch, so batch entries do not cancel in the classifier bias gradient.
    l.copy_from(Tensor::filled(l.shape(), float(classes - 1)));
  }
  for (ValueId p : ex.graph().params()) {
    const Value& value = ex.graph().value(p);
    const bool classifier = value.name.find("fc8.") == 0 || value.name.find("classifier.") != std::string::npos;
    const int64_t fan_in = value.shape.size() > 1 ? shape_numel(value.shape) / value.shape[0] : 1;
    // Uniform with msra's variance 2 / fan_in (a fast generator: the full-size nets have up to 138M parameters).
    float bound = value.shape.size() > 1 ? float(std::sqrt(6.0 / double(fan_in))) : 0.1f;
    if (classifier) bound = 1e-3f;
    auto w = random_vector(size_t(shape_numel(value.shape)), seed + uint64_t(p), -bound, bound);
    ex.tensor(p).copy_from(Tensor::from(value.shape, w));
  }
}

struct Head {
  std::string classifier, loss;  // "fc8", "loss"
  double weight;
};

// One training forward and backward on seeded values, then:
//  - each head's classifier bias gradient against its closed form loss_weight * (p - onehot(label)) / batch;
//  - d loss / d param[index] by central differences for each entry of `entries` (index -1: the entry of largest
//    |gradient|, a gradient well above the float noise of a big net's loss; dropout repeats for one iteration).
void check_training_step(Executor& ex, int classes, const std::vector<Head>& heads,
                         const std::vector<std::pair<std::string, int64_t>>& entries, float eps, float rtol,
                         float atol) {
  fill_for_check(ex, classes, 7);
  RunContext run;
  run.training = true;
  run.iteration = 3;
  auto t0 = std::chrono::steady_clock::now();
  ex.forward(run);
  auto t1 = std::chrono::steady_clock::now();
  ex.backward(run);
  MESSAGE("forward " << std::chrono::duration<double>(t1 - t0).count() << " s, backward " << seconds_since(t1) << " s");
  REQUIRE(std::isfinite(ex.loss()));
  const std::vector<float> labels = ex.read("label").to_vector();
  const int batch = int(labels.size());
  for (const Head& h : heads) {
    CAPTURE(h.classifier);
    std::vector<float> prob = ex.read(h.loss + ".prob").to_vector();
    std::vector<float> grad = ex.read(gradient_name(h.classifier + ".bias")).to_vector();
    REQUIRE(grad.size() == size_t(classes));
    for (int k = 0; k < classes; ++k) {
      double expected = 0;
      for (int n = 0; n < batch; ++n) expected += double(prob[size_t(n * classes + k)]) - (int(labels[size_t(n)]) == k);
      expected *= h.weight / batch;
      CHECK(grad[size_t(k)] == doctest::Approx(expected).epsilon(1e-4));
    }
  }
  for (const auto& [name, index] : entries) {
    Tensor param = ex.tensor(name);
    std::vector<float> grad = ex.read(gradient_name(name)).to_vector();
    REQUIRE_MESSAGE(std::all_of(grad.begin(), grad.end(), [](float g) { return std::isfinite(g); }), name);
    size_t i = size_t(index);
    if (index < 0)
      i = size_t(
          std::max_element(grad.begin(), grad.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
          grad.begin());
    const float analytic = grad[i];
    std::vector<float> host = param.to_vector();
    const float saved = host[i];
    auto loss_at = [&](float w) {
      host[i] = w;
      param.copy_from(Tensor::from(param.shape(), host));
      ex.forward(run);
      return ex.loss();
    };
    const double numeric = (loss_at(saved + eps) - loss_at(saved - eps)) / (2.0 * double(eps));
    host[i] = saved;
    param.copy_from(Tensor::from(param.shape(), host));
    MESSAGE(name << "[" << i << "]: analytic " << analytic << ", numeric " << numeric);
    CHECK_MESSAGE(
        std::fabs(numeric - analytic) <= atol + rtol * std::max(std::fabs(numeric), std::fabs(double(analytic))),
        name << "[" << i << "]: analytic " << analytic << ", numeric " << numeric);
  }
}

std::vector<Head> heads_of(const std::string& net, bool aux) {
  if (net != "googlenet") return {{"fc8", "loss", 1.0}};
  std::vector<Head> h = {{"loss3/classifier", "loss", 1.0}};
  if (aux) {
    h.push_back({"loss1/classifier", "loss1/loss", 0.3});
    h.push_back({"loss2/classifier", "loss2/loss", 0.3});
  }
  return h;
}

std::string first_conv(const std::string& net) {
  return net == "googlenet" ? "conv1/7x7_s2" : net == "vgg16" ? "conv1_1" : "conv1";
}

}  // namespace

TEST_CASE("nets: one training step of each full-size net on cpu, gradients by central differences") {
  // 1 channel and 2 classes, as the mammography nets (counts at 3 channels and 1000 classes are asserted above).
  for (std::string name : {"alexnet", "vgg16", "googlenet"}) {
    CAPTURE(name);
    auto t0 = std::chrono::steady_clock::now();
    NetOptions o;
    o.channels = 1;
    o.classes = 2;
    o.aux = name == "googlenet";
    ExecutorOptions eo;
    eo.training = true;
    Executor ex(build_net(name, o), eo);
    const std::string cls = heads_of(name, false).front().classifier;
    // The classifier biases are checked against their closed form; by central differences where a forward is cheap.
    std::vector<std::pair<std::string, int64_t>> entries = {{first_conv(name) + ".weight", -1}};
    if (name != "vgg16") entries.push_back({cls + ".bias", 0});
    if (name == "alexnet") entries.push_back({"fc6.weight", -1});
    if (name == "googlenet") entries.push_back({"inception_4b/5x5.weight", -1});
    check_training_step(ex, o.classes, heads_of(name, o.aux), entries, 1e-3f, 0.05f, 1e-4f);
    MESSAGE(name << " on cpu: " << seconds_since(t0) << " s in all");
  }
}

TEST_CASE("nets: one training step of each scaled net on simt matches cpu, gradients by central differences") {
  // Width 1/16 keeps the topology at 1/256 of the multiply-adds. AlexNet and VGG-16 at 67: conv1 (67 - 11) / 4 + 1
  // = 15, pool1 7, pool2 3, pool5 1; VGG-16 67 -> 34 -> 17 -> 9 -> 5 -> 3. GoogLeNet needs at least 223: its 7x7
  // average pool needs 7x7 after four stride-2 stages (pool4's output is ceil((x - 3) / 2) + 1 of its input).
  for (auto [name, input, batch] :
       {std::tuple<std::string, int, int>{"alexnet", 67, 2}, std::tuple<std::string, int, int>{"vgg16", 67, 2},
        std::tuple<std::string, int, int>{"googlenet", 224, 1}}) {
    CAPTURE(name);
    auto t0 = std::chrono::steady_clock::now();
    NetOptions o;
    o.channels = 1;
    o.classes = 2;
    o.input = input;
    o.batch = batch;
    o.width = 1.0 / 16;
    o.aux = name == "googlenet";
    ExecutorOptions eo;
    eo.training = true;
    eo.device = Device::simt;
    Executor simt(build_net(name, o), eo);
    eo.device = Device::cpu;
    Executor cpu(build_net(name, o), eo);
    const std::string cls = heads_of(name, false).front().classifier;
    check_training_step(simt, o.classes, heads_of(name, o.aux),
                        {{first_conv(name) + ".weight", -1}, {cls + ".bias", 1}}, 1e-3f, 0.05f, 1e-4f);
    // The same step on cpu: the same loss and gradients up to float rounding.
    for (Executor* ex : {&simt, &cpu}) {
      fill_for_check(*ex, o.classes, 11);
      RunContext run;
      run.training = true;
      run.iteration = 5;
      ex->forward(run);
      ex->backward(run);
    }
    CHECK(simt.loss() == doctest::Approx(cpu.loss()).epsilon(1e-4));
    for (ValueId p : cpu.graph().params()) {
      const std::string grad = gradient_name(cpu.graph().value(p).name);
      testing_support::expect_close(simt.read(grad).to_vector(), cpu.read(grad).to_vector(), 1e-5f, 1e-3f, grad);
    }
    MESSAGE(name << " on simt (and cpu): " << seconds_since(t0) << " s");
  }
}

namespace {

// A weights file for `g` with seeded values under the graph's parameter names.
TensorFile random_weights(const Graph& g, uint64_t seed) {
  TensorFile f;
  for (ValueId p : g.params()) {
    const Value& v = g.value(p);
    f.tensors[v.name] = Tensor::from(v.shape, random_vector(size_t(shape_numel(v.shape)), seed + uint64_t(p)));
  }
  f.metadata = g.metadata;
  return f;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const BadInput& e) {
    return e.what();
  }
  return "(no BadInput)";
}

}  // namespace

TEST_CASE("nets: import sums conv1 over the colour channels and replaces the classifier") {
  NetOptions colour;  // 3 channels, 1000 classes
  colour.width = 1.0 / 16;
  NetOptions mammo = colour;
  mammo.channels = 1;
  mammo.classes = 2;
  for (std::string name : {"alexnet", "vgg16", "googlenet"}) {
    CAPTURE(name);
    colour.aux = mammo.aux = name == "googlenet";
    const TensorFile source = random_weights(build_net(name, colour), 3);
    const Graph target = build_net(name, mammo);
    ImportReport report;
    TensorFile out = import_weights(source, target, 9, "imagenet.safetensors", &report);
    // Exactly the target's parameters, with its shapes: the file loads into the target net.
    std::map<std::string, Shape> expected;
    for (ValueId p : target.params()) expected[target.value(p).name] = target.value(p).shape;
    CHECK_NOTHROW(check_tensor_set("imported", expected, out.tensors));
    const std::string first = first_conv(name) + ".weight";
    CHECK(report.summed == std::vector<std::string>{first});
    CHECK(report.dropped.empty());
    CHECK(report.copied.size() + report.summed.size() + report.replaced.size() == expected.size());
    // w'[k][0][r][s] = w[k][0][r][s] + w[k][1][r][s] + w[k][2][r][s]
    const Tensor& w3 = source.tensors.at(first);
    const Tensor& w1 = out.tensors.at(first);
    const int64_t K = w3.dim(0), RS = w3.dim(2) * w3.dim(3);
    REQUIRE(w1.shape() == Shape{K, 1, w3.dim(2), w3.dim(3)});
    double worst = 0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < RS; ++i) {
        const float* w = w3.data() + k * 3 * RS + i;
        worst = std::max(worst, std::fabs(double(w1.data()[k * RS + i]) - (double(w[0]) + w[RS] + w[2 * RS])));
      }
    CHECK(worst < 1e-6);
    // Classifiers (with aux: all three heads) get 2 outputs, freshly initialised from the net's fillers.
    std::vector<std::string> heads;
    for (const Head& h : heads_of(name, mammo.aux)) heads.push_back(h.classifier);
    CHECK(report.replaced.size() == 2 * heads.size());
    for (const std::string& h : heads) {
      const Shape& in = source.tensors.at(h + ".weight").shape();
      CHECK(out.tensors.at(h + ".weight").shape() == Shape{2, in[1]});
      CHECK(out.tensors.at(h + ".bias").shape() == Shape{2});
      CHECK(out.tensors.at(h + ".bias").to_vector() == std::vector<float>{0.f, 0.f});  // constant 0 bias filler
      std::vector<float> w = out.tensors.at(h + ".weight").to_vector();
      CHECK(std::any_of(w.begin(), w.end(), [](float x) { return x != 0.f; }));
    }
    // Everything else is copied unchanged.
    for (const std::string& n : report.copied)
      CHECK_MESSAGE(out.tensors.at(n).to_vector() == source.tensors.at(n).to_vector(), n);
    CHECK(out.metadata.at("channels") == "1");
    CHECK(out.metadata.at("classes") == "2");
    CHECK(out.metadata.at("imported_from") == "imagenet.safetensors");
    // Deterministic in the seed.
    CHECK(import_weights(source, target, 9).tensors.at(heads[0] + ".weight").to_vector() ==
          out.tensors.at(heads[0] + ".weight").to_vector());
  }
}

TEST_CASE("nets: import drops what the target lacks and names the tensor in every error") {
  NetOptions colour;
  colour.width = 1.0 / 16;
  colour.aux = true;
  NetOptions mammo = colour;
  mammo.channels = 1;
  mammo.classes = 2;
  mammo.aux = false;
  // GoogLeNet trained with auxiliary heads into one without: the heads are dropped.
  ImportReport report;
  import_weights(random_weights(build_net("googlenet", colour), 1), build_net("googlenet", mammo), 1, "w", &report);
  CHECK(report.dropped.size() == 12);  // loss1 and loss2: conv, fc, classifier weights and biases
  CHECK(std::count(report.dropped.begin(), report.dropped.end(), "loss2/fc.weight") == 1);

  colour.aux = false;
  const Graph target = build_net("alexnet", mammo);
  const TensorFile good = random_weights(build_net("alexnet", colour), 2);
  TensorFile missing = good;
  missing.tensors.erase("conv3.bias");
  std::string m = error_of([&] { import_weights(missing, target, 1, "pretrained.safetensors"); });
  CHECK(m.find("pretrained.safetensors") != std::string::npos);
  CHECK(m.find("conv3.bias") != std::string::npos);
  // A hidden layer of another shape (another width): named with both shapes.
  TensorFile wrong = good;
  wrong.tensors["fc6.weight"] = Tensor::zeros({7, 7});
  m = error_of([&] { import_weights(wrong, target); });
  CHECK(m.find("fc6.weight") != std::string::npos);
  CHECK(m.find("(7, 7)") != std::string::npos);
  CHECK(m.find(shape_str(shape_of(target, "fc6.weight"))) != std::string::npos);
  // A classifier may change its class count, not its input count.
  wrong = good;
  wrong.tensors["fc8.weight"] = Tensor::zeros({1000, 5});
  m = error_of([&] { import_weights(wrong, target); });
  CHECK(m.find("fc8.weight") != std::string::npos);
  CHECK(m.find("inputs") != std::string::npos);
  // conv1 can be summed into 1 channel, not reshaped otherwise.
  wrong = good;
  wrong.tensors["conv1.weight"] = Tensor::zeros({6, 3, 5, 5});
  m = error_of([&] { import_weights(wrong, target); });
  CHECK(m.find("conv1.weight") != std::string::npos);
  CHECK(m.find("(6, 3, 5, 5)") != std::string::npos);
  // Weights of the same net import unchanged.
  ImportReport same;
  TensorFile back = import_weights(good, build_net("alexnet", colour), 1, "w", &same);
  CHECK(same.copied.size() == good.tensors.size());
  for (const auto& [name, t] : good.tensors) CHECK_MESSAGE(back.tensors.at(name).to_vector() == t.to_vector(), name);
}

TEST_CASE("nets: inference graphs end in softmax probabilities") {
  NetOptions o;
  o.channels = 1;
  o.classes = 3;
  o.batch = 2;
  o.input = 67;
  o.width = 1.0 / 16;
  o.with_loss = false;
  for (std::string name : {"alexnet", "vgg16"}) {
    CAPTURE(name);
    Executor ex(build_net(name, o));
    REQUIRE(ex.graph().inputs().size() == 1);
    fill_for_check(ex, 0, 5);
    ex.forward({});
    std::vector<float> p = ex.read("prob").to_vector();
    REQUIRE(p.size() == 6);
    for (int n = 0; n < 2; ++n)
      CHECK(p[size_t(3 * n)] + p[size_t(3 * n + 1)] + p[size_t(3 * n + 2)] == doctest::Approx(1.0));
  }
}
