// SPDX-License-Identifier: Apache-2.0
//! @file The `nerpipe` command-line program: run a NER model over a JSONL (or text) corpus, or describe a model.
//!
//!   nerpipe run --model DIR --input FILE|- --output FILE|- [options]
//!   nerpipe info --model DIR
//!
//! Exit status: 0 every record came through; 3 some records became error records; 2 usage;
//! 4 the model cannot be loaded; 5 the output cannot be written; 6 the input cannot be read;
//! 130 / 143 stopped by SIGINT / SIGTERM (what was finished is written; --resume continues);
//! 141 the reader of the output went away (a closed pipe); 1 anything else.
//!
//! Output goes to `<output>.partial`, renamed to `<output>` when the run is complete; `--resume` continues
//! an interrupted run's partial output (io/resume.hpp, io/output_file.hpp, interrupt.hpp).
//!
//! Built with -DNERPIPE_WITH_MPI (and MPI), the same program is `nerpipe_mpi`: under mpirun every rank
//! annotates a byte-range shard of --input with its own workers, and rank 0 writes --output in order.
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/file_read.hpp>
#include <nerpipe/core/host_memory.hpp>
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/io/output_file.hpp>
#include <nerpipe/io/resume.hpp>
#include <nerpipe/pipeline/executor.hpp>
#include <nerpipe/pipeline/model.hpp>
#include <nerpipe/policy/cpu_policy.hpp>
#include <nerpipe/version.hpp>
#if defined(NERPIPE_WITH_MPI)
#  include <nerpipe/mpi.hpp>  // nerpipe_mpi: each rank runs a shard of the input
#endif

#include <CLI/CLI.hpp>

#include "interrupt.hpp"
#include "workers.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;

enum exit_code : int {
  ok = 0, internal = 1, usage = 2, some_failed = 3, bad_model = 4, bad_output = 5, bad_input = 6,
  broken_pipe = 141  // 128 + SIGPIPE, as a shell reports a writer whose reader went away
};

struct run_args {
  std::string model, input, output = "-", device = "cpu", format = "entities", text_field = "text", id_field = "id";
  std::string aggregation = "simple", invalid_utf8 = "reject", input_format = "auto";
  std::string patterns, phrase_matcher_attr = "ORTH", overlap = "auto", sentences = "auto";
  bool overwrite_ents = false;
  unsigned workers = 1, threads = 0;
  std::size_t batch_tokens = 0, stride = 0, window_docs = 0;  // 0: by device (see run_command)
  std::uint64_t max_record_bytes = std::uint64_t{1} << 30;
  bool quiet = false, unordered = false, byte_offsets = false;
  bool resume = false;         // continue <output>.partial of an interrupted run
  double drain_seconds = 30;   // after a stop signal, how long the records in flight may take
  std::string max_memory;      // memory the replicas may use ("" : what the system has available)
  std::string precision = "fp32";  // --precision (GPU): fp32, bf16, fp8
};

/// "4G", "512M", "100k", "12345" -> bytes; 0 when it is not a size.
std::uint64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v > 0)) return 0;
  std::string unit(end);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (!unit.empty() && (unit.back() == 'i')) unit.pop_back();
  double mult = 1;
  if (unit == "k" || unit == "K") mult = 1024.0;
  else if (unit == "m" || unit == "M") mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "T") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty()) return 0;
  return static_cast<std::uint64_t>(v * mult);
}

int mpi_rank() {
#if defined(NERPIPE_WITH_MPI)
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
#else
  return 0;
#endif
}

[[maybe_unused]] int mpi_size() {
#if defined(NERPIPE_WITH_MPI)
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
#else
  return 1;
#endif
}

[[noreturn]] void die(int code, const std::string& what, const std::string& hint) {
  std::cerr << "nerpipe: " << what << '\n';
  if (!hint.empty()) std::cerr << "nerpipe: " << hint << '\n';
#if defined(NERPIPE_WITH_MPI)
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  MPI_Finalize();
#endif
  std::exit(code);
}

nerpipe::aggregation parse_aggregation(const std::string& s) {
  using nerpipe::aggregation;
  static const std::map<std::string, aggregation> m{{"none", aggregation::none}, {"simple", aggregation::simple},
                                                    {"first", aggregation::first}, {"average", aggregation::average},
                                                    {"max", aggregation::max}};
  return m.at(s);
}

/// "cpu" -> {}, "cuda" -> {0}, "cuda:0,1" -> {0, 1}; exits with a usage error otherwise.
std::vector<int> parse_devices(const std::string& device, bool& is_cuda) {
  is_cuda = false;
  if (device == "cpu") return {};
  if (device.rfind("cuda", 0) != 0) die(usage, "--device " + device + ": expected cpu, cuda or cuda:0,1,...", "");
  is_cuda = true;
  if (device == "cuda") return {0};
  if (device.size() < 6 || device[4] != ':') die(usage, "--device " + device + ": expected cuda:0,1,...", "");
  std::vector<int> ids;
  std::stringstream ss(device.substr(5));
  std::string part;
  while (std::getline(ss, part, ',')) {
    char* end = nullptr;
    const long v = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v < 0) die(usage, "--device " + device + ": '" + part + "' is not a device number", "");
    ids.push_back(static_cast<int>(v));
  }
  return ids;
}

// ---- safe, resumable output (issue #15) ---------------------------------------------------------------------

/// One output file this process writes: `<output>.partial` (or an MPI part), kept resumable with a manifest
/// beside it; or standard output / a device, written as it comes. Writes and checkpoints are serialised by
/// `mutex`, so the drain watchdog can checkpoint from its own thread.
struct output_session {
  std::string name;                      // shown in messages
  fs::path write_path;                   // empty: standard output
  bool resumable = false;                // a manifest is kept (file input, ordered output, file output)
  nerpipe::resume_manifest manifest;     // identity + last checkpoint
  std::unique_ptr<nerpipe::jsonl_writer> writer;
  nerpipe::file_prefix_hash hasher;      // input bytes the written records came from
  std::uint64_t kept_records = 0, kept_errors = 0, kept_bytes = 0;  // from the interrupted run
  std::uint64_t records = 0;             // records in the file (kept + new)
  std::uint64_t input_offset = 0;        // input offset after the last record written
  std::vector<std::pair<nerpipe::document, std::uint64_t>> replay;  // resumed: records to read again first
  std::mutex mutex;
  std::chrono::steady_clock::time_point last_checkpoint = std::chrono::steady_clock::now();

