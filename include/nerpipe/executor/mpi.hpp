// SPDX-License-Identifier: Apache-2.0
//! @file `nerpipe::mpi<Inner>`: one `Inner` executor per MPI rank over a byte-range shard of the input,
//! output in input order. Optional: needs an MPI implementation (<mpi.h>, link MPI::MPI_CXX).
//!
//! Rank r reads the lines that start in [r*S/n, (r+1)*S/n) of the input (no central reader), runs its
//! local executor (round_robin over its GPUs or CPU workers, or sequential), and writes its records to
//! `<output>.part-<rank>`; after a barrier rank 0 concatenates the parts in rank order, which is input
//! order (into a temporary file renamed onto `<output>`), and removes them. Line numbers in error records
//! stay global (an exclusive prefix sum of the shards' newline counts). If any rank fails, every rank
//! throws and the parts are left for inspection. `run_shards` lets the caller do each shard's work (the
//! program resumes parts and stops on signals there).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/io/shard.hpp>
#include <nerpipe/executor/round_robin.hpp>
#include <nerpipe/executor/sequential.hpp>

#include <mpi.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <utility>

NERPIPE_NAMESPACE_BEGIN

/// The node-local rank, for choosing a GPU (`local_rank % devices`). Reads the launcher's environment
/// (Open MPI, MPICH/Hydra, Slurm) so it can be called before MPI_Init; -1 when none is set.
inline int mpi_local_rank_from_environment() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return -1;
}

/// MPI_Init_thread (threads are used by the executors; only the main thread calls MPI) / MPI_Finalize.
class mpi_session {
 public:
  mpi_session(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
      owned_ = true;
    }
  }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  ~mpi_session() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Finalize();
  }

 private:
  bool owned_ = false;
};

/// Runs `Inner` (sequential<P> or round_robin<P>) on this rank's shard; see the file comment.
template <class Inner>
class mpi {
 public:
  using factory_type = typename Inner::factory_type;

