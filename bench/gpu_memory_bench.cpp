// gpu_memory_bench: our memory-bound CUDA kernels (ReLU, add, copy, bias, max/avg pooling, LRN, dropout, softmax,
// softmax + loss, batch normalisation, the SGD update) on working sets of at least 64 MB. Each row prints GB/s for the
// least traffic its op needs (every input read once, every output written once) and that rate as a fraction of a
// device-to-device cudaMemcpy measured at start-up in the same run (vs_copy, the ceiling of a streaming kernel), and
// where cuDNN has the op (activation, add/copy/bias via
// cudnnOpTensor/cudnnTransformTensor/cudnnConvolutionBackwardBias, pooling, LRN, softmax, batch normalisation), cuDNN's
// time over ours (vs_cudnn). bench/README.md explains the rows.
//
// Validation (a mismatch ends the program, or with --keep_going marks the row): before timing, every row's output
// (NaN-poisoned first) against kernels::ref run on the host on the same inputs (cuDNN's too, which also cross-checks
// ours against cuDNN); after timing, the last output against the first (the label says whether it was
// bit-identical) and against the reference.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/gpu_bench_support.h"
#include "bench/gpu_cudnn_conv.h"  // cudnn(): the handle
#include "kernels/gpu.h"

namespace {

using namespace gpubench;
namespace kc = kernels::cuda;
namespace kr = kernels::ref;

// ---- cuDNN descriptors, owned -------------------------------------------------------------------------------------
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(int n, int c, int h, int w) {
    check(cudnnCreateTensorDescriptor(&d), "cudnnCreateTensorDescriptor");
    check(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w), "tensor descriptor");
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
};

const float kOne = 1.f, kZero = 0.f;

// ---- one op: buffers, our call, cuDNN's call, the expected output ------------------------------------------------
struct OpCase {
  std::string name;
  double bytes = 0;                   // least traffic per call
  std::function<void()> ours, cudnn;  // cudnn empty where cuDNN has no such op
  std::string cudnn_what;
  float* ours_out = nullptr;
  float* cudnn_out = nullptr;
  size_t out_count = 0;
  std::function<void()> reset;  // restores what an in-place op (the SGD update) changed; empty otherwise
  std::vector<float> expected;  // kernels::ref on the same inputs
  double tolerance = 1e-4;      // of max |expected|: float against the reference's float or double
  std::function<std::string(const std::string&)> extra_check;  // the loss scalar of softmax_loss_forward
  double cudnn_seconds = 0;

  std::vector<std::unique_ptr<Buffer>> buffers;
  std::vector<std::shared_ptr<void>> keep;  // descriptors the calls use

  float* alloc(size_t n) {
    buffers.push_back(std::make_unique<Buffer>(n));
    return buffers.back()->get();
  }
  float* uniform(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
    float* p = alloc(n);
    fill_uniform(p, n, seed, lo, hi);
    return p;
  }
  float* output(size_t n) {
    out_count = n;
    return alloc(n);
  }
  template <class T>
  T* own(std::shared_ptr<T> p) {
    keep.push_back(p);
    return p.get();
  }
};

std::vector<float> download(const float* p, size_t n) {
  std::vector<float> host(n);
  check(cudaMemcpyAsync(host.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost, stream()), "download");
  check(cudaStreamSynchronize(stream()), "download");
  return host;
}

// Shapes: activations as a VGG-16 conv2 output at batch 32 (103 MB); pooling and LRN as AlexNet's pool1/norm1 input
// at batch 128 (149 MB, 55x55 -> 27x27 with 3x3 stride 2, where Caffe's CEIL and cuDNN's floor agree); softmax as a
// 1000-class classifier at batch 32768 (131 MB) and as a 2-class probability map of 16 1024x1024 images (134 MB);
// SGD on 64 Mi parameters (268 MB each for w, g, history).
const int kAct[4] = {32, 64, 112, 112};
const int kPool[4] = {128, 96, 55, 55};

kernels::ActShape act_shape() {
  return kernels::act_shape(kAct[0], kAct[1], kAct[2], kAct[3]);
}
size_t act_count() {
  return size_t(kAct[0]) * kAct[1] * kAct[2] * kAct[3];
}
std::shared_ptr<TensorDesc> act_desc() {
  return std::make_shared<TensorDesc>(kAct[0], kAct[1], kAct[2], kAct[3]);
}

