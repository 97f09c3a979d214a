// kernels/simt, the host runtime of the CUDA kernels: kernels written as CUDA code, launched through simt::launch,
// checked against plain loops; the errors it must report (missing and divergent barriers, deadlocks, overruns,
// exceptions, launch limits); and its cost (context switch, a 256^3 shared-memory tiled matmul).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cuda/portable.h"
#include "kernels/simt/fiber.h"
#include "kernels/simt/runtime.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"

namespace {

using testing_support::DeviceBuffer;
using testing_support::GpuBackend;

const GpuBackend simt_gpu(false);

const simt::Schedule kSchedules[] = {
    {simt::Order::forward, 0}, {simt::Order::reverse, 0}, {simt::Order::random, 12345}};

// Restores the schedule and the worker threads when a test case ends.
struct RuntimeSettings {
  simt::Schedule schedule = simt::schedule();
  int workers = simt::worker_threads();
  ~RuntimeSettings() {
    simt::set_schedule(schedule);
    simt::set_worker_threads(workers);
  }
};

// The message of the simt::Error that f throws ("" if it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const simt::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- kernels ------------------------------------------------------------------------------------------------------

// Block-wide tree sum of 1024 values in shared memory: every level needs the barrier before it.
__global__ void block_sum_1024(const float* in, float* out, int* votes) {
  MASSMAP_SHARED(float, partial, [1024]);
  const unsigned t = threadIdx.x;
  partial[t] = in[blockIdx.x * 1024 + t];
  __syncthreads();
  for (unsigned half = 512; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
  const int count = __syncthreads_count(t % 3 == 0);
  const int all = __syncthreads_and(t < 1024);
  const int any = __syncthreads_or(t == 777);
  const int none = __syncthreads_or(0);
  if (t == 5) {
    votes[blockIdx.x * 4 + 0] = count;
    votes[blockIdx.x * 4 + 1] = all;
    votes[blockIdx.x * 4 + 2] = any;
    votes[blockIdx.x * 4 + 3] = none;
  }
}

constexpr int kTile = 16;

// C (M, N) = A (M, K) * B (K, N): A's tile in static shared memory, B's in dynamic shared memory (kTile^2 floats).
__global__ void matmul_tiled(const float* a, const float* b, float* c, int m, int n, int k) {
  MASSMAP_SHARED(float, a_tile, [kTile][kTile + 1]);
  MASSMAP_DYNAMIC_SHARED(float, b_tile);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kTile + ty, col = blockIdx.x * kTile + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += kTile) {
    a_tile[ty][tx] = row < m && k0 + tx < k ? a[row * k + k0 + tx] : 0.0f;
    b_tile[ty * kTile + tx] = k0 + ty < k && col < n ? b[(k0 + ty) * n + col] : 0.0f;
    __syncthreads();
    for (int kk = 0; kk < kTile; ++kk) acc += a_tile[ty][kk] * b_tile[kk * kTile + tx];
    __syncthreads();
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

std::vector<float> matmul_reference(const std::vector<float>& a, const std::vector<float>& b, int m, int n, int k) {
  std::vector<float> c(size_t(m) * n, 0.0f);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double acc = 0;
      for (int kk = 0; kk < k; ++kk) acc += double(a[size_t(i) * k + kk]) * b[size_t(kk) * n + j];
      c[size_t(i) * n + j] = float(acc);
    }
  return c;
}

std::vector<float> run_matmul(int m, int n, int k, const std::vector<float>& a, const std::vector<float>& b) {
  DeviceBuffer da(simt_gpu, a), db(simt_gpu, b), dc(simt_gpu, size_t(m) * n);
  simt::launch("matmul_tiled", matmul_tiled, dim3((n + kTile - 1) / kTile, (m + kTile - 1) / kTile), dim3(kTile, kTile),
               kTile * kTile * sizeof(float), da.get(), db.get(), dc.get(), m, n, k);
  return dc.download();
}

// Sum per block through warp shuffles. The lanes of a partial warp read only lanes that exist: the source lane is
// clamped to the reader itself, since reading a lane that is not there is undefined on a GPU.
__global__ void warp_shuffle_sum(const float* in, float* out) {
  MASSMAP_SHARED(float, warp_sums, [32]);
  const unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
  const unsigned present = __ballot_sync(0xffffffffu, 1);
  const unsigned lanes = __popc(present);
  float v = in[t];
  for (unsigned offset = 16; offset > 0; offset /= 2) {
    const unsigned src = lane + offset;
    const float other = __shfl_sync(present, v, src < lanes ? src : lane);
    if (src < lanes) v += other;
  }
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (t == 0) {
    float total = 0.0f;
    for (unsigned w = 0; w < (blockDim.x + 31) / 32; ++w) total += warp_sums[w];
    out[0] = total;
  }
}

// The usual full-mask reduction, wrong for a partial warp: lane 0 of the last warp reads lanes that do not exist.
__global__ void careless_shuffle_sum(const float* in, float* out) {
  float v = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = v;
}

__global__ void votes(int* out) {
  const unsigned t = threadIdx.x, lane = t % 32;
  const unsigned ballot = __ballot_sync(0xffffffffu, lane % 3 == 0);
  const int all_small = __all_sync(0xffffffffu, lane < 40);
  const int all_even = __all_sync(0xffffffffu, lane % 2 == 0);
  const int any_seven = __any_sync(0xffffffffu, lane == 7);
  const int any_none = __any_sync(0xffffffffu, 0);
  // Lanes 0-15 and 16-31 vote separately, with disjoint masks.
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  const unsigned half_ballot = __ballot_sync(half, lane % 2 == 1);
  __syncwarp();
  out[t * 6 + 0] = int(ballot);
  out[t * 6 + 1] = all_small;
  out[t * 6 + 2] = all_even;
  out[t * 6 + 3] = any_seven;
  out[t * 6 + 4] = any_none;
  out[t * 6 + 5] = int(half_ballot);
}

// Inclusive prefix sums with __shfl_up_sync (over the warp and over 8-lane segments), a butterfly sum with
// __shfl_xor_sync over 16-lane segments, and __shfl_down_sync / __shfl_sync with a width.
__global__ void shuffles(const int* in, int* out) {
  const unsigned t = threadIdx.x, lane = t % 32;
  const int x = in[t];
  int scan = x, scan8 = x;
  for (unsigned d = 1; d < 32; d *= 2) {
    const int up = __shfl_up_sync(0xffffffffu, scan, d);
    if (lane >= d) scan += up;
  }
  for (unsigned d = 1; d < 8; d *= 2) {
    const int up = __shfl_up_sync(0xffffffffu, scan8, d, 8);
    if (lane % 8 >= d) scan8 += up;
  }
  int butterfly = x;
  for (int m = 8; m > 0; m /= 2) butterfly += __shfl_xor_sync(0xffffffffu, butterfly, m, 16);
  const int down = __shfl_down_sync(0xffffffffu, x, 3, 8);   // own value where lane + 3 leaves the 8-lane segment
  const int broadcast = __shfl_sync(0xffffffffu, x, 5, 16);  // lane 5 of each 16-lane segment
  const double wide = __shfl_xor_sync(0xffffffffu, double(x) + 0.5, 1);
  out[t * 6 + 0] = scan;
  out[t * 6 + 1] = scan8;
  out[t * 6 + 2] = butterfly;
  out[t * 6 + 3] = down;
  out[t * 6 + 4] = broadcast;
  out[t * 6 + 5] = int(wide * 2);
}

__global__ void atomics(int* count, float* sum, int* maximum, unsigned* minimum, unsigned long long* cas_count,
                        int* exchanged) {
  const int id = int(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(count, 1);
  atomicAdd(sum, 0.1f);
  atomicMax(maximum, id);
  atomicMin(minimum, unsigned(id) + 7u);
  unsigned long long seen = 0;
  for (;;) {
    const unsigned long long before = atomicCAS(cas_count, seen, seen + 1);
    if (before == seen) break;
    seen = before;
  }
  atomicExch(exchanged, 42);
}

// Block 0 waits (host spin, for this test only) until another block runs, which only another OS thread can do.
std::atomic<int> blocks_started{0};
std::mutex os_threads_mutex;
std::set<std::thread::id> os_threads;
__global__ void concurrent_blocks(int* waited_ok) {
  if (threadIdx.x == 0) {
    std::lock_guard<std::mutex> lock(os_threads_mutex);
    os_threads.insert(std::this_thread::get_id());
  }
  if (threadIdx.x == 0) blocks_started.fetch_add(1);
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (blocks_started.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    *waited_ok = blocks_started.load() >= 2;
  }
}

// Each thread reads its left neighbour's value from shared memory, with or without the barrier in between.
template <bool kWithBarrier>
__global__ void neighbour(const float* in, float* out) {
  MASSMAP_SHARED(float, values, [64]);
  const unsigned t = threadIdx.x;
  values[t] = in[t];
  if (kWithBarrier) __syncthreads();
  out[t] = values[t == 0 ? 0 : t - 1];
}

#if !MASSMAP_SIMT_ASAN  // overruns are fatal under AddressSanitizer (which reports them itself)
__global__ void write_one_past_the_end(float* out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = 1.0f;  // the bug: <= instead of <
}

__global__ void write_before_the_start(float* out) {
  out[int(threadIdx.x) - 1] = 1.0f;
}

__global__ void shared_one_past_the_end(float* out) {
  MASSMAP_SHARED(float, tile, [32]);
  tile[threadIdx.x + 1] = 1.0f;  // thread 31 writes tile[32]
  __syncthreads();
  out[threadIdx.x] = tile[threadIdx.x];
}

#endif

#if MASSMAP_SIMT_ASAN
constexpr int asan_global_line = __LINE__ + 3;  // the line of the overrun below
__global__ void asan_global_overrun(float* out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = 1.0f;
}
constexpr int asan_shared_line = __LINE__ + 3;
__global__ void asan_dynamic_shared_overrun(float* out) {
  MASSMAP_DYNAMIC_SHARED(float, values);  // 32 floats
  values[threadIdx.x + 1] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = values[threadIdx.x];
}

#endif

// What a child process that runs `body` writes to stderr (a report of the error that ends it).
template <typename F>
std::string stderr_of_child(F&& body) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGABRT, SIG_DFL);  // no doctest crash report from the child
    std::signal(SIGSEGV, SIG_DFL);
    dup2(fds[1], 2);
    close(fds[0]);
    body();
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t got; (got = read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, size_t(got));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return text;
}
// Recursion with 1 KiB frames: deep enough to run off a 64 KiB fiber stack.
int recurse(int depth) {
  volatile char frame[1024];
  frame[0] = char(depth);
  return depth == 0 ? frame[0] : recurse(depth - 1) + frame[0];
}
__global__ void deep_recursion(int depth, int* out) {
  *out = recurse(depth);
}

// Math and bit intrinsics, and the unqualified float functions of CUDA code.
__global__ void math_functions(const float* in, float* out, int* bits) {
  const float x = in[threadIdx.x];
  out[threadIdx.x * 8 + 0] = __expf(x) - expf(x);
  out[threadIdx.x * 8 + 1] = rsqrtf(x * x + 1.0f) * sqrtf(x * x + 1.0f);
  out[threadIdx.x * 8 + 2] = __saturatef(x);
  out[threadIdx.x * 8 + 3] = __fdividef(x, 4.0f) + __frcp_rn(2.0f) + __fmaf_rn(x, 2.0f, 1.0f) - fmaf(x, 2.0f, 1.0f);
  out[threadIdx.x * 8 + 4] = fmaxf(x, 0.0f) + fminf(x, 0.0f) - fabsf(x);
  out[threadIdx.x * 8 + 5] = __int_as_float(__float_as_int(x)) - __uint_as_float(__float_as_uint(x));
  out[threadIdx.x * 8 + 6] = __powf(2.0f, 3.0f) + __logf(1.0f) + float(sizeof(exp(x)));  // exp(float) is a float
  out[threadIdx.x * 8 + 7] = max(x, 0.5f) + float(min(int(threadIdx.x), 3)) + float(max(2u, threadIdx.x));
  if (threadIdx.x == 0) {
    bits[0] = __popc(0xf0f0u);
    bits[1] = __clz(1);
    bits[2] = __clz(0);
    bits[3] = __ffs(0x50);
    bits[4] = __ffs(0);
    bits[5] = int(__brev(1u) >> 31);
  }
}

// Threads 20 and up return early: the rest still pass their barriers (exited threads count as arrived), but a
// full-mask shuffle that reads an exited lane is an error.
template <bool kReadExitedLane>
__global__ void early_exit(float* out) {
  MASSMAP_SHARED(float, values, [32]);
  if (threadIdx.x >= 20) return;
  values[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  float v = values[19 - threadIdx.x];
  __syncthreads();
  if (kReadExitedLane) v += __shfl_down_sync(0xffffffffu, v, 16);
  out[threadIdx.x] = v;
}

// Block 0 writes its shared memory; every block reads it. Any other block must see poison, not block 0's values.
__global__ void stale_shared(float* out) {
  MASSMAP_SHARED(float, values, [64]);
  if (blockIdx.x == 0) values[threadIdx.x] = 1.0f;
  __syncthreads();
  out[blockIdx.x * 64 + threadIdx.x] = values[threadIdx.x];
}

// Half a warp waits at __syncthreads, the other half in a full-mask shuffle that needs the first half.
__global__ void deadlock(float* out) {
  float v = float(threadIdx.x);
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    v = __shfl_sync(0xffffffffu, v, 0);
  }
  out[threadIdx.x] = v;
}

int divergent_line_a = 0, divergent_line_b = 0;
__global__ void divergent_barrier(float* out) {
  if (threadIdx.x < 16) {
    divergent_line_a = __LINE__ + 1;
    __syncthreads();
  } else {
    divergent_line_b = __LINE__ + 1;
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void throwing(float* out) {
  if (blockIdx.x == 2 && threadIdx.x == 5) throw std::runtime_error("thread 5 gives up");
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}

__global__ void too_much_static_shared(float* out) {
  MASSMAP_SHARED(float, big, [49 * 256]);  // 49 KiB
  big[threadIdx.x] = 1.0f;
  out[threadIdx.x] = big[threadIdx.x];
}

__global__ void empty_kernel() {}

__global__ void record_order(int* order, int* next) {
  order[(*next)++] = int(threadIdx.x);  // no atomics needed: fibers of a block share one OS thread
}

__global__ void barrier_loop(int iterations, int* done) {
  for (int i = 0; i < iterations; ++i) __syncthreads();
  if (threadIdx.x == 0) *done = 1;
}

__global__ void read_unwritten_shuffle(float* out) {
  // Lanes 0-15 exchange among themselves but lane 0 asks for lane 20, which is not in the mask.
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1.0f, threadIdx.x == 0 ? 20 : 1);
}

}  // namespace

// ---- tests --------------------------------------------------------------------------------------------------------

TEST_CASE("simt.runtime 1024-thread block barrier: tree sum and __syncthreads_count/and/or") {
  RuntimeSettings restore;
  std::vector<float> in(3 * 1024);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 1024) + (i < 1024 ? 0.0f : 1.0f);
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    DeviceBuffer din(simt_gpu, in), dout(simt_gpu, 3), dvotes(simt_gpu, 12);
    simt::launch("block_sum_1024", block_sum_1024, dim3(3), dim3(1024), 0, din.get(), dout.get(),
                 reinterpret_cast<int*>(dvotes.get()));
    const std::vector<float> out = dout.download();
    CHECK(out[0] == 523776.0f);  // 0 + 1 + ... + 1023, exact in float
    CHECK(out[1] == 524800.0f);
    CHECK(out[2] == 524800.0f);
    std::vector<float> raw = dvotes.download();
    std::vector<int> v(12);
    std::memcpy(v.data(), raw.data(), 12 * sizeof(int));
    for (int b = 0; b < 3; ++b) {
      CHECK(v[b * 4 + 0] == 342);  // t % 3 == 0 for t in 0..1023
      CHECK(v[b * 4 + 1] == 1);
      CHECK(v[b * 4 + 2] == 1);
      CHECK(v[b * 4 + 3] == 0);
    }
  }
}

