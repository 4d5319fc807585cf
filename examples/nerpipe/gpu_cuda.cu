// SPDX-License-Identifier: Apache-2.0
//! @file The GPU runner of `nerpipe-cuda`: --device cuda[:ids] runs round_robin<cuda_policy>. Only this file is
//! compiled by nvcc; the rest of the program is main.cpp, compiled by the host compiler.
#include <nerpipe/cuda.cuh>

#include "workers.hpp"

namespace nerpipe_cli {

bool built_with_cuda() noexcept { return true; }

nerpipe::run_stats execute_on_gpus(const std::vector<int>& devices, unsigned workers, const std::string& precision,
                                   const nerpipe::executor_options& eo, const nerpipe::model& model,
                                   const nerpipe::pipeline_options& ao, record_source& source,
                                   const nerpipe::jsonl_reader& reader, const record_sink& sink, bool show_progress) {
  const nerpipe::dtype compute = precision == "bf16"  ? nerpipe::dtype::bf16
                                 : precision == "fp8" ? nerpipe::dtype::fp8_e4m3
                                                      : nerpipe::dtype::f32;
  std::vector<nerpipe::cuda_policy> replicas;
  for (int d : devices)
    for (unsigned w = 0; w < workers; ++w) replicas.emplace_back(d, compute);
  return execute(std::move(replicas), eo, model, ao, source, reader, sink, show_progress);
}

}  // namespace nerpipe_cli
