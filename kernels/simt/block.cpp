// Running one block: fibers, rounds in the schedule's order, __syncthreads and warp intrinsics as barriers,
// divergence and deadlock reports.
#include "kernels/simt/block.h"

#include <algorithm>
#include <cstring>
#include <memory>

#if MASSMAP_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace simt::detail {

thread_local BlockRunner* BlockRunner::running_ = nullptr;

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool same_text(const char* a, const char* b) {
  return a == b || (a && b && std::strcmp(a, b) == 0);
}

bool same_site(const CallSite& a, const CallSite& b) {
  return a.line == b.line && same_text(a.file, b.file) && same_text(a.what, b.what);
}

std::string where(const CallSite& s) {
  return std::string(s.what) + " at " + s.file + ":" + std::to_string(s.line);
}

std::string hex(unsigned v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

// "0-15, 20, 22-23"
std::string lane_list(unsigned mask) {
  std::string out;
  for (int lane = 0; lane < 32;) {
    if (!(mask >> lane & 1u)) {
      ++lane;
      continue;
    }
    int last = lane;
    while (last + 1 < 32 && (mask >> (last + 1) & 1u)) ++last;
    if (!out.empty()) out += ", ";
    out += std::to_string(lane);
    if (last > lane) out += "-" + std::to_string(last);
    lane = last + 1;
  }
  return out.empty() ? "none" : out;
}

// The lane PTX shfl.sync reads for `lane` (or `lane` itself when the source falls outside its segment).
unsigned source_lane(unsigned lane, ShuffleMode mode, int operand, int width) {
  const unsigned b = static_cast<unsigned>(operand) & 31u;
  const unsigned segment_mask = 32u - static_cast<unsigned>(width);
  const unsigned first = lane & segment_mask;
  const unsigned last = first | (31u & ~segment_mask);
  switch (mode) {
    case ShuffleMode::idx:
      return first | (b & ~segment_mask);
    case ShuffleMode::up:
      return lane >= first + b ? lane - b : lane;
    case ShuffleMode::down:
      return lane + b <= last ? lane + b : lane;
    case ShuffleMode::xor_:
      return (lane ^ b) <= last ? (lane ^ b) : lane;
  }
  return lane;
}

}  // namespace

BlockRunner::BlockRunner() {
  round_.reserve(1024);
  threads_.reserve(1024);
}

BlockRunner::~BlockRunner() = default;

BlockRunner& BlockRunner::of_this_thread() {
  thread_local std::unique_ptr<BlockRunner> runner;
  if (!runner) runner = std::make_unique<BlockRunner>();
  return *runner;
}

std::string BlockRunner::thread_name(unsigned linear) const {
  const uint3 i = threads_[linear].index;
  return "(" + std::to_string(i.x) + "," + std::to_string(i.y) + "," + std::to_string(i.z) + ")";
}

void BlockRunner::run(const BlockLaunch& launch, uint64_t block_linear) {
  launch_ = &launch;
  const dim3 g = launch.grid, b = launch.block;
  block_index_ = uint3{static_cast<unsigned>(block_linear % g.x), static_cast<unsigned>(block_linear / g.x % g.y),
                       static_cast<unsigned>(block_linear / (uint64_t{g.x} * g.y))};
  const unsigned n = b.x * b.y * b.z;
  stacks_.reserve(n);
#if MASSMAP_SIMT_ASAN
  if (stacks_dirty_) {  // frames of abandoned fibers left poisoned shadow behind
    for (unsigned i = 0; i < threads_.size(); ++i) ASAN_UNPOISON_MEMORY_REGION(stacks_[i].bottom(), stacks_[i].usable);
  }
#endif
  stacks_dirty_ = false;
  threads_.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = threads_[i];
    t = Thread{};
    t.index = uint3{i % b.x, i / b.x % b.y, i / (b.x * b.y)};
#if MASSMAP_SIMT_ASAN
    // The frames a finished fiber never returned from (fiber_main down to the switch) left their redzones poisoned.
    constexpr size_t kEntryFrames = 16 * 1024;
    ASAN_UNPOISON_MEMORY_REGION(stacks_[i].top() - kEntryFrames, kEntryFrames);
#endif
    t.context.sp = prepare_fiber(stacks_[i], &BlockRunner::fiber_main, this);
    t.context.stack_bottom = stacks_[i].bottom();
    t.context.stack_size = stacks_[i].usable;
  }
  warps_.resize((n + 31) / 32);
  for (size_t w = 0; w < warps_.size(); ++w) {
    const unsigned lanes = std::min(32u, n - static_cast<unsigned>(w) * 32);
    warps_[w].present = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    warps_[w].pending.clear();
  }
  live_ = n;
  arrived_ = 0;
  failed_ = false;
  failure_.clear();
  round_.clear();
  round_pos_ = 0;
  random_state_ = launch.schedule.seed ^ ((block_linear + 1) * 0xd1b54a32d192ed03ull);
  arena_.begin_block(launch.dynamic_shared_bytes);
