// massmap train through the binary on a small synth-v1 set made here: the run folder and its keys, the loss
// falling, validation accuracy well above chance, resume byte for byte, Ctrl-C, a diverging run, and the errors.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "apps/search/sha256.h"
#include "engine/safetensors.h"
#include "tests/support/cli.h"

using namespace testing_support;

namespace {

std::vector<nlohmann::json> log_lines(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// One synthetic set for every case: 32 images, 8 patients split 4 / 2 / 2.
struct SynthSet {
  TempDir dir;
  std::string root = dir / "synth", split = dir / "split.json", cache = dir / "cache";
  SynthSet() {
    REQUIRE(run_massmap("synth --out " + root + " --images 32 --seed 5 --size 200x256 --mass-max-mm 12").code == 0);
    REQUIRE(run_massmap("data split --format manifest --root " + root + " --out " + split +
                        " --seed 1 --train 0.5 --validation 0.25")
                .code == 0);
  }
  std::string args(const std::string& out) const {
    return "train --format manifest --root " + root + " --split-file " + split + " --cache " + cache + " --out " + out;
  }
};

const SynthSet& synth() {
  static SynthSet set;
  return set;
}

const std::string kSmall = " --net smallnet --batch 16 --validate-every 20 --checkpoint-every 20";

}  // namespace

TEST_CASE("train smallnet: the run folder, the loss falls, accuracy above chance, the checkpoint's metadata") {
  const SynthSet& s = synth();
  const std::string run = s.dir / "run";
  const CliResult r = run_massmap(s.args(run) + kSmall + " --iterations 40");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "patch accuracy after 40 iterations"));
  for (const char* f : {"config.json", "log.jsonl", "metrics.json", "checkpoint.safetensors", "best.safetensors"})
    CHECK(std::filesystem::exists(run + "/" + f));

  const auto lines = log_lines(run + "/log.jsonl");
  REQUIRE(lines.size() == 40);
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i]["iteration"] == int64_t(i + 1));
    for (const char* key : {"epoch", "loss", "lr", "images_per_s", "seconds"}) CHECK(lines[i].contains(key));
  }
  double first = 0, last = 0;
  for (size_t i = 0; i < 8; ++i) first += lines[i]["loss"].get<double>(), last += lines[32 + i]["loss"].get<double>();
  CHECK(last < 0.8 * first);  // measured: 0.69 -> about 0.3 mean over 8 steps

  const nlohmann::json metrics = nlohmann::json::parse(read_text(run + "/metrics.json"));
  REQUIRE(metrics["validations"].size() == 2);
  CHECK(metrics["validations"][0]["iteration"] == 20);
  CHECK(metrics["validations"][1]["iteration"] == 40);
  for (const char* part : {"validation", "test"}) {
    const nlohmann::json& m = metrics["final"][part];
    CHECK(m["patches"].get<int>() > 0);
    const auto& c = m["confusion"];
    CHECK(c["true_positive"].get<int>() + c["false_positive"].get<int>() + c["true_negative"].get<int>() +
              c["false_negative"].get<int>() ==
          m["patches"].get<int>());
  }
  // Measured 0.91 validation accuracy (ROC AUC 0.94) on this set after 40 iterations; chance is 0.5.
  CHECK(metrics["final"]["validation"]["accuracy"].get<double>() > 0.7);
  CHECK(metrics["final"]["validation"]["roc_auc"].get<double>() > 0.75);

  const massmap::TensorFile ckpt = massmap::read_safetensors(run + "/checkpoint.safetensors");
  const auto& meta = ckpt.metadata;
  CHECK(meta.at("builder") == "smallnet");
  CHECK(meta.at("iteration") == "40");
  CHECK(meta.at("class_names") == R"(["no mass","mass"])");
  CHECK(nlohmann::json::parse(meta.at("preprocess"))["spacing_mm"] == 0.8);
  CHECK(meta.at("patch_size") == "32");
  const double prior = std::stod(meta.at("positive_fraction"));
  CHECK((prior > 0.3 && prior < 0.7));  // balanced classes
  CHECK(meta.at("dataset") == "synth-v1");
  CHECK(meta.at("split_sha256") == massmap::search::sha256_of_file(s.split));
  // The operating threshold chosen on the validation images, as metrics.json reports it.
  const double threshold = std::stod(meta.at("threshold"));
  CHECK(threshold == doctest::Approx(metrics["final"]["operating_point"]["threshold"].get<double>()));
  CHECK(metrics["final"]["operating_point"]["fp_per_image"].get<double>() <= 0.9);
  CHECK(metrics["final"]["operating_point"]["images"] == 8);
  for (const auto& [key, value] : meta) CHECK(!contains(value, s.dir.path.string()));  // no paths

  const nlohmann::json config = nlohmann::json::parse(read_text(run + "/config.json"));
  CHECK(config["iterations"] == 40);
  CHECK(config["net"] == "smallnet");
}

