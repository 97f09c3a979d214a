#pragma once
// The devices an executor can run on. `cpu` is always there; `cuda` needs a GPU and a CUDA build; `simt` runs the
// CUDA kernels on the host (kernels/simt) and exists once the CUDA backend is built. Asking for a device that is
// not available is an error that names the ones that are: there is no silent fallback.
#include <string>
#include <vector>

namespace massmap {

enum class Device { cpu, cuda, simt };

const char* device_name(Device d);
// Devices usable in this process, best first (cuda when a GPU is present).
std::vector<Device> available_devices();
bool device_available(Device d);
// "cpu" / "cuda" / "simt" -> Device without checking availability; UsageError for an unknown name.
Device parse_device_name_only(const std::string& name);
// Parses "cpu" / "cuda" / "simt"; throws UsageError for an unknown name, DeviceError for an unavailable device.
Device parse_device(const std::string& name);
// The device used when none is asked for: the first of available_devices().
Device default_device();

}  // namespace massmap