void elementwise_case(OpCase& op, const std::string& name) {
  const kernels::ActShape s = act_shape();
  const size_t n = act_count(), S = n * sizeof(float);
  auto* desc = op.own(act_desc());
  float* x = op.uniform(n, 1);
  if (name == "relu_forward" || name == "relu_backward") {
    auto* act = op.own(std::shared_ptr<cudnnActivationStruct>(
        [] {
          cudnnActivationDescriptor_t d = nullptr;
          check(cudnnCreateActivationDescriptor(&d), "cudnnCreateActivationDescriptor");
          check(cudnnSetActivationDescriptor(d, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0), "activation");
          return d;
        }(),
        cudnnDestroyActivationDescriptor));
    op.cudnn_what = "cudnnActivation" + std::string(name == "relu_forward" ? "Forward" : "Backward") + " (RELU)";
    if (name == "relu_forward") {
      float *y = op.output(n), *yc = op.alloc(n);
      op.bytes = 2.0 * S;
      op.ours = [=] { kc::relu_forward(s, x, y, stream()); };
      op.cudnn = [=] { check(cudnnActivationForward(cudnn(), act, &kOne, desc->d, x, &kZero, desc->d, yc), "relu"); };
      op.ours_out = y, op.cudnn_out = yc;
      op.expected.resize(n);
      kr::relu_forward(s, download(x, n).data(), op.expected.data());
      return;
    }
    float *y = op.alloc(n), *dy = op.uniform(n, 2), *dx = op.output(n), *dxc = op.alloc(n);
    kc::relu_forward(s, x, y, stream());
    op.bytes = 3.0 * S;  // ours reads y and dy (cuDNN also reads x)
    op.ours = [=] { kc::relu_backward(s, y, dy, dx, false, stream()); };
    op.cudnn = [=] {
      check(cudnnActivationBackward(cudnn(), act, &kOne, desc->d, y, desc->d, dy, desc->d, x, &kZero, desc->d, dxc),
            "relu backward");
    };
    op.ours_out = dx, op.cudnn_out = dxc;
    op.expected.resize(n);
    kr::relu_backward(s, download(y, n).data(), download(dy, n).data(), op.expected.data(), false);
    return;
  }
  if (name == "add_forward" || name == "bias_forward") {
    const bool bias = name == "bias_forward";
    const size_t bn = bias ? size_t(kAct[1]) : n;
    float *b = op.uniform(bn, 2), *y = op.output(n), *yc = op.alloc(n);
    auto* b_desc = bias ? op.own(std::make_shared<TensorDesc>(1, kAct[1], 1, 1)) : desc;
    auto* add = op.own(std::shared_ptr<cudnnOpTensorStruct>(
        [] {
          cudnnOpTensorDescriptor_t d = nullptr;
          check(cudnnCreateOpTensorDescriptor(&d), "cudnnCreateOpTensorDescriptor");
          check(cudnnSetOpTensorDescriptor(d, CUDNN_OP_TENSOR_ADD, CUDNN_DATA_FLOAT, CUDNN_PROPAGATE_NAN), "op");
          return d;
        }(),
        cudnnDestroyOpTensorDescriptor));
    op.bytes = bias ? 2.0 * S : 3.0 * S;
    op.cudnn_what = bias ? "cudnnOpTensor (ADD, b broadcast over N, H, W)" : "cudnnOpTensor (ADD)";
    if (bias) {
      op.ours = [=] { kc::bias_forward(s, x, b, y, stream()); };
    } else {
      op.ours = [=] { kc::add_forward(s, x, s.x, b, y, stream()); };
    }
    op.cudnn = [=] {
      check(cudnnOpTensor(cudnn(), add, &kOne, desc->d, x, &kOne, b_desc->d, b, &kZero, desc->d, yc), "add");
    };
    op.ours_out = y, op.cudnn_out = yc;
    op.expected.resize(n);
    if (bias)
      kr::bias_forward(s, download(x, n).data(), download(b, bn).data(), op.expected.data());
    else
      kr::add_forward(s, download(x, n).data(), s.x, download(b, n).data(), op.expected.data());
    return;
  }
  if (name == "copy" || name == "copy_accumulate") {
    const bool acc = name == "copy_accumulate";
    float *y0 = op.uniform(n, 3), *y = op.output(n), *yc = op.alloc(n);
    op.bytes = acc ? 3.0 * S : 2.0 * S;
    op.cudnn_what = std::string("cudnnTransformTensor (y = x") + (acc ? " + y)" : ")");
    // Accumulating changes y each call: reset() restores it so every checked call starts from the same y.
    if (acc) op.reset = [=] { copy(y, y0, n), copy(yc, y0, n); };
    op.ours = [=] { kc::copy(s, x, y, acc, stream()); };
    const float* beta = acc ? &kOne : &kZero;
    op.cudnn = [=] { check(cudnnTransformTensor(cudnn(), &kOne, desc->d, x, beta, desc->d, yc), "transform"); };
    op.ours_out = y, op.cudnn_out = yc;
    op.expected = download(y0, n);
    kr::copy(s, download(x, n).data(), op.expected.data(), acc);
    return;
  }
  if (name == "bias_backward") {
    float *db = op.output(size_t(kAct[1])), *dbc = op.alloc(size_t(kAct[1]));
    auto* b_desc = op.own(std::make_shared<TensorDesc>(1, kAct[1], 1, 1));
    op.bytes = double(S);
    op.cudnn_what = "cudnnConvolutionBackwardBias";
    op.ours = [=] { kc::bias_backward(s, x, db, false, stream()); };
    op.cudnn = [=] {
      check(cudnnConvolutionBackwardBias(cudnn(), &kOne, desc->d, x, &kZero, b_desc->d, dbc), "backward bias");
    };
    op.ours_out = db, op.cudnn_out = dbc;
    op.expected.resize(size_t(kAct[1]));
    kr::bias_backward(s, download(x, n).data(), op.expected.data(), false);
    return;
  }
  if (name == "dropout_forward" || name == "dropout_backward") {
    kernels::DropoutShape d{kAct[0], kAct[1], kAct[2], kAct[3], 0.5f, 1234, 7, s.x, s.y};
    float* y = op.output(n);
    op.bytes = 2.0 * S;
    const bool fwd = name == "dropout_forward";
    op.ours = [=] { fwd ? kc::dropout_forward(d, x, y, stream()) : kc::dropout_backward(d, x, y, false, stream()); };
    op.ours_out = y;
    op.expected.resize(n);
    if (fwd)
      kr::dropout_forward(d, download(x, n).data(), op.expected.data());
    else
      kr::dropout_backward(d, download(x, n).data(), op.expected.data(), false);
    return;
  }
  fail("unknown elementwise case " + name);
}