TEST_CASE("train resume: 20 iterations, then resumed to 40, gives the bytes of 40 straight") {
  const SynthSet& s = synth();
  const std::string straight = s.dir / "straight", resumed = s.dir / "resumed";
  REQUIRE(run_massmap(s.args(straight) + kSmall + " --iterations 40").code == 0);
  REQUIRE(run_massmap(s.args(resumed) + kSmall + " --iterations 20").code == 0);
  const std::string w20 = read_text(resumed + "/checkpoint.safetensors");
  const CliResult r =
      run_massmap(s.args(resumed) + kSmall + " --iterations 40 --resume " + resumed + "/checkpoint.safetensors");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "resumed from"));
  CHECK(read_text(resumed + "/checkpoint.safetensors") == read_text(straight + "/checkpoint.safetensors"));
  CHECK(read_text(resumed + "/best.safetensors") == read_text(straight + "/best.safetensors"));
  CHECK(read_text(resumed + "/metrics.json") == read_text(straight + "/metrics.json"));
  CHECK(w20 != read_text(straight + "/checkpoint.safetensors"));  // the weights moved between 20 and 40
  auto a = log_lines(resumed + "/log.jsonl"), b = log_lines(straight + "/log.jsonl");
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    for (nlohmann::json* line : {&a[i], &b[i]}) line->erase("images_per_s"), line->erase("seconds");
    CHECK(a[i] == b[i]);
  }
}

// Every lesion box of the manifest, by image path, in the original pixels.
std::map<std::string, std::vector<std::array<int, 4>>> manifest_boxes(const std::string& csv) {
  std::map<std::string, std::vector<std::array<int, 4>>> boxes;
  std::istringstream in(read_text(csv));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("image,", 0) == 0) continue;
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (cells.size() < 14 || cells[10].empty()) continue;
    boxes[cells[0]].push_back({std::stoi(cells[10]), std::stoi(cells[11]), std::stoi(cells[12]), std::stoi(cells[13])});
  }
  return boxes;
}

TEST_CASE("train with hard negatives: mined once, clear of every lesion, and a resume across the mining is exact") {
  const SynthSet& s = synth();
  const std::string straight = s.dir / "hard-straight", resumed = s.dir / "hard-resumed";
  const std::string net =
      " --net mapnet --batch 16 --validate-every 10 --checkpoint-every 10 --spacing 0.4"
      " --patch-size 64 --input-size 47 --hard-negatives-per-image 3";
  const CliResult a = run_massmap(s.args(straight) + net + " --iterations 40 --hard-negatives 0.5");
  INFO(a.output);
  REQUIRE(a.code == 0);
  const nlohmann::json mined = nlohmann::json::parse(read_text(straight + "/hard_negatives.json"));
  REQUIRE(mined["negatives"].size() > 0);
  CHECK(mined["patch_size"] == 64);
  // The training part has 16 images: at most 3 peaks each.
  CHECK(mined["negatives"].size() <= 16 * 3);
  CHECK(contains(a.output, "hard negatives: " + std::to_string(mined["negatives"].size()) + " peaks"));
  // No mined patch (64 prepared pixels at 0.4 mm: 128 original pixels) overlaps a lesion box.
  const auto boxes = manifest_boxes(s.root + "/manifest.csv");
  for (const nlohmann::json& n : mined["negatives"]) {
    const int x0 = 2 * (n["x"].get<int>() - 32), y0 = 2 * (n["y"].get<int>() - 32);
    const auto it = boxes.find(n["image"].get<std::string>());
    if (it == boxes.end()) continue;
    for (const auto& b : it->second) {
      INFO(n.dump());
      CHECK((x0 + 128 <= b[0] || b[0] + b[2] <= x0 || y0 + 128 <= b[1] || b[1] + b[3] <= y0));
    }
  }
  // Mining after iteration 20: a run stopped at 30 (past it) resumes to 40 with the same patches and weights.
  REQUIRE(run_massmap(s.args(resumed) + net + " --iterations 30 --hard-negatives 0.6667").code == 0);
  CHECK(read_text(resumed + "/hard_negatives.json") == read_text(straight + "/hard_negatives.json"));
  const CliResult r = run_massmap(s.args(resumed) + net + " --iterations 40 --hard-negatives 0.5 --resume " + resumed +
                                  "/checkpoint.safetensors");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "read back from"));  // not mined again
  CHECK(!contains(r.output, "peaks clear of every lesion"));
  CHECK(read_text(resumed + "/checkpoint.safetensors") == read_text(straight + "/checkpoint.safetensors"));
}

