#pragma once
// The nets massmap knows by name (alexnet, vgg16, googlenet, smallnet), built from one set of options, so every
// command and benchmark takes `NAME [--channels C --classes K --input S --width W --batch B --aux]`.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/graph.h"
#include "engine/solver.h"

namespace massmap::nets {

// What a net may be asked for, from options or a checkpoint's metadata: far beyond any real use, and low enough
// that no count wraps an int.
constexpr int kMaxChannels = 1024;
constexpr int kMaxClasses = 100000;
constexpr int kMaxInputSide = 65535;
constexpr double kMaxWidth = 64;  // the channel multiplier
constexpr int kMaxBatch = 65536;

struct NetOptions {
  int channels = 3;     // input channels: 1 for mammograms, 3 for photographs
  int classes = 1000;   // 2 for mass / no mass
  int input = 0;        // input height and width; 0: the net's nominal size (227 AlexNet, 224 VGG-16 and GoogLeNet)
  int input_width = 0;  // input width when it differs from the height (rectangular); 0: the same as the height
  int batch = 1;
  double width = 1.0;     // multiplies every layer's channel count (not the classifier's): small CPU variants
  bool aux = false;       // GoogLeNet's two auxiliary heads (loss weight 0.3)
  bool with_loss = true;  // inputs "data" and "label", loss node "loss" (probabilities "loss.prob"); else ends in
                          // softmax "prob" and has only the input "data"
  uint64_t seed = 1;      // dropout streams
};

struct NetInfo {
  std::string name, summary;
  int nominal_input;
  Graph (*build)(const NetOptions&);
  SolverConfig (*solver)();  // the published solver preset, as data a user can read and override
  bool aux_heads;            // whether NetOptions::aux means anything for it (GoogLeNet's auxiliary heads)
};

const std::vector<NetInfo>& net_catalogue();
const NetInfo& find_net(const std::string& name);  // throws UsageError listing the known names
// BadConfig when options.aux asks for auxiliary heads of a net that has none.
Graph build_net(const std::string& name, const NetOptions& options);
// The options as metadata (builder and its options), so a checkpoint can rebuild its net.
// Keys: builder, channels, classes, input (the effective size: the nominal one when options.input is 0), width
// (shortest decimal that reads back exactly), aux (googlenet only), and input_width (only when it differs from
// input).
std::map<std::string, std::string> net_metadata(const std::string& name, const NetOptions& options);
// The inverse, for a checkpoint's __metadata__: the builder's name and its options (batch, with_loss and seed keep
// their defaults unless given). Throws BadInput naming the key for a missing builder or an unreadable number.
// The effective input (height, width) of options for net `name`.
std::pair<int, int> input_size(const std::string& name, const NetOptions& options);
NetOptions net_options_from_metadata(const std::map<std::string, std::string>& metadata, std::string* name = nullptr);

}  // namespace massmap::nets
