// GoogLeNet (Inception v1) as BVLC's Caffe model (models/bvlc_googlenet/train_val.prototxt): layer names, the
// published channel table of the nine inception modules, and the fillers (xavier weights; biases 0.2 on every
// convolution and hidden fully connected layer, 0 on the classifiers; lr_mult 1/2, decay_mult 1/0).
//
// Shapes at the nominal 224 input (pools round up, as Caffe's):
//   data (N, C, 224, 224) -> conv1/7x7_s2 (N, 64, 112, 112) -> pool1/3x3_s2 (N, 64, 56, 56)
//   -> conv2/3x3 (N, 192, 56, 56) -> pool2/3x3_s2 (N, 192, 28, 28) -> inception_3a/output (N, 256, 28, 28)
//   -> inception_3b/output (N, 480, 28, 28) -> pool3/3x3_s2 (N, 480, 14, 14) -> inception_4a ... 4e/output
//   (N, 832, 14, 14) -> pool4/3x3_s2 (N, 832, 7, 7) -> inception_5b/output (N, 1024, 7, 7)
//   -> pool5/7x7_s1 (N, 1024, 1, 1) -> loss3/classifier (N, K)
// Auxiliary heads (options.aux) on inception_4a/output (N, 512, 14, 14) and inception_4d/output (N, 528, 14, 14):
//   ave_pool 5x5/3 (N, *, 4, 4) -> conv 1x1 (N, 128, 4, 4) -> fc (N, 1024) -> classifier (N, K), loss weight 0.3.
#include <string>

#include "nets/architectures.h"

namespace massmap::nets {

namespace {

// One inception module's channel counts: 1x1; 3x3 reduce -> 3x3; 5x5 reduce -> 5x5; pool projection.
struct Inception {
  const char* name;
  int c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj;
};

class GoogLeNetBuilder {
 public:
  GoogLeNetBuilder(Graph& g, const NetOptions& o) : b_(g), o_(o) {
    conv_.weight.init.type = "xavier";
    conv_.bias.init.type = "constant";
    conv_.bias.init.value = 0.2f;
    classifier_.weight.init.type = "xavier";
    classifier_.bias.init.type = "constant";
    classifier_.bias.init.value = 0.f;
  }

  int ch(int c) const { return scaled_channels(c, o_.width); }

  // Convolution followed by its ReLU, named "<prefix>/<name>" and "<prefix>/relu_<name>" (Caffe's stem breaks the
  // pattern once: conv1/7x7_s2 is followed by conv1/relu_7x7, passed as relu_name).
  ValueId conv_relu(const std::string& prefix, const std::string& name, ValueId x, int channels, int kernel,
                    int stride = 1, int pad = 0, const std::string& relu_name = "") {
    x = b_.conv(prefix + "/" + name, x, ch(channels), kernel, stride, pad, 1, conv_);
    return b_.relu(prefix + "/relu_" + (relu_name.empty() ? name : relu_name), x);
  }

  ValueId inception(const Inception& m, ValueId x) {
    const std::string p = std::string("inception_") + m.name;
    ValueId a = conv_relu(p, "1x1", x, m.c1x1, 1);
    ValueId c = conv_relu(p, "3x3", conv_relu(p, "3x3_reduce", x, m.c3x3_reduce, 1), m.c3x3, 3, 1, 1);
    ValueId d = conv_relu(p, "5x5", conv_relu(p, "5x5_reduce", x, m.c5x5_reduce, 1), m.c5x5, 5, 1, 2);
    ValueId e = conv_relu(p, "pool_proj", b_.max_pool(p + "/pool", x, 3, 1, 1), m.pool_proj, 1);
    return b_.concat(p + "/output", {a, c, d, e});
  }

  // loss1 / loss2: 5x5/3 average pool, 1x1 conv 128, fc 1024, dropout 0.7, classifier, loss weight 0.3.
  void aux_head(const std::string& p, ValueId x, int dropout_index) {
    x = b_.avg_pool(p + "/ave_pool", x, 5, 3);
    x = b_.conv(p + "/conv", x, ch(128), 1, 1, 0, 1, conv_);
    x = b_.relu(p + "/relu_conv", x);
    x = b_.flatten(p + "/flatten", x);
    x = b_.linear(p + "/fc", x, ch(1024), conv_);
    x = b_.relu(p + "/relu_fc", x);
    x = b_.dropout(p + "/drop_fc", x, 0.7, detail::dropout_seed(o_, dropout_index));
    x = b_.linear(p + "/classifier", x, o_.classes, classifier_);
    detail::classifier_end(b_, x, o_, p + "/loss", p + "/prob", 0.3);
  }

  ValueId build(ValueId x) {
    x = conv_relu("conv1", "7x7_s2", x, 64, 7, 2, 3, "7x7");
    x = b_.max_pool("pool1/3x3_s2", x, 3, 2);
    x = b_.lrn("pool1/norm1", x, 5, 1e-4, 0.75, 1.0);
    x = conv_relu("conv2", "3x3_reduce", x, 64, 1);
    x = conv_relu("conv2", "3x3", x, 192, 3, 1, 1);
    x = b_.lrn("conv2/norm2", x, 5, 1e-4, 0.75, 1.0);
    x = b_.max_pool("pool2/3x3_s2", x, 3, 2);
    const Inception table[] = {
        {"3a", 64, 96, 128, 16, 32, 32},     {"3b", 128, 128, 192, 32, 96, 64},   {"4a", 192, 96, 208, 16, 48, 64},
        {"4b", 160, 112, 224, 24, 64, 64},   {"4c", 128, 128, 256, 24, 64, 64},   {"4d", 112, 144, 288, 32, 64, 64},
        {"4e", 256, 160, 320, 32, 128, 128}, {"5a", 256, 160, 320, 32, 128, 128}, {"5b", 384, 192, 384, 48, 128, 128},
    };
    for (const Inception& m : table) {
      const std::string name = m.name;
      if (name == "4a") x = b_.max_pool("pool3/3x3_s2", x, 3, 2);
      if (name == "5a") x = b_.max_pool("pool4/3x3_s2", x, 3, 2);
      x = inception(m, x);
      if (o_.aux && name == "4a") aux_head("loss1", x, 1);
      if (o_.aux && name == "4d") aux_head("loss2", x, 2);
    }
    x = b_.avg_pool("pool5/7x7_s1", x, 7, 1);
    x = b_.dropout("pool5/drop_7x7_s1", x, 0.4, detail::dropout_seed(o_, 3));
    x = b_.flatten("loss3/flatten", x);
    return b_.linear("loss3/classifier", x, o_.classes, classifier_);
  }

 private:
  LayerBuilder b_;
  const NetOptions& o_;
  Filler conv_, classifier_;
};

}  // namespace

Graph build_googlenet(const NetOptions& o) {
  detail::check_options("googlenet", o);
  const int height = o.input > 0 ? o.input : 224, width = o.input_width > 0 ? o.input_width : height;
  Graph g;
  GoogLeNetBuilder gb(g, o);
  ValueId x = g.add_input("data", {o.batch, o.channels, height, width});
  ValueId logits = gb.build(x);
  LayerBuilder b(g);
  detail::classifier_end(b, logits, o, "loss", "prob");
  g.metadata = net_metadata("googlenet", o);
  return g;
}

}  // namespace massmap::nets
