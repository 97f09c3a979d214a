#include "engine/op.h"

#include <map>
#include <mutex>

#include "base/errors.h"
#include "engine/ops/builtin.h"

namespace massmap {

namespace {
struct Registry {
  std::map<std::string, OpDef> ops;
  std::string family;  // of the ops being registered
  std::map<std::pair<std::string, Device>, Kernel> kernels;
};

// Registration writes here directly; lookups go through registry(), which fills it once on first use (static
// registrar objects in a static library would be dropped by the linker).
Registry& storage() {
  static Registry r;
  return r;
}

Registry& registry() {
  static std::once_flag once;
  std::call_once(once, [] { register_builtin_ops(); });
  return storage();
}
}  // namespace

void begin_family(const std::string& family) {
  storage().family = family;
}

void register_op(OpDef def) {
  auto& ops = storage().ops;
  std::string name = def.name;
  def.family = storage().family;
  if (ops.count(name)) throw Error("op '" + name + "' registered twice");
  ops.emplace(name, std::move(def));
}

void register_kernel(const std::string& op, Device device, Kernel kernel) {
  storage().kernels[{op, device}] = kernel;
}

std::vector<std::string> registered_ops() {
  std::vector<std::string> names;
  for (const auto& entry : registry().ops) names.push_back(entry.first);
  return names;
}

bool op_exists(const std::string& op) {
  return registry().ops.count(op) != 0;
}

const OpDef& op_def(const std::string& op) {
  auto& ops = registry().ops;
  auto it = ops.find(op);
  if (it == ops.end()) {
    std::string known;
    for (const auto& [name, def] : ops) known += (known.empty() ? "" : ", ") + name;
    throw BadConfig("unknown op '" + op + "' (known: " + known + ")");
  }
  return it->second;
}

Kernel find_kernel(const std::string& op, Device device) {
  auto& kernels = registry().kernels;
  auto it = kernels.find({op, device});
  if (it == kernels.end())
    throw DeviceError(std::string("op '") + op + "' has no kernel on device '" + device_name(device) + "'");
  return it->second;
}

void check_node_attrs(const Node& node) {
  const OpDef& def = op_def(node.op);
  if (def.check_attrs)
    def.check_attrs(node);
  else if (!node.attrs.empty())
    throw BadConfig("node '" + node.name + "' (" + node.op + ") takes no attributes, has " + node.attrs.str());
}

void shape_error(const Node& node, const std::vector<Shape>& inputs, const std::string& why) {
  std::string shapes;
  for (const Shape& s : inputs) shapes += (shapes.empty() ? "" : ", ") + shape_str(s);
  throw BadConfig("node '" + node.name + "' (" + node.op + ") with inputs [" + shapes + "]: " + why);
}

}  // namespace massmap
