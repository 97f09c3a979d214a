#pragma once
// One exception hierarchy for the whole program; each kind maps to a documented process exit code (README).
#include <stdexcept>
#include <string>

namespace massmap {

enum class ExitCode : int {
  ok = 0,
  internal = 1,    // a bug: an unexpected exception
  usage = 2,       // bad command line: unknown command or option, missing argument
  bad_input = 3,   // a file or tensor that is missing, corrupt or of the wrong shape or type
  bad_config = 4,  // an invalid configuration value or graph (shape inference failed), or a run that needs more
                   // memory or threads than the machine grants
  resources = 4,
  device = 5,        // a device that does not exist, or failed
  numerical = 6,     // NaN or infinite loss or weights
  interrupted = 130  // SIGINT / SIGTERM; training saved a checkpoint first
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  virtual ExitCode exit_code() const { return ExitCode::internal; }
  virtual const char* kind() const { return "error"; }
};

#define MASSMAP_ERROR_KIND(Name, code, label)                      \
  class Name : public Error {                                      \
   public:                                                         \
    explicit Name(const std::string& what) : Error(what) {}        \
    ExitCode exit_code() const override { return ExitCode::code; } \
    const char* kind() const override { return label; }            \
  };
MASSMAP_ERROR_KIND(UsageError, usage, "usage error")
MASSMAP_ERROR_KIND(BadInput, bad_input, "bad input")
MASSMAP_ERROR_KIND(BadConfig, bad_config, "bad configuration")
MASSMAP_ERROR_KIND(ResourceError, resources, "out of resources")
MASSMAP_ERROR_KIND(DeviceError, device, "device error")
MASSMAP_ERROR_KIND(NumericalError, numerical, "numerical error")
MASSMAP_ERROR_KIND(Interrupted, interrupted, "interrupted")
#undef MASSMAP_ERROR_KIND

}  // namespace massmap
