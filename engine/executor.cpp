#include "engine/executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <sstream>

#include "base/errors.h"
#include "base/memory_limit.h"
#include "engine/autograd.h"
#include "engine/device_memory.h"
#include "engine/ops/sgd.h"

namespace massmap {

namespace {

// Dense placement of a tensor read as (N, C, H, W), trailing dimensions 1.
kernels::Placement dense_place(const Shape& s) {
  TensorArg a;
  a.shape = s;
  return kernels::Placement::dense(a.c(), a.h(), a.w());
}

std::vector<NodeId> forward_consumers(const Graph& g, ValueId v, int forward_nodes) {
  std::vector<NodeId> out;
  for (NodeId n = 0; n < forward_nodes; ++n)
    for (ValueId in : g.node(n).inputs)
      if (in == v) out.push_back(n);  // once per use: concat(a, a) counts twice
  return out;
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::forward:
      return "forward";
    case Phase::backward:
      return "backward";
    case Phase::update:
      return "update";
  }
  return "?";
}

}  // namespace

Executor::~Executor() {
  if (stream_) destroy_stream(options_.device, stream_);
}

Executor::Executor(Graph graph, ExecutorOptions options) : graph_(std::move(graph)), options_(options) {
  if (!device_available(options_.device)) parse_device(device_name(options_.device));  // throws, naming what exists
  for (const Node& n : graph_.nodes()) find_kernel(n.op, options_.device);             // fail early, naming the op
  forward_nodes_ = graph_.num_nodes();
  if (options_.training) {
    build_backward(graph_, options_.input_grads);
    for (ValueId p : graph_.params()) {
      ValueId g = gradient_of(graph_, p);
      const Value pv = graph_.value(p);  // a copy: new_value below may move the graph's values
      ValueId h = graph_.new_value("history/" + pv.name, pv.shape, ValueKind::state);
      if (g < 0) continue;  // no loss depends on it: nothing to update
      Node u;
      u.name = pv.name + "/sgd_update";
      u.op = ops::sgd_update;
      u.inputs = {p, g, h};
      SgdAttrs rates;
      rates.lr_mult = pv.param.lr_mult;
      rates.decay_mult = pv.param.decay_mult;
      u.attrs = write_attrs(rates);
      u.forward_of = pv.producer;
      graph_.append_node(std::move(u));
    }
    for (NodeId n = forward_nodes_; n < graph_.num_nodes(); ++n) find_kernel(graph_.node(n).op, options_.device);
  }
  plan_sharing();
  plan_memory();
  if (options_.device != Device::cpu) stream_ = create_stream(options_.device);
  build_steps();
}

