// The executor end to end: whole-graph gradients against central differences (through autograd, gradient
// accumulation of a value with two consumers, concat slices, in-place ReLU and flatten views), memory sharing
// against unshared buffers, schedule properties and error messages.
#include "engine/executor.h"

#include <cstring>

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/ops/conv.h"
#include "nets/layers.h"
#include "tests/support/check.h"

using namespace massmap;
using testing_support::random_vector;

namespace {

// x -> conv_a -> relu_a -+-> conv_b (1x1) -> relu_b -+-> concat -> norm -> pool -> flatten -> fc1 -> drop -> fc2 ->
// loss
//                        +-> pool_c (3x3/1 pad 1) ---+
// relu_a has two consumers (its gradient is accumulated); relu_b and pool_c are written straight into the
// concat's channel slices; relu_b runs in place on conv_b; flatten is a view of pool.
Graph branchy_graph(int batch) {
  Graph g;
  nets::LayerBuilder b(g);
  nets::Filler f;
  f.weight.init.type = "gaussian";
  f.weight.init.std = 0.3f;
  f.bias.init.type = "gaussian";
  f.bias.init.std = 0.1f;
  ValueId x = g.add_input("data", {batch, 3, 7, 6});
  ValueId a = b.relu("relu_a", b.conv("conv_a", x, 5, 3, 1, 1, 1, f));
  ValueId bb = b.relu("relu_b", b.conv("conv_b", a, 3, 1, 1, 0, 1, f));
  ValueId c = b.max_pool("pool_c", a, 3, 1, 1);
  ValueId cat = b.concat("concat", {bb, c});
  ValueId n = b.lrn("norm", cat, 3, 0.5, 0.75, 1.0);
  ValueId p = b.avg_pool("pool", n, 3, 2);
  ValueId fl = b.flatten("flatten", p);
  ValueId h = b.dropout("drop", b.linear("fc1", fl, 6, f), 0.3, 7);
  ValueId logits = b.linear("fc2", h, 3, f);
  ValueId label = g.add_input("label", {batch});
  b.softmax_loss("loss", logits, label);
  return g;
}

void fill_inputs(Executor& ex, uint64_t seed) {
  Tensor x = ex.tensor("data");
  auto v = random_vector(size_t(x.numel()), seed);
  std::memcpy(x.data(), v.data(), v.size() * sizeof(float));
  Tensor l = ex.tensor("label");
  for (int64_t i = 0; i < l.numel(); ++i) l.at(i) = float(i % 3);
  for (ValueId p : ex.graph().params()) {
    Tensor t = ex.tensor(p);
    auto w = random_vector(size_t(t.numel()), seed + 100 + uint64_t(p), -0.5f, 0.5f);
    std::memcpy(t.data(), w.data(), w.size() * sizeof(float));
  }
}

}  // namespace

TEST_CASE("executor: whole-graph gradients match central differences") {
  for (int batch : {1, 2}) {
    CAPTURE(batch);
    ExecutorOptions opt;
    opt.training = true;
    opt.input_grads = true;
    Executor ex(branchy_graph(batch), opt);
    fill_inputs(ex, 11);
    RunContext run;
    run.training = true;
    run.iteration = 5;
    ex.forward(run);
    ex.backward(run);
    auto loss = [&] {
      ex.forward(run);
      return ex.loss();
    };
    testing_support::GradCheckOptions gc;
    gc.eps = 5e-4f;
    gc.tolerance = 2e-2f;
    gc.max_entries = 60;
    std::vector<std::string> names = {"data"};
    for (ValueId p : ex.graph().params()) names.push_back(ex.graph().value(p).name);
    for (const std::string& name : names) {
      Tensor value = ex.tensor(name);
      std::vector<float> analytic = ex.tensor(gradient_name(name)).to_vector();
      std::vector<float> x = value.to_vector();
      auto eval = [&] {
        std::memcpy(value.data(), x.data(), x.size() * sizeof(float));
        return loss();
      };
      testing_support::check_gradient(x, analytic, eval, name, gc);
      std::memcpy(value.data(), x.data(), x.size() * sizeof(float));
    }
  }
}