TEST_CASE("train dense: tiles of every cell's label give the classifier's checkpoint; resume is exact") {
  const SynthSet& s = synth();
  const std::string straight = s.dir / "dense-straight", resumed = s.dir / "dense-resumed";
  const std::string config = s.dir / "dense.json";
  std::ofstream(config) << R"({"dense": true, "augmentation": {"output": 63}, "net_options": {"input": 47}})";
  // The tiles' side is augmentation.output, the classifier's crop net_options.input (--input-size sets both).
  const std::string net =
      " --net mapnet --batch 4 --validate-every 10 --checkpoint-every 10 --spacing 0.4"
      " --patch-size 72 --config " +
      config;
  const CliResult a = run_massmap(s.args(straight) + net + " --iterations 20");
  INFO(a.output);
  REQUIRE(a.code == 0);
  const massmap::TensorFile ckpt = massmap::read_safetensors(straight + "/checkpoint.safetensors");
  CHECK(ckpt.metadata.at("builder") == "mapnet");
  CHECK(ckpt.metadata.at("input") == "47");
  CHECK(contains(a.output, "\"output\":63"));
  CHECK(ckpt.tensors.at("fc4.weight").shape() == massmap::Shape{128, 64 * 7 * 7});  // the classifier's linear layer
  CHECK(ckpt.metadata.count("threshold") == 1);  // chosen on the validation maps like any run
  const nlohmann::json metrics = nlohmann::json::parse(read_text(straight + "/metrics.json"));
  CHECK(metrics["final"]["validation"]["roc_auc"].get<double>() > 0);
  // Stopped at 10 and resumed to 20: the same bytes as the straight run.
  REQUIRE(run_massmap(s.args(resumed) + net + " --iterations 10").code == 0);
  const CliResult r =
      run_massmap(s.args(resumed) + net + " --iterations 20 --resume " + resumed + "/checkpoint.safetensors");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(read_text(resumed + "/checkpoint.safetensors") == read_text(straight + "/checkpoint.safetensors"));
  // Tiles that do not fit the map's grid, and hard negatives (every cell is already a sample), are refused.
  std::ofstream(config, std::ios::trunc)
      << R"({"dense": true, "augmentation": {"output": 61}, "net_options": {"input": 47}})";
  const CliResult bad = run_massmap(s.args(s.dir / "dense-bad") + net + " --iterations 2");
  CHECK(bad.code == 4);
  CHECK(contains(bad.output, "plus a multiple of its map stride (4)"));
  std::ofstream(config, std::ios::trunc)
      << R"({"dense": true, "augmentation": {"output": 63}, "net_options": {"input": 47}})";
  const CliResult hard = run_massmap(s.args(s.dir / "dense-hard") + net + " --iterations 2 --hard-negatives 0.5");
  CHECK(hard.code == 4);
  CHECK(contains(hard.output, "every cell of a tile is already a labelled sample"));
}

TEST_CASE("train: Ctrl-C saves a checkpoint and exits 130; the run resumes from it") {
  const SynthSet& s = synth();
  const std::string run = s.dir / "interrupted";
  const std::string cmd = std::string(MASSMAP_BINARY) + " " + s.args(run) + kSmall + " --iterations 100000 >" +
                          (s.dir / "interrupted.txt") + " 2>&1";
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for training to be under way (log lines appear), then interrupt.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline &&
         (!std::filesystem::exists(run + "/log.jsonl") || log_lines(run + "/log.jsonl").size() < 3))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  INFO(read_text(s.dir / "interrupted.txt"));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(contains(read_text(s.dir / "interrupted.txt"), "--resume"));
  const massmap::TensorFile ckpt = massmap::read_safetensors(run + "/checkpoint.safetensors");
  const int64_t stopped = std::stoll(ckpt.metadata.at("iteration"));
  CHECK(stopped >= 3);
  CHECK(stopped == int64_t(log_lines(run + "/log.jsonl").size()));
  const CliResult r = run_massmap(s.args(run) + kSmall + " --iterations " + std::to_string(stopped + 2) + " --resume " +
                                  run + "/checkpoint.safetensors");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(log_lines(run + "/log.jsonl").size() == size_t(stopped + 2));
}

