#pragma once
// The executor places a graph on a device and compiles its schedule: the ordered kernel calls of the forward pass
// and, for training, of the backward pass (autograd) and the SGD update. Every buffer's lifetime is known when
// the schedule is compiled, so transient values share one workspace arena (liveness-based reuse); ReLU runs in
// place; concat inputs are written by their producers straight into their channel slice; flatten is a view.
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/op.h"
#include "engine/tensor.h"

namespace massmap {

struct ExecutorOptions {
  Device device = Device::cpu;
  bool training = false;     // append backward and update steps (the graph needs a loss node)
  bool input_grads = false;  // training: gradients of graph inputs too (gradient checks of whole graphs)
  bool keep_all = false;     // every value keeps its own buffer, readable after a run (layer dumps, tests)
  bool share_memory = true;  // in-place ReLU, concat slices, flatten views
};

enum class Phase { forward, backward, update };

struct ScheduleStep {
  Phase phase;
  NodeId node;
  Kernel kernel;
  KernelCall call;
};

class Executor {
 public:
  Executor(Graph graph, ExecutorOptions options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const Graph& graph() const { return graph_; }
  const ExecutorOptions& options() const { return options_; }
  const std::vector<ScheduleStep>& schedule() const { return steps_; }

  // The buffer of a value as a tensor view. Inputs, parameters, their gradients, solver state and graph outputs
  // (values no node reads) always have their own buffers; other values only with keep_all (their buffers are
  // reused), otherwise this throws BadConfig naming the value.
  Tensor tensor(const std::string& name);
  Tensor tensor(ValueId v);
  bool readable(ValueId v) const;
  void set_input(const std::string& name, const Tensor& t);  // copies from any device; the shape must match
  // A host copy of a readable value (see tensor()), from any device.
  Tensor read(const std::string& name);

  void forward(const RunContext& run);   // run.training: dropout on
  void backward(const RunContext& run);  // after forward(training)
  void update(const RunContext& run);    // after backward
  // Sum over loss nodes of loss_weight * loss after a forward pass.
  double loss() const;
  std::vector<ValueId> loss_values() const;

  // The compiled schedule: step, phase, node, op, and every buffer's lifetime and place.
  std::string schedule_table() const;
  int64_t arena_bytes() const { return arena_floats_ * int64_t(sizeof(float)); }
  int64_t unshared_bytes() const { return unshared_floats_ * int64_t(sizeof(float)); }  // without reuse

 private:
  struct Slot {         // where a value lives
    ValueId root = -1;  // the value owning the storage
    kernels::Placement place;
    int64_t arena_offset = -1;  // transient roots: offset in the arena (floats); -1: own tensor
  };
  void plan_sharing();
  void plan_memory();
  void build_steps();
  void run_phase(Phase phase, const RunContext& run);

  Graph graph_;
  ExecutorOptions options_;
  int forward_nodes_ = 0;
  std::vector<ValueId> parent_;         // parent_[v]: the value whose storage v lives in, or -1
  std::vector<int64_t> channel_shift_;  // concat slices: channel offset inside the parent
  std::vector<Slot> slots_;
  std::vector<int> first_use_, last_use_;  // per root, in schedule steps
  std::vector<bool> persistent_;           // per root
  std::vector<Tensor> own_;                // per root with its own storage
  Tensor arena_;
  Tensor workspace_;  // scratch shared by the steps (OpDef::workspace_floats)
  void* stream_ = nullptr;  // GPU devices: one stream per executor
  int64_t arena_floats_ = 0, unshared_floats_ = 0;
  std::vector<ScheduleStep> steps_;
};

}  // namespace massmap
