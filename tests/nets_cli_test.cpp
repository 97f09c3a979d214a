// massmap nets through the real program: init, forward and grad round trips on smallnet and a width-reduced
// AlexNet, the files read back and checked against in-process executors on the same weights (probabilities,
// every layer's dump, the loss and every gradient, two gradient entries by central differences), and the errors
// a user meets with their exit codes.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/executor.h"
#include "engine/npy.h"
#include "engine/safetensors.h"
#include "nets/registry.h"
#include "tests/support/check.h"
#include "tests/support/cli.h"

namespace fs = std::filesystem;
using namespace massmap;

namespace {

using Result = testing_support::CliResult;
using testing_support::contains;
using testing_support::TempDir;

Result run(const std::string& args) {
  return testing_support::run_massmap(args);
}

// A .npy of any dtype from raw little-endian bytes (write_npy writes float32 only).
void write_raw_npy(const std::string& path, const std::string& dtype, const Shape& shape, const void* data,
                   size_t bytes) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = uint16_t(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(static_cast<const char*>(data), std::streamsize(bytes));
}

void write_labels(const std::string& path, const std::vector<int64_t>& labels) {
  write_raw_npy(path, "<i8", {int64_t(labels.size())}, labels.data(), labels.size() * 8);
}

// A net and its command-line options.
struct NetCase {
  std::string name;
  nets::NetOptions options;
  std::string flags;  // the same options on the command line
};

NetCase smallnet_case() {
  NetCase c{"smallnet", {}, " --channels 1 --classes 2 --width 0.5"};
  c.options.channels = 1, c.options.classes = 2, c.options.width = 0.5;
  return c;
}

NetCase alexnet_case() {
  NetCase c{"alexnet", {}, " --channels 1 --classes 2 --width 0.125"};
  c.options.channels = 1, c.options.classes = 2, c.options.width = 0.125;
  return c;
}

int nominal(const NetCase& c) {
  return nets::find_net(c.name).nominal_input;
}

Tensor images(const NetCase& c, int batch, uint64_t seed) {
  const int s = nominal(c);
  Shape shape{batch, c.options.channels, s, s};
  return Tensor::from(shape, testing_support::random_vector(size_t(shape_numel(shape)), seed));
}

void load(Executor& ex, const TensorFile& weights) {
  for (ValueId p : ex.graph().params()) ex.tensor(p).copy_from(weights.tensors.at(ex.graph().value(p).name));
}

// In process: the inference net's probabilities (and every value, kept) on the given weights.
struct Inference {
  std::unique_ptr<Executor> ex;
  Inference(const NetCase& c, const TensorFile& weights, const Tensor& x) {
    nets::NetOptions o = c.options;
    o.with_loss = false;
    o.batch = int(x.dim(0));
    ExecutorOptions eo;
    eo.keep_all = true;
    eo.share_memory = false;
    ex = std::make_unique<Executor>(nets::build_net(c.name, o), eo);
    load(*ex, weights);
    ex->set_input("data", x);
    RunContext run;
    ex->forward(run);
  }
};

// In process: the loss with dropout off, and optionally every parameter's gradient.
struct Training {
  std::unique_ptr<Executor> ex;
  Training(const NetCase& c, const Tensor& x, const std::vector<int64_t>& labels) {
    nets::NetOptions o = c.options;
    o.batch = int(x.dim(0));
    ExecutorOptions eo;
    eo.training = true;
    ex = std::make_unique<Executor>(nets::build_net(c.name, o), eo);
    ex->set_input("data", x);
    Tensor l({int64_t(labels.size())});
    for (size_t i = 0; i < labels.size(); ++i) l.at(int64_t(i)) = float(labels[i]);
    ex->set_input("label", l);
  }
  double loss(const TensorFile& weights, bool backward) {
    load(*ex, weights);
    RunContext run;
    run.training = false;
    ex->forward(run);
    if (backward) ex->backward(run);
    return ex->loss();
  }
};

// init, forward (with --dump) and grad through the program, each file checked against in-process results.
void round_trip(const NetCase& c, int batch, double fd_tolerance) {
  TempDir dir;
  const std::string w = dir / "w.safetensors", x_path = dir / "x.npy", y = dir / "y.npy", l = dir / "l.npy",
                    g = dir / "g.safetensors", dump = dir / "dump";
  Result init = run("nets init " + c.name + c.flags + " --seed 5 --out " + w);
  REQUIRE_MESSAGE(init.code == 0, init.output);
  TensorFile weights = read_safetensors(w);
  CHECK(weights.metadata.at("builder") == c.name);
  CHECK(weights.metadata.at("channels") == std::to_string(c.options.channels));
  CHECK(weights.metadata.at("classes") == std::to_string(c.options.classes));
  {
    Graph graph = nets::build_net(c.name, c.options);
    CHECK(weights.tensors.size() == graph.params().size());
    for (ValueId p : graph.params()) {
      const std::string& name = graph.value(p).name;
      REQUIRE_MESSAGE(weights.tensors.count(name), name);
      CHECK(weights.tensors.at(name).shape() == graph.value(p).shape);
      // The builder's initialiser, seeded per name.
      Tensor expected(graph.value(p).shape);
      initialise(expected, graph.value(p).param.init, 5, name);
      CHECK_MESSAGE(weights.tensors.at(name).to_vector() == expected.to_vector(), name);
    }
  }
  // Initialisations of biases are often constant: give every parameter some spread so the checks below see every
  // weight's effect, and write the file back for the program.
  for (auto& [name, t] : weights.tensors) {
    auto noise = testing_support::random_vector(size_t(t.numel()), std::hash<std::string>{}(name), -0.05f, 0.05f);
    for (int64_t i = 0; i < t.numel(); ++i) t.at(i) += noise[size_t(i)];
  }
  write_safetensors(w, weights);

  const Tensor x = images(c, batch, 11);
  write_npy(x_path, x);
  Result fwd = run("nets forward " + c.name + c.flags + " --weights " + w + " --images " + x_path + " --output " + y +
                   " --dump " + dump + " --device cpu");
  REQUIRE_MESSAGE(fwd.code == 0, fwd.output);
  Tensor prob = read_npy_float(y);
  REQUIRE(prob.shape() == Shape{batch, c.options.classes});
  for (int b = 0; b < batch; ++b) {
    double sum = 0;
    for (int k = 0; k < c.options.classes; ++k) {
      CHECK(prob.at(b * c.options.classes + k) >= 0);
      sum += prob.at(b * c.options.classes + k);
    }
    CHECK(sum == doctest::Approx(1).epsilon(1e-5));
  }
  Inference ref(c, weights, x);
  testing_support::expect_close(prob.to_vector(), ref.ex->read("prob").to_vector(), 1e-6f, 1e-5f, "probabilities");
  // One file per layer output, each equal to the in-process value.
  const Graph& graph = ref.ex->graph();
  size_t layers = 0;
  for (const Node& n : graph.nodes()) {
    for (ValueId v : n.outputs) {
      std::string file = graph.value(v).name;
      std::replace(file.begin(), file.end(), '/', '_');
      const std::string path = dump + "/" + file + ".npy";
      REQUIRE_MESSAGE(fs::exists(path), path);
      testing_support::expect_close(read_npy_float(path).to_vector(), ref.ex->read(graph.value(v).name).to_vector(),
                                    1e-6f, 1e-5f, graph.value(v).name);
      ++layers;
    }
  }
  CHECK(size_t(std::distance(fs::directory_iterator(dump), fs::directory_iterator())) == layers);

  std::vector<int64_t> labels;
  for (int b = 0; b < batch; ++b) labels.push_back(b % c.options.classes);
  write_labels(l, labels);
  Result grad = run("nets grad " + c.name + c.flags + " --weights " + w + " --images " + x_path + " --labels " + l +
                    " --output " + g);
  REQUIRE_MESSAGE(grad.code == 0, grad.output);
  TensorFile grads = read_safetensors(g);
  REQUIRE(grads.tensors.count("loss"));
  CHECK(grads.tensors.at("loss").shape().empty());
  CHECK(grads.tensors.size() == weights.tensors.size() + 1);
  Training train(c, x, labels);
  const double loss = train.loss(weights, true);
  CHECK(grads.tensors.at("loss").at(0) == doctest::Approx(loss).epsilon(1e-6));
  for (const auto& [name, t] : weights.tensors) {
    REQUIRE_MESSAGE(grads.tensors.count(name), name);
    CHECK(grads.tensors.at(name).shape() == t.shape());
    testing_support::expect_close(grads.tensors.at(name).to_vector(), train.ex->read(gradient_name(name)).to_vector(),
                                  1e-6f, 1e-5f, "grad " + name);
  }
  // Central differences of the loss (dropout off, so deterministic) on the largest gradient entry of the first
  // and the last layer's weights.
  for (const std::string& name :
       std::vector<std::string>{"conv1.weight", c.name == "alexnet" ? "fc8.weight" : "fc4.weight"}) {
    const Tensor& gt = grads.tensors.at(name);
    int64_t at = 0;
    for (int64_t i = 0; i < gt.numel(); ++i)
      if (std::fabs(gt.at(i)) > std::fabs(gt.at(at))) at = i;
    const float eps = 2e-3f, original = weights.tensors.at(name).at(at);
    weights.tensors.at(name).at(at) = original + eps;
    const double plus = train.loss(weights, false);
    weights.tensors.at(name).at(at) = original - eps;
    const double minus = train.loss(weights, false);
    weights.tensors.at(name).at(at) = original;
    const double numeric = (plus - minus) / (2 * eps), analytic = gt.at(at);
    CAPTURE(name);
    CAPTURE(at);
    CAPTURE(numeric);
    CAPTURE(analytic);
    CHECK(std::fabs(numeric - analytic) <= fd_tolerance * std::max({std::fabs(numeric), std::fabs(analytic), 1e-2}));
  }
}

}  // namespace

