// libFuzzer target for the safetensors reader (engine/safetensors.h). Every input must either parse or be
// rejected with massmap::BadInput. A crash, a sanitizer report, an allocation over -malloc_limit_mb, an exception
// of any other type, or an accepted file that the writer cannot reproduce (encode_safetensors -> parse gives the
// same tensors and metadata, and encoding is canonical) is a finding. Run through tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <typeinfo>

#include "base/errors.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace {

const std::string kName = "fuzz-input";

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "safetensors_fuzz: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) finding(what);
}

bool same_tensors(const massmap::TensorFile& a, const massmap::TensorFile& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (auto i = a.tensors.begin(), j = b.tensors.begin(); i != a.tensors.end(); ++i, ++j) {
    if (i->first != j->first || i->second.shape() != j->second.shape()) return false;
    const size_t bytes = size_t(i->second.numel()) * sizeof(float);
    if (bytes && std::memcmp(i->second.data(), j->second.data(), bytes) != 0) return false;  // bitwise: NaNs too
  }
  return true;
}

void check_accepted(const massmap::TensorFile& file) {
  for (const auto& [name, t] : file.tensors) {
    check(t.defined() && t.device() == massmap::Device::cpu, "accepted tensor is undefined or not on the CPU");
    for (int64_t d : t.shape()) check(d >= 0, "accepted a negative dimension");
  }
  // What the reader accepts, the writer reproduces, and its output is canonical.
  const std::string encoded = massmap::encode_safetensors(file);
  check(encoded.size() >= 8, "encode_safetensors output lacks the header length");
  const massmap::TensorFile again = massmap::parse_safetensors(kName, encoded.data(), encoded.size());
  check(same_tensors(file, again), "round trip changed a tensor or the metadata");
  check(massmap::encode_safetensors(again) == encoded, "encoding is not canonical");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    massmap::TensorFile file;
    try {
      file = massmap::parse_safetensors(kName, reinterpret_cast<const char*>(data), size);
    } catch (const massmap::BadInput& e) {
      if (std::strstr(e.what(), kName.c_str()) == nullptr) finding("BadInput message does not name the file");
      return 0;  // the expected outcome for most inputs
    }
    check_accepted(file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "safetensors_fuzz: unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    finding("unexpected exception of a non-std type");
  }
  return 0;
}