TEST_CASE("simt.runtime tiled matmul with static and dynamic shared memory, sizes not multiples of the tile") {
  RuntimeSettings restore;
  const int m = 37, n = 29, k = 45;
  const auto a = testing_support::random_vector(size_t(m) * k, 1);
  const auto b = testing_support::random_vector(size_t(k) * n, 2);
  const auto expected = matmul_reference(a, b, m, n, k);
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    testing_support::expect_close(run_matmul(m, n, k, a, b), expected, 1e-5f, 1e-5f, "c");
  }
}

TEST_CASE("simt.runtime warp shuffle sum with a partial last warp (48 threads)") {
  RuntimeSettings restore;
  std::vector<float> in(48);
  for (int i = 0; i < 48; ++i) in[i] = float(i + 1);
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    DeviceBuffer din(simt_gpu, in), dout(simt_gpu, 2);
    simt::launch("warp_shuffle_sum", warp_shuffle_sum, dim3(1), dim3(48), 0, din.get(), dout.get());
    CHECK(dout.download()[0] == 1176.0f);  // 1 + ... + 48
    // The full-mask version reads lanes 16-31 of the second warp, which do not exist.
    const std::string error = error_of([&] {
      simt::launch("careless_shuffle_sum", careless_shuffle_sum, dim3(1), dim3(48), 0, din.get(), dout.get());
    });
    CHECK(contains(error, "kernel 'careless_shuffle_sum'"));
    CHECK(contains(error, "__shfl_down_sync"));
    CHECK(contains(error, "does not exist"));
  }
}

