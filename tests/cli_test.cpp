// The massmap program as a user runs it: --help, exit codes of the documented table, the run directory of the
// demo, resume equal to an uninterrupted run, and Ctrl-C saving a checkpoint.
#include "tests/support/cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "engine/safetensors.h"
#include "tests/support/check.h"

namespace fs = std::filesystem;

namespace {

using Result = testing_support::CliResult;
using testing_support::contains;
using testing_support::TempDir;

Result run(const std::string& args) {
  return testing_support::run_massmap(args);
}

const std::string kSmall = " --train 64 --test 32 --batch 16 --width 4 ";

}  // namespace

TEST_CASE("cli: help and usage errors") {
  Result help = run("--help");
  CHECK(help.code == 0);
  CHECK(contains(help.output, "demo"));
  CHECK(contains(help.output, "exit codes"));
  Result demo_help = run("demo --help");
  CHECK(demo_help.code == 0);
  CHECK(contains(demo_help.output, "--iterations"));
  CHECK(run("").code == 2);
  Result unknown = run("frobnicate");
  CHECK(unknown.code == 2);
  CHECK(contains(unknown.output, "unknown command 'frobnicate'"));
  Result bad_option = run("demo --toy --iteratons 5");
  CHECK(bad_option.code == 2);
  CHECK(contains(bad_option.output, "--iteratons"));
  Result not_a_number = run("demo --toy --iterations five");
  CHECK(not_a_number.code == 2);
  CHECK(contains(not_a_number.output, "five"));
  Result twice = run("demo --toy --iterations 5 --iterations=6");  // neither value is silently dropped
  CHECK(twice.code == 2);
  CHECK(contains(twice.output, "--iterations given 2 times"));
}

TEST_CASE("cli: a missing device and a missing file get their exit codes and say what exists") {
  TempDir dir;
  Result cuda = run("demo --device cuda --out " + dir.path.string());
  CHECK(cuda.code == 5);
  CHECK(contains(cuda.output, "available: cpu"));
  Result missing = run("demo --resume " + (dir.path / "nope.safetensors").string() + " --out " + dir.path.string());
  CHECK(missing.code == 3);
  CHECK(contains(missing.output, "nope.safetensors"));
  Result diverge = run("demo --toy --iterations 12 --lr 1e8" + kSmall + "--out " + dir.path.string());
  CHECK(diverge.code == 6);
  CHECK(contains(diverge.output, "loss is"));
}

TEST_CASE("cli: the demo leaves a run directory, and resuming equals running straight through") {
  TempDir dir;
  const fs::path straight = dir.path / "straight", first = dir.path / "first", second = dir.path / "second";
  Result a = run("demo --toy --iterations 10" + kSmall + "--out " + straight.string());
  REQUIRE_MESSAGE(a.code == 0, a.output);
  CHECK(contains(a.output, "held-out accuracy"));
  CHECK(contains(a.output, "conv1"));  // the layer table
  for (const char* f : {"config.json", "metrics.json", "checkpoint.safetensors"}) CHECK(fs::exists(straight / f));
  auto config = nlohmann::json::parse(std::ifstream(straight / "config.json"));
  CHECK(config["solver"]["momentum"].get<double>() == doctest::Approx(0.9));
  auto metrics = nlohmann::json::parse(std::ifstream(straight / "metrics.json"));
  REQUIRE(metrics.size() >= 2);  // 64 images / 16 per batch: a report every 4 iterations and at the end
  CHECK(metrics.back()["iteration"].get<int>() == 10);

  REQUIRE(run("demo --toy --iterations 6" + kSmall + "--out " + first.string()).code == 0);
  Result resumed = run("demo --toy --iterations 10" + kSmall + "--out " + second.string() + " --resume " +
                       (first / "checkpoint.safetensors").string());
  REQUIRE_MESSAGE(resumed.code == 0, resumed.output);
  CHECK(contains(resumed.output, "resumed from"));
  Result other_seed = run("demo --toy --iterations 10 --seed 2" + kSmall + "--out " + second.string() + " --resume " +
                          (first / "checkpoint.safetensors").string());
  CHECK(other_seed.code == 4);
  CHECK(contains(other_seed.output, "--seed 1"));
  auto x = massmap::read_safetensors((straight / "checkpoint.safetensors").string());
  auto y = massmap::read_safetensors((second / "checkpoint.safetensors").string());
  CHECK(x.metadata.at("iteration") == "10");
  REQUIRE(x.tensors.size() == y.tensors.size());
  for (const auto& [name, t] : x.tensors) CHECK_MESSAGE(t.to_vector() == y.tensors.at(name).to_vector(), name);
}

TEST_CASE("cli: Ctrl-C saves a checkpoint and exits with 130") {
  TempDir dir;
  const std::string out = (dir.path / "run").string(), log = (dir.path / "log").string();
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(MASSMAP_BINARY, MASSMAP_BINARY, "demo", "--toy", "--iterations", "1000000", "--train", "64", "--test", "32",
          "--batch", "16", "--width", "4", "--out", out.c_str(), (char*)nullptr);
    _exit(127);
  }
  // Wait until training is under way (the first report lands in metrics.json), then interrupt.
  for (int i = 0; i < 600 && !fs::exists(fs::path(out) / "metrics.json"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  const fs::path checkpoint = fs::path(out) / "checkpoint.safetensors";
  REQUIRE(fs::exists(checkpoint));
  auto file = massmap::read_safetensors(checkpoint.string());
  CHECK(std::stoll(file.metadata.at("iteration")) > 0);
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(contains(ss.str(), "--resume"));
}