  [[nodiscard]] fs::path manifest_path() const { return nerpipe::resume_manifest::path_for(write_path); }

  /// Writes one record (its input ends at `end_offset`); checkpoints every 2 s. Caller holds `mutex`.
  void write(const nerpipe::document& d, std::uint64_t end_offset) {
    writer->write(d);
    ++records;
    input_offset = end_offset;
    if (resumable && std::chrono::steady_clock::now() - last_checkpoint > std::chrono::seconds(2)) checkpoint();
  }
  /// Flushes, syncs and records the checkpoint in the manifest (the output then holds at least what it says).
  /// Caller holds `mutex`.
  void checkpoint() {
    if (!writer) return;  // already finished and closed
    writer->sync();
    last_checkpoint = std::chrono::steady_clock::now();
    if (!resumable) return;
    hasher.advance_to(input_offset);
    manifest.records = records;
    manifest.output_bytes = kept_bytes + writer->bytes_written();
    manifest.input_offset = input_offset;
    manifest.input_hash = hasher.hex();
    nerpipe::write_manifest(manifest_path(), manifest);
  }
  /// The run is complete: flush and sync; the manifest goes (the caller renames the partial output).
  void finish() {
    writer->sync();
    if (resumable) {
      std::error_code ec;
      fs::remove(manifest_path(), ec);
      fs::remove(manifest_path().string() + ".tmp", ec);  // left by a kill during a checkpoint
    }
  }
};

/// What a run needs to open its output: the identity of the input and model and the options that change
/// the output (what a resumed run must share with the interrupted one).
struct output_identity {
  std::string input_path, model_path, model_fingerprint, options;
  std::uint64_t input_bytes = 0;
};

/// Opens `write_path` for this run: fresh (refusing to clobber a partial output of an interrupted run), or,
/// with --resume, after checking the partial output against `reader`'s records (which is left after the
/// last kept record). Usage problems exit 2 (die).
std::unique_ptr<output_session> open_output_session(const fs::path& write_path, bool resume, bool resumable,
                                                    const output_identity& id, std::uint64_t ranks, std::uint64_t rank,
                                                    std::uint64_t shard_begin, std::uint64_t shard_end,
                                                    nerpipe::jsonl_reader& reader, const nerpipe::resume_window& window,
                                                    const nerpipe::writer_options& wo, bool quiet) {
  auto s = std::make_unique<output_session>();
  s->name = write_path.string();
  s->write_path = write_path;
  s->resumable = resumable;
  auto& m = s->manifest;
  m.input_path = id.input_path;
  m.input_bytes = id.input_bytes;
  m.model_path = id.model_path;
  m.model_fingerprint = id.model_fingerprint;
  m.options = id.options;
  m.ranks = ranks;
  m.rank = rank;
  m.shard_begin = shard_begin;
  m.shard_end = shard_end;
  m.input_offset = shard_begin;
  s->input_offset = shard_begin;
  std::error_code ec;
  const bool exists = fs::exists(write_path, ec);
  const fs::path manifest_path = s->manifest_path();
  if (resumable) s->hasher = nerpipe::file_prefix_hash(id.input_path, shard_begin);
  if (exists && !resume) {
    if (fs::exists(manifest_path, ec))
      die(usage, write_path.string() + " is the partial output of an interrupted run",
          "continue it with --resume, or remove it (and " + manifest_path.string() + ") to start over");
    // Without a manifest it cannot be continued (standard input, --unordered): it is replaced.
    if (!quiet) std::fprintf(stderr, "nerpipe: replacing %s (an interrupted run's output that cannot be resumed)\n", write_path.c_str());
  }
  if (exists && resume) {
    const auto was = nerpipe::read_manifest(manifest_path);
    if (!was)
      die(usage, "cannot resume: " + write_path.string() + " has no manifest (" + manifest_path.string() + "), so it cannot be checked",
          "remove it to start over");
    if (const auto why = nerpipe::manifest_mismatch(*was, m); !why.empty())
      die(usage, "cannot resume " + write_path.string() + ": " + why,
          "resume with the input, model and output options of the interrupted run, or remove the partial output to start over");
    nerpipe::resume_point rp;
    try {
      rp = nerpipe::verify_resume_prefix(write_path, reader, *was, s->hasher, window,
                                         [] { return nerpipe_cli::stop_signal.load() != 0; });
    } catch (const nerpipe::config_error& e) {
      die(usage, e.what(), "resume with the input the partial output was made from, or remove it to start over");
    } catch (const nerpipe::input_error& e) {
      die(bad_input, e.what(), "the input could not be read to check the partial output");
    }
    if (rp.stopped) return nullptr;  // a signal during the check: nothing was changed
    s->kept_records = s->records = rp.records;
    s->kept_errors = rp.errors;
    s->kept_bytes = rp.output_bytes;
    s->input_offset = rp.input_offset;
    s->replay = std::move(rp.replay);
    m.records = rp.records;
    m.output_bytes = rp.output_bytes;
    m.input_offset = rp.input_offset;
    m.input_hash = was->input_hash;
    if (!quiet)
      std::fprintf(stderr, "nerpipe: resuming %s after %llu records (input byte %llu of %llu)%s\n", write_path.c_str(),
                   static_cast<unsigned long long>(rp.records), static_cast<unsigned long long>(rp.input_offset),
                   static_cast<unsigned long long>(id.input_bytes),
                   s->replay.empty() ? ""
                                     : ("; the " + std::to_string(s->replay.size()) +
                                        " records after them are computed again in their batches").c_str());
    try {
      s->writer = std::make_unique<nerpipe::jsonl_writer>(nerpipe::open_output_file(write_path, false, rp.output_bytes),
                                                          write_path.string(), wo);
    } catch (const nerpipe::error& e) {
      die(bad_output, e.what(), "check that the output directory is writable");
    }
    return s;
  }
  if (resume && !quiet) std::fprintf(stderr, "nerpipe: nothing to resume (no %s): starting from the beginning\n", write_path.c_str());
  try {
    if (resumable) {
      m.input_hash = nerpipe::stream_hash().hex();
      nerpipe::write_manifest(manifest_path, m);  // before the partial output: a partial output always has one
    }
    s->writer = std::make_unique<nerpipe::jsonl_writer>(nerpipe::open_output_file(write_path, true), write_path.string(), wo);
  } catch (const nerpipe::error& e) {
    die(bad_output, e.what(), "check that the --output directory exists and is writable");
  }
  return s;
}

