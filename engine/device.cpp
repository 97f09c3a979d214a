#include "engine/device.h"

#include "base/errors.h"
#include "kernels/cpu/conv_bf16.h"
#include "kernels/gpu.h"

namespace massmap {

const char* device_name(Device d) {
  switch (d) {
    case Device::cpu:
      return "cpu";
    case Device::cuda:
      return "cuda";
    case Device::simt:
      return "simt";
  }
  return "?";
}

std::vector<Device> available_devices() {
  // Best first: a GPU when there is one, then the CPU, then the CUDA kernels run on the host (slow; for tests and
  // learning).
  static const std::vector<Device> devices = [] {
    std::vector<Device> d;
#ifdef MASSMAP_HAVE_CUDA
    if (kernels::cuda::available()) d.push_back(Device::cuda);
#endif
    d.push_back(Device::cpu);
    d.push_back(Device::simt);
    return d;
  }();
  return devices;
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

Device parse_device_name_only(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  if (name == "simt") return Device::simt;
  throw UsageError("unknown device '" + name + "' (devices: cpu, cuda, simt; available here: " + available_list() +
                   ")");
}

Device parse_device(const std::string& name) {
  Device d = parse_device_name_only(name);
  if (!device_available(d))
    throw DeviceError("device '" + name +
                      "' is not available in this build on this machine; available: " + available_list());
  return d;
}

Device default_device() {
  return available_devices().front();
}

std::string use_conv_precision(const std::string& name, Device device) {
  using kernels::cpu::ConvPrecision;
  if (name != "auto" && name != "float32" && name != "bfloat16")
    throw UsageError("precision '" + name + "': expected auto, float32 or bfloat16");
  if (name == "bfloat16" && device != Device::cpu)
    throw DeviceError(std::string("precision bfloat16 runs on the cpu device (AMX tile units or AVX512-BF16); ") +
                      device_name(device) + " computes in float32");
  if (name == "bfloat16" && !kernels::cpu::bf16_available())
    throw DeviceError(
        "precision bfloat16 needs AMX-BF16 tile units or AVX512-BF16, which this CPU (or its operating system) does "
        "not offer; float32 runs everywhere");
  const ConvPrecision chosen =
      name == "bfloat16" || (name == "auto" && device == Device::cpu && kernels::cpu::bf16_available())
          ? ConvPrecision::bfloat16
          : ConvPrecision::float32;
  kernels::cpu::set_conv_precision(chosen);
  return kernels::cpu::conv_precision_name(chosen);
}

}  // namespace massmap