// Decides which values live inside another value's storage. Each decision is made by a value's only consumer,
// so a value has at most one parent, and parents are always downstream: no cycles.
void Executor::plan_sharing() {
  const int nv = graph_.num_values();
  parent_.assign(size_t(nv), -1);
  channel_shift_.assign(size_t(nv), 0);
  std::vector<int> relation(size_t(nv), 0);  // 1: same placement / concat slice, 2: reshape view
  if (options_.share_memory && !options_.keep_all) {
    auto sole_use = [&](ValueId v) {
      return graph_.value(v).kind == ValueKind::activation && forward_consumers(graph_, v, forward_nodes_).size() == 1;
    };
    for (NodeId id = 0; id < forward_nodes_; ++id) {
      const Node& n = graph_.node(id);
      const OpDef& def = op_def(n.op);
      if (def.concat) {
        int64_t offset = 0;
        for (ValueId in : n.inputs) {
          if (sole_use(in) && parent_[size_t(in)] < 0 && graph_.value(in).shape.size() == 4) {
            parent_[size_t(in)] = n.outputs[0];
            channel_shift_[size_t(in)] = offset;
            relation[size_t(in)] = 1;
          }
          offset += graph_.value(in).shape[1];
        }
      } else if (def.in_place || def.view) {
        ValueId in = n.inputs[0];
        if (!sole_use(in)) continue;
        const Node& producer = graph_.node(graph_.value(in).producer);
        const OpDef& pdef = op_def(producer.op);
        // Overwriting in place loses the input: only when no backward step reads it (a conv with a fused ReLU
        // reads its output backward).
        const bool reads_output =
            pdef.backward_reads_outputs || (pdef.backward_reads_outputs_if && pdef.backward_reads_outputs_if(producer));
        if (def.in_place && (reads_output || pdef.concat || pdef.view)) continue;
        parent_[size_t(in)] = n.outputs[0];
        relation[size_t(in)] = def.view ? 2 : 1;
      }
    }
    // Gradients mirror their values: dx lives where x lives, relative to dy.
    for (ValueId v = 0; v < nv; ++v) {
      if (parent_[size_t(v)] < 0) continue;
      ValueId gv = gradient_of(graph_, v), gp = gradient_of(graph_, parent_[size_t(v)]);
      if (gv < 0 || gp < 0) continue;
      parent_[size_t(gv)] = gp;
      channel_shift_[size_t(gv)] = channel_shift_[size_t(v)];
      relation[size_t(gv)] = relation[size_t(v)];
    }
  }
  // Resolve roots and placements (parents have higher or equal depth: recurse).
  slots_.assign(size_t(nv), Slot{});
  std::vector<bool> done(size_t(nv), false);
  std::function<void(ValueId)> resolve = [&](ValueId v) {
    if (done[size_t(v)]) return;
    ValueId p = parent_[size_t(v)];
    Slot& s = slots_[size_t(v)];
    if (p < 0) {
      s.root = v;
      s.place = dense_place(graph_.value(v).shape);
    } else {
      resolve(p);
      const Slot& ps = slots_[size_t(p)];
      s.root = ps.root;
      if (relation[size_t(v)] == 1) {
        s.place = ps.place;
        s.place.channel_offset += channel_shift_[size_t(v)];
      } else {  // a view of dense memory
        s.place = dense_place(graph_.value(v).shape);
        s.place.batch_stride = ps.place.batch_stride;
      }
    }
    done[size_t(v)] = true;
  };
  for (ValueId v = 0; v < nv; ++v) resolve(v);
}

void Executor::plan_memory() {
  const int nv = graph_.num_values();
  first_use_.assign(size_t(nv), 1 << 30);
  last_use_.assign(size_t(nv), -1);
  persistent_.assign(size_t(nv), options_.keep_all);
  for (ValueId v = 0; v < nv; ++v) {
    const Value& val = graph_.value(v);
    bool keep = val.kind == ValueKind::input || val.kind == ValueKind::parameter || val.kind == ValueKind::state;
    if (val.kind == ValueKind::gradient && val.grad_of >= 0) {
      ValueKind of = graph_.value(val.grad_of).kind;
      keep = keep || of == ValueKind::parameter || of == ValueKind::input;
    }
    if (val.kind == ValueKind::activation && forward_consumers(graph_, v, forward_nodes_).empty()) keep = true;
    if (keep) persistent_[size_t(slots_[size_t(v)].root)] = true;
  }
  for (NodeId id = 0; id < graph_.num_nodes(); ++id) {
    const Node& n = graph_.node(id);
    auto touch = [&](ValueId v) {
      ValueId r = slots_[size_t(v)].root;
      first_use_[size_t(r)] = std::min(first_use_[size_t(r)], id);
      last_use_[size_t(r)] = std::max(last_use_[size_t(r)], id);
    };
    for (ValueId v : n.inputs) touch(v);
    for (ValueId v : n.outputs) touch(v);
  }
  // Greedy first-fit: largest buffers first, each at the lowest offset that no buffer live at the same time uses.
  std::vector<ValueId> transient;
  for (ValueId v = 0; v < nv; ++v)
    if (slots_[size_t(v)].root == v && !persistent_[size_t(v)] && last_use_[size_t(v)] >= 0) transient.push_back(v);
  auto floats = [&](ValueId v) { return (shape_numel(graph_.value(v).shape) + 15) / 16 * 16; };
  std::stable_sort(transient.begin(), transient.end(), [&](ValueId a, ValueId b) { return floats(a) > floats(b); });
  std::vector<ValueId> placed;
  arena_floats_ = unshared_floats_ = 0;
  for (ValueId v : transient) {
    std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of live overlapping buffers
    for (ValueId u : placed)
      if (first_use_[size_t(u)] <= last_use_[size_t(v)] && first_use_[size_t(v)] <= last_use_[size_t(u)])
        busy.push_back({slots_[size_t(u)].arena_offset, slots_[size_t(u)].arena_offset + floats(u)});
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (auto [b, e] : busy) {
      if (offset + floats(v) <= b) break;
      offset = std::max(offset, e);
    }
    slots_[size_t(v)].arena_offset = offset;
    placed.push_back(v);
    arena_floats_ = std::max(arena_floats_, offset + floats(v));
    unshared_floats_ += floats(v);
  }
  if (options_.device != Device::cuda) {  // host memory: refuse before allocating what cannot fit
    int64_t own_floats = 0;
    for (ValueId v = 0; v < nv; ++v)
      if (slots_[size_t(v)].root == v && slots_[size_t(v)].arena_offset < 0)
        own_floats += shape_numel(graph_.value(v).shape);
    check_memory((arena_floats_ + own_floats) * int64_t(sizeof(float)),
                 "the buffers of a graph of " + std::to_string(graph_.num_nodes()) + " nodes (shared activations " +
                     memory_text(arena_floats_ * int64_t(sizeof(float))) + "; parameters, inputs and the rest " +
                     memory_text(own_floats * int64_t(sizeof(float))) + ")");
  }
  arena_ = Tensor({arena_floats_}, options_.device);
  arena_.fill(std::nanf(""));  // a step that reads a buffer before anything wrote it shows up as NaN
  own_.assign(size_t(nv), Tensor());
  for (ValueId v = 0; v < nv; ++v) {
    if (slots_[size_t(v)].root != v || slots_[size_t(v)].arena_offset >= 0) continue;
    own_[size_t(v)] = Tensor::zeros(graph_.value(v).shape, options_.device);
  }
}