/// The options that change the output's bytes, as the manifest records them. Batch sizes and threads per
/// worker are among them: the shapes of a batch's GEMMs (and how threads split them) change the last bits of
/// the scores. The number of workers is not: every replica computes a batch alike.
std::string output_options(const run_args& a, nerpipe::input_format fmt, bool is_cuda, const nerpipe::executor_options& eo,
                           unsigned threads) {
  std::string s;
  auto add = [&](const char* k, const std::string& v) { s += (s.empty() ? "" : "\x1f") + std::string(k) + "=" + v; };
  add("--format", a.format);
  add("--byte-offsets", a.byte_offsets ? "on" : "off");
  add("--aggregation", a.aggregation);
  add("--stride", std::to_string(a.stride));
  add("--input-format", fmt == nerpipe::input_format::text ? "text" : "jsonl");
  add("--text-field", a.text_field);
  add("--id-field", a.id_field);
  add("--invalid-utf8", a.invalid_utf8);
  add("--max-record-bytes", std::to_string(a.max_record_bytes));
  std::string patterns = "none";
  if (!a.patterns.empty()) {
    nerpipe::stream_hash h;
    std::string bytes;
    if (nerpipe::read_whole_file(a.patterns, bytes)) h.update(bytes);
    patterns = "sha:" + h.hex();
  }
  add("--patterns", patterns);
  add("--phrase-matcher-attr", a.phrase_matcher_attr);
  add("--overwrite-ents", a.overwrite_ents ? "on" : "off");
  add("--device", is_cuda ? "cuda" : "cpu");
  add("--batch-tokens", std::to_string(eo.batch_tokens));
  add("--window-docs", std::to_string(eo.window_docs));
  add("--sentences", a.sentences);
  add("--precision", a.precision);
  add("--threads", std::to_string(threads));
  return s;
}

/// Checkpoints what can be kept after a failure (best effort) and says where it is.
void keep_partial_after_failure(output_session* out, const std::string& partial_name) {
  if (out == nullptr || !out->resumable) return;
  try {
    std::lock_guard lock(out->mutex);
    out->checkpoint();
    std::fprintf(stderr, "nerpipe: the %llu records written so far are kept in %s; after fixing the problem, --resume continues\n",
                 static_cast<unsigned long long>(out->records), partial_name.c_str());
  } catch (...) {
  }
}

/// Replicas that fit in host memory: one replica is built to measure what it holds (each CPU replica has its
/// own copy of the weights' tables) plus the workspace of a batch; the count is lowered, with a warning,
/// when `workers` of them would not fit in the memory available (divided among the node's MPI ranks).
unsigned fit_workers_to_memory(unsigned workers, const nerpipe::model& model, const nerpipe::pipeline_options& ao,
                               const nerpipe::executor_options& eo, std::uint64_t max_memory) {
  if (workers <= 1) return workers;
  auto avail = nerpipe::available_host_memory();
  if (max_memory != 0) avail = avail ? std::min(*avail, max_memory) : max_memory;
  if (!avail) return workers;
  if (const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); local && std::atoi(local) > 1)
    *avail /= static_cast<std::uint64_t>(std::atoi(local));
  std::uint64_t per_replica = 0;
  {
    const std::uint64_t before = nerpipe::heap_bytes_in_use();
    auto probe = nerpipe::make_annotator(nerpipe::cpu_policy(1), model, ao);
    const std::uint64_t after = nerpipe::heap_bytes_in_use();
    nerpipe::batch_shape shape;
    shape.docs = eo.window_docs;
    shape.rows = eo.batch_tokens;
    shape.sequences = eo.window_docs;
    // + 8 MiB of host arrays: a batch's, or one window group's of a long document (64 windows of pieces, logits
    // and encodings; a long document no longer grows a replica, only its own text and packed entities).
    per_replica = (after > before ? after - before : 0) + probe->workspace_bytes(shape) + (std::uint64_t{8} << 20);
  }
  const std::size_t fit = nerpipe::replicas_that_fit(per_replica, *avail);
  if (workers <= fit) return workers;
  const auto capped = static_cast<unsigned>(fit);
  std::fprintf(stderr,
               "nerpipe: warning: --workers %u would need about %s of memory (%s per replica: its copy of the model's "
               "tables and a batch's buffers); %s is available%s: running %u worker(s)\n",
               workers, nerpipe_cli::human_bytes(double(per_replica) * workers).c_str(), nerpipe_cli::human_bytes(double(per_replica)).c_str(),
               nerpipe_cli::human_bytes(double(*avail)).c_str(), max_memory ? " (--max-memory)" : "", capped);
  return capped;
}

/// The hint after a model that cannot be loaded: the generic one when `dir` is not a model directory of a
/// known family, a specific one when it is (the message already names the file at fault).
std::string model_error_hint(const std::string& dir) {
  try {
    const auto family = nerpipe::detect_model_family(dir);
    return family == nerpipe::model_family::spacy
               ? "the directory is a spaCy pipeline, but the file named above cannot be used; re-download or re-save the pipeline"
               : "the directory is a Hugging Face model, but the file named above cannot be used; re-download or re-save the model";
  } catch (const nerpipe::error&) {
    return "--model must be a Hugging Face token-classification directory (config.json, model.safetensors, tokenizer.json) "
           "or a spaCy pipeline directory (meta.json, config.cfg); `nerpipe info --model DIR` checks one";
  }
}

