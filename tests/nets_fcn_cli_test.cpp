// massmap nets through the real program, for graph passes and fully convolutional inference: show --passes
// (what each pass changed, the map geometry), forward --fully-convolutional (the map at crop size equals the
// classifier's probabilities; over a larger rectangular input it equals the passes run in process), a training
// checkpoint (solver history, auxiliary heads) loading for inference with what it skips named once, and the
// usage errors of the renamed options; nets gap (zero gap when the image is the crop, its report otherwise).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/checkpoint.h"
#include "engine/executor.h"
#include "engine/npy.h"
#include "engine/passes.h"
#include "engine/safetensors.h"
#include "nets/registry.h"
#include "tests/support/check.h"
#include "tests/support/cli.h"

using namespace massmap;
using testing_support::contains;
using testing_support::TempDir;
using Result = testing_support::CliResult;

namespace {

Result run(const std::string& args) {
  return testing_support::run_massmap(args);
}

void expect(const Result& r, int code, const std::vector<std::string>& words) {
  CHECK_MESSAGE(r.code == code, r.output);
  for (const auto& word : words) CHECK_MESSAGE(contains(r.output, word), word << " in: " << r.output);
}

Tensor images(const Shape& shape, uint64_t seed) {
  return Tensor::from(shape, testing_support::random_vector(size_t(shape_numel(shape)), seed));
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

const std::string kAlex = " --channels 1 --classes 2 --width 0.125 --device cpu";

}  // namespace

TEST_CASE("nets: --input is gone; a leftover is a usage error naming --images and --input-size") {
  for (const char* sub : {"show alexnet --input 227", "init alexnet --out w.safetensors --input 227",
                          "forward alexnet --weights w --input x.npy --output y.npy",
                          "grad alexnet --weights w --input x.npy --labels l.npy --output g.safetensors"})
    expect(run(std::string("nets ") + sub), 2, {"--images", "--input-size"});
  expect(run("nets show alexnet --input-size 3x"), 2, {"--input-size", "3x"});
}

TEST_CASE("nets show --passes: what each pass changed, the table after them and the map geometry") {
  Result r =
      run("nets show vgg16 --channels 1 --classes 2 --passes for_inference,convolutionalize --input-size 288x320");
  expect(r, 0,
         {"pass for_inference:", "dropout 'drop6' removed",
          "pass convolutionalize:", "linear 'fc6' (4096, 25088) -> conv2d 7x7", "crop 224x224", "(1, 2, 3, 4)",
          "map 'prob': 3 x 4 cells, stride 32 x 32 px", "placed at its centre (32 i + 111.5, 32 j + 111.5)",
          "receptive field 404 x 404 px: rows [-90, 314)"});
  expect(run("nets show vgg16 --passes convolutionalise"), 4, {"convolutionalise", "for_inference"});
  expect(run("nets show vgg16 --passes for_inference --crop 224"), 2, {"--crop"});
  expect(run("nets forward vgg16 --weights w --images x.npy --output y.npy --geometry g.json"), 2, {"--geometry"});
  expect(run("nets show alexnet --passes for_inference,convolutionalize --input-size 200"), 4,
         {"alexnet", "smallest input it accepts is 227x227"});
}

TEST_CASE("nets forward --fully-convolutional: the classifier at crop size, the passes' map on a larger input") {
  TempDir dir;
  const std::string w = dir / "w.safetensors", y = dir / "y.npy", m = dir / "m.npy";
  REQUIRE(run("nets init alexnet" + kAlex + " --seed 3 --out " + w).code == 0);
  TensorFile weights = read_safetensors(w);
  for (auto& [name, t] : weights.tensors)  // biases off zero, so every tensor matters
    if (t.rank() == 1)
      for (int64_t i = 0; i < t.numel(); ++i) t.at(i) += 0.05f * float(i % 7) - 0.1f;
  write_safetensors(w, weights);
  // At crop size the map is one cell: the classifier's probabilities.
  write_npy(dir / "crop.npy", images({2, 1, 227, 227}, 4));
  expect(run("nets forward alexnet" + kAlex + " --weights " + w + " --images " + (dir / "crop.npy") + " --output " + y),
         0, {"(2, 2) written"});
  expect(run("nets forward alexnet" + kAlex + " --weights " + w + " --images " + (dir / "crop.npy") + " --output " + m +
             " --fully-convolutional"),
         0, {"(2, 2, 1, 1) written", "1 x 1 cells"});
  testing_support::expect_close(read_npy_float(m).to_vector(), read_npy_float(y).to_vector(), 0.f, 1e-5f,
                                "map at crop size vs classifier");
  // A rectangular input: 227 + 32 x 227 + 64 gives 2 x 3 cells.
  const Tensor x = images({1, 1, 259, 291}, 5);
  write_npy(dir / "wide.npy", x);
  Result r = run("nets forward alexnet" + kAlex + " --weights " + w + " --images " + (dir / "wide.npy") + " --output " +
                 m + " --fully-convolutional --input-size 259x291 --geometry " + (dir / "g.json"));
  expect(r, 0, {"(1, 2, 2, 3) written", "2 x 3 cells, stride 32 x 32 px", "32 i + 113"});
  const nlohmann::json geo = nlohmann::json::parse(std::ifstream(dir / "g.json"));
  CHECK(geo.at("cells") == nlohmann::json{2, 3});
  CHECK(geo.at("stride") == nlohmann::json{32, 32});
  CHECK(geo.at("crop") == nlohmann::json{227, 227});
  CHECK(geo.at("first_crop_centre") == nlohmann::json{113.0, 113.0});
  CHECK(geo.at("field") == nlohmann::json{{-64, 291}, {-64, 291}});
  nets::NetOptions o;
  o.channels = 1, o.classes = 2, o.width = 0.125;
  Executor ex(
      with_input_size(run_passes(nets::build_net("alexnet", o), {"for_inference", "convolutionalize"}), 259, 291));
  CHECK(load_inference_weights(w, weights, ex, {}).empty());
  ex.set_input("data", x);
  ex.forward(RunContext{});
  testing_support::expect_close(read_npy_float(m).to_vector(), ex.read("prob").to_vector(), 1e-7f, 1e-5f,
                                "map vs passes in process");
  // Weights without metadata (a plain safetensors of the right tensors): the nominal crop.
  TensorFile plain = weights;
  plain.metadata.clear();
  write_safetensors(dir / "plain.safetensors", plain);
  expect(run("nets forward alexnet" + kAlex + " --weights " + (dir / "plain.safetensors") + " --images " +
             (dir / "wide.npy") + " --output " + (dir / "p.npy") + " --fully-convolutional"),
         0, {"crop 227x227"});
  CHECK(read_npy_float(dir / "p.npy").to_vector() == read_npy_float(m).to_vector());
  // Sizes: images differing from --input-size, an input below the crop.
  expect(run("nets forward alexnet" + kAlex + " --weights " + w + " --images " + (dir / "wide.npy") + " --output " + m +
             " --fully-convolutional --input-size 259x300"),
         3, {"259x291", "width"});
  write_npy(dir / "small.npy", images({1, 1, 200, 240}, 6));
  expect(run("nets forward alexnet" + kAlex + " --weights " + w + " --images " + (dir / "small.npy") + " --output " +
             m + " --fully-convolutional"),
         4, {"alexnet", "227x227"});
}

TEST_CASE("nets forward: a training checkpoint loads for inference; what it skips is named once on stderr") {
  TempDir dir;
  const std::string flags = " --channels 1 --classes 2 --width 0.0625 --device cpu";
  const std::string w = dir / "w.safetensors", t = dir / "train.safetensors", y = dir / "y.npy";
  REQUIRE(run("nets init googlenet --aux" + flags + " --out " + w).code == 0);
  TensorFile checkpoint = read_safetensors(w);
  checkpoint.tensors["history/conv1/7x7_s2.weight"] = checkpoint.tensors.at("conv1/7x7_s2.weight");
  checkpoint.metadata["iteration"] = "10";
  write_safetensors(t, checkpoint);
  write_npy(dir / "x.npy", images({1, 1, 224, 224}, 7));
  for (const std::string mode : {"", " --fully-convolutional"}) {
    CAPTURE(mode);
    Result r = run("nets forward googlenet" + flags + " --weights " + t + " --images " + (dir / "x.npy") +
                   " --output " + y + mode);
    expect(r, 0, {"tensors not used for inference, ignored", "loss1/fc.weight", "loss2/classifier.bias"});
    CHECK(count(r.output, "history/conv1/7x7_s2.weight") == 1);
    CHECK(count(r.output, "ignored") == 1);
  }
  checkpoint.tensors["stray"] = Tensor::zeros({2});
  write_safetensors(t, checkpoint);
  expect(run("nets forward googlenet" + flags + " --weights " + t + " --images " + (dir / "x.npy") + " --output " + y),
         3, {"stray"});
}

TEST_CASE("nets gap: no gap when the image is the crop; a report for border and interior cells otherwise") {
  // One cell: the image is the crop, so map and classifier compute the same function (up to summation order).
  Result one = run("nets gap alexnet" + kAlex + " --cells 1");
  expect(one, 0, {"1 images 227x227, map 1x1 cells", "border   cells   1"});
  const size_t at = one.output.find("rms |z_crop| median ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(one.output.substr(at + 20)) < 1e-5);
  // Three cells a side: 8 border cells and 1 interior cell per image.
  expect(run("nets gap alexnet" + kAlex + " --cells 3 --images 2"), 0,
         {"2 images 291x291, map 3x3 cells", "border   cells  16", "interior cells   2"});
  expect(run("nets gap alexnet" + kAlex + " --input-size 300"), 2, {"--input-size"});
}