void pool_case(OpCase& op, const std::string& name) {
  const bool max = name.rfind("maxpool", 0) == 0, fwd = name.find("forward") != std::string::npos;
  const kernels::PoolShape s = kernels::pool_shape(kPool[0], kPool[1], kPool[2], kPool[3],
                                                   max ? kernels::PoolMethod::max : kernels::PoolMethod::avg, 3, 2, 0);
  const size_t xn = size_t(s.N) * s.C * s.H * s.W, yn = size_t(s.N) * s.C * s.P * s.Q;
  auto* x_desc = op.own(std::make_shared<TensorDesc>(s.N, s.C, s.H, s.W));
  auto* y_desc = op.own(std::make_shared<TensorDesc>(s.N, s.C, s.P, s.Q));
  auto* pool = op.own(std::shared_ptr<cudnnPoolingStruct>(
      [max] {
        cudnnPoolingDescriptor_t d = nullptr;
        check(cudnnCreatePoolingDescriptor(&d), "cudnnCreatePoolingDescriptor");
        // Deterministic max backward, as ours; average over the whole 3x3 window (no padding here).
        check(cudnnSetPooling2dDescriptor(
                  d, max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
                  CUDNN_PROPAGATE_NAN, 3, 3, 0, 0, 2, 2),
              "pooling descriptor");
        return d;
      }(),
      cudnnDestroyPoolingDescriptor));
  int n = 0, c = 0, p = 0, q = 0;
  check(cudnnGetPooling2dForwardOutputDim(pool, x_desc->d, &n, &c, &p, &q), "pooling output size");
  if (p != s.P || q != s.Q) fail("cuDNN's pooling output size differs from Caffe's CEIL size: pick another shape");
  float* x = op.uniform(xn, 1);
  op.cudnn_what = std::string(fwd ? "cudnnPoolingForward (" : "cudnnPoolingBackward (") +
                  (max ? "MAX_DETERMINISTIC)" : "AVERAGE_COUNT_INCLUDE_PADDING)");
  if (fwd) {
    float *y = op.output(yn), *yc = op.alloc(yn);
    op.bytes = 4.0 * double(xn + yn);
    op.ours = [=] { kc::pool_forward(s, x, y, stream()); };
    op.cudnn = [=] {
      check(cudnnPoolingForward(cudnn(), pool, &kOne, x_desc->d, x, &kZero, y_desc->d, yc), "pooling");
    };
    op.ours_out = y, op.cudnn_out = yc;
    op.expected.resize(yn);
    kr::pool_forward(s, download(x, xn).data(), op.expected.data());
    return;
  }
  float *y = op.alloc(yn), *dy = op.uniform(yn, 2), *dx = op.output(xn), *dxc = op.alloc(xn);
  kc::pool_forward(s, x, y, stream());    // cuDNN's backward reads y too
  op.bytes = 4.0 * double(xn + yn + xn);  // ours reads x and dy, writes dx
  op.ours = [=] { kc::pool_backward(s, x, dy, dx, false, stream()); };
  op.cudnn = [=] {
    check(cudnnPoolingBackward(cudnn(), pool, &kOne, y_desc->d, y, y_desc->d, dy, x_desc->d, x, &kZero, x_desc->d, dxc),
          "pooling backward");
  };
  op.ours_out = dx, op.cudnn_out = dxc;
  op.expected.resize(xn);
  kr::pool_backward(s, download(x, xn).data(), download(dy, yn).data(), op.expected.data(), false);
}