int run_command(const run_args& a, const std::vector<std::string>& command_line, bool aggregation_given) {
  // ---- usage: everything that needs no file, said before any work
  bool is_cuda = false;
  const auto devices = parse_devices(a.device, is_cuda);
  if (is_cuda && !nerpipe_cli::built_with_cuda())
    die(usage, "--device " + a.device + ": this nerpipe was built without CUDA",
        "use --device cpu, or the CUDA program nerpipe-cuda (target nerpipe_gpu, built where nvcc is found)");
  if (a.workers == 0) die(usage, "--workers must be at least 1", "");
  const auto in_format = a.input_format == "auto" ? (a.input == "-" ? nerpipe::input_format::jsonl : nerpipe::input_format_for(a.input))
                         : a.input_format == "text" ? nerpipe::input_format::text
                                                    : nerpipe::input_format::jsonl;
  if (in_format == nerpipe::input_format::jsonl && a.text_field == a.id_field)
    die(usage, "--text-field and --id-field are both '" + a.text_field + "'", "the text and the id must be different JSON fields");
  if (a.resume && a.output == "-") die(usage, "--resume needs --output FILE (standard output cannot be continued)", "");
  if (a.resume && a.input == "-") die(usage, "--resume needs --input FILE (standard input cannot be checked again)", "");
  if (a.resume && a.unordered) die(usage, "--resume cannot continue an --unordered output (its records are not in input order)", "");
  if (a.drain_seconds <= 0) die(usage, "--drain-seconds must be positive", "");
  if (!is_cuda && a.precision != "fp32")
    die(usage, "--precision " + a.precision + " needs --device cuda", "use --precision fp32 on the CPU");
  const std::uint64_t max_memory = parse_size(a.max_memory);
  if (!a.max_memory.empty() && max_memory == 0)
    die(usage, "--max-memory " + a.max_memory + ": expected a size such as 8G, 512M or 1000000", "");
#if defined(NERPIPE_WITH_MPI)
  if (a.input == "-" || a.output == "-") die(usage, "nerpipe_mpi needs --input and --output files (not -)", "");
  if (is_cuda) die(usage, "nerpipe_mpi runs CPU workers in this build", "use --device cpu");
#endif

  nerpipe::reader_options ro;
  ro.text_field = a.text_field;
  ro.id_field = a.id_field;
  ro.invalid_utf8 = a.invalid_utf8 == "replace" ? nerpipe::invalid_utf8_policy::replace : nerpipe::invalid_utf8_policy::reject;
  ro.format = in_format;
  ro.lines.max_line_bytes = static_cast<std::size_t>(a.max_record_bytes);

  nerpipe::writer_options wo;
  wo.format = a.format == "merged" ? nerpipe::output_format::merged
              : a.format == "iob"  ? nerpipe::output_format::iob
                                   : nerpipe::output_format::entities;
  wo.byte_offsets = a.byte_offsets;

  nerpipe::pipeline_options ao;
  ao.strategy = parse_aggregation(a.aggregation);
  ao.stride = a.stride;
  ao.want_tokens = wo.format != nerpipe::output_format::entities;
  ao.want_merged = wo.format == nerpipe::output_format::merged;
  // A long document runs window group by window group; its entities stay packed until the writer writes them.
  ao.pack_entities = wo.format == nerpipe::output_format::entities;
  if (!a.patterns.empty()) {
    auto rules = std::make_shared<nerpipe::entity_ruler_config>();
    try {
      rules->patterns = nerpipe::read_entity_patterns(a.patterns);
    } catch (const nerpipe::error& e) {
      die(usage, e.what(), "--patterns takes a JSONL file of {\"label\": ..., \"pattern\": \"phrase\"} lines (spaCy's EntityRuler format)");
    }
    rules->attr = a.phrase_matcher_attr == "LOWER" ? nerpipe::entity_ruler_config::match_attr::lower
                                                   : nerpipe::entity_ruler_config::match_attr::orth;
    rules->overwrite_ents = a.overwrite_ents;
    ao.entity_ruler = std::move(rules);
  } else if (a.overwrite_ents) {
    die(usage, "--overwrite-ents needs --patterns", "");
  }

  nerpipe::executor_options eo;
  // A GPU wants big batches (one forward pass each) and a wide window to sort by length; a CPU worker
  // small ones, so that the workers share the input evenly and memory stays low.
  eo.batch_tokens = a.batch_tokens != 0 ? a.batch_tokens : is_cuda ? 32768 : 4096;
  eo.window_docs = a.window_docs != 0 ? a.window_docs : is_cuda ? 2048 : 256;
  // The executor estimates a batch's tokens from its bytes; let the model run it as one pass even when
  // the estimate was low by half.
  if (is_cuda) ao.batch_tokens = eo.batch_tokens + eo.batch_tokens / 2;
  eo.ordered = !a.unordered;
  eo.overlap = a.overlap == "on"    ? nerpipe::executor_options::overlap_mode::on
               : a.overlap == "off" ? nerpipe::executor_options::overlap_mode::off
                                    : nerpipe::executor_options::overlap_mode::automatic;

  nerpipe_cli::install_signal_handlers();

  // ---- the input opens (exit 6) and the output is not the input (exit 2): before anything is written
  std::unique_ptr<nerpipe::jsonl_reader> reader;
  try {
    reader = std::make_unique<nerpipe::jsonl_reader>(a.input, ro);
  } catch (const nerpipe::error& e) {
    die(bad_input, e.what(), "check the --input path (use - for standard input)");
  }
  const auto input_id = a.input == "-" ? nerpipe::identify_descriptor(0) : nerpipe::identify_file(a.input);
  const std::string input_name = a.input == "-" ? "(standard input)" : a.input;
  nerpipe::output_target target;
  if (a.output == "-") {
    if (input_id && nerpipe::identify_descriptor(1) == input_id)
      die(usage, "standard output is the input file " + input_name + " (same device and inode)", "choose another output");
  } else {
    try {
      target = nerpipe::plan_output(a.output);
      nerpipe::check_output_is_not_input(input_id, input_name, a.output, target);
#if defined(NERPIPE_WITH_MPI)
      // Each rank's part lies beside the output.
      for (int r = 0; r < mpi_size(); ++r)
        if (nerpipe::identify_file(nerpipe::mpi<nerpipe::round_robin<nerpipe::cpu_policy>>::part_path(target.final_path, r)) == input_id)
          throw nerpipe::config_error(nerpipe::errc::config_invalid, "an MPI part file of --output " + a.output + " is the input");
#endif
      if (a.resume && target.in_place())
        throw nerpipe::config_error(nerpipe::errc::config_invalid, "--resume needs a regular file as --output (" + a.output +
                                                                       " is a device or a pipe)");
    } catch (const nerpipe::io_error& e) {
      die(bad_output, e.what(), "--output names the file to write");
    } catch (const nerpipe::config_error& e) {
      die(usage, e.what(), "");
    }
  }

  // ---- the model (exit 4), then the options that depend on it (exit 2)
  nerpipe::model model;
  try {
    nerpipe::model_options mo;
    if (a.sentences == "parser") mo.sentences = nerpipe::spacy_sentences::parser;
    else if (a.sentences == "senter") mo.sentences = nerpipe::spacy_sentences::senter;
    else if (a.sentences == "none") mo.sentences = nerpipe::spacy_sentences::none;
    model = nerpipe::load_model(a.model, mo);
  } catch (const nerpipe::error& e) {
    die(bad_model, std::string("cannot load the model: ") + e.what(), model_error_hint(a.model));
  }
#if NERPIPE_HAS_HF_FAMILY
  if (model.hf) {
    const std::size_t specials = model.hf->tokenizer->num_special_tokens();
    const std::size_t window = model.hf->max_length > specials ? model.hf->max_length - specials : 0;
    if (a.stride >= window && a.stride != 0)
      die(usage, "--stride " + std::to_string(a.stride) + " must be smaller than the model's window of " + std::to_string(window) +
                     " tokens (max_length " + std::to_string(model.hf->max_length) + " minus " + std::to_string(specials) +
                     " special tokens)",
          "windows overlap by --stride tokens; leave it out for a quarter of a window");
  }
#endif
  if (model.family == nerpipe::model_family::spacy) {
    if (a.stride != 0) die(usage, "--stride applies to Hugging Face models; " + a.model + " is a spaCy pipeline", "");
    if (aggregation_given) die(usage, "--aggregation applies to Hugging Face models; " + a.model + " is a spaCy pipeline", "");
  }
  unsigned workers = a.workers;
  if (!is_cuda) workers = fit_workers_to_memory(workers, model, ao, eo, max_memory);
  const unsigned threads_per_worker = a.threads ? a.threads : std::max(1u, std::max(1u, std::thread::hardware_concurrency()) / workers);
  nerpipe::resume_window window;  // round_robin's windows (see io/resume.hpp)
  window.docs = eo.window_docs;
  window.bytes = eo.window_bytes;
  if (nerpipe_cli::stop_signal.load() != 0) {
    const int sig = nerpipe_cli::stop_signal.load();
    std::fprintf(stderr, "nerpipe: stopped by %s before any record was processed; the output was not touched\n",
                 nerpipe_cli::signal_name(sig));
    return nerpipe_cli::interrupted_status(sig);
  }

  // ---- what the output must share with an interrupted run to be continued
  output_identity identity;
  const bool file_input = a.input != "-";
  if (a.output != "-" && !target.in_place() && file_input && !a.unordered) {
    identity.input_path = a.input;
    identity.input_bytes = reader->total_bytes();
    identity.model_path = a.model;
    try {
      identity.model_fingerprint = nerpipe::directory_fingerprint(a.model);
    } catch (const nerpipe::error& e) {
      die(bad_model, e.what(), "");
    }
    identity.options = output_options(a, in_format, is_cuda, eo, threads_per_worker);
  }
  const bool resumable = !identity.model_fingerprint.empty();
  std::vector<std::string> resume_command = command_line;
  if (std::find(resume_command.begin(), resume_command.end(), "--resume") == resume_command.end()) resume_command.push_back("--resume");
  const double drain_ms = a.drain_seconds * 1000.0;

#if defined(NERPIPE_WITH_MPI)
  reader.reset();  // each rank opens its own shard
  const auto start = std::chrono::steady_clock::now();
  nerpipe::run_stats stats;
  std::uint64_t kept_local[2] = {0, 0}, kept[2] = {0, 0};  // records, errors kept from an interrupted run
  bool complete = true;
  const int rank = mpi_rank(), size = mpi_size();
  output_session* current = nullptr;  // this rank's part, for the failure handlers
  try {
    std::vector<nerpipe::cpu_policy> replicas;
    for (unsigned w = 0; w < workers; ++w) replicas.emplace_back(threads_per_worker);
    using inner_type = nerpipe::round_robin<nerpipe::cpu_policy>;
    // Every rank looks at every part (one file system) and decides alike, before any rank writes one.
    for (int r = 0; r <= size; ++r) {
      const auto part_path = nerpipe::mpi<inner_type>::part_path(target.final_path, r);
      const auto manifest_path = nerpipe::resume_manifest::path_for(part_path);
      std::error_code ec;
      if (!fs::exists(part_path, ec)) continue;
      if (r == size)
        die(usage, part_path.string() + " exists: the partial output was made by more than " + std::to_string(size) + " ranks",
            "resume with the same number of ranks, or remove " + target.final_path.string() + ".part-* to start over");
      if (!a.resume && fs::exists(manifest_path, ec))
        die(usage, part_path.string() + " is a part of an interrupted run",
            "continue it with --resume, or remove " + target.final_path.string() + ".part-* to start over");
      if (a.resume) {
        std::optional<nerpipe::resume_manifest> was;
        try {
          was = nerpipe::read_manifest(manifest_path);
        } catch (const nerpipe::error& e) {
          die(usage, e.what(), "");
        }
        if (was && was->ranks != static_cast<std::uint64_t>(size))
          die(usage, "cannot resume: the partial output was made by " + std::to_string(was->ranks) + " ranks; this run has " +
                         std::to_string(size),
              "resume with mpirun -np " + std::to_string(was->ranks) + ", or remove " + target.final_path.string() +
                  ".part-* to start over");
      }
    }
    MPI_Barrier(MPI_COMM_WORLD);  // no rank creates its part before every rank has looked
    nerpipe::mpi<inner_type> exec(inner_type(std::move(replicas), eo));
    std::unique_ptr<output_session> part;
    const auto result = exec.run_shards(
        a.input, ro, target.final_path,
        [&](const nerpipe::reader_options& sro, const nerpipe::byte_shard& shard, const fs::path& part_path) {
          nerpipe::jsonl_reader shard_reader(a.input, sro);
          part = open_output_session(part_path, a.resume, resumable, identity, static_cast<std::uint64_t>(size),
                                     static_cast<std::uint64_t>(rank), shard.begin, shard.end, shard_reader, window, wo, a.quiet);
          typename nerpipe::mpi<inner_type>::shard_result r;
          if (!part) {  // stopped while checking the partial output
            r.complete = false;
            return r;
          }
          current = part.get();
          kept_local[0] = part->kept_records;
          kept_local[1] = part->kept_errors;
          nerpipe::tracked_source<nerpipe::jsonl_reader> source(shard_reader, &nerpipe_cli::stop_signal, true);
          source.replay_first(std::move(part->replay));
          nerpipe_cli::drain_watchdog watchdog(std::chrono::milliseconds(static_cast<long long>(drain_ms)), [&](int sig) {
            {
              std::lock_guard lock(part->mutex);
              try {
                part->checkpoint();
              } catch (...) {
              }
            }
            std::fprintf(stderr, "nerpipe: rank %d: the records in flight did not finish within --drain-seconds; %llu records of its "
                                 "part are kept\n", rank, static_cast<unsigned long long>(part->records));
            std::_Exit(nerpipe_cli::interrupted_status(sig));
          });
          if (shard.begin < shard.end)
            r.stats = exec.inner().run(nerpipe::pipeline_factory(model, ao), source, [&](nerpipe::document& d) {
              std::lock_guard lock(part->mutex);
              part->write(d, source.offset_after(d.index));
            });
          std::lock_guard lock(part->mutex);
          if (source.stopped()) {
            part->checkpoint();
            r.complete = false;
          } else {
            part->writer->sync();
          }
          return r;
        });
    stats = result.stats;
    complete = result.complete;
    if (complete && part) part->finish();  // the parts are concatenated: their manifests go
  } catch (const nerpipe::io_error& e) {
    keep_partial_after_failure(current, current ? current->name : "");
    die(bad_output, e.what(), "check that the --output directory exists and is writable by every rank");
  } catch (const nerpipe::config_error& e) {
    die(usage, e.what(), "");
  } catch (const nerpipe::input_error& e) {
    keep_partial_after_failure(current, current ? current->name : "");
    die(bad_input, e.what(), "every rank must be able to read --input");
  } catch (const nerpipe::model_error& e) {
    keep_partial_after_failure(current, current ? current->name : "");
    die(bad_model, e.what(), "the model could not be run");
  }
  (void)devices;
  MPI_Allreduce(kept_local, kept, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (!complete) {
    int sig = nerpipe_cli::stop_signal.load(), any = 0;
    MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any == 0) any = SIGTERM;
    if (rank == 0)
      std::fprintf(stderr,
                   "nerpipe: stopped by %s: every rank wrote the records it had finished to its part (%s.part-*); to "
                   "continue, run the same command with --resume under the same launcher and number of ranks:\n  mpirun -np %d %s\n",
                   nerpipe_cli::signal_name(any), target.final_path.c_str(), size, nerpipe_cli::shell_command(resume_command).c_str());
    return nerpipe_cli::interrupted_status(any);
  }
#else
  // ---- the output: a fresh or resumed partial file (or standard output), then the run
  std::unique_ptr<output_session> out;
  if (a.output == "-") {
    out = std::make_unique<output_session>();
    out->name = "standard output";
    out->writer = std::make_unique<nerpipe::jsonl_writer>("-", wo);
  } else if (target.in_place()) {  // a device or a FIFO
    out = std::make_unique<output_session>();
    out->name = target.final_path.string();
    try {
      out->writer = std::make_unique<nerpipe::jsonl_writer>(nerpipe::open_output_file(target.final_path, true), out->name, wo);
    } catch (const nerpipe::error& e) {
      die(bad_output, e.what(), "check that the output can be written");
    }
  } else {
    out = open_output_session(target.write_path(), a.resume, resumable, identity, 1, 0, 0, UINT64_MAX, *reader, window, wo, a.quiet);
    if (!out) {
      const int sig = nerpipe_cli::stop_signal.load();
      std::fprintf(stderr, "nerpipe: stopped by %s while checking the partial output; nothing was changed\n", nerpipe_cli::signal_name(sig));
      return nerpipe_cli::interrupted_status(sig);
    }
  }
  const std::string partial_name = target.write_path().string();
  nerpipe::tracked_source<nerpipe::jsonl_reader> source(*reader, &nerpipe_cli::stop_signal, resumable);
  source.replay_first(std::move(out->replay));

  // After a stop signal: what was written, where, and the command that continues.
  auto report_stop = [&](int sig) {
    const auto input_total = reader->total_bytes();
    std::fprintf(stderr, "nerpipe: stopped by %s after %llu records (input read up to byte %llu%s)\n", nerpipe_cli::signal_name(sig),
                 static_cast<unsigned long long>(out->records), static_cast<unsigned long long>(out->input_offset),
                 input_total ? (" of " + std::to_string(input_total)).c_str() : "");
    if (resumable)
      std::fprintf(stderr, "nerpipe: the output so far is in %s; to continue:\n  %s\n", partial_name.c_str(),
                   nerpipe_cli::shell_command(resume_command).c_str());
  };
  nerpipe_cli::drain_watchdog watchdog(std::chrono::milliseconds(static_cast<long long>(drain_ms)), [&](int sig) {
    {
      std::lock_guard lock(out->mutex);
      try {
        out->checkpoint();
      } catch (...) {
      }
    }
    std::fprintf(stderr, "nerpipe: the records in flight did not finish within --drain-seconds (%g s)\n", a.drain_seconds);
    report_stop(sig);
    std::_Exit(nerpipe_cli::interrupted_status(sig));
  });
  auto sink = [&](nerpipe::document& d) {
    std::lock_guard lock(out->mutex);
    out->write(d, resumable ? source.offset_after(d.index) : 0);
  };

  const bool show_progress = !a.quiet && ::isatty(2);
  const auto start = std::chrono::steady_clock::now();
  nerpipe::run_stats stats;
  try {
    if (is_cuda) {
      stats = nerpipe_cli::execute_on_gpus(devices, workers, a.precision, eo, model, ao, source, *reader, sink, show_progress);
    } else {
      std::vector<nerpipe::cpu_policy> replicas;
      for (unsigned w = 0; w < workers; ++w) replicas.emplace_back(threads_per_worker);
      stats = nerpipe_cli::execute(std::move(replicas), eo, model, ao, source, *reader, sink, show_progress);
    }
    std::lock_guard lock(out->mutex);
    if (source.stopped()) {
      out->checkpoint();
    } else if (a.output == "-") {
      out->writer->flush();
    } else {
      out->finish();
      out->writer.reset();  // closed before the rename
      nerpipe::commit_output(target);
    }
  } catch (const nerpipe::io_error& e) {
    if (out->writer && out->writer->failed_errno() == EPIPE) return broken_pipe;  // the reader went away (| head): quietly
    die(bad_output, e.what(),
        a.output == "-" ? "the output could not be written (disk full? closed pipe?)"
                        : "the output could not be written (disk full?); the records before the failure are in " + partial_name);
  } catch (const nerpipe::input_error& e) {
    keep_partial_after_failure(out.get(), partial_name);
    die(bad_input, e.what(), "the input could not be read to the end");
  } catch (const nerpipe::model_error& e) {
    keep_partial_after_failure(out.get(), partial_name);
    die(bad_model, e.what(), "the model could not be run; try `nerpipe info --model DIR`, or fewer --workers");
  } catch (const nerpipe::config_error& e) {
    die(usage, e.what(), "");
  } catch (const nerpipe::cuda_error& e) {
    keep_partial_after_failure(out.get(), partial_name);
    if (e.code() == nerpipe::errc::cuda_no_device)
      die(usage, e.what(), "--device cuda:N must name a visible GPU (see nvidia-smi and CUDA_VISIBLE_DEVICES)");
    die(internal, e.what(), "a CUDA call failed");
  }
  if (source.stopped()) {
    const int sig = nerpipe_cli::stop_signal.load();
    report_stop(sig);
    return nerpipe_cli::interrupted_status(sig);
  }
  const std::uint64_t kept[2] = {out->kept_records, out->kept_errors};
#endif
  const double s = std::max(1e-6, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!a.quiet && mpi_rank() == 0) {
    std::fprintf(stderr,
                 "nerpipe: %llu records, %llu entities, %llu errors in %.2f s (%.1f docs/s, %.0f tokens/s, %s of text)%s%s\n",
                 static_cast<unsigned long long>(stats.docs), static_cast<unsigned long long>(stats.entities),
                 static_cast<unsigned long long>(stats.errors), s, double(stats.docs) / s, double(stats.tokens) / s,
                 nerpipe_cli::human_bytes(double(stats.text_bytes)).c_str(),
                 stats.retired ? (", " + std::to_string(stats.retired) + " replica(s) retired").c_str() : "",
                 kept[0] ? ("; " + std::to_string(kept[0]) + " more records kept from the interrupted run").c_str() : "");
    if (stats.out_of_memory)
      std::fprintf(stderr, "nerpipe: %llu batches ran out of device memory and were split (a smaller --batch-tokens avoids it)\n",
                   static_cast<unsigned long long>(stats.out_of_memory));
    if (stats.errors + kept[1])
      std::fprintf(stderr, "nerpipe: %llu records could not be processed; see the records with an \"error\" field\n",
                   static_cast<unsigned long long>(stats.errors + kept[1]));
  }
  return stats.errors + kept[1] ? some_failed : ok;
}