TEST_CASE("simt.runtime ballot, all, any, with a full and with split masks") {
  RuntimeSettings restore;
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    const int threads = 40;  // a full warp and a warp of 8 lanes
    DeviceBuffer dout(simt_gpu, threads * 6);
    simt::launch("votes", votes, dim3(1), dim3(threads), 0, reinterpret_cast<int*>(dout.get()));
    const std::vector<float> raw = dout.download();
    std::vector<int> out(raw.size());
    std::memcpy(out.data(), raw.data(), raw.size() * sizeof(float));
    for (int t = 0; t < threads; ++t) {
      CAPTURE(t);
      const int lane = t % 32, lanes = t < 32 ? 32 : 8;
      unsigned ballot = 0, half_ballot = 0;
      for (int l = 0; l < lanes; ++l) {
        if (l % 3 == 0) ballot |= 1u << l;
        if (l % 2 == 1 && (l < 16) == (lane < 16)) half_ballot |= 1u << l;
      }
      CHECK(unsigned(out[t * 6 + 0]) == ballot);
      CHECK(out[t * 6 + 1] == 1);
      CHECK(out[t * 6 + 2] == 0);
      CHECK(out[t * 6 + 3] == 1);
      CHECK(out[t * 6 + 4] == 0);
      CHECK(unsigned(out[t * 6 + 5]) == half_ballot);
    }
  }
}