TEST_CASE("nets: help at both levels, and usage errors") {
  Result top = run("--help");
  CHECK(contains(top.output, "nets"));
  Result nets_help = run("nets --help");
  CHECK(nets_help.code == 0);
  for (const char* sub : {"show", "init", "forward", "grad"}) CHECK(contains(nets_help.output, sub));
  Result show_help = run("nets show --help");
  CHECK(show_help.code == 0);
  for (const char* net : {"alexnet", "vgg16", "googlenet", "smallnet", "--channels", "--width", "--aux"})
    CHECK(contains(show_help.output, net));
  Result grad_help = run("nets grad --help");
  CHECK(grad_help.code == 0);
  CHECK(contains(grad_help.output, "--labels"));
  CHECK(run("nets").code == 2);
  Result unknown_sub = run("nets frobnicate alexnet");
  CHECK(unknown_sub.code == 2);
  CHECK(contains(unknown_sub.output, "frobnicate"));
  Result unknown_net = run("nets show lenet");
  CHECK(unknown_net.code == 2);
  CHECK(contains(unknown_net.output, "lenet"));
  CHECK(contains(unknown_net.output, "alexnet"));
  Result no_name = run("nets show");
  CHECK(no_name.code == 2);
  CHECK(contains(no_name.output, "NAME"));
  Result bad_option = run("nets show alexnet --chanels 1");
  CHECK(bad_option.code == 2);
  CHECK(contains(bad_option.output, "--chanels"));
  Result bad_number = run("nets show alexnet --width wide");
  CHECK(bad_number.code == 2);
  CHECK(contains(bad_number.output, "wide"));
  Result missing = run("nets init smallnet --seed 1");
  CHECK(missing.code == 2);
  CHECK(contains(missing.output, "--out"));
  Result bad_device = run("nets show smallnet --device tpu");
  CHECK(bad_device.code == 2);
  CHECK(contains(bad_device.output, "tpu"));
  if (!device_available(Device::cuda)) {
    Result no_cuda = run("nets show smallnet --device cuda");
    CHECK(no_cuda.code == 5);
    CHECK(contains(no_cuda.output, "available: cpu"));
  }
}