void print_files(const fs::path& dir) {
  std::vector<std::pair<std::string, std::uintmax_t>> files;
  std::uintmax_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const auto size = it->file_size(ec);
    files.emplace_back(fs::relative(it->path(), dir, ec).string(), size);
    total += size;
  }
  std::sort(files.begin(), files.end());
  std::cout << "files:    " << files.size() << " (" << nerpipe_cli::human_bytes(double(total)) << ")\n";
  for (const auto& [name, size] : files) std::cout << "  " << name << "  " << nerpipe_cli::human_bytes(double(size)) << '\n';
}

int info_command(const std::string& dir) {
  nerpipe::model m;
  try {
    m = nerpipe::load_model(dir);
  } catch (const nerpipe::error& e) {
    die(bad_model, std::string("cannot load the model: ") + e.what(), model_error_hint(dir));
  }
  std::cout << "model:    " << fs::absolute(m.dir).string() << '\n';
  std::cout << "family:   " << nerpipe::to_string(m.family) << '\n';
#if NERPIPE_HAS_HF_FAMILY
  if (m.hf) {
    const auto& c = m.hf->config;
    std::cout << "type:     " << c.model_type << " (" << nerpipe::hf_family_pipeline(*m.hf) << ")\n";
    const char* decoders[] = {"none", "WordPiece", "ByteLevel", "Metaspace"};
    std::cout << "tokenizer: " << m.hf->tokenizer_model << " (decoder "
              << decoders[static_cast<int>(m.hf->vocab->decoder)]
              << (m.hf->tokenizer_class.empty() ? std::string() : ", " + m.hf->tokenizer_class) << ")\n";
    if (m.hf->weight_files > 1) std::cout << "weights:  sharded, " << m.hf->weight_files << " safetensors files\n";
    std::cout << "sizes:    hidden " << c.hidden << ", layers " << c.layers << ", heads " << c.heads << ", intermediate "
              << c.intermediate << ", vocab " << c.vocab_size << ", max length " << m.hf->max_length << '\n';
    std::cout << "classes:  " << c.num_labels() << " (";
    for (std::size_t i = 0; i < c.id2label.size(); ++i) std::cout << (i ? " " : "") << c.id2label[i];
    std::cout << ")\n";
  }
#endif
#if NERPIPE_HAS_SPACY_FAMILY
  if (m.spacy) {
    const auto& s = *m.spacy;
    std::cout << "name:     " << s.lang << '_' << s.name << ' ' << s.version << '\n';
    if (m.spacy_pipeline && m.spacy_pipeline->transformer) {
      // A transformer pipeline (spacy-transformers): the Hugging Face encoder under the transition NER.
      const auto& t = *m.spacy_pipeline->transformer;
      const auto& c = t.hf.config;
      std::cout << "type:     spaCy transformer pipeline (" << t.architecture << ": " << c.model_type << " under the transition NER)\n";
      std::cout << "tokenizer: spaCy rules, then " << t.hf.tokenizer_model << " (" << t.hf.tokenizer_class << ") over strided spans of "
                << t.window << " tokens every " << t.stride << "\n";
      std::cout << "sizes:    hidden " << c.hidden << ", layers " << c.layers << ", heads " << c.heads << ", intermediate " << c.intermediate
                << ", vocab " << c.vocab_size << ", max length " << (t.truncate ? std::to_string(t.truncate) : std::string("none"))
                << "; NER hidden " << s.ner.nI << ", actions " << s.actions.size() << '\n';
      std::cout << "runs:     tokenizer -> " << t.component << " (reduce_mean onto the tokens) -> ner (the NER alone, as "
                   "spacy.load(dir) with only the transformer and the ner)\n";
    } else {
      std::size_t rows = 0;
      for (const auto& t : s.ner.embeds) rows += t.E.shape.empty() ? 0 : t.E.shape[0];
      std::cout << "sizes:    width " << s.ner.width << ", encoder depth " << s.ner.encoder.size() << ", window "
                << s.ner.window << ", hash-embed rows " << rows << ", hidden " << s.ner.nH << ", actions "
                << s.actions.size() << ", static vectors " << (s.ner.has_static_vectors ? "yes" : "no") << '\n';
      // What runs, and why: the components of `spacy.load(dir)` that can change entities.
      const auto source = m.spacy_pipeline ? m.spacy_pipeline->source : nerpipe::spacy_sentences::none;
      std::cout << "runs:     tokenizer -> "
                << (source == nerpipe::spacy_sentences::parser   ? "tok2vec -> parser -> "
                    : source == nerpipe::spacy_sentences::senter ? "senter -> "
                                                                 : "")
                << "ner (" << (source == nerpipe::spacy_sentences::parser   ? "the parser sets the sentence starts the NER reads, as spacy.load(dir) runs it"
                               : source == nerpipe::spacy_sentences::senter ? "the senter sets the sentence starts the NER reads"
                                                                            : "no parser or senter before the NER in this pipeline")
                << "; tagger, attribute_ruler and lemmatizer cannot change entities and are skipped; --sentences none "
                   "runs the NER alone)\n";
    }
  }
#endif
  const auto labels = m.labels();
  std::cout << "labels:   " << labels.size() << " (";
  for (std::size_t i = 0; i < labels.size(); ++i) std::cout << (i ? " " : "") << labels[i];
  std::cout << ")\n";
  print_files(m.dir);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(NERPIPE_WITH_MPI)
  nerpipe::mpi_session session(argc, argv);
#endif
  CLI::App app{"nerpipe " NERPIPE_VERSION_STRING ": named-entity recognition over JSONL corpora"};
  app.set_version_flag("--version", std::string("nerpipe ") + NERPIPE_VERSION_STRING);
  app.require_subcommand(1);

  run_args a;
  auto* run = app.add_subcommand("run", "annotate every document of the input, one output line per input line");
  CLI::Option* aggregation_option = nullptr;
  run->add_option("--model", a.model, "model directory (Hugging Face or spaCy)")->required();
  run->add_option("--input", a.input, "input file, or - for standard input")->required();
  run->add_option("--output", a.output, "output file, or - for standard output")->capture_default_str();
  run->add_option("--device", a.device, "cpu, cuda, or cuda:0,1,...")->capture_default_str();
  run->add_option("--workers", a.workers, "annotator replicas (per device)")->capture_default_str();
  run->add_option("--threads", a.threads, "CPU threads per worker (default: cores / workers)");
  run->add_option("--format", a.format, "output: entities, merged (text with entities replaced by labels), iob")
      ->check(CLI::IsMember({"entities", "merged", "iob"}))
      ->capture_default_str();
  run->add_option("--input-format", a.input_format, "jsonl, text (one document per line), or auto (by extension)")
      ->check(CLI::IsMember({"auto", "jsonl", "text"}))
      ->capture_default_str();
  run->add_option("--text-field", a.text_field, "JSON field holding the text")->capture_default_str();
  run->add_option("--id-field", a.id_field, "JSON field holding the id")->capture_default_str();
  run->add_option("--batch-tokens", a.batch_tokens, "token budget of one batch (default: 4096 on CPU, 32768 on a GPU)");
  run->add_option("--window-docs", a.window_docs, "documents sorted by length together (default: 256 on CPU, 2048 on a GPU)");
  aggregation_option = run->add_option("--aggregation", a.aggregation, "Hugging Face aggregation: none, simple, first, average, max")
      ->check(CLI::IsMember({"none", "simple", "first", "average", "max"}))
      ->capture_default_str();
  run->add_option("--stride", a.stride, "Hugging Face: tokens of overlap between windows of long documents")
      ->capture_default_str();
  run->add_option("--invalid-utf8", a.invalid_utf8, "reject (error record) or replace (with U+FFFD)")
      ->check(CLI::IsMember({"reject", "replace"}))
      ->capture_default_str();
  run->add_option("--max-record-bytes", a.max_record_bytes, "longer lines become error records")->capture_default_str();
  run->add_option("--patterns", a.patterns,
                  "entity_ruler phrase patterns (JSONL: {\"label\": \"ORG\", \"pattern\": \"Acme Corp\"}), applied after the NER "
                  "as spaCy's entity_ruler added after \"ner\"");
  run->add_flag("--overwrite-ents", a.overwrite_ents, "with --patterns: pattern matches replace overlapping model entities");
  run->add_option("--phrase-matcher-attr", a.phrase_matcher_attr, "with --patterns: match the words' ORTH or LOWER")
      ->check(CLI::IsMember({"ORTH", "LOWER"}))
      ->capture_default_str();
  run->add_flag("--byte-offsets", a.byte_offsets, "also write start_byte and end_byte of entities");
  run->add_flag("--unordered", a.unordered, "write records as they finish, not in input order");
  run->add_option("--sentences", a.sentences,
                  "spaCy: where the NER's sentence starts come from: auto (what spacy.load(dir) runs: the parser for "
                  "en_core_web_*), parser, senter, or none (spaCy's NER-only pipeline, about twice as fast)")
      ->check(CLI::IsMember({"auto", "parser", "senter", "none"}))
      ->capture_default_str();
  run->add_option("--overlap", a.overlap,
                  "run each worker's host stages (tokenizing, decoding) beside its model work on other batches: "
                  "auto (on for GPUs), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  run->add_flag("--resume", a.resume,
                "continue the partial output (<output>.partial) of an interrupted run of the same command: its records are "
                "checked against the input and kept, the rest is appended");
  run->add_option("--max-memory", a.max_memory,
                  "memory the CPU workers may use (e.g. 8G; default: what the system has available); --workers is lowered "
                  "to what fits");
  run->add_option("--drain-seconds", a.drain_seconds,
                  "after SIGINT/SIGTERM, how long the records in flight may take to finish before the run stops anyway")
      ->capture_default_str();
  run->add_option("--precision", a.precision,
                  "GPU compute precision: fp32 (exact), bf16, or fp8 (bf16 with the encoder's GEMMs in FP8 e4m3; sm_89+)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp8"}))
      ->capture_default_str();
  run->add_flag("--quiet,-q", a.quiet, "no progress and no summary on stderr");

  std::string info_dir;
  auto* info = app.add_subcommand("info", "describe a model directory: family, labels, sizes, files");
  info->add_option("--model", info_dir, "model directory")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? ok : usage;
  }
  try {
    if (*run) return run_command(a, std::vector<std::string>(argv, argv + argc), aggregation_option->count() > 0);
    if (*info) return info_command(info_dir);
  } catch (const std::exception& e) {
    std::cerr << "nerpipe: " << e.what() << '\n';
    return internal;
  }
  return usage;
}
