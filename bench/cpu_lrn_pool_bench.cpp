// The fast CPU LRN and pooling (kernels/cpu/lrn_fast.cpp, pool_fast.cpp) on AlexNet's layers at batch 32, forward
// and backward, against the plain-loop reference (kernels::ref, the naive version) and oneDNN (lrn_across_channels,
// pooling_max, in our nchw layout, so no reorders), timed call by call in the same run. These passes move a few bytes
// per flop, so the roofline verdict is memory-bound: of_copy is the traffic rate over the measured copy bandwidth.
//   OMP_NUM_THREADS=2 build/bin/cpu_lrn_pool_bench
// Rows: lrn_pool/<layer>/<pass>/<impl>; counters GB/s (the least traffic: inputs and output once), GFLOP/s (LRN:
// 2 * size + 6 per element forward, 2 * size + 8 backward; pool: R * S compares or adds per output), of_copy,
// of_peak, vs_ref and vs_onednn (the other's mean over this row's, interleaved).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "kernels/lrn.h"
#include "kernels/pool.h"
#ifdef MASSMAP_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using namespace bench;

struct Layer {
  const char* name;
  bool lrn;
  int C, H;        // input (C, H, H)
  int kernel = 3;  // pool window (stride 2, no padding) or LRN size
};
const std::vector<Layer>& layers() {
  static const std::vector<Layer> l = {{"alexnet_norm1", true, 96, 55, 5},
                                       {"alexnet_norm2", true, 256, 27, 5},
                                       {"alexnet_pool1", false, 96, 55, 3},
                                       {"alexnet_pool2", false, 256, 27, 3},
                                       {"alexnet_pool5", false, 256, 13, 3}};
  return l;
}
constexpr int kBatch = 32;

struct Settings {
  Peak peak;
  double copy_bytes_per_second = 0;
};
Settings& settings() {
  static Settings s;
  return s;
}

// One layer pass: buffers, our call, the reference's, oneDNN's, and napkin math.
struct Problem {
  std::vector<float> x, y, dy, dx;  // x, dx (N, C, H, W); y, dy (N, C, P, Q)
  std::function<void(float*out)> ours, ref;
  std::function<void()> onednn;
  std::function<std::vector<float>()> onednn_output;
  size_t out_elems = 0;
  double flops = 0, bytes = 0;
};

#ifdef MASSMAP_HAVE_DNNL
dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}
using dims = dnnl::memory::dims;
dnnl::memory user(const dims& d, float* data) {
  return dnnl::memory({d, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nchw}, engine(), data);
}
#endif

std::unique_ptr<Problem> make_problem(const Layer& l, bool backward) {
  auto pr = std::make_unique<Problem>();
  Problem& p = *pr;
  const int N = kBatch;
  if (l.lrn) {
    kernels::LrnShape s;
    s.N = N, s.C = l.C, s.H = s.W = l.H, s.size = l.kernel;
    s.x = s.y = kernels::Placement::dense(l.C, l.H, l.H);
    const size_t n = size_t(N) * l.C * l.H * l.H;
    p.x = random_vector(n, 1);
    p.dy = random_vector(n, 2);
    p.y.assign(n, 0.f);
    kernels::ref::lrn_forward(s, p.x.data(), p.y.data());
    p.out_elems = n;
    p.flops = double(n) * (2 * l.kernel + (backward ? 8 : 6));
    p.bytes = double(n) * 4 * (backward ? 4 : 2);  // backward reads x, y, dy, writes dx
    if (!backward) {
      p.ours = [s, &p](float* out) { kernels::cpu::lrn_forward(s, p.x.data(), out); };
      p.ref = [s, &p](float* out) { kernels::ref::lrn_forward(s, p.x.data(), out); };
    } else {
      p.ours = [s, &p](float* out) { kernels::cpu::lrn_backward(s, p.x.data(), p.y.data(), p.dy.data(), out, false); };
      p.ref = [s, &p](float* out) { kernels::ref::lrn_backward(s, p.x.data(), p.y.data(), p.dy.data(), out, false); };
    }
#ifdef MASSMAP_HAVE_DNNL
    const dims d = {N, l.C, l.H, l.H};
    auto x_mem = user(d, p.x.data());
    auto fwd_pd =
        dnnl::lrn_forward::primitive_desc({dnnl::prop_kind::forward_training, dnnl::algorithm::lrn_across_channels,
                                           x_mem.get_desc(), l.kernel, s.alpha, s.beta, s.k},
                                          engine());
    auto out = std::make_shared<std::vector<float>>(p.out_elems);
    auto ws = std::make_shared<dnnl::memory>(fwd_pd.workspace_desc(), engine());
    auto y_mem = user(d, p.y.data());
    if (!backward) {
      auto prim = std::make_shared<dnnl::lrn_forward>(fwd_pd);
      auto o = user(d, out->data());
      p.onednn = [prim, x_mem, o, ws] {
        prim->execute(stream(), {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_DST, o}, {DNNL_ARG_WORKSPACE, *ws}});
        stream().wait();
      };
    } else {
      auto y_dnnl = std::make_shared<std::vector<float>>(p.out_elems);
      dnnl::lrn_forward(fwd_pd).execute(
          stream(), {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_DST, user(d, y_dnnl->data())}, {DNNL_ARG_WORKSPACE, *ws}});
      stream().wait();
      auto bwd_pd = dnnl::lrn_backward::primitive_desc(
          {dnnl::algorithm::lrn_across_channels, x_mem.get_desc(), x_mem.get_desc(), l.kernel, s.alpha, s.beta, s.k},
          engine(), fwd_pd);
      auto prim = std::make_shared<dnnl::lrn_backward>(bwd_pd);
      auto dy_mem = user(d, p.dy.data()), o = user(d, out->data());
      p.onednn = [prim, x_mem, dy_mem, o, ws, y_dnnl] {
        prim->execute(
            stream(),
            {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_DIFF_DST, dy_mem}, {DNNL_ARG_DIFF_SRC, o}, {DNNL_ARG_WORKSPACE, *ws}});
        stream().wait();
      };
    }
    p.onednn_output = [out] { return *out; };
