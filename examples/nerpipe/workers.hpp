// SPDX-License-Identifier: Apache-2.0
//! @file Running the replicas of `nerpipe run`: the executor call and its progress line. The program's host code
//! (main.cpp) is compiled once, by the host compiler, for both programs; they differ only in the file that runs
//! GPU replicas — gpu_none.cpp in `nerpipe` (and `nerpipe_mpi`), gpu_cuda.cu (nvcc) in `nerpipe-cuda`.
#pragma once

#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/resume.hpp>
#include <nerpipe/pipeline/executor.hpp>
#include <nerpipe/pipeline/model.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace nerpipe_cli {

inline std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

inline std::string human_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) / 60) % 60);
  return buf;
}

/// Progress on stderr, rewritten in place: docs, docs/s, tokens/s, bytes, ETA.
class progress_line {
 public:
  progress_line(bool enabled, const nerpipe::jsonl_reader& reader, const nerpipe::live_counters& live)
      : enabled_(enabled), reader_(reader), live_(live), start_(clock::now()), last_(start_) {}
  void tick() {
    if (!enabled_) return;
    const auto now = clock::now();
    if (now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now;
    draw(now);
  }
  void finish() {
    if (!enabled_ || !drawn_) return;
    draw(clock::now());
    std::fputc('\n', stderr);
  }

 private:
  using clock = std::chrono::steady_clock;
  void draw(clock::time_point now) {
    const double s = std::max(1e-3, std::chrono::duration<double>(now - start_).count());
    const auto docs = live_.docs.load(), tokens = live_.tokens.load();
    const auto bytes = reader_.bytes_read(), total = reader_.total_bytes();
    // The reader runs ahead of the writer by up to a few windows: scale the bytes read by the share
    // of the records read that are written.
    const auto read = reader_.records_read();
    const double done = read ? double(bytes) * double(std::min(docs, read)) / double(read) : 0.0;
    std::string eta;
    if (total > 0 && done > 0 && done < double(total)) eta = "  ETA " + human_duration(s * (double(total) - done) / done);
    std::fprintf(stderr, "\r%llu docs  %.1f docs/s  %.0f tokens/s  %s%s%s\033[K", static_cast<unsigned long long>(docs),
                 double(docs) / s, double(tokens) / s, human_bytes(done).c_str(),
                 total ? (" / " + human_bytes(double(total))).c_str() : "", eta.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  bool enabled_, drawn_ = false;
  const nerpipe::jsonl_reader& reader_;
  const nerpipe::live_counters& live_;
  clock::time_point start_, last_;
};

template <class Policy, class Source, class Sink>
nerpipe::run_stats execute(std::vector<Policy> replicas, const nerpipe::executor_options& eo, const nerpipe::model& model,
                           const nerpipe::pipeline_options& ao, Source& source, const nerpipe::jsonl_reader& reader, Sink&& sink,
                           bool show_progress) {
  nerpipe::round_robin<Policy> exec(std::move(replicas), eo);
  progress_line progress(show_progress, reader, exec.progress());
  const auto stats = exec.run(nerpipe::pipeline_factory(model, ao), source,
                              [&](nerpipe::document& d) {
                                sink(d);
                                progress.tick();
                              });
  progress.finish();
  return stats;
}

/// Receives each finished record, in input order.
using record_sink = std::function<void(nerpipe::document&)>;
using record_source = nerpipe::tracked_source<nerpipe::jsonl_reader>;

/// Whether this program runs GPU replicas (nerpipe-cuda) or has no CUDA (nerpipe, nerpipe_mpi).
bool built_with_cuda() noexcept;

/// round_robin<cuda_policy> with `workers` replicas on each of `devices`, at `precision` (fp32: exact; bf16:
/// activations and weights; fp8: bf16 plus FP8 GEMMs in the encoder). Only nerpipe-cuda defines a working one.
nerpipe::run_stats execute_on_gpus(const std::vector<int>& devices, unsigned workers, const std::string& precision,
                                   const nerpipe::executor_options& eo, const nerpipe::model& model,
                                   const nerpipe::pipeline_options& ao, record_source& source,
                                   const nerpipe::jsonl_reader& reader, const record_sink& sink, bool show_progress);

}  // namespace nerpipe_cli