TEST_CASE("train: a diverging run exits 6 naming the iteration and --lr, its last checkpoint intact") {
  const SynthSet& s = synth();
  const std::string run = s.dir / "diverged";
  const CliResult r =
      run_massmap(s.args(run) + " --net smallnet --batch 16 --iterations 20 --lr 1e8 --checkpoint-every 1");
  INFO(r.output);
  CHECK(r.code == 6);
  CHECK(contains(r.output, "--lr"));
  CHECK(contains(r.output, "diverged at iteration"));
  const massmap::TensorFile ckpt = massmap::read_safetensors(run + "/checkpoint.safetensors");  // still loads
  const int64_t kept = std::stoll(ckpt.metadata.at("iteration"));
  CHECK(contains(r.output, "diverged at iteration " + std::to_string(kept + 1)));
}

TEST_CASE("train: errors name what is wrong") {
  const SynthSet& s = synth();
  CHECK(run_massmap("train --format manifest --root " + s.root).code == 2);  // no --net
  CHECK(run_massmap(s.args(s.dir / "e1") + " --net lenet").code == 2);
  {
    const std::string config = s.dir / "bad.json";
    std::ofstream(config) << R"({"iteratons": 5})";
    const CliResult r = run_massmap(s.args(s.dir / "e2") + kSmall + " --config " + config);
    CHECK(r.code == 4);
    CHECK(contains(r.output, "'iteratons'"));
  }
  {  // another net's checkpoint cannot continue this run
    const std::string other = s.dir / "alexnet.safetensors";
    REQUIRE(run_massmap("nets init alexnet --channels 1 --classes 2 --width 0.25 --out " + other).code == 0);
    const CliResult r = run_massmap(s.args(s.dir / "e3") + kSmall + " --iterations 5 --resume " + other);
    CHECK(r.code == 3);
    CHECK(contains(r.output, "builder alexnet"));
  }
  {  // an undecodable image is named, or skipped and counted with --skip-bad
    const std::string copy = s.dir / "corrupt";
    std::filesystem::copy(s.root, copy, std::filesystem::copy_options::recursive);
    std::string victim;
    for (const auto& e : std::filesystem::directory_iterator(copy + "/images")) victim = e.path().string();
    std::ofstream(victim, std::ios::binary | std::ios::trunc) << "not a PNG at all";
    const std::string base = "train --format manifest --root " + copy + " --split-file " + s.split + " --cache " +
                             (s.dir / "corrupt-cache") + kSmall + " --iterations 2";
    const CliResult bad = run_massmap(base + " --out " + (s.dir / "e4"));
    CHECK(bad.code == 3);
    CHECK(contains(bad.output, std::filesystem::path(victim).filename().string()));
    const CliResult skipped = run_massmap(base + " --out " + (s.dir / "e5") + " --skip-bad");
    INFO(skipped.output);
    CHECK(skipped.code == 0);
    CHECK(contains(skipped.output, "skipped"));
  }
}

TEST_CASE("train alexnet at width 0.25: a few dozen iterations, the loss falls") {
  const SynthSet& s = synth();
  const std::string run = s.dir / "alexnet";
  const CliResult r =
      // 0.1 mm: the 200 x 256 images become 400 x 512, larger than the 227 crop the map needs
      run_massmap(s.args(run) +
                  " --net alexnet --width 0.25 --batch 8 --iterations 24 --validate-every 12 --spacing 0.1");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto lines = log_lines(run + "/log.jsonl");
  REQUIRE(lines.size() == 24);
  double first = 0, last = 0;
  for (size_t i = 0; i < 6; ++i) first += lines[i]["loss"].get<double>(), last += lines[18 + i]["loss"].get<double>();
  CHECK(last < first);
  CHECK(massmap::read_safetensors(run + "/checkpoint.safetensors").metadata.at("builder") == "alexnet");
}

TEST_CASE("train smallnet on simt follows the cpu's loss curve to 1e-3 over 20 steps") {
  const SynthSet& s = synth();
  const std::string small = " --net smallnet --width 0.5 --batch 8 --iterations 20 --validate-every 20";
  const CliResult cpu = run_massmap(s.args(s.dir / "on-cpu") + small + " --device cpu");
  const CliResult simt = run_massmap(s.args(s.dir / "on-simt") + small + " --device simt");
  INFO(cpu.output);
  INFO(simt.output);
  REQUIRE(cpu.code == 0);
  REQUIRE(simt.code == 0);
  const auto a = log_lines(s.dir / "on-cpu/log.jsonl"), b = log_lines(s.dir / "on-simt/log.jsonl");
  REQUIRE(a.size() == 20);
  REQUIRE(b.size() == 20);
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i]["loss"].get<double>(), y = b[i]["loss"].get<double>();
    CHECK(std::abs(x - y) <= 1e-3 * std::abs(x));
  }
}
