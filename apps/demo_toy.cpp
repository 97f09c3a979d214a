// massmap demo --toy: the small CNN on the generated blob-versus-bar task, in under a minute: prints the layer
// table and the held-out accuracy, and leaves a run directory. The tests and the exit-code checks use it.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/cli.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/interrupt.h"
#include "base/text.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_metadata.h"
#include "nets/presets.h"
#include "nets/smallnet.h"
#include "nets/toy_shapes.h"
#include "nets/train_classifier.h"

namespace massmap::cli {

const char* const toy_demo_usage = R"(usage: massmap demo --toy [options]

Trains the small CNN (conv, relu, LRN, max pool, conv, relu, max pool, linear, dropout, linear, softmax loss)
with SGD on generated 24x24 images, round blobs (class 1) against thin bars (class 0) in textured noise, and
reports its accuracy on held-out images. The run directory receives config.json (the effective settings),
metrics.json (loss and accuracy per epoch) and checkpoint.safetensors. Ctrl-C saves a checkpoint first;
--resume continues from it exactly.

options:
  --out DIR          run directory (default runs/demo)
  --iterations N     SGD iterations (default 300)
  --batch N          batch size (default 32)
  --train N          training images (default 2048)
  --test N           held-out images (default 512)
  --width N          conv1 filters; conv2 has 2N, fc3 4N (default 16)
  --lr X             base learning rate, divided by 10 every 200 iterations (default 0.01)
  --seed S           seed of the data, the initialisation, the batch order and dropout (default 1)
  --device D         cpu, cuda (our CUDA kernels on a GPU) or simt (the same CUDA kernels run on the host:
                     slow, for checking and learning); default: cuda when a GPU is present, else cpu
  --resume FILE      continue training from a checkpoint of this command
  --show-schedule    print the compiled training schedule and its memory plan
)";

int run_toy_demo(Args& a) {
  if (a.help()) {
    std::printf("%s", toy_demo_usage);
    return 0;
  }
  const std::string out = a.str("out", "runs/demo");
  const int64_t iterations = a.integer("iterations", nets::smallnet_solver().max_iter, 1, metadata::kMaxIteration);
  nets::SmallNetOptions net;
  net.batch = a.integer32("batch", 32, 1, 4096);
  net.width = a.integer32("width", 16, 1, 1024);
  const int64_t train_count = a.integer("train", 2048, 1, 100000), test_count = a.integer("test", 512, 1, 100000);
  const uint64_t seed = uint64_t(a.integer("seed", 1, 0, INT64_MAX));
  net.seed = seed;
  SolverConfig solver_config = nets::smallnet_solver();
  solver_config.lr.base_lr = float(a.number("lr", solver_config.lr.base_lr, 0, 1e30));
  solver_config.max_iter = iterations;
  const std::string device_arg = a.str("device", "");
  const std::string resume = a.str("resume", "");
  const bool show_schedule = a.flag("show-schedule");
  a.finish();
  if (train_count < net.batch)
    throw UsageError("--train " + std::to_string(train_count) + " is less than one batch (--batch " +
                     std::to_string(net.batch) + ")");

  ExecutorOptions exec_options;
  exec_options.training = true;
  exec_options.device = device_arg.empty() ? default_device() : parse_device(device_arg);

  make_output_dir(out);
  nlohmann::json config = {{"command", "demo"},
                           {"net",
                            {{"builder", "smallnet"},
                             {"batch", net.batch},
                             {"width", net.width},
                             {"input", net.input},
                             {"classes", net.classes}}},
                           {"data", {{"task", "toy-shapes"}, {"train", train_count}, {"test", test_count}}},
                           {"solver", solver_config_to_json(solver_config)},
                           {"seed", seed},
                           {"device", device_name(exec_options.device)}};
  write_file_atomic(out + "/config.json", [&](std::ostream& o) { o << config.dump(2) << "\n"; });

  nets::ToyShapesOptions data_options;
  data_options.seed = seed;
  data_options.count = int(train_count);
  nets::ToyShapes train_set = nets::make_toy_shapes(data_options);
  data_options.seed = seed + 1000003;  // held-out images come from another stream
  data_options.count = int(test_count);
  nets::ToyShapes test_set = nets::make_toy_shapes(data_options);

  Graph graph = nets::build_smallnet(net);
  std::printf("%s\n", graph.layer_table().c_str());
  Executor executor(std::move(graph), exec_options);
  if (show_schedule) std::printf("%s\n", executor.schedule_table().c_str());
  Solver solver(executor, solver_config);
  solver.initialise_parameters(seed);
  if (!resume.empty()) {
    auto meta = load_checkpoint(resume, executor, &solver);
    // The batch order and the data come from the seed: resuming with another one would not continue the run.
    if (meta.count("seed") && meta.at("seed") != std::to_string(seed))
      throw BadConfig(resume + " was trained with --seed " + meta.at("seed") + "; pass the same seed to resume it");
    std::printf("resumed from %s at iteration %lld\n", resume.c_str(), (long long)solver.iteration());
  }

  nlohmann::json metrics = nlohmann::json::array();
  nets::TrainLoopOptions loop;
  loop.seed = seed;
  loop.iterations = iterations;
  loop.stop = &interrupt_flag();
  loop.on_report = [&](const nets::EpochReport& r) {
    std::fprintf(stderr, "iteration %5lld  train loss %.4f  held-out accuracy %.2f%%\n", (long long)r.iteration,
                 r.train_loss, 100 * r.held_out_accuracy);
    metrics.push_back(
        {{"iteration", r.iteration}, {"train_loss", r.train_loss}, {"held_out_accuracy", r.held_out_accuracy}});
    write_file_atomic(out + "/metrics.json", [&](std::ostream& o) { o << metrics.dump(2) << "\n"; });
  };
  nets::ClassifierData train{train_set.images, train_set.labels}, test{test_set.images, test_set.labels};
  try {
    nets::train_classifier(solver, train, test, loop);
  } catch (const NumericalError& e) {
    throw NumericalError(std::string(e.what()) + "; lower the learning rate with --lr");
  }
  const std::string checkpoint = out + "/checkpoint.safetensors";
  save_checkpoint(checkpoint, executor, &solver, {{"task", "toy-shapes"}, {"seed", std::to_string(seed)}});
  if (interrupted())
    throw Interrupted("stopped at iteration " + std::to_string(solver.iteration()) + "; checkpoint saved to " +
                      checkpoint + " (continue with --resume " + checkpoint + ")");
  const double accuracy = nets::classifier_accuracy(solver, test);
  std::printf("held-out accuracy: %.2f%% (%s, %s)\ncheckpoint: %s\n", 100 * accuracy,
              plural(test_count, "image").c_str(), plural(solver.iteration(), "iteration").c_str(), checkpoint.c_str());
  return 0;
}

}  // namespace massmap::cli