  explicit mpi(Inner inner, MPI_Comm comm = MPI_COMM_WORLD) : inner_(std::move(inner)), comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] Inner& inner() noexcept { return inner_; }

  /// The part file of `rank` for `output`.
  static std::filesystem::path part_path(const std::filesystem::path& output, int rank) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".part-%05d", rank);
    return output.string() + suffix;
  }

  /// Collective: every rank calls it with the same arguments. Returns the totals of all ranks (on
  /// every rank). `input` must be a regular file; `output` a file path that rank 0 can write.
  run_stats run(const factory_type& make, const std::filesystem::path& input, reader_options ro,
                const std::filesystem::path& output, writer_options wo) {
    return run_shards(input, std::move(ro), output, [&](const reader_options& shard_ro, const byte_shard& shard,
                                                        const std::filesystem::path& part) {
             jsonl_reader reader(input, shard_ro);
             jsonl_writer writer(part, wo);
             shard_result r;
             if (shard.begin < shard.end) r.stats = inner_.run(make, reader, [&](document& d) { writer.write(d); });
             writer.flush();
             return r;
           }).stats;
  }

  // ---- nerpipe robust: shards with caller-defined work (resume, stop on a signal) -----------------------
  /// What one rank's work on its shard gives: its totals, and whether the shard is complete (false: it
  /// stopped early, e.g. on a signal; the parts are then kept, not concatenated).
  struct shard_result {
    run_stats stats;
    bool complete = true;
  };
  struct sharded_result {
    run_stats stats;      ///< totals of all ranks
    bool complete = true; ///< every shard complete and `output` written
  };

  /// Collective, like run(), with the work on this rank's shard done by `work(shard_reader_options, shard,
  /// part_path) -> shard_result`, which must write the shard's records to `part_path`. When every shard is
  /// complete, rank 0 concatenates the parts into `output` (through a temporary file renamed onto it, so an
  /// existing output is replaced only by a complete one) and removes them. A rank whose work throws makes
  /// every rank throw; the parts are left.
  template <class ShardWork>
  sharded_result run_shards(const std::filesystem::path& input, reader_options ro, const std::filesystem::path& output,
                            ShardWork&& work) {
    std::exception_ptr failure;
    shard_result local;
    try {
      byte_shard shard = line_shard(input, static_cast<std::uint64_t>(rank_), static_cast<std::uint64_t>(size_));
      unsigned long long newlines = shard.newlines, before = 0;
      MPI_Exscan(&newlines, &before, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm_);
      if (rank_ == 0) before = 0;  // MPI_Exscan leaves rank 0's result undefined
      ro.lines.begin_offset = shard.begin;
      ro.lines.end_offset = shard.end;
      ro.lines.first_line_number = 1 + before;
      shard.first_line = 1 + before;
      // An empty shard must not read anything (begin == end == size would otherwise be "from 0").
      if (shard.begin >= shard.end) ro.lines.end_offset = ro.lines.begin_offset = shard.end;
      local = work(static_cast<const reader_options&>(ro), static_cast<const byte_shard&>(shard), part_path(output, rank_));
    } catch (...) {
      failure = std::current_exception();
    }
    int failed = failure ? 1 : 0, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm_);
    if (any_failed) {
      if (failure) std::rethrow_exception(failure);
      NERPIPE_THROW(input_error(errc::input_not_readable, "mpi: another rank failed; see its message"));
    }
    int complete = local.complete ? 1 : 0, all_complete = 0;
    MPI_Allreduce(&complete, &all_complete, 1, MPI_INT, MPI_MIN, comm_);
    sharded_result result;
    result.stats = reduce(local.stats);
    result.complete = all_complete != 0;
    if (!result.complete) return result;
    int concat_failed = 0;
    std::string concat_error;
    if (rank_ == 0) {
      try {
        concatenate(output);
      } catch (const std::exception& e) {
        concat_failed = 1;
        concat_error = e.what();
      }
    }
    MPI_Bcast(&concat_failed, 1, MPI_INT, 0, comm_);
    if (concat_failed)
      NERPIPE_THROW(io_error(errc::output_not_writable, rank_ == 0 ? concat_error : "mpi: rank 0 could not write the output"));
    return result;
  }
  // ---- end nerpipe robust --------------------------------------------------------------------------------

 private:
  void concatenate(const std::filesystem::path& output) const {
    // Into a temporary file renamed onto `output` at the end: an existing output stays whole until then.
    const std::string tmp = output.string() + ".concat";
    std::FILE* out = std::fopen(tmp.c_str(), "wb");
    if (!out) NERPIPE_THROW(io_error(errc::output_not_writable, tmp + ": cannot open for writing"));
    std::string buf(std::size_t{1} << 20, '\0');
    bool ok = true;
    for (int r = 0; r < size_ && ok; ++r) {
      const auto part = part_path(output, r);
      std::FILE* in = std::fopen(part.c_str(), "rb");
      if (!in) {
        ok = false;
        break;
      }
      std::size_t n;
      while ((n = std::fread(buf.data(), 1, buf.size(), in)) > 0)
        if (std::fwrite(buf.data(), 1, n, out) != n) ok = false;
      std::fclose(in);
    }
    if (std::fflush(out) != 0 || ::fdatasync(::fileno(out)) != 0) ok = false;
    if (std::fclose(out) != 0) ok = false;
    if (!ok || std::rename(tmp.c_str(), output.c_str()) != 0) {
      std::remove(tmp.c_str());
      NERPIPE_THROW(io_error(errc::output_not_writable, output.string() + ": writing the concatenated parts failed"));
    }
    for (int r = 0; r < size_; ++r) {
      std::error_code ec;
      std::filesystem::remove(part_path(output, r), ec);
    }
  }

  run_stats reduce(const run_stats& s) const {
    unsigned long long in[8] = {s.docs,       s.errors,   s.entities, s.tokens,
                                s.text_bytes, s.replicas, s.retired,  s.out_of_memory},
                       out[8];
    MPI_Allreduce(in, out, 8, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm_);
    run_stats t;
    t.docs = out[0], t.errors = out[1], t.entities = out[2], t.tokens = out[3], t.text_bytes = out[4];
    t.replicas = static_cast<unsigned>(out[5]), t.retired = static_cast<unsigned>(out[6]);
    t.out_of_memory = out[7];
    return t;
  }

  Inner inner_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

NERPIPE_NAMESPACE_END
