// Typed attributes (engine/typed_attrs.h): every family's struct survives typed -> Attrs -> typed, and a node whose
// string-keyed attributes do not fit its struct is refused naming the node, its op and the key. The keys are taken
// from the structs themselves, so these checks cover every field without spelling one.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "base/errors.h"
#include "engine/op.h"
#include "engine/ops/concat.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "engine/ops/lrn.h"
#include "engine/ops/pool.h"
#include "engine/ops/sgd.h"
#include "engine/ops/softmax.h"
#include "engine/typed_attrs.h"
#include "engine/validate.h"

using namespace massmap;

namespace {

Node node_with(const std::string& op, Attrs attrs) {
  Node n;
  n.name = "layer7";
  n.op = op;
  n.attrs = std::move(attrs);
  return n;
}

// The BadConfig message of reading n's attributes as a T ("" when they are accepted).
template <class T>
std::string refusal(const Node& n) {
  try {
    read_attrs<T>(n);
  } catch (const BadConfig& e) {
    return e.what();
  }
  return "";
}

bool names(const std::string& message, const std::string& op, const std::string& key) {
  return message.find("node 'layer7' (" + op + ")") != std::string::npos &&
         message.find("'" + key + "'") != std::string::npos;
}

// `changed` differs from T's defaults in every field: then a field missing from fields() or written under one key
// and read under another shows up as a difference.
template <class T>
void check_round_trip(const std::string& op, const T& changed) {
  const Attrs written = write_attrs(changed);
  const Attrs defaults = write_attrs(T{});
  CHECK(written.items().size() == defaults.items().size());
  for (const auto& [key, value] : defaults.items()) CHECK_MESSAGE(written.items().at(key) != value, op << " " << key);
  const T back = read_attrs<T>(node_with(op, written));
  CHECK(write_attrs(back) == written);
}

// Every key of a valid T, given a value of another type, an integer field given a fraction, a named choice given a
// name it does not know: each refused naming the key. And an unknown key next to the known ones.
template <class T>
void check_refusals(const std::string& op, const T& valid = T{}) {
  const Attrs good = write_attrs(valid);
  CHECK(refusal<T>(node_with(op, good)).empty());
  for (const auto& [key, value] : good.items()) {
    std::vector<AttrValue> wrong = {std::vector<int64_t>{1, 2}};
    if (std::holds_alternative<std::string>(value)) wrong.push_back(std::string("no_such_choice"));
    if (std::holds_alternative<std::string>(value)) wrong.push_back(int64_t(7));
    if (!std::holds_alternative<std::string>(value)) wrong.push_back(std::string("7"));
    if (std::holds_alternative<int64_t>(value)) wrong.push_back(1.5);
    for (const AttrValue& v : wrong) {
      Attrs bad = good;
      bad.set(key, v);
      const std::string m = refusal<T>(node_with(op, bad));
      CHECK_MESSAGE(names(m, op, key), op << " " << key << "=" << attr_value_str(v) << ": '" << m << "'");
    }
  }
  Attrs typo = good;
  const std::string unknown = good.items().begin()->first + "s";
  typo.set(unknown, int64_t(1));
  const std::string m = refusal<T>(node_with(op, typo));
  CHECK_MESSAGE(names(m, op, unknown), m);
  CHECK_MESSAGE(m.find("is unknown") != std::string::npos, m);
}

}  // namespace

TEST_CASE("typed attributes: each family's struct round-trips through Attrs") {
  ConvAttrs conv;
  conv.num_output = 64;
  conv.kernel_h = 3;
  conv.kernel_w = 5;
  conv.stride = 2;
  conv.pad = 1;
  conv.groups = 2;
  conv.relu = true;
  check_round_trip(ops::conv2d, conv);
  const ConvAttrs back = read_attrs<ConvAttrs>(node_with(ops::conv2d, write_attrs(conv)));
  CHECK(back.num_output == 64);
  CHECK(back.kernel_w == 5);
  CHECK(back.relu);

  LinearAttrs linear;
  linear.num_output = 10;
  check_round_trip(ops::linear, linear);

  PoolAttrs pool;
  pool.method = kernels::PoolMethod::avg;
  pool.kernel = 3;
  pool.stride = 2;
  pool.pad = 1;
  pool.global = true;
  check_round_trip(ops::pool, pool);
  CHECK(read_attrs<PoolAttrs>(node_with(ops::pool, write_attrs(pool))).method == kernels::PoolMethod::avg);

  LrnAttrs lrn;
  lrn.size = 3;
  lrn.alpha = 2e-4;
  lrn.beta = 0.5;
  lrn.k = 2;
  check_round_trip(ops::lrn, lrn);

  DropoutAttrs dropout;
  dropout.ratio = 0.25;
  dropout.seed = int64_t(1) << 40;  // seeds are 64-bit
  check_round_trip(ops::dropout, dropout);
  CHECK(read_attrs<DropoutAttrs>(node_with(ops::dropout, write_attrs(dropout))).seed == int64_t(1) << 40);

  SoftmaxLossAttrs loss;
  loss.loss_weight = 0.3;
  loss.ignore_label = 255;
  check_round_trip(ops::softmax_loss, loss);

  ConcatGradAttrs slice;
  slice.channel_offset = 96;
  check_round_trip(ops::concat_grad, slice);

  SgdAttrs sgd;
  sgd.lr_mult = 2;
  sgd.decay_mult = 0;
  check_round_trip(ops::sgd_update, sgd);
}

