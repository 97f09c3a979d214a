// Every registered op is held to the same story (README, "Adding an op"): its backward checked against central
// differences, its GPU kernels against the reference on simt (and cuda), and a benchmark row. The table below says
// where each of those lives, and this test fails when an op is registered without a row here, or when a row names a
// test case or a benchmark that does not exist (the programs are asked for their lists; a benchmark program that
// this build leaves out is skipped and said so). A "-" names no place and must say why.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/op.h"
#include "tests/support/cli.h"

namespace fs = std::filesystem;

namespace {

// A place: "program: test case" (exact name) for tests, "program: filter" (a regex) for benchmark rows, or
// "- why" where the check does not apply.
struct Coverage {
  const char* op;
  const char* backward_ops;  // the ops its backward rule emits, space-separated ("" for none)
  const char* gradient_check;
  const char* gpu_test;
  const char* benchmark;
};

const Coverage kCoverage[] = {
    {"conv2d", "conv2d_grad_data conv2d_grad_filter",
     "conv_test: ref conv gradients match central differences on awkward shapes",
     "conv_test: simt.conv backward filter, every version, accumulate on and off",
     "gpu_conv_bench: ^conv/alexnet_conv2/forward/N:128/ours_register_blocked/"},
    {"linear", "linear_grad_data linear_grad_weight",
     "linear_test: ref linear gradients match central differences, strided rows, accumulate",
     "gpu_gemm_test: simt.linear forward, backward data, backward weight",
     "cpu_conv_bench: ^fc/alexnet_fc6/forward/ours/"},
    {"bias", "bias_grad",
     "linear_test: ref bias: forward in place and into a slice, backward closed form and gradient check",
     "elementwise_test: simt.bias forward and backward", "gpu_memory_bench: ^mem/bias_forward/ours"},
    {"relu", "relu_grad", "elementwise_test: relu gradient check on awkward shapes",
     "elementwise_test: simt.relu backward, accumulate, in place", "gpu_memory_bench: ^mem/relu_forward/ours"},
    {"add", "", "elementwise_test: add's gradient through the executor matches central differences",
     "elementwise_test: simt.add forward with three placements", "gpu_memory_bench: ^mem/add_forward/ours"},
    {"copy", "", "- the identity: its backward is a copy again (concat and add use it)",
     "elementwise_test: simt.copy into a channel slice, accumulate", "gpu_memory_bench: ^mem/copy/ours"},
    {"pool", "pool_grad", "pool_test: max pool gradient check", "pool_test: simt.max pool forward and backward",
     "cpu_lrn_pool_bench: ^lrn_pool/alexnet_pool1/forward/ours/"},
    {"lrn", "lrn_grad", "lrn_test: lrn backward matches the Jacobian and central differences",
     "lrn_test: simt.lrn forward and backward", "cpu_lrn_pool_bench: ^lrn_pool/alexnet_norm1/forward/ours/"},
    {"concat", "concat_grad", "executor_test: executor: whole-graph gradients match central differences",
     "elementwise_test: simt.copy into a channel slice, accumulate",
     "- no kernel of its own: producers write into their slice, or copy's kernel (mem/copy) moves it"},
    {"flatten", "flatten_grad", "executor_test: executor: whole-graph gradients match central differences",
     "- a view: no kernel", "- a view: no kernel"},
    {"dropout", "dropout_grad", "dropout_test: backward redraws the forward mask: dx = dy * y / x",
     "dropout_test: simt.dropout backward redraws the same mask, accumulate",
     "gpu_memory_bench: ^mem/dropout_forward/ours"},
    {"softmax", "softmax_grad", "softmax_test: softmax backward gradient check",
     "softmax_test: simt.softmax forward and backward", "gpu_memory_bench: ^mem/softmax_forward/ours"},
    {"softmax_loss", "softmax_loss_grad", "softmax_test: softmax loss gradient check",
     "softmax_test: simt.softmax loss forward and backward, with ignored locations",
     "gpu_memory_bench: ^mem/softmax_loss_forward/ours"},
    {"batch_norm", "batch_norm_grad", "batch_norm_test: ref batch_norm gradients match central differences",
     "batch_norm_test: simt.batch_norm forward and backward", "gpu_memory_bench: ^mem/batch_norm_forward/ours"},
    {"sgd_update", "", "- the update itself: nothing is differentiated through it",
     "sgd_test: simt.sgd update with momentum and decay", "gpu_memory_bench: ^mem/sgd_update/ours"},
};

std::pair<std::string, std::string> split_place(const std::string& place) {
  const size_t colon = place.find(": ");
  REQUIRE_MESSAGE(colon != std::string::npos, "'" << place << "' is neither 'program: name' nor '- why'");
  return {place.substr(0, colon), place.substr(colon + 2)};
}

// What a program lists, one entry per line (its test cases, or its benchmark rows matching a filter).
std::set<std::string> listed(const std::string& command) {
  const auto r = testing_support::run_shell(command);
  REQUIRE_MESSAGE(r.code == 0, command << "\n" << r.output);
  std::set<std::string> lines;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

bool is_reason(const std::string& place) {
  return place.rfind("- ", 0) == 0 && place.size() > 10;
}

}  // namespace

TEST_CASE("op coverage: every registered op has a row, and every op of a row is registered") {
  std::set<std::string> covered;
  for (const Coverage& c : kCoverage) {
    covered.insert(c.op);
    std::istringstream backward(c.backward_ops);
    for (std::string op; backward >> op;) covered.insert(op);
  }
  const std::vector<std::string> ops = massmap::registered_ops();
  REQUIRE(ops.size() >= 20);
  for (const std::string& op : ops)
    CHECK_MESSAGE(covered.count(op), "op '" << op << "' (engine/ops/" << massmap::op_def(op).family
                                            << ".cpp) has no row in tests/op_coverage_test.cpp");
  for (const std::string& op : covered) CHECK_MESSAGE(massmap::op_exists(op), "'" << op << "' is no registered op");
  // A forward op with a backward rule names the ops that rule emits, so none is left without its check.
  for (const Coverage& c : kCoverage) {
    CAPTURE(c.op);
    CHECK((std::string(c.backward_ops).empty() || bool(massmap::op_def(c.op).backward)));
  }
}

// The README's file count includes the family header: an op's name is spelled there once, as an ops:: constant
// (tools/check-attr-keys.sh keeps literal names out of the code that uses it).
TEST_CASE("op coverage: every registered op's name is declared in its family's header") {
  for (const std::string& op : massmap::registered_ops()) {
    const std::string header = "engine/ops/" + massmap::op_def(op).family + ".h";
    std::ifstream in(fs::path(MASSMAP_SOURCE_DIR) / header);
    REQUIRE_MESSAGE(in, header << " (the family of '" << op << "') does not exist");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string declaration = "inline constexpr char " + op + "[] = \"" + op + "\";";
    CHECK_MESSAGE(text.find(declaration) != std::string::npos, header << " lacks: " << declaration);
  }
}

TEST_CASE("op coverage: every named test case and benchmark row exists") {
  const fs::path bin = fs::path(MASSMAP_BUILD_DIR) / "bin";
  std::map<std::string, std::set<std::string>> cases;  // program -> its test cases
  int benchmarks = 0;
  for (const Coverage& c : kCoverage) {
    CAPTURE(c.op);
    for (const char* test : {c.gradient_check, c.gpu_test}) {
      if (is_reason(test)) continue;
      const auto [program, name] = split_place(test);
      REQUIRE_MESSAGE(fs::exists(bin / program), program << " is not built");
      if (!cases.count(program)) cases[program] = listed((bin / program).string() + " --list-test-cases");
      CHECK_MESSAGE(cases[program].count(name), program << " has no test case '" << name << "'");
    }
    if (is_reason(c.benchmark)) continue;
    const auto [program, filter] = split_place(c.benchmark);
    if (!fs::exists(bin / program)) {
      MESSAGE(program << " is not built here: the row of " << c.op << " is not checked");
      continue;
    }
    const auto rows =
        listed((bin / program).string() + " --benchmark_list_tests=true --benchmark_filter='" + filter + "'");
    CHECK_MESSAGE(!rows.empty(), program << " has no benchmark row matching '" << filter << "'");
    ++benchmarks;
  }
#ifdef MASSMAP_BENCHMARKS_BUILT
  CHECK(benchmarks > 0);  // the CPU benchmarks at least are built with the tests
#else
  CHECK(benchmarks == 0);
  MESSAGE("this build has no benchmark programs (MASSMAP_BUILD_BENCH=OFF or no Google Benchmark): rows unchecked");
#endif
}

TEST_CASE("op coverage: the table's places are well formed") {
  for (const Coverage& c : kCoverage)
    for (const char* place : {c.gradient_check, c.gpu_test, c.benchmark}) {
      CAPTURE(c.op);
      CHECK_MESSAGE((is_reason(place) || std::string(place).find(": ") != std::string::npos), place);
    }
  CHECK_FALSE(is_reason("- no"));  // a reason says why
}
