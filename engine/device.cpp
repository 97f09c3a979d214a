#include "engine/device.h"

#include "engine/errors.h"

namespace massmap {

const char* device_name(Device d) {
  switch (d) {
    case Device::cpu: return "cpu";
    case Device::cuda: return "cuda";
    case Device::simt: return "simt";
  }
  return "?";
}

std::vector<Device> available_devices() {
  // The CUDA backend and its host execution are not built yet: only the CPU is available.
  return {Device::cpu};
}

bool device_available(Device d) {
  for (Device a : available_devices())
    if (a == d) return true;
  return false;
}

static std::string available_list() {
  std::string s;
  for (Device d : available_devices()) s += std::string(s.empty() ? "" : ", ") + device_name(d);
  return s;
}

Device parse_device(const std::string& name) {
  Device d;
  if (name == "cpu") d = Device::cpu;
  else if (name == "cuda") d = Device::cuda;
  else if (name == "simt") d = Device::simt;
  else throw UsageError("unknown device '" + name + "' (devices: cpu, cuda, simt; available here: " +
                        available_list() + ")");
  if (!device_available(d))
    throw DeviceError("device '" + name + "' is not available in this build on this machine; available: " +
                      available_list());
  return d;
}

Device default_device() { return available_devices().front(); }

}  // namespace massmap