TEST_CASE("nets show: the layer table and totals") {
  Result show = run("nets show alexnet");
  REQUIRE_MESSAGE(show.code == 0, show.output);
  for (const char* layer : {"conv1", "norm1", "pool5", "fc8", "total", "60,965,224"})
    CHECK_MESSAGE(contains(show.output, layer), layer);
  Result small = run("nets show googlenet --channels 1 --classes 2 --width 0.25 --aux");
  REQUIRE_MESSAGE(small.code == 0, small.output);
  CHECK(contains(small.output, "inception_5b/1x1"));
  CHECK(contains(small.output, "loss1/classifier"));
  Result too_small = run("nets show alexnet --input-size 20");
  CHECK(too_small.code == 4);
}

TEST_CASE("nets: init, forward and grad round trip on smallnet") {
  round_trip(smallnet_case(), 3, 2e-2);
}

TEST_CASE("nets: init, forward and grad round trip on a width-reduced alexnet") {
  round_trip(alexnet_case(), 2, 5e-2);
}

TEST_CASE("nets forward: the same probabilities on simt as on cpu") {
  const NetCase c = smallnet_case();
  TempDir dir;
  REQUIRE(run("nets init smallnet" + c.flags + " --out " + (dir / "w.safetensors")).code == 0);
  write_npy(dir / "x.npy", images(c, 2, 3));
  std::vector<float> probs[2];
  int i = 0;
  for (const char* device : {"cpu", "simt"}) {
    Result r = run("nets forward smallnet" + c.flags + " --weights " + (dir / "w.safetensors") + " --images " +
                   (dir / "x.npy") + " --output " + (dir / "y.npy") + " --device " + device);
    REQUIRE_MESSAGE(r.code == 0, r.output);
    probs[i++] = read_npy_float(dir / "y.npy").to_vector();
  }
  testing_support::expect_close(probs[1], probs[0], 1e-5f, 1e-4f, "simt vs cpu");
}