TEST_CASE("simt.runtime shfl_up, shfl_xor, shfl_down and shfl with widths") {
  RuntimeSettings restore;
  std::vector<int> in(64);
  for (int i = 0; i < 64; ++i) in[i] = (i * 7) % 13 - 4;
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    DeviceBuffer din(simt_gpu, 64), dout(simt_gpu, 64 * 6);
    kernels::simt::copy_to_device(din.get(), in.data(), 64 * sizeof(int), nullptr);
    simt::launch("shuffles", shuffles, dim3(1), dim3(64), 0, reinterpret_cast<const int*>(din.get()),
                 reinterpret_cast<int*>(dout.get()));
    std::vector<int> out(64 * 6);
    kernels::simt::copy_to_host(out.data(), dout.get(), out.size() * sizeof(int), nullptr);
    for (int t = 0; t < 64; ++t) {
      CAPTURE(t);
      const int lane = t % 32, warp = t / 32 * 32;
      int scan = 0, scan8 = 0, segment16 = 0;
      for (int l = 0; l <= lane; ++l) scan += in[warp + l];
      for (int l = lane / 8 * 8; l <= lane; ++l) scan8 += in[warp + l];
      for (int l = lane / 16 * 16; l < lane / 16 * 16 + 16; ++l) segment16 += in[warp + l];
      const int down = lane % 8 + 3 < 8 ? in[t + 3] : in[t];
      CHECK(out[t * 6 + 0] == scan);
      CHECK(out[t * 6 + 1] == scan8);
      CHECK(out[t * 6 + 2] == segment16);
      CHECK(out[t * 6 + 3] == down);
      CHECK(out[t * 6 + 4] == in[warp + lane / 16 * 16 + 5]);
      CHECK(out[t * 6 + 5] == 2 * in[t ^ 1] + 1);
    }
  }
}

