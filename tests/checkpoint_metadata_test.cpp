// The checkpoint metadata schema (engine/checkpoint_metadata.h): a needed key that is missing is an error naming
// the file, the key and who needs it; keys round-trip through a weights file unchanged, unknown ones included.
#include "engine/checkpoint_metadata.h"

#include <cstdio>

#include "base/errors.h"
#include "engine/safetensors.h"
#include "tests/support/check.h"

using namespace massmap;

TEST_CASE("checkpoint metadata: required keys are named when missing, unknown keys survive a round trip") {
  std::map<std::string, std::string> m = {{metadata::builder, "alexnet"}, {metadata::threshold, "0.37"}};
  CHECK(metadata::require(m, metadata::threshold, "w.safetensors", "localize") == "0.37");
  CHECK_THROWS_WITH_AS(metadata::require(m, metadata::class_names, "w.safetensors", "localize"),
                       "w.safetensors: __metadata__ has no 'class_names', which localize needs (README: checkpoint "
                       "metadata)",
                       BadInput);
  TensorFile f;
  f.metadata = m;
  f.metadata["future_key"] = "{\"a\": [1, 2]}";
  f.metadata[metadata::class_names] = "[\"no mass\", \"mass\"]";
  f.tensors["w"] = Tensor::from({2}, {1.f, 2.f});
  const std::string path = "checkpoint_metadata_test.safetensors";
  write_safetensors(path, f);
  CHECK(read_safetensors(path).metadata == f.metadata);
  std::remove(path.c_str());
}