void Executor::build_steps() {
  steps_.clear();
  auto arg = [&](ValueId v) {
    TensorArg a;
    const Slot& s = slots_[size_t(v)];
    const Slot& root = slots_[size_t(s.root)];
    a.data = root.arena_offset >= 0 ? arena_.data() + root.arena_offset : own_[size_t(s.root)].data();
    a.shape = graph_.value(v).shape;
    a.place = s.place;
    return a;
  };
  for (NodeId id = 0; id < graph_.num_nodes(); ++id) {
    const Node& n = graph_.node(id);
    ScheduleStep step;
    step.phase = id < forward_nodes_ ? Phase::forward : n.op == ops::sgd_update ? Phase::update : Phase::backward;
    step.node = id;
    step.kernel = find_kernel(n.op, options_.device);
    step.call.node = &graph_.node(id);
    step.call.stream = stream_;
    for (ValueId v : n.inputs) step.call.in.push_back(arg(v));
    for (ValueId v : n.outputs) step.call.out.push_back(arg(v));
    steps_.push_back(std::move(step));
  }
  // One workspace for all steps: they run one after another.
  int64_t workspace = 0;
  for (const ScheduleStep& s : steps_) {
    const OpDef& def = op_def(graph_.node(s.node).op);
    if (def.workspace_floats) workspace = std::max(workspace, def.workspace_floats(s.call, options_.device));
  }
  if (workspace > 0) {
    workspace_ = Tensor({workspace}, options_.device);
    for (ScheduleStep& s : steps_) {
      s.call.workspace = workspace_.data();
      s.call.workspace_floats = workspace;
    }
  }
}

bool Executor::readable(ValueId v) const {
  return persistent_.at(size_t(slots_.at(size_t(v)).root));
}