TEST_CASE("simt.runtime atomics from many blocks on 2 OS threads") {
  RuntimeSettings restore;
  simt::set_worker_threads(2);
  {
    int waited_ok = 0;
    DeviceBuffer flag(simt_gpu, 1);
    blocks_started = 0;
    os_threads.clear();
    simt::launch("concurrent_blocks", concurrent_blocks, dim3(8), dim3(32), 0, reinterpret_cast<int*>(flag.get()));
    kernels::simt::copy_to_host(&waited_ok, flag.get(), sizeof(int), nullptr);
    CHECK(waited_ok == 1);  // block 0 saw another block start while it was still running
    CHECK(os_threads.size() == 2);
  }
  const int blocks = 300, threads = 96, total = blocks * threads;
  DeviceBuffer mem(simt_gpu, 8);
  auto* base = reinterpret_cast<char*>(mem.get());
  int* count = reinterpret_cast<int*>(base);
  float* sum = reinterpret_cast<float*>(base + 4);
  int* maximum = reinterpret_cast<int*>(base + 8);
  unsigned* minimum = reinterpret_cast<unsigned*>(base + 12);
  auto* cas_count = reinterpret_cast<unsigned long long*>(base + 16);
  int* exchanged = reinterpret_cast<int*>(base + 24);
  const int zero = 0, minus_one = -1;
  const unsigned big = 0xffffffffu;
  const unsigned long long zero64 = 0;
  const float zerof = 0.0f;
  kernels::simt::copy_to_device(count, &zero, 4, nullptr);
  kernels::simt::copy_to_device(sum, &zerof, 4, nullptr);
  kernels::simt::copy_to_device(maximum, &minus_one, 4, nullptr);
  kernels::simt::copy_to_device(minimum, &big, 4, nullptr);
  kernels::simt::copy_to_device(cas_count, &zero64, 8, nullptr);
  kernels::simt::copy_to_device(exchanged, &zero, 4, nullptr);
  simt::launch("atomics", atomics, dim3(blocks), dim3(threads), 0, count, sum, maximum, minimum, cas_count, exchanged);
  CHECK(*count == total);
  CHECK(*sum == doctest::Approx(0.1 * total).epsilon(1e-3));
  CHECK(*maximum == total - 1);
  CHECK(*minimum == 7u);
  CHECK(*cas_count == static_cast<unsigned long long>(total));
  CHECK(*exchanged == 42);
}

TEST_CASE("simt.runtime a missing barrier passes in forward order and fails in reverse and random order") {
  RuntimeSettings restore;
  std::vector<float> in(64);
  for (int i = 0; i < 64; ++i) in[i] = float(i * i);
  std::vector<float> expected(64);
  for (int i = 0; i < 64; ++i) expected[i] = in[i == 0 ? 0 : i - 1];
  DeviceBuffer din(simt_gpu, in), dout(simt_gpu, 64);
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    simt::launch("neighbour", neighbour<true>, dim3(1), dim3(64), 0, din.get(), dout.get());
    CHECK(dout.download() == expected);
    simt::launch("neighbour_without_barrier", neighbour<false>, dim3(1), dim3(64), 0, din.get(), dout.get());
    const std::vector<float> out = dout.download();
    const bool any_nan = std::any_of(out.begin(), out.end(), [](float v) { return std::isnan(v); });
    if (s.order == simt::Order::forward) {
      CHECK(out == expected);
    } else {
      CHECK(any_nan);  // a neighbour's value read before it was written: the shared memory's poison
    }
  }
}

#if !MASSMAP_SIMT_ASAN  // under AddressSanitizer these overruns are reported (and fatal) where they happen
TEST_CASE("simt.runtime guard zones catch a one-past-the-end write to device memory") {
  DeviceBuffer dout(simt_gpu, 100);
  const std::string error = error_of(
      [&] { simt::launch("write_one_past_the_end", write_one_past_the_end, dim3(4), dim3(32), 0, dout.get(), 100); });
  CHECK(contains(error, "kernel 'write_one_past_the_end'"));
  CHECK(contains(error, "400 bytes"));
  CHECK(contains(error, "after the end"));
  CHECK(error_of([] { simt::check_guards(); }).empty());  // reported once, then repaired
  const std::string before = error_of(
      [&] { simt::launch("write_before_the_start", write_before_the_start, dim3(1), dim3(32), 0, dout.get()); });
  CHECK(contains(before, "kernel 'write_before_the_start'"));
  CHECK(contains(before, "before the start"));
  simt::launch("write_one_past_the_end", write_one_past_the_end, dim3(4), dim3(32), 0, dout.get(), 99);
}

TEST_CASE("simt.runtime a write past the end of a shared array is reported") {
  DeviceBuffer dout(simt_gpu, 32);
  const std::string error = error_of(
      [&] { simt::launch("shared_one_past_the_end", shared_one_past_the_end, dim3(1), dim3(32), 0, dout.get()); });
  CHECK(contains(error, "kernel 'shared_one_past_the_end'"));
  CHECK(contains(error, "shared memory 'tile'"));
  CHECK(contains(error, "past its end"));
}
#endif