#endif
  } else {
    const kernels::PoolShape s = kernels::pool_shape(N, l.C, l.H, l.H, kernels::PoolMethod::max, l.kernel, 2, 0);
    const size_t n_in = size_t(N) * l.C * l.H * l.H, n_out = size_t(N) * l.C * s.P * s.Q;
    p.x = random_vector(n_in, 3);
    p.dy = random_vector(n_out, 4);
    p.out_elems = backward ? n_in : n_out;
    p.flops = double(n_out) * l.kernel * l.kernel;
    p.bytes = 4.0 * (backward ? 2 * n_in + n_out : n_in + n_out);
    if (!backward) {
      p.ours = [s, &p](float* out) { kernels::cpu::pool_forward(s, p.x.data(), out); };
      p.ref = [s, &p](float* out) { kernels::ref::pool_forward(s, p.x.data(), out); };
    } else {
      p.ours = [s, &p](float* out) { kernels::cpu::pool_backward(s, p.x.data(), p.dy.data(), out, false); };
      p.ref = [s, &p](float* out) { kernels::ref::pool_backward(s, p.x.data(), p.dy.data(), out, false); };
    }
#ifdef MASSMAP_HAVE_DNNL
    const dims din = {N, l.C, l.H, l.H}, dout = {N, l.C, s.P, s.Q};
    auto x_mem = user(din, p.x.data());
    auto y_md = dnnl::memory::desc(dout, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nchw);
    auto fwd_pd = dnnl::pooling_forward::primitive_desc({dnnl::prop_kind::forward_training,
                                                         dnnl::algorithm::pooling_max,
                                                         x_mem.get_desc(),
                                                         y_md,
                                                         {2, 2},
                                                         {l.kernel, l.kernel},
                                                         {0, 0},
                                                         {0, 0}},
                                                        engine());
    auto ws = std::make_shared<dnnl::memory>(fwd_pd.workspace_desc(), engine());
    auto out = std::make_shared<std::vector<float>>(p.out_elems);
    auto y_buf = std::make_shared<std::vector<float>>(n_out);
    auto fwd = std::make_shared<dnnl::pooling_forward>(fwd_pd);
    if (!backward) {
      auto o = user(dout, out->data());
      p.onednn = [fwd, x_mem, o, ws] {
        fwd->execute(stream(), {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_DST, o}, {DNNL_ARG_WORKSPACE, *ws}});
        stream().wait();
      };
    } else {
      fwd->execute(stream(),
                   {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_DST, user(dout, y_buf->data())}, {DNNL_ARG_WORKSPACE, *ws}});
      stream().wait();
      // oneDNN's backward reads the argmax the forward pass saved in its workspace (ours recomputes it from x).
      auto bwd_pd = dnnl::pooling_backward::primitive_desc(
          {dnnl::algorithm::pooling_max, x_mem.get_desc(), y_md, {2, 2}, {l.kernel, l.kernel}, {0, 0}, {0, 0}},
          engine(), fwd_pd);
      auto bwd = std::make_shared<dnnl::pooling_backward>(bwd_pd);
      auto dy_mem = user(dout, p.dy.data()), o = user(din, out->data());
      p.onednn = [bwd, dy_mem, o, ws, y_buf] {
        bwd->execute(stream(), {{DNNL_ARG_DIFF_DST, dy_mem}, {DNNL_ARG_DIFF_SRC, o}, {DNNL_ARG_WORKSPACE, *ws}});
        stream().wait();
      };
    }
    p.onednn_output = [out] { return *out; };
