// SPDX-License-Identifier: Apache-2.0
//! @file The policy-generic op tests (ops_body.hpp) instantiated for cpu_policy with 1 and 3 threads (fp32:
//! the only element type the CPU ops take). tests/cuda/cuda_ops.cu instantiates the same bodies for cuda_policy.
#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <string>
#include <tuple>

namespace nerpipe::ops_test {
template <class In, class Out>
struct gemm_types;

/// cpu_policy with a fixed thread count; 3 threads splits rows unevenly on purpose.
template <unsigned Threads>
struct cpu_threads {
  using policy = cpu_policy;
  using element_types = std::tuple<float>;
  using gemm_types = std::tuple<ops_test::gemm_types<float, float>>;
  static cpu_policy make() { return cpu_policy(Threads); }
  static std::string label() { return "cpu_policy(" + std::to_string(Threads) + " threads)"; }
};
using ops_test_policies = std::tuple<cpu_threads<1>, cpu_threads<3>>;
}  // namespace nerpipe::ops_test

#include "ops_body.hpp"