void lrn_case(OpCase& op, const std::string& name) {
  kernels::LrnShape s;
  s.N = kPool[0], s.C = kPool[1], s.H = kPool[2], s.W = kPool[3];
  s.x = s.y = kernels::Placement::dense(s.C, s.H, s.W);
  const size_t n = size_t(s.N) * s.C * s.H * s.W, S = n * sizeof(float);
  auto* desc = op.own(std::make_shared<TensorDesc>(s.N, s.C, s.H, s.W));
  auto* lrn = op.own(std::shared_ptr<cudnnLRNStruct>(
      [&s] {
        cudnnLRNDescriptor_t d = nullptr;
        check(cudnnCreateLRNDescriptor(&d), "cudnnCreateLRNDescriptor");
        // cuDNN divides alpha by the window size, as Caffe and ours do.
        check(cudnnSetLRNDescriptor(d, unsigned(s.size), s.alpha, s.beta, s.k), "LRN descriptor");
        return d;
      }(),
      cudnnDestroyLRNDescriptor));
  // Activation-sized inputs (|x| up to 40), so the normalisation changes y by several percent and a wrong window or
  // exponent shows; with |x| <= 1 and alpha 1e-4, y would equal x to 3e-5.
  float* x = op.uniform(n, 1, -40.f, 40.f);
  if (name == "lrn_forward") {
    float *y = op.output(n), *yc = op.alloc(n);
    op.bytes = 2.0 * S;
    op.cudnn_what = "cudnnLRNCrossChannelForward";
    op.ours = [=] { kc::lrn_forward(s, x, y, stream()); };
    op.cudnn = [=] {
      check(cudnnLRNCrossChannelForward(cudnn(), lrn, CUDNN_LRN_CROSS_CHANNEL_DIM1, &kOne, desc->d, x, &kZero, desc->d,
                                        yc),
            "LRN");
    };
    op.ours_out = y, op.cudnn_out = yc;
    op.expected.resize(n);
    kr::lrn_forward(s, download(x, n).data(), op.expected.data());
    return;
  }
  float *y = op.alloc(n), *dy = op.uniform(n, 2), *dx = op.output(n), *dxc = op.alloc(n);
  kc::lrn_forward(s, x, y, stream());
  op.bytes = 4.0 * S;  // x, y, dy read; dx written
  op.cudnn_what = "cudnnLRNCrossChannelBackward";
  op.ours = [=] { kc::lrn_backward(s, x, y, dy, dx, false, stream()); };
  op.cudnn = [=] {
    check(cudnnLRNCrossChannelBackward(cudnn(), lrn, CUDNN_LRN_CROSS_CHANNEL_DIM1, &kOne, desc->d, y, desc->d, dy,
                                       desc->d, x, &kZero, desc->d, dxc),
          "LRN backward");
  };
  op.ours_out = dx, op.cudnn_out = dxc;
  op.expected.resize(n);
  kr::lrn_backward(s, download(x, n).data(), download(y, n).data(), download(dy, n).data(), op.expected.data(), false);
}