TEST_CASE("executor: shared memory gives the same numbers as unshared buffers") {
  ExecutorOptions shared_opt, plain_opt;
  shared_opt.training = plain_opt.training = true;
  plain_opt.keep_all = true;
  Executor shared(branchy_graph(2), shared_opt), plain(branchy_graph(2), plain_opt);
  fill_inputs(shared, 3);
  fill_inputs(plain, 3);
  RunContext run;
  run.training = true;
  run.lr = 0.1f;
  run.momentum = 0.9f;
  for (int it = 0; it < 3; ++it) {
    run.iteration = it;
    for (Executor* ex : {&shared, &plain}) {
      ex->forward(run);
      ex->backward(run);
      ex->update(run);
    }
    CHECK(shared.loss() == plain.loss());
  }
  for (ValueId p : shared.graph().params()) {
    const std::string& name = shared.graph().value(p).name;
    CHECK_MESSAGE(shared.tensor(name).to_vector() == plain.tensor(name).to_vector(), name);
  }
  // The sharing really happened: the concat inputs live in the concat, relu_b in conv_b's place, and the arena
  // reuses memory.
  std::string table = shared.schedule_table();
  CHECK(table.find("relu_b [in concat") != std::string::npos);
  CHECK(table.find("pool_c [in concat @c3") != std::string::npos);
  CHECK(table.find("conv_b [in concat") != std::string::npos);
  CHECK(table.find("grad/relu_a (+=)") != std::string::npos);
  CHECK(shared.arena_bytes() < shared.unshared_bytes());
  CHECK(plain.arena_bytes() == 0);
}

TEST_CASE("executor: the schedule orders forward, backward, update and gives every step a kernel") {
  ExecutorOptions opt;
  opt.training = true;
  Executor ex(branchy_graph(1), opt);
  int phase = 0, updates = 0;
  for (const ScheduleStep& s : ex.schedule()) {
    CHECK(int(s.phase) >= phase);
    phase = int(s.phase);
    const bool has_kernel = s.kernel != nullptr;
    CHECK(has_kernel);
    updates += s.phase == Phase::update;
  }
  CHECK(updates == int(ex.graph().params().size()));
}

TEST_CASE("executor: errors name the node, the value and the device") {
  Graph g;
  ValueId x = g.add_input("data", {1, 3, 8, 8});
  ValueId w = g.add_param("conv1.weight", {4, 2, 3, 3});
  try {
    g.add(ops::conv2d, "conv1", {x, w});
    FAIL("a mis-shaped weight was accepted");
  } catch (const BadConfig& e) {
    std::string m = e.what();
    CHECK(m.find("conv1") != std::string::npos);
    CHECK(m.find("(4, 2, 3, 3)") != std::string::npos);
    CHECK(m.find("(1, 3, 8, 8)") != std::string::npos);
  }
  const std::string unknown_op = "no_such_op";
  CHECK_THROWS_AS(g.add(unknown_op, "x", {x}), BadConfig);

  Executor ex(branchy_graph(1), {});
  CHECK_THROWS_AS(ex.tensor("norm"), BadConfig);  // transient: its buffer is reused
  CHECK_THROWS_AS(ex.set_input("data", Tensor::zeros({2, 3, 7, 6})), BadInput);
  CHECK_THROWS_AS(ex.backward({}), BadConfig);
  ExecutorOptions cuda;
  cuda.device = Device::cuda;
  try {
    Executor bad(branchy_graph(1), cuda);
    FAIL("an executor on a missing device was built");
  } catch (const DeviceError& e) {
    CHECK(std::string(e.what()).find("cuda") != std::string::npos);
  }
}

TEST_CASE("graph: the layer table lists every layer with shapes, parameters and multiply-adds") {
  Graph g = branchy_graph(2);
  std::string t = g.layer_table();
  CHECK(t.find("conv_a") != std::string::npos);
  CHECK(t.find("(2, 5, 7, 6)") != std::string::npos);
  // conv_a: 5 * 3 * 3 * 3 weights + 5 biases = 140 parameters; 2*5*7*6 outputs * 27 = 11,340 multiply-adds.
  CHECK(t.find("140") != std::string::npos);
  CHECK(t.find("11,340") != std::string::npos);
  // Bytes moved by conv_a: input 2*3*7*6 + weights 135 + bias 5 + output 420 = 812 floats, 3248 bytes (3.2 KiB);
  // its intensity 2 * 11,340 FLOPs / 3248 bytes = 6.98 per byte. relu_a moves 2 * 420 floats and does no
  // multiply-add: no intensity.
  const size_t row = t.find("\nconv_a "), row_end = t.find('\n', row + 1);
  REQUIRE(row != std::string::npos);
  const std::string conv_a = t.substr(row, row_end - row);
  CHECK_MESSAGE(conv_a.find(" 3.2 KiB ") != std::string::npos, conv_a);
  CHECK_MESSAGE(conv_a.substr(conv_a.size() - 4) == " 7.0", conv_a);
  const size_t relu_row = t.find("\nrelu_a ");
  const std::string relu_a = t.substr(relu_row, t.find('\n', relu_row + 1) - relu_row);
  CHECK_MESSAGE(relu_a.find(" 3.3 KiB ") != std::string::npos, relu_a);
  CHECK_MESSAGE(relu_a.back() == '-', relu_a);
  // fc1 reads 8 channels x 3 x 3 (CEIL pooling of 7x6 with 3x3/2).
  CHECK(g.num_parameters() == 140 + (3 * 5 + 3) + (6 * 72 + 6) + (3 * 6 + 3));
}