#if MASSMAP_SIMT_ASAN
TEST_CASE("simt.runtime AddressSanitizer reports device and dynamic shared memory overruns at the kernel's line") {
  RuntimeSettings restore;
  simt::set_worker_threads(1);  // the child process has only the forking thread
  const std::string global_report = stderr_of_child([] {
    float* out = static_cast<float*>(simt::device_malloc(100 * sizeof(float)));
    simt::launch("asan_global_overrun", asan_global_overrun, dim3(4), dim3(32), 0, out, 100);
  });
  CAPTURE(global_report);
  CHECK(contains(global_report, "ERROR: AddressSanitizer"));
  CHECK(contains(global_report, "simt_test.cpp:" + std::to_string(asan_global_line)));
  const std::string shared_report = stderr_of_child([] {
    float* out = static_cast<float*>(simt::device_malloc(32 * sizeof(float)));
    simt::launch("asan_dynamic_shared_overrun", asan_dynamic_shared_overrun, dim3(1), dim3(32), 32 * sizeof(float),
                 out);
  });
  CAPTURE(shared_report);
  CHECK(contains(shared_report, "ERROR: AddressSanitizer"));
  CHECK(contains(shared_report, "simt_test.cpp:" + std::to_string(asan_shared_line)));
}
#endif

TEST_CASE("simt.runtime a fiber stack overflow is reported with the kernel and the thread") {
  RuntimeSettings restore;
  simt::set_worker_threads(1);  // the child process has only the forking thread
  int result = 0;
  simt::launch("shallow_recursion", deep_recursion, dim3(1), dim3(2), 0, 10, &result);
  CHECK(result == 55);
#if !MASSMAP_SIMT_ASAN  // AddressSanitizer reports stack overflows itself
  const std::string report =
      stderr_of_child([&] { simt::launch("deep_recursion", deep_recursion, dim3(1), dim3(2), 0, 1000, &result); });
  CHECK(contains(report, "simt: stack overflow in kernel 'deep_recursion' block (0,0,0) thread (0,0,0)"));
#endif
}

TEST_CASE("simt.runtime math and bit intrinsics") {
  const std::vector<float> in = {-2.0f, -0.25f, 0.0f, 0.75f, 3.0f};
  const int n = int(in.size());
  DeviceBuffer din(simt_gpu, in), dout(simt_gpu, size_t(n) * 8), dbits(simt_gpu, 6);
  simt::launch("math_functions", math_functions, dim3(1), dim3(n), 0, din.get(), dout.get(),
               reinterpret_cast<int*>(dbits.get()));
  const std::vector<float> out = dout.download();
  for (int t = 0; t < n; ++t) {
    CAPTURE(t);
    const float x = in[t];
    CHECK(out[t * 8 + 0] == 0.0f);  // full precision: __expf is expf
    CHECK(out[t * 8 + 1] == doctest::Approx(1.0f));
    CHECK(out[t * 8 + 2] == std::min(std::max(x, 0.0f), 1.0f));
    CHECK(out[t * 8 + 3] == doctest::Approx(x / 4.0f + 0.5f));
    CHECK(out[t * 8 + 4] == (x < 0 ? 2 * x : 0.0f));
    CHECK(out[t * 8 + 5] == 0.0f);
    CHECK(out[t * 8 + 6] == 8.0f + 4.0f);
    CHECK(out[t * 8 + 7] == std::max(x, 0.5f) + float(std::min(t, 3)) + float(std::max(2, t)));
  }
  std::vector<int> bits(6);
  kernels::simt::copy_to_host(bits.data(), dbits.get(), bits.size() * sizeof(int), nullptr);
  CHECK(bits == std::vector<int>{8, 31, 32, 5, 0, 1});
  // Device functions need a kernel around them.
  CHECK(contains(error_of([] { __syncthreads(); }), "__syncthreads called outside a kernel at"));
  CHECK(contains(error_of([] { __shfl_sync(0xffffffffu, 1, 0); }), "__shfl_sync called outside a kernel"));
}

TEST_CASE("simt.runtime exited threads count as arrived at barriers, and reading an exited lane is an error") {
  RuntimeSettings restore;
  DeviceBuffer dout(simt_gpu, 32);
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    simt::launch("early_exit", early_exit<false>, dim3(1), dim3(32), 0, dout.get());
    const std::vector<float> out = dout.download();
    for (int t = 0; t < 20; ++t) CHECK(out[t] == float(19 - t));
    const std::string error =
        error_of([&] { simt::launch("early_exit_shuffle", early_exit<true>, dim3(1), dim3(32), 0, dout.get()); });
    CHECK(contains(error, "reads lane 20 of warp 0, which has exited"));
  }
}

TEST_CASE("simt.runtime stale shared memory reads as NaN") {
  RuntimeSettings restore;
  simt::set_worker_threads(1);  // every block reuses the same arena
  DeviceBuffer dout(simt_gpu, 3 * 64);
  simt::launch("stale_shared", stale_shared, dim3(3), dim3(64), 0, dout.get());
  const std::vector<float> out = dout.download();
  for (int i = 0; i < 64; ++i) CHECK(out[i] == 1.0f);
  for (int i = 64; i < 3 * 64; ++i) CHECK(std::isnan(out[i]));
}

TEST_CASE("simt.runtime a deadlock is reported with each thread's position instead of hanging") {
  RuntimeSettings restore;
  DeviceBuffer dout(simt_gpu, 32);
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    const std::string error = error_of([&] { simt::launch("deadlock", deadlock, dim3(2), dim3(32), 0, dout.get()); });
    CAPTURE(error);
    // Both blocks deadlock; which one is reported first depends on the block order and the worker threads.
    CHECK((contains(error, "kernel 'deadlock' block (0,0,0): deadlock") ||
           contains(error, "kernel 'deadlock' block (1,0,0): deadlock")));
    CHECK(contains(error, "Threads (0,0,0) to (15,0,0): wait at __syncthreads at"));
    CHECK(contains(error, "Threads (16,0,0) to (31,0,0): wait in __shfl_sync at"));
    CHECK(contains(error, "for lanes 0-15"));
  }
  // The runtime is usable afterwards.
  std::vector<float> in(64, 1.0f);
  DeviceBuffer din(simt_gpu, in), dsum(simt_gpu, 2);
  simt::launch("warp_shuffle_sum", warp_shuffle_sum, dim3(1), dim3(64), 0, din.get(), dsum.get());
  CHECK(dsum.download()[0] == 64.0f);
}