#if MASSMAP_SIMT_ASAN
  if (!scheduler_.stack_bottom) current_thread_stack(scheduler_);
#endif

  ::blockIdx = block_index_;
  ::blockDim = b;
  ::gridDim = g;
  running_ = this;
  const int first = pick_next();
  current_ = static_cast<unsigned>(first);
  ::threadIdx = threads_[current_].index;
  switch_context(scheduler_, threads_[current_].context);
  running_ = nullptr;
  ::threadIdx = uint3{0, 0, 0};

  const std::string block_name = "kernel '" + std::string(launch.call->name) + "' block (" +
                                 std::to_string(block_index_.x) + "," + std::to_string(block_index_.y) + "," +
                                 std::to_string(block_index_.z) + "): ";
  if (failed_ || live_ > 0) {
    stacks_dirty_ = true;
    throw Error(block_name + (failed_ ? failure_ : deadlock_report()));
  }
  const std::string overrun = arena_.check_guards();
  if (!overrun.empty()) throw Error(block_name + overrun);
}

void BlockRunner::fiber_main(void* runner) {
  fiber_started();
  static_cast<BlockRunner*>(runner)->run_current_thread();
}

void BlockRunner::run_current_thread() {
  {
    unsigned culprit = current_;
    bool caught = true;
    std::string error;
    try {
      launch_->call->run(launch_->call->closure);
      thread_exited();
      caught = false;
    } catch (const ThreadError& e) {
      culprit = e.thread;
      error = e.what();
    } catch (const Error& e) {
      error = e.what();
    } catch (const std::exception& e) {
      error = std::string("exception: ") + e.what();
    } catch (...) {
      error = "exception of unknown type";
    }
    if (caught && !failed_) {
      failed_ = true;
      failure_ = "thread " + thread_name(culprit) + ": " + error;
    }
  }  // nothing of this frame may outlive the switch below: this fiber is never resumed
  if (failed_) switch_context(threads_[current_].context, scheduler_, true);
  resume_next(true);
  __builtin_trap();  // unreachable: a finished fiber is never resumed
}

void BlockRunner::thread_exited() {
  threads_[current_].wait = Wait::exited;
  --live_;
  const unsigned warp = current_ / 32;
  Warp& w = warps_[warp];
  w.present &= ~(1u << (current_ % 32));
  // Lanes waiting in a warp intrinsic no longer wait for this one; reading it is reported when they complete.
  for (size_t i = 0; i < w.pending.size();) {
    if ((w.pending[i].mask & w.present) == w.pending[i].arrived) {
      complete_warp_op(warp, i);
    } else {
      ++i;
    }
  }
  if (arrived_ > 0 && arrived_ == live_) release_barrier();  // exited threads count as arrived
}

int BlockRunner::pick_next() {
  for (;;) {
    while (round_pos_ < round_.size()) {
      const unsigned i = round_[round_pos_++];
      if (threads_[i].wait == Wait::runnable) return static_cast<int>(i);
    }
    if (!start_round()) return -1;
  }
}

