#pragma once
// The published solver presets, as data: each function returns a SolverConfig a user can print
// (solver_config_to_json), override and pass to Solver. The per-layer initialisation lives with each builder (the
// Filler of every layer: nets/alexnet.cpp, nets/vgg16.cpp, nets/googlenet.cpp).
#include "engine/solver.h"

namespace massmap::nets {

// BVLC AlexNet (models/bvlc_alexnet/solver.prototxt): base_lr 0.01, step policy, stepsize 100,000, gamma 0.1,
// momentum 0.9, weight decay 5e-4, 450,000 iterations (batch 256).
SolverConfig alexnet_solver();

// VGG-16 (Simonyan & Zisserman): base_lr 0.01, momentum 0.9, weight decay 5e-4, the rate divided by 10 in steps
// (the paper drops it when validation accuracy stalls, three times in 370K iterations at batch 256: here every
// 100,000 iterations), 370,000 iterations.
SolverConfig vgg16_solver();

// BVLC GoogLeNet's quick solver (models/bvlc_googlenet/quick_solver.prototxt): base_lr 0.01, poly policy with
// power 0.5 reaching 0 at 2,400,000 iterations, momentum 0.9, weight decay 2e-4 (batch 32).
SolverConfig googlenet_solver();

// smallnet (the demo's solver): base_lr 0.01, step 200, gamma 0.1, momentum 0.9, weight decay 5e-4, 300 iterations.
SolverConfig smallnet_solver();

}  // namespace massmap::nets
