#include "engine/device.h"

#include "base/errors.h"
#include "kernels/cpu/conv_bf16.h"
#include "tests/support/check.h"

using namespace massmap;

TEST_CASE("devices: cpu always exists; asking for a missing one names the available ones") {
  CHECK(device_available(Device::cpu));
  CHECK(parse_device("cpu") == Device::cpu);
  CHECK_THROWS_AS(parse_device("tpu"), UsageError);
  for (const char* name : {"cuda", "simt"}) {
    if (device_available(parse_device_name_only(name))) continue;
    try {
      parse_device(name);
      FAIL("missing device accepted");
    } catch (const DeviceError& e) {
      std::string m = e.what();
      CHECK(m.find(name) != std::string::npos);
      CHECK(m.find("available: cpu") != std::string::npos);
    }
  }
}

TEST_CASE("convolution precision: float32 anywhere; bfloat16 on the cpu of a CPU with tile units, else an error") {
  using kernels::cpu::ConvPrecision;
  CHECK(use_conv_precision("float32", Device::cpu) == "float32");
  CHECK(kernels::cpu::active_conv_precision() == ConvPrecision::float32);
  CHECK_THROWS_AS(use_conv_precision("fp16", Device::cpu), UsageError);
  CHECK(use_conv_precision("auto", Device::simt) == "float32");  // the GPU kernels compute in float32
  try {
    use_conv_precision("bfloat16", Device::simt);
    FAIL("bfloat16 accepted on simt");
  } catch (const DeviceError& e) {
    CHECK(std::string(e.what()).find("cpu device") != std::string::npos);
  }
  const bool bf16 = kernels::cpu::bf16_available();  // AMX tile units or AVX512-BF16
  CHECK(use_conv_precision("auto", Device::cpu) == (bf16 ? "bfloat16" : "float32"));
  if (bf16) {
    CHECK(use_conv_precision("bfloat16", Device::cpu) == "bfloat16");
    CHECK(kernels::cpu::active_conv_precision() == ConvPrecision::bfloat16);
  } else {
    try {
      use_conv_precision("bfloat16", Device::cpu);
      FAIL("bfloat16 accepted without AMX or AVX512-BF16");
    } catch (const DeviceError& e) {
      CHECK(std::string(e.what()).find("AVX512-BF16") != std::string::npos);
    }
  }
  use_conv_precision("float32", Device::cpu);
  CHECK(kernels::cpu::active_conv_precision() == ConvPrecision::float32);
}