bool BlockRunner::start_round() {
  round_.clear();
  round_pos_ = 0;
  for (unsigned i = 0; i < threads_.size(); ++i)
    if (threads_[i].wait == Wait::runnable) round_.push_back(i);
  if (round_.empty()) return false;
  switch (launch_->schedule.order) {
    case Order::forward:
      break;
    case Order::reverse:
      std::reverse(round_.begin(), round_.end());
      break;
    case Order::random:
      for (size_t i = round_.size() - 1; i > 0; --i) std::swap(round_[i], round_[splitmix64(random_state_) % (i + 1)]);
      break;
  }
  return true;
}

void BlockRunner::resume_next(bool current_finished) {
  Context& from = threads_[current_].context;
  const int next = pick_next();
  if (next < 0) {
    switch_context(from, scheduler_, current_finished);
    return;
  }
  current_ = static_cast<unsigned>(next);
  ::threadIdx = threads_[current_].index;
  switch_context(from, threads_[current_].context, current_finished);
}

// ---- __syncthreads ------------------------------------------------------------------------------------------------

int BlockRunner::barrier(BarrierKind kind, int predicate, const CallSite& site) {
  Thread& t = threads_[current_];
  if (arrived_ == 0) {
    barrier_site_ = site;
    barrier_first_ = current_;
    barrier_kind_ = kind;
    barrier_accumulator_ = kind == BarrierKind::all ? 1 : 0;
  } else if (!same_site(site, barrier_site_)) {
    divergent_barrier(site);
  }
  const int p = predicate != 0;
  switch (kind) {
    case BarrierKind::plain:
      break;
    case BarrierKind::count:
      barrier_accumulator_ += p;
      break;
    case BarrierKind::all:
      barrier_accumulator_ &= p;
      break;
    case BarrierKind::any:
      barrier_accumulator_ |= p;
      break;
  }
  ++arrived_;
  if (arrived_ == live_) {
    release_barrier();
    return barrier_accumulator_;
  }
  t.wait = Wait::barrier;
  t.site = site;
  resume_next(false);
  return t.barrier_value;
}

void BlockRunner::divergent_barrier(const CallSite& site) const {
  throw Error("divergent barrier: this thread reached " + where(site) + " while thread " + thread_name(barrier_first_) +
              " waits at " + where(barrier_site_) + " (every thread of a block must reach the same barrier)");
}

void BlockRunner::release_barrier() {
  for (Thread& t : threads_) {
    if (t.wait == Wait::barrier) {
      t.wait = Wait::runnable;
      t.barrier_value = barrier_accumulator_;
    }
  }
  arrived_ = 0;
}

// ---- warp intrinsics ----------------------------------------------------------------------------------------------

uint64_t BlockRunner::shuffle(ShuffleMode mode, unsigned mask, uint64_t value, int operand, int width,
                              const CallSite& site) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    throw Error(where(site) + ": width " + std::to_string(width) + " is not a power of two from 1 to 32");
  Thread& t = threads_[current_];
  t.lane_value = value;
  t.mode = mode;
  t.operand = operand;
  t.width = width;
  return warp_op(WarpOpKind::shuffle, mask, site);
}

uint64_t BlockRunner::vote(unsigned mask, int predicate, const CallSite& site) {
  threads_[current_].lane_value = predicate != 0;
  return warp_op(WarpOpKind::vote, mask, site);
}

void BlockRunner::syncwarp(unsigned mask, const CallSite& site) {
  warp_op(WarpOpKind::sync, mask, site);
}

unsigned BlockRunner::active_lanes() const {
  return warps_[current_ / 32].present;
}

