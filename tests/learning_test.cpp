// Proof that the engine learns: the small CNN (conv, relu, LRN, pool, conv, relu, pool, linear, dropout, linear,
// softmax loss) trained with SGD on the generated blob-versus-bar task reaches >= 95% held-out accuracy, and two
// runs with the same seed end bit-identical. Resume is exact: N steps straight equal N/2, save, load, N/2.
#include <unistd.h>

#include <cstdio>

#include "base/errors.h"
#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "nets/smallnet.h"
#include "nets/toy_shapes.h"
#include "nets/train_classifier.h"
#include "tests/support/check.h"

using namespace massmap;

namespace {

nets::ClassifierData toy(int count, uint64_t seed) {
  nets::ToyShapesOptions o;
  o.count = count;
  o.seed = seed;
  nets::ToyShapes s = nets::make_toy_shapes(o);
  return {s.images, s.labels};
}

SolverConfig demo_solver() {
  SolverConfig c;
  c.lr.type = "step";
  c.lr.base_lr = 0.01f;
  c.lr.stepsize = 200;
  c.lr.gamma = 0.1f;
  c.momentum = 0.9f;
  c.weight_decay = 5e-4f;
  return c;
}

struct Run {
  std::vector<std::vector<float>> params;
  double accuracy = 0;
};

Run train_once(const nets::ClassifierData& train, const nets::ClassifierData& test, int64_t iterations) {
  nets::SmallNetOptions net;
  ExecutorOptions opt;
  opt.training = true;
  Executor ex(nets::build_smallnet(net), opt);
  Solver solver(ex, demo_solver());
  solver.initialise_parameters(42);
  nets::TrainLoopOptions loop;
  loop.iterations = iterations;
  loop.progress = false;
  loop.seed = 7;
  nets::train_classifier(solver, train, test, loop);
  Run r;
  r.accuracy = nets::classifier_accuracy(solver, test);
  for (ValueId p : ex.graph().params()) r.params.push_back(ex.tensor(p).to_vector());
  return r;
}

std::string temp_path(const char* stem) {
  return std::string("/tmp/massmap-") + stem + "-" + std::to_string(getpid()) + ".safetensors";
}

}  // namespace

TEST_CASE("learning: the small CNN separates blobs from bars, reproducibly") {
  const auto train = toy(2048, 1), test = toy(512, 2);
  Run a = train_once(train, test, 300);
  MESSAGE("held-out accuracy " << a.accuracy);
  CHECK(a.accuracy >= 0.95);
  Run b = train_once(train, test, 300);
  CHECK(a.accuracy == b.accuracy);
  REQUIRE(a.params.size() == b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) CHECK(a.params[i] == b.params[i]);
}

TEST_CASE("checkpoint: resume is exact, and bad files name the tensor") {
  const auto train = toy(256, 3), test = toy(64, 4);
  nets::SmallNetOptions net;
  net.width = 8;
  ExecutorOptions opt;
  opt.training = true;
  nets::TrainLoopOptions loop;
  loop.progress = false;
  loop.seed = 5;

  Executor straight(nets::build_smallnet(net), opt);
  Solver s1(straight, demo_solver());
  s1.initialise_parameters(3);
  loop.iterations = 20;  // crosses an epoch boundary (8 batches per epoch)
  nets::train_classifier(s1, train, test, loop);

  const std::string path = temp_path("resume");
  {
    Executor first(nets::build_smallnet(net), opt);
    Solver s2(first, demo_solver());
    s2.initialise_parameters(3);
    loop.iterations = 11;
    nets::train_classifier(s2, train, test, loop);
    save_checkpoint(path, first, &s2);
  }
  Executor second(nets::build_smallnet(net), opt);
  Solver s3(second, demo_solver());
  load_checkpoint(path, second, &s3);
  CHECK(s3.iteration() == 11);
  loop.iterations = 20;
  nets::train_classifier(s3, train, test, loop);
  for (ValueId p : straight.graph().params()) {
    const std::string& name = straight.graph().value(p).name;
    CHECK_MESSAGE(straight.tensor(name).to_vector() == second.tensor(name).to_vector(), name);
    CHECK_MESSAGE(straight.tensor("history/" + name).to_vector() == second.tensor("history/" + name).to_vector(), name);
  }

  // Missing, extra and mis-shaped tensors are errors naming the tensor.
  TensorFile file = read_safetensors(path);
  auto expect_error = [&](const TensorFile& f, const std::string& needle) {
    write_safetensors(path, f);
    try {
      load_checkpoint(path, second, &s3);
      FAIL("a bad checkpoint was accepted");
    } catch (const BadInput& e) {
      CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
  };
  TensorFile missing = file;
  missing.tensors.erase("fc3.bias");
  expect_error(missing, "fc3.bias");
  TensorFile extra = file;
  extra.tensors["fc9.weight"] = Tensor::zeros({2});
  expect_error(extra, "fc9.weight");
  TensorFile misshaped = file;
  misshaped.tensors["conv1.weight"] = Tensor::zeros({8, 1, 3, 3});
  expect_error(misshaped, "conv1.weight");
  std::remove(path.c_str());
}
