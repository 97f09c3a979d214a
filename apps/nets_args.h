#pragma once
// What every `massmap nets` subcommand shares: the net options, the images and labels files, the weights file
// checked against the net (apps/nets_cmd.cpp and apps/nets_forward_cmd.cpp).
#include <set>
#include <string>
#include <utility>

#include "apps/cli.h"
#include "engine/device.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"
#include "nets/registry.h"

namespace massmap::cli {

#define MASSMAP_NET_OPTIONS                                                                                     \
  "net options (every subcommand; a weights file only fits the options it was made with):\n"                    \
  "  NAME               alexnet, vgg16, googlenet, smallnet, mapnet or mapnet4 (nets show --help lists them)\n" \
  "  --channels C       input channels: 1 for mammograms, 3 for photographs (default 3)\n"                      \
  "  --classes K        number of classes: 2 for mass / no mass (default 1000)\n"                               \
  "  --input-size S     input height and width, S or HxW (default: the net's nominal size, 227 for alexnet,\n"  \
  "                     224 for vgg16 and googlenet); fully convolutional: the whole image\n"                   \
  "  --width W          multiplies every layer's channel count but the classifier's (default 1)\n"              \
  "  --batch B          batch size (default 1; forward and grad take it from the images' first dimension)\n"    \
  "  --aux              googlenet's two auxiliary heads (loss weight 0.3)\n"                                    \
  "  --device D         cpu, cuda (our CUDA kernels on a GPU) or simt (the CUDA kernels run on the host:\n"     \
  "                     slow, for checking); default: cuda when a GPU is present, else cpu\n"                   \
  "(--input is no option: the images are --images FILE, the input size --input-size)\n"

struct NetChoice {
  std::string name;
  nets::NetOptions options;  // input / input_width: --input-size, or 0 for the nominal size
  Device device = Device::cpu;
  bool batch_given = false, size_given = false;
};

// "S" or "HxW" (positive integers) for `option`; UsageError naming the option otherwise.
std::pair<int, int> parse_size(const std::string& option, const std::string& text);

// The net options. A leftover --input (the images before they were --images) is a UsageError naming --images.
NetChoice parse_net(Args& a, const std::string& name, const std::string& subcommand);

// The effective input (height, width).
std::pair<int, int> input_size(const NetChoice& c);
std::string describe(const NetChoice& c);

// A float32 .npy of images (N, C, H, W) with the net's channels and the given size (any size when height is 0);
// sets the batch from N.
Tensor read_images(const std::string& path, NetChoice& c, int height, int width);
// Class labels: an int32 or int64 .npy of shape (N,) with values in [0, classes).
Tensor read_labels(const std::string& path, const NetChoice& c);

// The weights file; a __metadata__ builder must be this net's.
TensorFile read_weights_file(const std::string& path, const NetChoice& c);
// The parameter names of the net as trained (loss, and GoogLeNet's auxiliary heads when the options or the
// weights' metadata say so): what an inference graph may ignore in a training checkpoint.
std::set<std::string> training_parameters(const NetChoice& c, const TensorFile& weights);

// massmap nets forward (apps/nets_forward_cmd.cpp), dispatched by apps/nets_cmd.cpp.
extern const char* const nets_forward_usage;
int run_nets_forward(Args& a, const std::string& name);
// massmap nets gap (apps/nets_gap_cmd.cpp): fully convolutional map cells against true crops.
extern const char* const nets_gap_usage;
int run_nets_gap(Args& a, const std::string& name);

}  // namespace massmap::cli
