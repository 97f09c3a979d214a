// A training step of each net on the cpu device gives the same bits for 1 and 2 threads on every instruction set
// the CPU has (the GEMM and convolution kernels split work by shape only), and the losses of different instruction
// sets agree within rounding (FMA and summation order differ between them).
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/solver.h"
#include "kernels/cpu/cpu_isa.h"
#include "nets/registry.h"
#include "tests/support/check.h"

using namespace massmap;
using kernels::cpu::CpuIsa;

namespace {

struct StepResult {
  std::vector<double> losses;              // one per step
  std::vector<std::vector<float>> params;  // after the steps
};

// Two SGD steps (dropout on) of `net` at width 0.25, 1 channel, 2 classes, batch 2, with `threads` OpenMP threads.
StepResult train(const std::string& net, int input, int threads) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.batch = 2;
  o.width = 0.25;
  o.input = input;
  ExecutorOptions eo;
  eo.training = true;
  Executor ex(nets::build_net(net, o), eo);
  Solver solver(ex, nets::find_net(net).solver());
  solver.initialise_parameters(3);
  const Shape& shape = ex.graph().value(ex.graph().at("data")).shape;
  ex.set_input("data", Tensor::from(shape, testing_support::random_vector(size_t(shape_numel(shape)), 5)));
  Tensor labels({2});
  labels.at(0) = 0.f;
  labels.at(1) = 1.f;
  ex.set_input("label", labels);
  StepResult r;
  for (int step = 0; step < 2; ++step) r.losses.push_back(solver.step());
  for (ValueId p : ex.graph().params()) r.params.push_back(ex.tensor(p).to_vector());
  omp_set_num_threads(saved);
  return r;
}

}  // namespace

TEST_CASE("a training step of every net gives the same bits for 1 and 2 threads, on every ISA") {
  const std::vector<std::pair<std::string, int>> nets = {
      {"smallnet", 0}, {"alexnet", 0}, {"vgg16", 64}, {"googlenet", 0}};
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const auto& [net, input] : nets) {
    std::vector<double> first_losses;
    for (const CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512}) {
      if (!kernels::cpu::cpu_isa_supported(isa)) continue;
      INFO(net << " on " << std::string(kernels::cpu::cpu_isa_name(isa)));
      kernels::cpu::set_active_cpu_isa(isa);
      const StepResult one = train(net, input, 1), two = train(net, input, 2);
      CHECK(one.losses == two.losses);
      REQUIRE(one.params.size() == two.params.size());
      size_t differing = 0;
      for (size_t i = 0; i < one.params.size(); ++i) differing += one.params[i] != two.params[i];
      CHECK_MESSAGE(differing == 0, differing << " parameter tensors differ between 1 and 2 threads");
      if (first_losses.empty()) {
        first_losses = one.losses;
      } else {
        for (size_t s = 0; s < one.losses.size(); ++s)
          CHECK(std::fabs(one.losses[s] - first_losses[s]) <= 1e-4 * std::fmax(1.0, std::fabs(first_losses[s])));
      }
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}
