#pragma once
// The op registry. Each op is defined once: its inputs and attributes, shape rule, cost, backward rule and
// whether its buffers may be shared. Kernels are registered per (op, device) and looked up here when the executor
// compiles a schedule; the other places that branch on the device are memory (engine/device_memory.cpp, tensor
// copies) and an op family's choice between the two GPU namespaces (kernels::cuda, kernels::simt).
#include <functional>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "kernels/placement.h"

namespace massmap {

// Emits the backward nodes of one forward node into the training graph (see autograd.h).
class GradBuilder;
struct KernelCall;

struct OpDef {
  std::string name;
  std::string family;  // the engine/ops/<family>.cpp that registered it (set by registration)
  int min_inputs = 1, max_inputs = 1;
  std::vector<std::string> output_suffixes = {""};  // one per output; "" names the output like the node
  // Output shapes from input shapes; throws BadConfig via shape_error() naming the node and the shapes.
  std::function<std::vector<Shape>(const Node&, const std::vector<Shape>&)> infer;
  std::function<Cost(const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out)> cost;
  // Reads the node's attributes into the op's typed struct (check_attrs_as<T>, engine/typed_attrs.h), throwing
  // BadConfig naming the node and the key; null: the op takes no attributes. Run on every forward node added.
  std::function<void(const Node&)> check_attrs;
  std::function<void(GradBuilder&, const Node&)> backward;  // null: no gradient flows through
  bool is_loss = false;                                     // a root of the backward pass, weighted by loss_weight
  std::function<double(const Node&)> loss_weight;           // losses: the weight of this node's loss in the total
  bool backward_reads_outputs = false;  // its outputs must survive (no in-place overwrite by a consumer)
  bool in_place = false;                // output 0 may share input 0's memory (ReLU)
  bool view = false;                    // output 0 is input 0 reinterpreted (flatten): shares memory if dense
  bool concat = false;                  // inputs may live inside output 0 at channel offsets
  // Like backward_reads_outputs, for the nodes this says so of (a conv2d with a fused ReLU); null: none.
  std::function<bool(const Node&)> backward_reads_outputs_if;
  // Scratch floats a kernel call wants on a device (e.g. split-K partial sums); the executor gives every step one
  // shared workspace of the largest size, since steps run one after another on one stream.
  std::function<int64_t(const KernelCall&, Device)> workspace_floats;
};

// One tensor argument of a kernel call: the base of its buffer, its logical shape and where it sits.
struct TensorArg {
  float* data = nullptr;
  Shape shape;
  kernels::Placement place;
  // Shape as (N, C, H, W): missing trailing dimensions are 1 ((N, I) -> (N, I, 1, 1); () -> (1, 1, 1, 1)).
  int n() const { return shape.size() > 0 ? int(shape[0]) : 1; }
  int c() const { return shape.size() > 1 ? int(shape[1]) : 1; }
  int h() const { return shape.size() > 2 ? int(shape[2]) : 1; }
  int w() const { return shape.size() > 3 ? int(shape[3]) : 1; }
};

// What a running step knows: the iteration (dropout masks), train or test mode, and the solver's rates.
struct RunContext {
  int64_t iteration = 0;
  bool training = false;
  float lr = 0.f;  // the policy's rate at this iteration (before lr_mult)
  float momentum = 0.f;
  float weight_decay = 0.f;
};

struct KernelCall {
  const Node* node = nullptr;
  std::vector<TensorArg> in, out;
  const RunContext* run = nullptr;
  void* stream = nullptr;      // GPU devices: the executor's stream
  float* workspace = nullptr;  // scratch shared by all steps (see OpDef::workspace_floats)
  int64_t workspace_floats = 0;
  bool accumulate(size_t output) const { return output < node->accumulate.size() && node->accumulate[output]; }
};

using Kernel = void (*)(const KernelCall&);

// Ops registered after begin_family(f) record family f (the generated register_builtin_ops calls it per file).
void begin_family(const std::string& family);
void register_op(OpDef def);
std::vector<std::string> registered_ops();  // every op's name, sorted
void register_kernel(const std::string& op, Device device, Kernel kernel);
const OpDef& op_def(const std::string& op);                // throws BadConfig for an unknown op
bool op_exists(const std::string& op);                     // the validator's check, without an exception
Kernel find_kernel(const std::string& op, Device device);  // throws DeviceError naming op and device

// The node's attributes fit its op (OpDef::check_attrs); throws BadConfig naming the node and the attribute.
void check_node_attrs(const Node& node);

[[noreturn]] void shape_error(const Node& node, const std::vector<Shape>& inputs, const std::string& why);

}  // namespace massmap
