// SPDX-License-Identifier: Apache-2.0
//! @file The GPU runner of a program built without CUDA (`nerpipe`, `nerpipe_mpi`): none. run_command refuses
//! `--device cuda` before any work, so execute_on_gpus is never reached.
#include "workers.hpp"

#include <stdexcept>

namespace nerpipe_cli {

bool built_with_cuda() noexcept { return false; }

nerpipe::run_stats execute_on_gpus(const std::vector<int>&, unsigned, const std::string&, const nerpipe::executor_options&,
                                   const nerpipe::model&, const nerpipe::pipeline_options&, record_source&,
                                   const nerpipe::jsonl_reader&, const record_sink&, bool) {
  throw std::logic_error("nerpipe: this program was built without CUDA");
}

}  // namespace nerpipe_cli