TEST_CASE("typed attributes: a wrong type, an unknown key or a missing one is refused naming node, op and key") {
  check_refusals<ConvAttrs>(ops::conv2d);
  check_refusals<LinearAttrs>(ops::linear);
  PoolAttrs pool;
  pool.kernel = 2;
  check_refusals(ops::pool, pool);
  check_refusals<LrnAttrs>(ops::lrn);
  check_refusals<DropoutAttrs>(ops::dropout);
  check_refusals<SoftmaxLossAttrs>(ops::softmax_loss);
  check_refusals<ConcatGradAttrs>(ops::concat_grad);
  check_refusals<SgdAttrs>(ops::sgd_update);

  const std::string missing = refusal<ConcatGradAttrs>(node_with(ops::concat_grad, {}));
  CHECK_MESSAGE(names(missing, ops::concat_grad, "channel_offset"), missing);
  CHECK(missing.find("is missing") != std::string::npos);

  // A bool is 0 or 1; an int field refuses what does not fit an int.
  ConvAttrs conv;
  conv.relu = true;
  Attrs two = write_attrs(conv);
  const Attrs defaults = write_attrs(ConvAttrs{});
  for (const auto& [key, value] : defaults.items())
    if (two.items().at(key) != value) two.set(key, int64_t(2));
  CHECK(refusal<ConvAttrs>(node_with(ops::conv2d, two)).find("must be 0 or 1") != std::string::npos);
  LinearAttrs linear;
  linear.num_output = 1;
  const Attrs one = write_attrs(linear);
  Attrs huge = one;
  for (const auto& item : one.items()) huge.set(item.first, int64_t(1) << 40);
  CHECK(refusal<LinearAttrs>(node_with(ops::linear, huge)).find("out of range") != std::string::npos);
}

TEST_CASE("typed attributes: values that make no sense are refused with the node's attributes") {
  const auto refused = [](const std::string& op, const Attrs& attrs, const std::function<std::string(const Node&)>& r,
                          const char* why) {
    const std::string m = r(node_with(op, attrs));
    CHECK_MESSAGE(m.find("node 'layer7' (" + op + ")") != std::string::npos, m);
    CHECK_MESSAGE(m.find(why) != std::string::npos, m);
  };
  ConvAttrs conv;
  conv.stride = 0;
  refused(ops::conv2d, write_attrs(conv), refusal<ConvAttrs>, "stride");
  PoolAttrs pool;
  refused(ops::pool, write_attrs(pool), refusal<PoolAttrs>, "kernel must be >= 1");
  LrnAttrs lrn;
  lrn.size = 4;
  refused(ops::lrn, write_attrs(lrn), refusal<LrnAttrs>, "size must be odd");
  DropoutAttrs dropout;
  dropout.ratio = 1;
  refused(ops::dropout, write_attrs(dropout), refusal<DropoutAttrs>, "ratio must be in [0, 1), is 1");
}

TEST_CASE("typed attributes: Graph::add_node and the validator check every forward node's attributes") {
  Graph g;
  const ValueId x = g.add_input("data", {1, 4, 8, 8});
  const ValueId w = g.add_param("conv.weight", {8, 4, 3, 3});
  ConvAttrs conv;
  conv.num_output = 8;
  Attrs typo = write_attrs(conv);
  const std::string misspelt = "strides";  // as a graph file could bring it
  typo.set(misspelt, int64_t(2));
  try {
    g.add(ops::conv2d, "conv", {x, w}, typo);
    FAIL("an unknown attribute was accepted");
  } catch (const BadConfig& e) {
    CHECK(std::string(e.what()).find("node 'conv' (conv2d): attribute 'strides' is unknown") != std::string::npos);
  }
  conv.num_output = 16;
  CHECK_THROWS_WITH_AS(g.add(ops::conv2d, "conv", {x, w}, write_attrs(conv)),
                       doctest::Contains("weight has 8 filters, num_output is 16"), BadConfig);
  conv.num_output = 8;
  conv.kernel_h = conv.kernel_w = 5;
  CHECK_THROWS_WITH_AS(g.add(ops::conv2d, "conv", {x, w}, write_attrs(conv)), doctest::Contains("kernel is 5x5"),
                       BadConfig);
  CHECK_THROWS_WITH_AS(g.add(ops::relu, "relu", {x}, write_attrs(conv)), doctest::Contains("takes no attributes"),
                       BadConfig);

  // Every op that takes attributes refuses an unknown one when it is added.
  for (const std::string& op : registered_ops()) {
    const OpDef& def = op_def(op);
    if (!def.check_attrs || !def.infer) continue;
    const std::string no_such_attribute = "no_such_attribute";
    Attrs unknown;
    unknown.set(no_such_attribute, int64_t(1));
    Graph h;
    const ValueId in = h.add_input("x", {1, 4, 8, 8});
    CHECK_THROWS_WITH_AS(h.add(op, "node", {in}, unknown), doctest::Contains("'no_such_attribute' is unknown"),
                         BadConfig);
  }

  // A node whose attributes were changed after it was added fails validation.
  const ValueId y = g.add(ops::dropout, "drop", {x}, write_attrs(DropoutAttrs{}));
  DropoutAttrs bad;
  bad.ratio = 2;
  g.node(g.value(y).producer).attrs = write_attrs(bad);
  CHECK_THROWS_WITH_AS(validate_graph(g), doctest::Contains("node 'drop' (dropout): ratio must be in [0, 1)"),
                       BadConfig);
}
