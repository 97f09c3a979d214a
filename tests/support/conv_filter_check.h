#pragma once
// The check both direct backward-filter kernels share: on every instruction set this CPU runs, each case against the
// reference loops, accumulate off and on, called directly and through conv_backward_filter, which must give the
// direct kernel's very bits wherever its rule takes the shape; and the same bits for 1, 2 and 3 threads.
//
// Tolerance: |fast - ref| <= 1e-5 * sqrt(N*P*Q) + 1e-6 + 1e-5 |ref| (values in [-1, 1]; a float sum of T terms is
// off by ~1e-7 sqrt(T)), so one missing tap, image or row (>= ~0.3 sqrt(terms) on average) fails.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"

namespace testing_support {

struct FilterCase {
  std::string name;
  kernels::ConvShape s;
};

inline void expect_filter_close(const std::vector<float>& fast, const std::vector<float>& ref,
                                const kernels::ConvShape& s, const std::string& what) {
  const float terms = float(s.N) * s.P * s.Q;
  expect_close(fast, ref, 1e-5f * std::sqrt(terms) + 1e-6f, 1e-5f, what);
}

using FilterKernel = void (*)(const kernels::ConvShape&, const float* x, const float* dy, float* dw, bool accumulate);
using FilterRule = bool (*)(const kernels::ConvShape&);

inline void check_filter_kernel(const std::vector<FilterCase>& cases, FilterKernel direct, FilterRule applies) {
  const kernels::cpu::CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const kernels::cpu::CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const FilterCase& c : cases) {
      const kernels::ConvShape& s = c.s;
      const std::vector<float> x = random_vector(x_size(s), 1), dy = random_vector(y_size(s), 2);  // as placed
      const std::vector<float> dw_before = random_vector(w_size(s), 3);                            // (K, C/G, R, S)
      for (const bool accumulate : {false, true}) {
        const std::string name = c.name + (accumulate ? ", accumulate" : ", overwrite") + " on " + cpu_isa_name(isa);
        INFO(name);
        std::vector<float> dw_ref = dw_before, dw_direct = dw_before, dw_public = dw_before;  // (K, C/G, R, S)
        kernels::ref::conv_backward_filter(s, x.data(), dy.data(), dw_ref.data(), accumulate);
        direct(s, x.data(), dy.data(), dw_direct.data(), accumulate);
        expect_filter_close(dw_direct, dw_ref, s, name + " direct");
        kernels::cpu::conv_backward_filter(s, x.data(), dy.data(), dw_public.data(), accumulate);
        expect_filter_close(dw_public, dw_ref, s, name + " conv_backward_filter");
        if (applies(s))
          CHECK_MESSAGE(same_bits(dw_public, dw_direct), name << ": the public path is not the direct kernel");
      }
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

// The same bits from `direct` for 1, 2 and 3 threads on every instruction set, and close to the reference.
inline void check_filter_kernel_threads(const std::vector<FilterCase>& shapes, FilterKernel direct) {
  const kernels::cpu::CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const kernels::cpu::CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const FilterCase& c : shapes) {
      INFO(c.name << " on " << cpu_isa_name(isa));
      const kernels::ConvShape& s = c.s;
      const std::vector<float> x = random_vector(x_size(s), 11), dy = random_vector(y_size(s), 12);  // as placed
      auto run = [&](int threads) {
        const int saved_threads = omp_get_max_threads();
        omp_set_num_threads(threads);
        std::vector<float> dw(w_size(s), 0.f);  // (K, C/G, R, S)
        direct(s, x.data(), dy.data(), dw.data(), false);
        omp_set_num_threads(saved_threads);
        return dw;
      };
      const std::vector<float> one = run(1), two = run(2), three = run(3);
      CHECK(same_bits(one, two));
      CHECK(same_bits(one, three));
      std::vector<float> dw_ref(w_size(s));  // (K, C/G, R, S)
      kernels::ref::conv_backward_filter(s, x.data(), dy.data(), dw_ref.data(), false);
      expect_filter_close(one, dw_ref, s, c.name + " threads");
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

}  // namespace testing_support
