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

// Sets the arithmetic of the convolutions on the cpu device, process-wide (kernels/cpu/conv_bf16.h), and returns the
// one set: "float32"; "bfloat16" (operands rounded to bfloat16, float32 sums, on AMX tile units or AVX512-BF16); or
// "auto": bfloat16 where the device is cpu and the CPU has either, else float32. UsageError for another name;
// DeviceError when bfloat16 is asked of a device other than cpu (the GPU kernels are float32) or of a CPU with neither.
std::string use_conv_precision(const std::string& name, Device device);

}  // namespace massmap
