// The engine on the GPU backends: the same graphs on simt (and cuda where a GPU exists) as on the cpu. Named
// gpu_* so it links the GPU kernel libraries; the simt cases run the CUDA kernels on the host.
#include <cmath>
#include <cstring>

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/executor.h"
#include "engine/solver.h"
#include "nets/layers.h"
#include "nets/smallnet.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"

using namespace massmap;

namespace {

std::vector<double> train_losses(Device device, int steps) {
  nets::SmallNetOptions o;
  o.batch = 4;
  o.width = 4;
  o.input = 16;
  ExecutorOptions eo;
  eo.training = true;
  eo.device = device;
  Executor ex(nets::build_smallnet(o), eo);
  SolverConfig config;
  config.lr.base_lr = 0.05f;
  config.momentum = 0.9f;
  config.weight_decay = 5e-4f;
  Solver solver(ex, config);
  solver.initialise_parameters(3);
  std::vector<double> losses;
  const Shape in_shape = ex.graph().value(ex.graph().at("data")).shape;
  for (int step = 0; step < steps; ++step) {
    // A learnable signal: the label decides the sign of a bright centre.
    Tensor data = Tensor::from(in_shape, testing_support::random_vector(size_t(shape_numel(in_shape)), 100 + step));
    Tensor label({o.batch});
    for (int b = 0; b < o.batch; ++b) {
      label.at(b) = float((b + step) % 2);
      float* img = data.data() + int64_t(b) * o.input * o.input;
      for (int y = 6; y < 10; ++y)
        for (int x = 6; x < 10; ++x) img[y * o.input + x] += label.at(b) > 0 ? 2.f : -2.f;
    }
    ex.set_input("data", data);
    ex.set_input("label", label);
    losses.push_back(solver.step());
  }
  return losses;
}

}  // namespace

TEST_CASE("simt.engine: a small CNN trained for 20 steps follows the cpu loss curve") {
  // Tolerance: the GPU kernels sum in other orders than the cpu paths (and simt has no FMA contraction of its
  // own), so losses drift apart slowly; 20 steps stay within 1e-3 relative.
  const std::vector<double> cpu = train_losses(Device::cpu, 20), simt = train_losses(Device::simt, 20);
  for (size_t i = 0; i < cpu.size(); ++i) {
    CAPTURE(i);
    CHECK(simt[i] == doctest::Approx(cpu[i]).epsilon(1e-3));
  }
  CHECK(cpu.back() < cpu.front());  // it learns at all
}

TEST_CASE("cuda.engine: a small CNN trained for 20 steps follows the cpu loss curve" *
          doctest::skip(!testing_support::cuda_available())) {
  const std::vector<double> cpu = train_losses(Device::cpu, 20), gpu = train_losses(Device::cuda, 20);
  for (size_t i = 0; i < cpu.size(); ++i) {
    CAPTURE(i);
    CHECK(gpu[i] == doctest::Approx(cpu[i]).epsilon(1e-3));
  }
  // Deterministic: no float atomics anywhere, so a second run is bit-identical.
  CHECK(train_losses(Device::cuda, 20) == gpu);
}

TEST_CASE("simt.engine: simt runs are bit-identical, and device tensors round-trip") {
  CHECK(train_losses(Device::simt, 5) == train_losses(Device::simt, 5));
  Tensor host = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor dev = host.to(Device::simt);
  CHECK(dev.device() == Device::simt);
  CHECK(dev.to_vector() == host.to_vector());
  CHECK_THROWS_AS(dev.at(0), Error);  // device memory is not host memory
}