#endif
  }
  return pr;
}

void run_row(benchmark::State& state, const Layer& l, bool backward, int impl /* 0 ours, 1 ref, 2 onednn */) {
  const std::string what = std::string(l.name) + (backward ? " backward" : " forward");
  auto p = make_problem(l, backward);
  std::vector<float> want(p->out_elems, std::numeric_limits<float>::quiet_NaN()), got = want;
  p->ref(want.data());
  p->ours(got.data());
  require_close(got.data(), want.data(), got.size(), what + ": ours vs kernels::ref");
  if (p->onednn) {
    p->onednn();
    const auto d = p->onednn_output();
    require_close(d.data(), want.data(), d.size(), what + ": oneDNN vs kernels::ref");
  }
  auto call = [&](int which) {
    if (which == 0) p->ours(got.data());
    if (which == 1) p->ref(got.data());
    if (which == 2) p->onednn();
  };
  double total = 0, ref_total = 0, dnnl_total = 0;
  for (auto _ : state) {
    double start = now_seconds();
    call(impl);
    const double seconds = now_seconds() - start;
    state.SetIterationTime(seconds);
    total += seconds;
    // The baselines, one call each after every timed call (the reference only beside ours: it is slow).
    if (impl == 0) {
      start = now_seconds();
      call(1);
      ref_total += now_seconds() - start;
    }
    if (p->onednn && impl != 2) {
      start = now_seconds();
      call(2);
      dnnl_total += now_seconds() - start;
    }
  }
  if (impl == 0) {
    p->ours(got.data());
    require_close(got.data(), want.data(), got.size(), what + ": ours vs kernels::ref, after timing");
  }
  const double mean = total / double(state.iterations());
  const double roof_bw = settings().copy_bytes_per_second;
  state.counters["GB/s"] = p->bytes / mean * 1e-9;
  state.counters["GFLOP/s"] = p->flops / mean * 1e-9;
  state.counters["of_copy"] = p->bytes / mean / roof_bw;
  state.counters["of_peak"] = p->flops / mean / settings().peak.flops_per_second;
  if (impl == 0) state.counters["vs_ref"] = ref_total / total;
  if (p->onednn && impl != 2) state.counters["vs_onednn"] = dnnl_total / total;
  const bool memory_bound = p->flops / p->bytes * roof_bw < settings().peak.flops_per_second;
  state.SetLabel(memory_bound ? "memory-bound" : "compute-bound");
}

}  // namespace

int main(int argc, char** argv) {
  settings().peak = measure_fp32_peak();
  settings().copy_bytes_per_second = measure_copy_bandwidth();
  std::ostringstream peak, copy;
  peak << settings().peak.flops_per_second * 1e-9 << " (" << settings().peak.method << ")";
  copy << settings().copy_bytes_per_second * 1e-9 << " (memcpy of 256 MiB, read + write counted, all threads)";
  benchmark::AddCustomContext("fp32_peak_GFLOP/s", peak.str());
  benchmark::AddCustomContext("copy_GB/s", copy.str());
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("batch", std::to_string(kBatch));
  for (const Layer& l : layers()) {
    for (const bool backward : {false, true}) {
      for (int impl = 0; impl < 3; ++impl) {
#ifndef MASSMAP_HAVE_DNNL
        if (impl == 2) continue;
#endif
        const std::string name = std::string("lrn_pool/") + l.name + (backward ? "/backward/" : "/forward/") +
                                 (impl == 0   ? "ours"
                                  : impl == 1 ? "ref"
                                              : "onednn");
        benchmark::RegisterBenchmark(name.c_str(),
                                     [l, backward, impl](benchmark::State& st) { run_row(st, l, backward, impl); })
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