uint64_t BlockRunner::warp_op(WarpOpKind kind, unsigned mask, const CallSite& site) {
  const unsigned me = current_, warp = me / 32, bit = 1u << (me % 32);
  Thread& t = threads_[me];
  if (!(mask & bit)) {
    throw Error(where(site) + ": the mask " + hex(mask) + " does not include the calling lane " +
                std::to_string(me % 32));
  }
  Warp& w = warps_[warp];
  t.site = site;
  t.warp_mask = mask;
  // Lanes join the pending intrinsic with the same mask. Others with overlapping masks may be pending too (lanes
  // 16-31 still in a half-warp ballot while lanes 0-15 reach a full-warp __syncwarp); if they can never complete,
  // the deadlock report says so.
  size_t i = 0;
  while (i < w.pending.size() && w.pending[i].mask != mask) ++i;
  if (i < w.pending.size()) {
    WarpOp& op = w.pending[i];
    if (!same_text(op.site.what, site.what)) {
      throw Error("lanes of warp " + std::to_string(warp) + " disagree: this lane reached " + where(site) +
                  " while lanes " + lane_list(op.arrived) + " wait in " + where(op.site) + ", both with mask " +
                  hex(mask));
    }
    op.arrived |= bit;
  } else {
    w.pending.push_back(WarpOp{kind, site, mask, bit});
  }
  const WarpOp& op = w.pending[i];
  if (op.arrived == (op.mask & w.present)) {
    complete_warp_op(warp, i);
    return t.lane_result;
  }
  t.wait = Wait::warp;
  resume_next(false);
  return t.lane_result;
}

void BlockRunner::complete_warp_op(unsigned warp, size_t op_index) {
  Warp& w = warps_[warp];
  const WarpOp op = w.pending[op_index];
  w.pending.erase(w.pending.begin() + static_cast<std::ptrdiff_t>(op_index));
  const unsigned base = warp * 32;
  if (op.kind == WarpOpKind::shuffle) {
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (!(op.arrived >> lane & 1u)) continue;
      Thread& reader = threads_[base + lane];
      const unsigned src = source_lane(lane, reader.mode, reader.operand, reader.width);
      if (!(op.arrived >> src & 1u)) {
        std::string why;
        if (base + src >= threads_.size()) {
          why = "does not exist (the block has " + std::to_string(threads_.size()) + " threads)";
        } else if (threads_[base + src].wait == Wait::exited) {
          why = "has exited";
        } else {
          why = "is not in the mask " + hex(op.mask);
        }
        throw ThreadError(base + lane, where(reader.site) + " (width " + std::to_string(reader.width) +
                                           ") reads lane " + std::to_string(src) + " of warp " + std::to_string(warp) +
                                           ", which " + why);
      }
      reader.lane_result = threads_[base + src].lane_value;
    }
  } else if (op.kind == WarpOpKind::vote) {
    unsigned votes = 0;
    for (unsigned lane = 0; lane < 32; ++lane)
      if ((op.arrived >> lane & 1u) && threads_[base + lane].lane_value) votes |= 1u << lane;
    const uint64_t result = (uint64_t{op.arrived} << 32) | votes;
    for (unsigned lane = 0; lane < 32; ++lane)
      if (op.arrived >> lane & 1u) threads_[base + lane].lane_result = result;
  }
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((op.arrived >> lane & 1u) && base + lane != current_) threads_[base + lane].wait = Wait::runnable;
}

// ---- deadlock report ----------------------------------------------------------------------------------------------

std::string BlockRunner::describe_position(unsigned linear) const {
  const Thread& t = threads_[linear];
  switch (t.wait) {
    case Wait::runnable:
      return "runnable";
    case Wait::exited:
      return "exited";
    case Wait::barrier:
      return "wait at " + where(t.site);
    case Wait::warp: {
      const Warp& w = warps_[linear / 32];
      unsigned missing = 0;
      for (const WarpOp& op : w.pending)
        if (op.mask == t.warp_mask) missing = op.mask & w.present & ~op.arrived;
      return "wait in " + where(t.site) + " (mask " + hex(t.warp_mask) + ") for lanes " + lane_list(missing) +
             " of warp " + std::to_string(linear / 32);
    }
  }
  return "?";
}

std::string BlockRunner::deadlock_report() const {
  std::string report = "deadlock: no thread can continue.";
  const unsigned n = static_cast<unsigned>(threads_.size());
  for (unsigned first = 0; first < n;) {
    const std::string position = describe_position(first);
    unsigned last = first;
    while (last + 1 < n && describe_position(last + 1) == position) ++last;
    report +=
        last == first ? " Thread " + thread_name(first) : " Threads " + thread_name(first) + " to " + thread_name(last);
    report += ": " + position + ".";
    first = last + 1;
  }
  return report;
}

}  // namespace simt::detail
