#pragma once
// Running the real massmap program from a test: its exit code and everything it printed, and a temporary folder
// removed afterwards.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

namespace testing_support {

struct CliResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command line in a subshell: its exit code and everything it printed.
inline CliResult run_shell(const std::string& command) {
  namespace fs = std::filesystem;
  const std::string log = fs::temp_directory_path() / ("massmap-cli-" + std::to_string(getpid()) + ".log");
  const std::string cmd = "(" + command + ") >" + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  fs::remove(log);
  return r;
}

// Runs `massmap ARGS` (the binary this test was built with) through the shell, in a subshell after the shell text
// `setup` when given: "ulimit -v 3000000 && exec" (limits for massmap alone), "exec timeout -s KILL 60".
inline CliResult run_massmap(const std::string& args, const std::string& setup = "") {
  const std::string program = std::string(MASSMAP_BINARY) + " " + args;
  return run_shell(setup.empty() ? program : setup + " " + program);
}

// A file's bytes, as a command wrote them ("" when it cannot be read).
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A JSON file a command wrote; the test stops when it is missing.
inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

inline bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

struct TempDir {
  std::filesystem::path path;
  TempDir()
      : path(std::filesystem::temp_directory_path() /
             ("massmap-test-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()))) {
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace testing_support
