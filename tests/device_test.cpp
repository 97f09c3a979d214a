#include "engine/device.h"

#include "base/errors.h"
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