TEST_CASE("simt.runtime a divergent barrier is reported with both source lines") {
  RuntimeSettings restore;
  DeviceBuffer dout(simt_gpu, 32);
  for (const simt::Schedule& s : kSchedules) {
    CAPTURE(simt::describe(s));
    simt::set_schedule(s);
    const std::string error =
        error_of([&] { simt::launch("divergent_barrier", divergent_barrier, dim3(1), dim3(32), 0, dout.get()); });
    CAPTURE(error);
    REQUIRE(divergent_line_a > 0);
    CHECK(contains(error, "kernel 'divergent_barrier'"));
    CHECK(contains(error, "divergent barrier"));
    CHECK(contains(error, "simt_test.cpp:" + std::to_string(divergent_line_a)));
    CHECK(contains(error, "simt_test.cpp:" + std::to_string(divergent_line_b)));
  }
}

TEST_CASE("simt.runtime an exception inside a kernel is reported with the kernel, block and thread") {
  RuntimeSettings restore;
  for (int workers : {1, 2}) {
    simt::set_worker_threads(workers);
    DeviceBuffer dout(simt_gpu, 4 * 32);
    const std::string error = error_of([&] { simt::launch("throwing", throwing, dim3(4), dim3(32), 0, dout.get()); });
    CHECK(error == "kernel 'throwing' block (2,0,0): thread (5,0,0): exception: thread 5 gives up");
  }
}

TEST_CASE("simt.runtime launches over the GPU's limits are errors") {
  DeviceBuffer dout(simt_gpu, 1024);
  CHECK(contains(error_of([] { simt::launch("big_block", empty_kernel, dim3(1), dim3(1025), 0); }),
                 "kernel 'big_block': 1025 threads per block"));
  CHECK(contains(error_of([] { simt::launch("deep_block", empty_kernel, dim3(1), dim3(1, 1, 65), 0); }),
                 "over the limits"));
  CHECK(contains(error_of([] { simt::launch("tall_grid", empty_kernel, dim3(1, 65536), dim3(1), 0); }),
                 "over the limits"));
  CHECK(contains(error_of([] { simt::launch("no_threads", empty_kernel, dim3(1), dim3(0), 0); }), "empty launch"));
  CHECK(contains(error_of([] { simt::launch("dynamic", empty_kernel, dim3(1), dim3(1), 228 * 1024); }),
                 "dynamic shared memory"));
  const std::string error = error_of(
      [&] { simt::launch("too_much_static_shared", too_much_static_shared, dim3(1), dim3(32), 0, dout.get()); });
  CHECK(contains(error, "kernel 'too_much_static_shared'"));
  CHECK(contains(error, "shared memory 'big'"));
  CHECK(contains(error, "limit 49152"));
  simt::launch("allowed", empty_kernel, dim3(2147483647u / 1024 / 1024, 2, 1), dim3(1024), 200 * 1024);
}

TEST_CASE("simt.runtime a shuffle that reads a lane outside its mask is an error") {
  DeviceBuffer dout(simt_gpu, 32);
  const std::string error = error_of(
      [&] { simt::launch("read_unwritten_shuffle", read_unwritten_shuffle, dim3(1), dim3(32), 0, dout.get()); });
  CAPTURE(error);
  CHECK(contains(error, "thread (0,0,0)"));
  CHECK(contains(error, "reads lane 20 of warp 0, which is not in the mask 0x0000ffff"));
}

TEST_CASE("simt.runtime schedules: thread order per round, names, a seed replays its order") {
  RuntimeSettings restore;
  CHECK(simt::describe({simt::Order::forward, 0}) == "forward");
  CHECK(simt::describe({simt::Order::reverse, 0}) == "reverse");
  CHECK(simt::describe({simt::Order::random, 12345}) == "random(12345)");
  auto order_under = [](simt::Schedule s) {
    simt::set_schedule(s);
    CHECK(simt::schedule().order == s.order);
    CHECK(simt::schedule().seed == s.seed);
    std::vector<int> order(64, -1);
    int next = 0;
    DeviceBuffer dorder(simt_gpu, 64);
    simt::launch("record_order", record_order, dim3(1), dim3(64), 0, reinterpret_cast<int*>(dorder.get()), &next);
    kernels::simt::copy_to_host(order.data(), dorder.get(), 64 * sizeof(int), nullptr);
    return order;
  };
  std::vector<int> forward(64), reverse(64);
  for (int i = 0; i < 64; ++i) forward[i] = i, reverse[i] = 63 - i;
  CHECK(order_under({simt::Order::forward, 0}) == forward);
  CHECK(order_under({simt::Order::reverse, 0}) == reverse);
  const std::vector<int> random = order_under({simt::Order::random, 7});
  CHECK(random != forward);
  CHECK(random != reverse);
  CHECK(std::is_permutation(random.begin(), random.end(), forward.begin()));
  CHECK(order_under({simt::Order::random, 7}) == random);  // a seed replays its order
  CHECK(order_under({simt::Order::random, 8}) != random);
}