Tensor Executor::tensor(ValueId v) {
  const Value& val = graph_.value(v);
  if (!readable(v))
    throw BadConfig("value '" + val.name +
                    "' has no buffer of its own after a run (its memory is reused); build the executor with keep_all");
  const Slot& s = slots_[size_t(v)];
  Tensor root = own_[size_t(s.root)];
  if (s.root == v) return root;
  // A value living inside another: only dense views (same elements) can be returned as a plain tensor.
  if (s.place.channel_offset != 0 ||
      s.place.batch_stride * std::max<int64_t>(val.shape.empty() ? 1 : val.shape[0], 1) != shape_numel(val.shape))
    throw BadConfig("value '" + val.name + "' is a channel slice of '" + graph_.value(s.root).name +
                    "'; read that value instead");
  return root.reshape(val.shape);
}

Tensor Executor::tensor(const std::string& name) {
  return tensor(graph_.at(name));
}

void Executor::set_input(const std::string& name, const Tensor& t) {
  ValueId v = graph_.at(name);
  const Value& val = graph_.value(v);
  if (val.kind != ValueKind::input && val.kind != ValueKind::parameter)
    throw BadConfig("'" + name + "' is not an input or parameter of the graph");
  if (t.shape() != val.shape)
    throw BadInput("input '" + name + "' expects shape " + shape_str(val.shape) + ", got " + shape_str(t.shape()));
  tensor(v).copy_from(t);
}

void Executor::run_phase(Phase phase, const RunContext& run) {
  for (ScheduleStep& s : steps_) {
    if (s.phase != phase) continue;
    s.call.run = &run;
    try {
      s.kernel(s.call);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // a kernel launch or device failure: name the step
      throw DeviceError(std::string(device_name(options_.device)) + ": step '" + graph_.node(s.node).name + "' (" +
                        graph_.node(s.node).op + "): " + e.what());
    }
  }
  if (stream_) synchronize_stream(options_.device, stream_);
}

Tensor Executor::read(const std::string& name) {
  return tensor(name).to(Device::cpu);
}

void Executor::forward(const RunContext& run) {
  run_phase(Phase::forward, run);
}

void Executor::backward(const RunContext& run) {
  if (!options_.training) throw BadConfig("backward() on an executor built without training");
  run_phase(Phase::backward, run);
}

void Executor::update(const RunContext& run) {
  if (!options_.training) throw BadConfig("update() on an executor built without training");
  run_phase(Phase::update, run);
}

std::vector<ValueId> Executor::loss_values() const {
  std::vector<ValueId> out;
  for (NodeId id = 0; id < forward_nodes_; ++id)
    if (op_def(graph_.node(id).op).is_loss) out.push_back(graph_.node(id).outputs[0]);
  return out;
}

double Executor::loss() const {
  double total = 0;
  for (ValueId v : loss_values()) {
    const Node& n = graph_.node(graph_.value(v).producer);
    float value = 0;
    copy_bytes(Device::cpu, &value, options_.device, own_[size_t(slots_[size_t(v)].root)].data(), sizeof(float));
    const OpDef& def = op_def(n.op);
    total += (def.loss_weight ? def.loss_weight(n) : 1.0) * double(value);
  }
  return total;
}

std::string Executor::schedule_table() const {
  std::ostringstream o;
  o << "schedule on " << device_name(options_.device) << ": " << steps_.size() << " steps, arena "
    << arena_bytes() / 1024 << " KiB (" << unshared_bytes() / 1024 << " KiB without reuse)\n";
  for (size_t i = 0; i < steps_.size(); ++i) {
    const ScheduleStep& s = steps_[i];
    const Node& n = graph_.node(s.node);
    o << "  " << i << "\t" << phase_name(s.phase) << "\t" << n.op << "\t" << n.name << "\t->";
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      ValueId v = n.outputs[k];
      const Slot& sl = slots_[size_t(v)];
      ValueId r = sl.root;
      o << " " << graph_.value(v).name << (n.accumulate[k] ? " (+=)" : "") << " [";
      if (r != v)
        o << "in " << graph_.value(r).name
          << (sl.place.channel_offset ? " @c" + std::to_string(sl.place.channel_offset) : "") << ", ";
      if (slots_[size_t(r)].arena_offset >= 0)
        o << "arena+" << slots_[size_t(r)].arena_offset << ", live " << first_use_[size_t(r)] << ".."
          << last_use_[size_t(r)];
      else
        o << "own";
      o << "]";
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace massmap
