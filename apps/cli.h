#pragma once
// Command-line plumbing shared by every massmap command: options of the form --name value or --flag, --help,
// and rejection of unknown options (a typo must not be ignored silently).
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace massmap::cli {

class Args {
 public:
  // argv holds the command's arguments (after the command name); usage is printed for --help.
  Args(std::vector<std::string> argv, std::string usage);
  bool help() const { return help_; }
  const std::string& usage() const { return usage_; }

  std::string str(const std::string& name, const std::string& fallback);
  std::string required(const std::string& name);
  // Integer and decimal options are parsed whole (no "0x10", "1e3" or "5 " for an integer) and checked against
  // [lo, hi] before anything converts them: a UsageError names the option and its range, never a wrapped value.
  int64_t integer(const std::string& name, int64_t fallback, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX);
  // For options that hold an int (sizes, counts).
  int integer32(const std::string& name, int fallback, int lo, int hi) { return int(integer(name, fallback, lo, hi)); }
  double number(const std::string& name, double fallback, double lo = -HUGE_VAL, double hi = HUGE_VAL);
  bool flag(const std::string& name);
  // Every value of an option that may be repeated (--csv A --csv B), in order. The single-value accessors above
  // reject a repeated option instead of keeping one of its values silently.
  std::vector<std::string> list(const std::string& name);
  const std::vector<std::string>& positional() const { return positional_; }
  // Removes and returns the first positional argument ("" when there is none): commands with subcommands
  // (massmap nets show NAME) take theirs this way, so finish() still rejects any left over.
  std::string shift_positional();
  // Replaces the text printed with usage errors (a subcommand's own usage).
  void set_usage(std::string usage) { usage_ = std::move(usage); }
  // Throws UsageError naming any option that no accessor asked for.
  void finish() const;

 private:
  std::string usage_;
  bool help_ = false;
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_, used_;
  std::vector<std::string> positional_;
};

struct Command {
  std::string name, summary;
  int (*run)(Args&);
  const char* usage;
};

// "AxB" (or "A" meaning "AxA" when single_ok), each part a whole integer in [lo, hi]; UsageError naming the option,
// the form (e.g. "S or HxW") and the range.
std::pair<int, int> parse_int_pair(const std::string& option, const std::string& text, int lo, int hi, bool single_ok,
                                   const char* form);

// UsageError when the file `output` (option --output_option) is one of `inputs` ({option or what, path}), the
// same file under any path: writing it would destroy the input (nets forward --output X --images X did, silently).
void check_output_not_input(const std::string& output_option, const std::string& output,
                            const std::vector<std::pair<std::string, std::string>>& inputs);

// BadInput naming --option unless `path` can be written as a file (its folder exists and is writable, and the path
// is no folder): called before the work, so that a typo in an output path costs no minutes of work first.
void check_output_file(const std::string& option, const std::string& path);

const std::vector<Command>& commands();
extern const char* const demo_usage;
int run_demo(Args& args);
extern const char* const nets_usage;
int run_nets(Args& args);
extern const char* const synth_usage;
int run_synth(Args& args);
extern const char* const data_usage;
int run_data(Args& args);
extern const char* const train_usage;
int run_train(Args& args);
extern const char* const localize_usage;
int run_localize(Args& args);
extern const char* const classify_usage;
int run_classify(Args& args);
extern const char* const evaluate_usage;
int run_evaluate(Args& args);

}  // namespace massmap::cli
