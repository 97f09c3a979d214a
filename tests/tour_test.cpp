// docs/tour.md cannot rot: every "$ " command of its console blocks runs here, from a folder where build/ is this
// build, and must exit 0 printing every output line the tour shows under it, in order ("..." stands for lines left
// out; runs of spaces and tabs compare as one space). Every file path the tour names must exist in the checkout.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli.h"

namespace fs = std::filesystem;
using testing_support::contains;
using testing_support::TempDir;

namespace {

struct TourCommand {
  int line = 0;  // in docs/tour.md
  std::string command;
  std::vector<std::string> shown;  // output lines the tour shows, "..." for lines left out
};

std::string tour_path() {
  return std::string(MASSMAP_SOURCE_DIR) + "/docs/tour.md";
}

std::string squeeze(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool space = c == ' ' || c == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<TourCommand> parse_tour(const std::string& text) {
  std::vector<TourCommand> commands;
  std::istringstream in(text);
  std::string line;
  bool console = false;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.rfind("```", 0) == 0) {
      console = !console && line == "```console";
      continue;
    }
    if (!console) continue;
    if (line.rfind("$ ", 0) == 0) {
      commands.push_back({number, line.substr(2), {}});
    } else {
      REQUIRE_MESSAGE(!commands.empty(), "docs/tour.md:" << number << ": output before any command");
      commands.back().shown.push_back(line);
    }
  }
  return commands;
}

// Whether every shown line appears in `output`, in order, each as a whole line; `missing` gets the first that does not.
bool shows(const std::string& output, const std::vector<std::string>& shown, std::string& missing) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string l; std::getline(in, l);) lines.push_back(squeeze(l));
  size_t at = 0;
  for (const std::string& s : shown) {
    if (s == "...") continue;
    const std::string want = squeeze(s);
    while (at < lines.size() && lines[at] != want) ++at;
    if (at == lines.size()) {
      missing = s;
      return false;
    }
    ++at;
  }
  return true;
}

}  // namespace

TEST_CASE("tour: the comparison of shown and printed lines can fail") {
  std::string missing;
  CHECK(shows("a\nb  c\nd\n", {"a", "...", "b c"}, missing));
  CHECK_FALSE(shows("a\nb c\n", {"b c", "a"}, missing));  // order matters
  CHECK(missing == "a");
  CHECK_FALSE(shows("a b c\n", {"a b"}, missing));  // whole lines only
}

TEST_CASE("tour: every command runs and prints what the tour shows") {
  const std::string text = testing_support::read_text(tour_path());
  REQUIRE_MESSAGE(!text.empty(), tour_path() << " is missing or empty");
  const std::vector<TourCommand> commands = parse_tour(text);
  REQUIRE(commands.size() >= 8);
  TempDir d;
  fs::create_directory_symlink(MASSMAP_BUILD_DIR, d.path / "build");
  int ran = 0;
  for (const TourCommand& c : commands) {
    CAPTURE(c.line);
    CAPTURE(c.command);
    const std::string program = c.command.substr(0, c.command.find(' '));
    // Benchmarks are optional (Google Benchmark; nvcc and cuDNN for the GPU ones): a tour command of one that this
    // build leaves out is skipped, and says so.
    if (!fs::exists(d.path / program) && program.size() > 6 && program.substr(program.size() - 6) == "_bench") {
      MESSAGE("docs/tour.md:" << c.line << ": " << program << " is not built here: skipped");
      continue;
    }
    const auto r = testing_support::run_shell("cd '" + d.path.string() + "' && " + c.command);
    INFO(r.output);
    CHECK(r.code == 0);
    std::string missing;
    CHECK_MESSAGE(shows(r.output, c.shown, missing), "docs/tour.md:" << c.line << ": not printed: " << missing);
    ++ran;
  }
  CHECK(ran >= 6);
}

TEST_CASE("tour: every file it names exists") {
  const std::string text = testing_support::read_text(tour_path());
  const std::regex path(R"(`((base|kernels|engine|nets|data|apps|bench|tests|tools|docs)/[A-Za-z0-9_./-]*)`)");
  std::set<std::string> named;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), path); it != std::sregex_iterator(); ++it)
    named.insert((*it)[1].str());
  CHECK(named.size() >= 15);
  for (const std::string& p : named)
    CHECK_MESSAGE(fs::exists(fs::path(MASSMAP_SOURCE_DIR) / p), "docs/tour.md names " << p << ", which does not exist");
}
