// massmap: the command line. Each command lives in its own file; this one dispatches and maps errors to the
// documented exit codes (README, "Exit codes").
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "base/errors.h"
#include "base/interrupt.h"

namespace massmap::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"demo",
       "the whole search on synthetic mammograms: synthesise, train, threshold, map and score (--toy: a toy task)",
       run_demo, demo_usage},
      {"nets",
       "show, initialise, run and differentiate the paper's nets (alexnet, vgg16, googlenet, smallnet, the mapnets)",
       run_nets, nets_usage},
      {"synth", "generate synthetic mammograms (synth-v1) with lesion masks, loose ROI boxes and a manifest", run_synth,
       synth_usage},
      {"train",
       "train a mass / no-mass patch classifier (alexnet, vgg16, googlenet, smallnet, the mapnets) on a dataset",
       run_train, train_usage},
      {"data",
       "a dataset (CBIS-DDSM, mini-MIAS, manifest): check it as training reads it, split its patients, sample "
       "and show its patches",
       run_data, data_usage},
      {"localize", "map the probability of a mass over whole mammograms: map, geometry, overlay, detections",
       run_localize, localize_usage},
      {"classify", "the probability that each mammogram holds a mass (the maximum of its map)", run_classify,
       classify_usage},
      {"evaluate", "score a checkpoint on a split's part: FROC with bootstrap intervals, the paper's measures, report",
       run_evaluate, evaluate_usage},
  };
  return list;
}

}  // namespace massmap::cli

namespace {

void print_overview() {
  std::printf(
      "massmap: probabilistic visual search for masses in mammograms, on a from-scratch CNN engine\n\n"
      "usage: massmap <command> [options]      massmap <command> --help\n\ncommands:\n");
  for (const auto& c : massmap::cli::commands()) std::printf("  %-10s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf(
      "\nexit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 bad configuration, 5 device, "
      "6 numerical, 130 interrupted\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace massmap;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_overview();
    return args.empty() ? int(ExitCode::usage) : 0;
  }
  install_interrupt_handlers();
  try {
    for (const auto& c : cli::commands()) {
      if (c.name != args[0]) continue;
      cli::Args a(std::vector<std::string>(args.begin() + 1, args.end()), c.usage);
      const int code = c.run(a);
      // A signal that came after the command's last poll: its outputs are complete, but the user asked to stop.
      if (code == 0 && interrupted())
        throw Interrupted("a signal arrived as the command finished; its outputs are complete");
      return code;
    }
    throw UsageError("unknown command '" + args[0] + "' (run massmap --help for the list)");
  } catch (const Error& e) {
    std::fprintf(stderr, "massmap: %s: %s\n", e.kind(), e.what());
    return int(e.exit_code());
  } catch (const std::bad_alloc&) {
    // What was being allocated is unknown here (a tensor names itself, see Tensor): say what to do about it.
    std::fprintf(stderr,
                 "massmap: out of resources: out of memory (smaller sizes, batches or images, or more "
                 "memory)\n");
    return int(ExitCode::resources);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "massmap: internal error: %s\n", e.what());
    return int(ExitCode::internal);
  }
}