TEST_CASE("nets forward and grad: bad inputs are named, with exit code 3") {
  const NetCase c = smallnet_case();
  TempDir dir;
  const std::string w = dir / "w.safetensors", x = dir / "x.npy", l = dir / "l.npy";
  REQUIRE(run("nets init smallnet" + c.flags + " --out " + w).code == 0);
  write_npy(x, images(c, 2, 3));
  write_labels(l, {0, 1});
  const std::string forward = "nets forward smallnet" + c.flags + " --output " + (dir / "y.npy");
  const std::string grad = "nets grad smallnet" + c.flags + " --output " + (dir / "g.safetensors");
  auto expect = [](const Result& r, int code, const std::vector<std::string>& words) {
    CHECK_MESSAGE(r.code == code, r.output);
    for (const auto& word : words) CHECK_MESSAGE(contains(r.output, word), word << " in: " << r.output);
  };
  // Weights: a missing, an extra and a mis-shaped tensor; a file that does not exist; another net's weights.
  TensorFile weights = read_safetensors(w);
  {
    TensorFile missing = weights;
    missing.tensors.erase("fc3.bias");
    write_safetensors(dir / "missing.safetensors", missing);
    expect(run(forward + " --images " + x + " --weights " + (dir / "missing.safetensors")), 3, {"fc3.bias"});
    TensorFile extra = weights;
    extra.tensors["fc9.weight"] = Tensor::zeros({2, 2});
    write_safetensors(dir / "extra.safetensors", extra);
    expect(run(grad + " --images " + x + " --labels " + l + " --weights " + (dir / "extra.safetensors")), 3,
           {"fc9.weight"});
    TensorFile shaped = weights;
    shaped.tensors["conv2.weight"] = Tensor::zeros({3, 3});
    write_safetensors(dir / "shaped.safetensors", shaped);
    expect(run(forward + " --images " + x + " --weights " + (dir / "shaped.safetensors")), 3,
           {"conv2.weight", "(3, 3)"});
    expect(run(forward + " --images " + x + " --weights " + (dir / "nope.safetensors")), 3, {"nope.safetensors"});
    expect(run("nets forward alexnet --channels 1 --classes 2 --input-size 24 --output " + (dir / "y.npy") +
               " --images " + x + " --weights " + w),
           3, {"smallnet", "alexnet"});
  }
  // Images: wrong dtype, rank, channels, size, batch; not a .npy at all.
  {
    std::vector<double> f8(2 * 24 * 24, 0.5);
    write_raw_npy(dir / "f8.npy", "<f8", {2, 1, 24, 24}, f8.data(), f8.size() * 8);
    expect(run(forward + " --weights " + w + " --images " + (dir / "f8.npy")), 3, {"f8.npy", "<f8", "float32"});
    write_npy(dir / "rank3.npy", Tensor::zeros({2, 24, 24}));
    expect(run(forward + " --weights " + w + " --images " + (dir / "rank3.npy")), 3, {"rank3.npy", "(2, 24, 24)"});
    write_npy(dir / "rgb.npy", Tensor::zeros({2, 3, 24, 24}));
    expect(run(forward + " --weights " + w + " --images " + (dir / "rgb.npy")), 3, {"rgb.npy", "3 channels"});
    write_npy(dir / "size.npy", Tensor::zeros({2, 1, 24, 20}));
    expect(run(forward + " --weights " + w + " --images " + (dir / "size.npy")), 3, {"size.npy", "24x20", "width"});
    expect(run(forward + " --weights " + w + " --images " + x + " --batch 5"), 3, {"--batch is 5"});
    std::ofstream(dir / "text.npy") << "not a numpy file";
    expect(run(forward + " --weights " + w + " --images " + (dir / "text.npy")), 3, {"text.npy"});
  }
  // Labels: float, wrong count, out of range; int32 is fine.
  {
    write_npy(dir / "lf.npy", Tensor::from({2}, {0, 1}));
    expect(run(grad + " --weights " + w + " --images " + x + " --labels " + (dir / "lf.npy")), 3, {"lf.npy", "<f4"});
    write_labels(dir / "l3.npy", {0, 1, 1});
    expect(run(grad + " --weights " + w + " --images " + x + " --labels " + (dir / "l3.npy")), 3, {"l3.npy", "(3,)"});
    write_labels(dir / "l7.npy", {0, 7});
    expect(run(grad + " --weights " + w + " --images " + x + " --labels " + (dir / "l7.npy")), 3,
           {"l7.npy", "label 7", "index 1"});
    const int32_t l32[2] = {1, 0};
    write_raw_npy(dir / "l32.npy", "<i4", {2}, l32, sizeof l32);
    Result ok = run(grad + " --weights " + w + " --images " + x + " --labels " + (dir / "l32.npy"));
    CHECK_MESSAGE(ok.code == 0, ok.output);
  }
  // Missing options are usage errors naming the option.
  expect(run(grad + " --weights " + w + " --images " + x), 2, {"--labels"});
}