TEST_CASE("simt.runtime device memory of device.cu: poison, copies, fill, checked ranges") {
  CHECK(kernels::simt::available());
  CHECK(contains(kernels::simt::describe(), "simt"));
  const size_t n = 1000;
  float* d = static_cast<float*>(kernels::simt::device_alloc(n * sizeof(float)));
  float* e = static_cast<float*>(kernels::simt::device_alloc(n * sizeof(float)));
  CHECK(reinterpret_cast<uintptr_t>(d) % 256 == 0);
  std::vector<float> host(n, 0.0f);
  kernels::simt::copy_to_host(host.data(), d, n * sizeof(float), nullptr);
  CHECK(std::all_of(host.begin(), host.end(), [](float v) { return std::isnan(v); }));  // fresh memory is poison
  for (size_t i = 0; i < n; ++i) host[i] = float(i);
  kernels::GpuStream stream = kernels::simt::create_stream();
  kernels::simt::copy_to_device(d, host.data(), n * sizeof(float), stream);
  kernels::simt::copy_device_to_device(e, d, n * sizeof(float), stream);
  kernels::simt::fill_device(d + 10, 2.5f, 20, stream);
  kernels::simt::synchronize(stream);
  std::vector<float> back(n), copied(n);
  kernels::simt::copy_to_host(back.data(), d, n * sizeof(float), stream);
  kernels::simt::copy_to_host(copied.data(), e, n * sizeof(float), stream);
  kernels::simt::destroy_stream(stream);
  CHECK(copied == host);
  for (size_t i = 0; i < n; ++i) CHECK(back[i] == (i >= 10 && i < 30 ? 2.5f : float(i)));
  CHECK(contains(error_of([&] { kernels::simt::copy_to_device(d + 1, host.data(), n * sizeof(float), nullptr); }),
                 "run past its end"));
  CHECK(contains(error_of([&] { kernels::simt::copy_to_host(back.data(), host.data(), 4, nullptr); }),
                 "is not simt device memory"));
  CHECK(contains(error_of([&] { kernels::simt::fill_device(d, 0.0f, n + 1, nullptr); }), "fill_device"));
  kernels::simt::device_free(d);
  kernels::simt::device_free(e);
  kernels::simt::device_free(nullptr);
  CHECK(contains(error_of([&] { kernels::simt::device_free(d); }), "not an address returned by device_malloc"));
  // A big fill goes through the fill kernel's grid-stride loop.
  DeviceBuffer big(simt_gpu, 300000);
  kernels::simt::fill_device(big.get(), -1.0f, big.size(), nullptr);
  const std::vector<float> filled = big.download();
  CHECK(std::all_of(filled.begin(), filled.end(), [](float v) { return v == -1.0f; }));
}

TEST_CASE("simt.runtime costs: context switch, barrier, 256^3 tiled matmul on one core") {
  RuntimeSettings restore;
  simt::set_worker_threads(1);
  simt::set_schedule({simt::Order::forward, 0});

  // A ping-pong between this thread and a fiber: two switches per round trip.
  struct PingPong {
    simt::detail::Context main, fiber;
    long rounds = 0;
  } pp;
  simt::detail::StackPool stacks;
  stacks.reserve(1);
  pp.fiber.sp = simt::detail::prepare_fiber(
      stacks[0],
      [](void* arg) {
        simt::detail::fiber_started();
        auto* p = static_cast<PingPong*>(arg);
        for (;;) {
          ++p->rounds;
          simt::detail::switch_context(p->fiber, p->main);
        }
      },
      &pp);
  pp.fiber.stack_bottom = stacks[0].bottom();
  pp.fiber.stack_size = stacks[0].usable;
  simt::detail::current_thread_stack(pp.main);
  const long round_trips = 1000000;
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < round_trips; ++i) simt::detail::switch_context(pp.main, pp.fiber);
  const double switch_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / (2.0 * round_trips);
  CHECK(pp.rounds == round_trips);
  MESSAGE("context switch: " << switch_ns << " ns");

  const int iterations = 20000, threads = 256;
  DeviceBuffer done(simt_gpu, 1);
  start = std::chrono::steady_clock::now();
  simt::launch("barrier_loop", barrier_loop, dim3(1), dim3(threads), 0, iterations, reinterpret_cast<int*>(done.get()));
  const double barrier_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
                            (double(iterations) * threads);
  MESSAGE("__syncthreads: " << barrier_ns << " ns per thread and barrier");

  const int size = 256;
  const auto a = testing_support::random_vector(size_t(size) * size, 3);
  const auto b = testing_support::random_vector(size_t(size) * size, 4);
  DeviceBuffer da(simt_gpu, a), db(simt_gpu, b), dc(simt_gpu, size_t(size) * size);
  double best_ms = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    start = std::chrono::steady_clock::now();
    simt::launch("matmul_tiled", matmul_tiled, dim3(size / kTile, size / kTile), dim3(kTile, kTile),
                 kTile * kTile * sizeof(float), da.get(), db.get(), dc.get(), size, size, size);
    best_ms =
        std::min(best_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  MESSAGE("256^3 shared-memory tiled matmul: " << best_ms << " ms per launch on one core");
  testing_support::expect_close(dc.download(), matmul_reference(a, b, size, size, size), 1e-4f, 1e-4f, "c");
}