void softmax_case(OpCase& op, const std::string& name) {
  const bool map = name.rfind("softmax_map", 0) == 0;
  kernels::SoftmaxShape s;
  if (map)
    s.N = 16, s.C = 2, s.H = 1024, s.W = 1024;
  else
    s.N = 32768, s.C = 1000, s.H = 1, s.W = 1;
  s.x = s.y = kernels::Placement::dense(s.C, s.H, s.W);
  const size_t n = size_t(s.N) * s.C * s.H * s.W, S = n * sizeof(float), locations = size_t(s.N) * s.H * s.W;
  auto* desc = op.own(std::make_shared<TensorDesc>(s.N, s.C, s.H, s.W));
  float* x = op.uniform(n, 1, -5.f, 5.f);
  if (name.find("loss") != std::string::npos) {
    kernels::SoftmaxLossShape ls{s, -1};
    float *labels = op.alloc(locations), *prob = op.alloc(n);
    fill_labels(labels, locations, s.C, 3);
    const std::vector<float> labels_host = download(labels, locations), x_host = download(x, n);
    std::vector<float> prob_host(n);
    const float loss_host = kr::softmax_loss_forward(ls, x_host.data(), labels_host.data(), prob_host.data());
    if (name.find("forward") != std::string::npos) {
      float* loss = op.alloc(1);
      float* out = op.output(n);
      op.bytes = double(S) * 2 + double(locations) * sizeof(float);  // x, labels read; prob written
      op.ours = [=] { kc::softmax_loss_forward(ls, x, labels, out, loss, stream()); };
      op.ours_out = out;
      op.expected = prob_host;
      op.extra_check = [=](const std::string& what) -> std::string {
        const float got = download(loss, 1)[0];
        if (std::fabs(got - loss_host) <= 1e-5 + 1e-5 * std::fabs(loss_host)) return "";
        return what + ": loss " + std::to_string(got) + ", expected " + std::to_string(loss_host);
      };
      return;
    }
    kc::softmax_loss_forward(ls, x, labels, prob, op.alloc(1), stream());
    float* dx = op.output(n);
    op.bytes = double(S) * 2 + double(locations) * sizeof(float);  // prob, labels read; dx written
    op.ours = [=] { kc::softmax_loss_backward(ls, prob, labels, 1.f, dx, false, stream()); };
    op.ours_out = dx;
    op.expected.resize(n);
    kr::softmax_loss_backward(ls, download(prob, n).data(), labels_host.data(), 1.f, op.expected.data(), false);
    return;
  }
  if (name.find("forward") != std::string::npos) {
    float *prob = op.output(n), *pc = op.alloc(n);
    op.bytes = 2.0 * S;
    op.cudnn_what = "cudnnSoftmaxForward (ACCURATE, MODE_CHANNEL)";
    op.ours = [=] { kc::softmax_forward(s, x, prob, stream()); };
    op.cudnn = [=] {
      check(cudnnSoftmaxForward(cudnn(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, desc->d, x, &kZero,
                                desc->d, pc),
            "softmax");
    };
    op.ours_out = prob, op.cudnn_out = pc;
    op.expected.resize(n);
    kr::softmax_forward(s, download(x, n).data(), op.expected.data());
    return;
  }
  float *prob = op.alloc(n), *dprob = op.uniform(n, 2), *dx = op.output(n), *dxc = op.alloc(n);
  kc::softmax_forward(s, x, prob, stream());
  op.bytes = 3.0 * S;
  op.cudnn_what = "cudnnSoftmaxBackward (ACCURATE, MODE_CHANNEL)";
  op.ours = [=] { kc::softmax_backward(s, prob, dprob, dx, false, stream()); };
  op.cudnn = [=] {
    check(cudnnSoftmaxBackward(cudnn(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, desc->d, prob,
                               desc->d, dprob, &kZero, desc->d, dxc),
          "softmax backward");
  };
  op.ours_out = dx, op.cudnn_out = dxc;
  op.expected.resize(n);
  kr::softmax_backward(s, download(prob, n).data(), download(dprob, n).data(), op.expected.data(), false);
}

// Batch normalisation in training, on the VGG-16 conv2 activations (64 channels of 32x112x112 = 401408 values):
// forward (statistics, then y) and backward (dx, dgamma, dbeta), both against cuDNN's spatial batch norm. The
// least traffic: x read and y written (forward); x and dy read and dx written (backward). Ours reads x three
// times forward (two statistics passes, then y) and x, dy twice backward. Checked: y and dx (running statistics
// move with every call; y and dx do not depend on them).
void batch_norm_case(OpCase& op, const std::string& name) {
  kernels::BatchNormShape s;
  s.N = kAct[0], s.C = kAct[1], s.H = kAct[2], s.W = kAct[3];
  const size_t n = act_count(), S = n * sizeof(float), C = size_t(s.C);
  auto* desc = op.own(act_desc());
  auto* channel_desc = op.own(std::make_shared<TensorDesc>(1, s.C, 1, 1));  // gamma, beta and the statistics
  // Activation-like inputs: a per-tensor offset, so the mean is not 0.
  float *x = op.uniform(n, 1, -1.f, 3.f), *gamma = op.uniform(C, 2, 0.5f, 1.5f), *beta = op.uniform(C, 3);
  float *running_mean = op.alloc(C), *running_var = op.alloc(C), *saved_mean = op.alloc(C),
        *saved_inv_std = op.alloc(C);
  fill_value(running_mean, C, 0.f);
  fill_value(running_var, C, 1.f);
  const std::vector<float> x_host = download(x, n), gamma_host = download(gamma, C), beta_host = download(beta, C);
  if (name == "batch_norm_forward") {
    float *y = op.output(n), *yc = op.alloc(n), *mean_c = op.alloc(C), *var_c = op.alloc(C), *smean_c = op.alloc(C),
          *sinv_c = op.alloc(C);
    fill_value(mean_c, C, 0.f);
    fill_value(var_c, C, 1.f);
    op.bytes = 2.0 * S;
    op.cudnn_what = "cudnnBatchNormalizationForwardTraining (SPATIAL)";
    op.ours = [=] {
      kc::batch_norm_forward_training(s, x, gamma, beta, running_mean, running_var, y, saved_mean, saved_inv_std,
                                      stream());
    };
    op.cudnn = [=] {
      check(cudnnBatchNormalizationForwardTraining(cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, desc->d, x, desc->d,
                                                   yc, channel_desc->d, gamma, beta, double(s.momentum), mean_c, var_c,
                                                   double(s.eps), smean_c, sinv_c),
            "batch norm forward");
    };
    op.ours_out = y, op.cudnn_out = yc;
    op.expected.resize(n);
    std::vector<float> rm(C, 0.f), rv(C, 1.f), sm(C), si(C);
    kr::batch_norm_forward_training(s, x_host.data(), gamma_host.data(), beta_host.data(), rm.data(), rv.data(),
                                    op.expected.data(), sm.data(), si.data());
    return;
  }
  // Backward from the statistics of our forward pass (cuDNN's saved statistics are the same mean and 1 / std).
  float *y = op.alloc(n), *dy = op.uniform(n, 4), *dx = op.output(n), *dxc = op.alloc(n);
  float *dgamma = op.alloc(C), *dbeta = op.alloc(C), *dgamma_c = op.alloc(C), *dbeta_c = op.alloc(C);
  kc::batch_norm_forward_training(s, x, gamma, beta, running_mean, running_var, y, saved_mean, saved_inv_std, stream());
  op.bytes = 3.0 * S;
  op.cudnn_what = "cudnnBatchNormalizationBackward (SPATIAL)";
  op.ours = [=] {
    kc::batch_norm_backward(s, x, dy, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta, false, stream());
  };
  op.cudnn = [=] {
    check(cudnnBatchNormalizationBackward(cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero, desc->d, x,
                                          desc->d, dy, desc->d, dxc, channel_desc->d, gamma, dgamma_c, dbeta_c,
                                          double(s.eps), saved_mean, saved_inv_std),
          "batch norm backward");
  };
  op.ours_out = dx, op.cudnn_out = dxc;
  op.expected.resize(n);
  std::vector<float> dgamma_host(C), dbeta_host(C);
  kr::batch_norm_backward(s, x_host.data(), download(dy, n).data(), gamma_host.data(), download(saved_mean, C).data(),
                          download(saved_inv_std, C).data(), op.expected.data(), dgamma_host.data(), dbeta_host.data(),
                          false);
}

void sgd_case(OpCase& op) {
  const size_t n = size_t(64) << 20;
  const kernels::SgdStep step{int64_t(n), 0.01f, 0.9f, 5e-4f};
  float *w0 = op.uniform(n, 1), *g = op.uniform(n, 2), *h0 = op.uniform(n, 3, -0.01f, 0.01f);
  float *w = op.output(n), *h = op.alloc(n);
  op.bytes = 5.0 * double(n) * sizeof(float);  // w, g, history read; w, history written
  op.reset = [=] { copy(w, w0, n), copy(h, h0, n); };
  op.ours = [=] { kc::sgd_update(step, w, g, h, stream()); };
  op.ours_out = w;
  op.expected = download(w0, n);
  std::vector<float> history = download(h0, n);
  kr::sgd_update(step, op.expected.data(), download(g, n).data(), history.data());
}

const std::vector<std::string>& case_names() {
  static const std::vector<std::string> names = {
      "relu_forward",          "relu_backward",       "add_forward",          "copy",
      "copy_accumulate",       "bias_forward",        "bias_backward",        "maxpool_forward",
      "maxpool_backward",      "avgpool_forward",     "avgpool_backward",     "lrn_forward",
      "lrn_backward",          "dropout_forward",     "dropout_backward",     "softmax_forward",
      "softmax_backward",      "softmax_map_forward", "softmax_map_backward", "softmax_loss_forward",
      "softmax_loss_backward", "batch_norm_forward",  "batch_norm_backward",  "sgd_update"};
  return names;
}

OpCase& op_case(const std::string& name) {
  static std::unique_ptr<OpCase> current;
  if (current && current->name == name) return *current;
  current.reset();
  auto op = std::make_unique<OpCase>();
  op->name = name;
  if (name.find("pool") != std::string::npos)
    pool_case(*op, name);
  else if (name.rfind("lrn", 0) == 0)
    lrn_case(*op, name);
  else if (name.rfind("softmax", 0) == 0)
    softmax_case(*op, name);
  else if (name.rfind("batch_norm", 0) == 0)
    batch_norm_case(*op, name);
  else if (name == "sgd_update")
    sgd_case(*op);
  else
    elementwise_case(*op, name);
  if (op->bytes < 64e6) fail(name + ": working set " + std::to_string(op->bytes * 1e-6) + " MB is under 64 MB");
  if (op->cudnn) {
    if (op->reset) op->reset();
    op->cudnn_seconds = mean_seconds_per_call(op->cudnn, flags().baseline_min_time);
  }
  current = std::move(op);
  return *current;
}

double g_copy_bytes_per_second = 0;  // device-to-device cudaMemcpy, read + write counted

void measure_copy_bandwidth() {
  const size_t n = size_t(256) << 20 >> 2;  // 256 MiB each way
  Buffer a(n), b(n);
  fill_value(a.get(), n, 1.f);
  const double seconds =
      mean_seconds_per_call([&] { copy(b.get(), a.get(), n); }, std::max(0.5, flags().baseline_min_time));
  g_copy_bytes_per_second = 2.0 * a.bytes() / seconds;
}

void run_copy_row(benchmark::State& state) {
  const size_t n = size_t(256) << 20 >> 2;
  Buffer a(n), b(n);
  fill_value(a.get(), n, 1.f);
  double total = 0;
  for (auto _ : state) {
    const double seconds = time_call([&] { copy(b.get(), a.get(), n); });
    state.SetIterationTime(seconds);
    total += seconds;
  }
  const double rate = 2.0 * a.bytes() / (total / double(state.iterations()));
  state.counters["GB/s"] = rate * 1e-9;
  state.counters["vs_copy"] = rate / g_copy_bytes_per_second;
  state.counters["MB"] = 2.0 * a.bytes() * 1e-6;
  state.SetLabel("cudaMemcpyAsync device to device, 256 MiB: the ceiling vs_copy divides by (read + write counted)");
}

enum class Impl { ours, cudnn };

std::string check_against_reference(OpCase& op, const float* out, const std::string& what) {
  std::string bad = mismatch_host(download(out, op.out_count), op.expected, op.tolerance, what + " vs kernels::ref");
  if (bad.empty() && op.extra_check && out == op.ours_out) bad = op.extra_check(what);
  return bad;
}

void run_row(benchmark::State& state, const std::string& name, Impl impl) {
  OpCase& op = op_case(name);
  const bool ours = impl == Impl::ours;
  const std::function<void()>& call = ours ? op.ours : op.cudnn;
  float* out = ours ? op.ours_out : op.cudnn_out;
  const std::string what = "mem/" + name + "/" + (ours ? "ours" : "cudnn");
  if (op.reset)
    op.reset();  // an in-place op's output is also its input: restored, not poisoned
  else
    fill_value(out, op.out_count, std::numeric_limits<float>::quiet_NaN());  // an unwritten element fails
  call();
  if (!require(state, check_against_reference(op, out, what))) return;
  Buffer first(op.out_count);
  copy(first.get(), out, op.out_count);

  double total = 0;
  for (auto _ : state) {
    const double seconds = time_call(call);
    state.SetIterationTime(seconds);
    total += seconds;
  }
  // In-place ops have moved on from their inputs: check one more call from the start instead.
  if (op.reset) {
    op.reset();
    call();
  }
  const bool repeatable = compare_device(out, first.get(), op.out_count).exact();
  if (!require(state, check_against_reference(op, out, what + " after timing"))) return;

  const double mean = total / double(state.iterations());
  state.counters["GB/s"] = op.bytes / mean * 1e-9;
  state.counters["vs_copy"] = op.bytes / mean / g_copy_bytes_per_second;
  if (op.cudnn) state.counters["vs_cudnn"] = op.cudnn_seconds / mean;
  state.counters["MB"] = op.bytes * 1e-6;
  std::string label = ours ? "checked vs kernels::ref" : op.cudnn_what + ", checked vs kernels::ref";
  if (ours && op.cudnn) label += " (cuDNN: " + op.cudnn_what + ")";
  label += repeatable ? "; bit-repeatable" : "; NOT bit-repeatable";
  state.SetLabel(label);
}

bool has_cudnn(const std::string& name) {
  return name.find("dropout") == std::string::npos && name.find("loss") == std::string::npos && name != "sgd_update";
}

void register_rows() {
  benchmark::RegisterBenchmark("mem/cudaMemcpy_d2d", run_copy_row)->UseManualTime()->Unit(benchmark::kMicrosecond);
  for (const std::string& name : case_names()) {
    for (Impl impl : {Impl::ours, Impl::cudnn}) {
      if (impl == Impl::cudnn && !has_cudnn(name)) continue;
      const std::string row = "mem/" + name + "/" + (impl == Impl::ours ? "ours" : "cudnn");
      benchmark::RegisterBenchmark(row.c_str(), [name, impl](benchmark::State& st) { run_row(st, name, impl); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

void add_context() {
  measure_copy_bandwidth();
  std::ostringstream copy_rate;
  copy_rate.precision(5);
  copy_rate << g_copy_bytes_per_second * 1e-9
            << " (cudaMemcpyAsync device to device, 256 MiB, read + write counted; what vs_copy divides by)";
  benchmark::AddCustomContext("copy_GB/s", copy_rate.str());
  benchmark::AddCustomContext("baselines", "cuDNN cached before the first row of each op, mean over >= " +
                                               std::to_string(flags().baseline_min_time) + " s of GPU time");
}

}  // namespace

int main(int argc, char** argv) {
  return run_benchmark_main(
      argc, argv, [](const char*) { return false; }, add_context, register_rows);
}
