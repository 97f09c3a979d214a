#include "nets/presets.h"

namespace massmap::nets {

namespace {

SolverConfig step_solver(float base_lr, int64_t stepsize, int64_t max_iter, float weight_decay) {
  SolverConfig c;
  c.lr.type = "step";
  c.lr.base_lr = base_lr;
  c.lr.gamma = 0.1f;
  c.lr.stepsize = stepsize;
  c.momentum = 0.9f;
  c.weight_decay = weight_decay;
  c.max_iter = max_iter;
  return c;
}

}  // namespace

SolverConfig alexnet_solver() {
  return step_solver(0.01f, 100000, 450000, 5e-4f);
}

SolverConfig vgg16_solver() {
  return step_solver(0.01f, 100000, 370000, 5e-4f);
}

SolverConfig googlenet_solver() {
  SolverConfig c;
  c.lr.type = "poly";
  c.lr.base_lr = 0.01f;
  c.lr.power = 0.5f;
  c.lr.max_iter = 2400000;
  c.momentum = 0.9f;
  c.weight_decay = 2e-4f;
  c.max_iter = 2400000;
  return c;
}

SolverConfig smallnet_solver() {
  return step_solver(0.01f, 200, 300, 5e-4f);
}

}  // namespace massmap::nets
