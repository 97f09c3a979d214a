#pragma once
// The checkpoint __metadata__ schema (README "Checkpoint metadata"): the key names, defined once, and the lookup a
// command uses for a key it needs. Values are strings (safetensors metadata is string to string); structured
// values are JSON. Unknown keys are kept: a command that rewrites a checkpoint copies every key it does not set.
#include <cstdint>
#include <map>
#include <string>

namespace massmap::metadata {

// The net and its options (nets/registry.h net_metadata): builder, channels, classes, input (the crop's height),
// input_width (only when not square), width, aux.
constexpr const char* builder = "builder";
constexpr const char* input = "input";
constexpr const char* input_width = "input_width";
// What the classes mean: a JSON array of K names in output order, e.g. ["no mass", "mass"].
constexpr const char* class_names = "class_names";
// The preprocessing every image went through: PreprocessConfig as JSON (spacing_mm, percentiles, ...).
constexpr const char* preprocess = "preprocess";
// Side in pixels of the patches sampled before the random crop to `input` (256 in the paper).
constexpr const char* patch_size = "patch_size";
// The training prior: the fraction of positive (mass) patches in the training stream, a decimal.
constexpr const char* positive_fraction = "positive_fraction";
// The operating threshold on the mass probability, chosen on the validation set, and the rule that chose it.
constexpr const char* threshold = "threshold";
constexpr const char* threshold_rule = "threshold_rule";
// Where the training data came from: "synth-v1" (the generator's version) or a dataset's name, and the SHA-256
// of the split file (hex), so a model is tied to the patients it never saw.
constexpr const char* dataset = "dataset";
constexpr const char* split_sha256 = "split_sha256";
// Written by save_checkpoint: format version; with a solver the iteration and the solver settings (JSON).
constexpr const char* format = "format";
constexpr const char* iteration = "iteration";
constexpr const char* solver = "solver";

// The value of `key`, or a BadInput naming the file, the key and what needs it.
const std::string& require(const std::map<std::string, std::string>& m, const std::string& key, const std::string& file,
                           const std::string& needed_by);

// `value` of `key` as a whole decimal integer in [lo, hi] (as written: "0x10", "1e3", "5 " and "-1" for a count are
// refused), or a BadInput naming the file, the key and the range. A file is data from elsewhere: a negative
// iteration once indexed before a vector.
int64_t integer(const std::string& value, const std::string& key, const std::string& file, int64_t lo, int64_t hi);
// `value` of `key` as a finite decimal in [lo, hi], or a BadInput naming the file, the key and the range.
double number(const std::string& value, const std::string& key, const std::string& file, double lo, double hi);

// The largest iteration a checkpoint may record (far beyond any run; keeps iteration arithmetic from overflowing).
constexpr int64_t kMaxIteration = int64_t(1) << 53;

}  // namespace massmap::metadata
