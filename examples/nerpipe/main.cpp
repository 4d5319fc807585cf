// SPDX-License-Identifier: Apache-2.0
//! @file The `nerpipe` command-line program: run a NER model over a JSONL (or text) corpus, or describe a model.
//!
//!   nerpipe run --model DIR --input FILE|- --output FILE|- [options]
//!   nerpipe info --model DIR
//!
//! Exit status: 0 every record came through; 3 some records became error records; 2 usage;
//! 4 the model cannot be loaded; 5 the output cannot be written; 6 the input cannot be read;
//! 1 anything else.
//!
//! Built with -DNERPIPE_WITH_MPI (and MPI), the same program is `nerpipe_mpi`: under mpirun every rank
//! annotates a byte-range shard of --input with its own workers, and rank 0 writes --output in order.
#if defined(__CUDACC__)
#  include <nerpipe/cuda.cuh>
#endif
#include <nerpipe/core/error.hpp>
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/pipeline/executor.hpp>
#include <nerpipe/pipeline/model.hpp>
#include <nerpipe/policy/cpu_policy.hpp>
#include <nerpipe/version.hpp>
#if defined(NERPIPE_WITH_MPI)
#  include <nerpipe/mpi.hpp>  // nerpipe_mpi: each rank runs a shard of the input
#endif

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;

enum exit_code : int { ok = 0, internal = 1, usage = 2, some_failed = 3, bad_model = 4, bad_output = 5, bad_input = 6 };

struct run_args {
  std::string model, input, output = "-", device = "cpu", format = "entities", text_field = "text", id_field = "id";
  std::string aggregation = "simple", invalid_utf8 = "reject", input_format = "auto";
  std::string patterns, phrase_matcher_attr = "ORTH", overlap = "auto", sentences = "auto";
  bool overwrite_ents = false;
  unsigned workers = 1, threads = 0;
  std::size_t batch_tokens = 0, stride = 0, window_docs = 0;  // 0: by device (see run_command)
  std::uint64_t max_record_bytes = std::uint64_t{1} << 30;
  bool quiet = false, unordered = false, byte_offsets = false;
  std::string precision = "fp32";  // --precision (GPU): fp32, bf16, fp8
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string human_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) / 60) % 60);
  return buf;
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

template <class Policy>
nerpipe::run_stats execute(std::vector<Policy> replicas, const nerpipe::executor_options& eo, const nerpipe::model& model,
                           const nerpipe::pipeline_options& ao, nerpipe::jsonl_reader& reader, nerpipe::jsonl_writer& writer,
                           bool show_progress) {
  nerpipe::round_robin<Policy> exec(std::move(replicas), eo);
  progress_line progress(show_progress, reader, exec.progress());
  const auto stats = exec.run(nerpipe::pipeline_factory(model, ao), reader,
                              [&](nerpipe::document& d) {
                                writer.write(d);
                                progress.tick();
                              });
  writer.flush();
  progress.finish();
  return stats;
}

int run_command(const run_args& a) {
  bool is_cuda = false;
  const auto devices = parse_devices(a.device, is_cuda);
  if (a.workers == 0) die(usage, "--workers must be at least 1", "");

  nerpipe::reader_options ro;
  ro.text_field = a.text_field;
  ro.id_field = a.id_field;
  ro.invalid_utf8 = a.invalid_utf8 == "replace" ? nerpipe::invalid_utf8_policy::replace : nerpipe::invalid_utf8_policy::reject;
  ro.format = a.input_format == "auto" ? (a.input == "-" ? nerpipe::input_format::jsonl : nerpipe::input_format_for(a.input))
              : a.input_format == "text" ? nerpipe::input_format::text
                                         : nerpipe::input_format::jsonl;
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

  std::unique_ptr<nerpipe::jsonl_reader> reader;
  try {
    reader = std::make_unique<nerpipe::jsonl_reader>(a.input, ro);
  } catch (const nerpipe::error& e) {
    die(bad_input, e.what(), "check the --input path (use - for standard input)");
  }

  nerpipe::model model;
  try {
    nerpipe::model_options mo;
    if (a.sentences == "parser") mo.sentences = nerpipe::spacy_sentences::parser;
    else if (a.sentences == "senter") mo.sentences = nerpipe::spacy_sentences::senter;
    else if (a.sentences == "none") mo.sentences = nerpipe::spacy_sentences::none;
    model = nerpipe::load_model(a.model, mo);
  } catch (const nerpipe::error& e) {
    die(bad_model, std::string("cannot load the model: ") + e.what(),
        "--model must be a Hugging Face token-classification directory (config.json, model.safetensors, "
        "tokenizer.json) or a spaCy pipeline directory (meta.json, config.cfg); `nerpipe info --model DIR` checks one");
  }

#if defined(NERPIPE_WITH_MPI)
  if (a.input == "-" || a.output == "-") die(usage, "nerpipe_mpi needs --input and --output files (not -)", "");
  if (is_cuda) die(usage, "nerpipe_mpi runs CPU workers in this build", "use --device cpu");
  reader.reset();  // each rank opens its own shard
  const auto start = std::chrono::steady_clock::now();
  nerpipe::run_stats stats;
  try {
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    const unsigned threads = a.threads ? a.threads : std::max(1u, hw / a.workers);
    std::vector<nerpipe::cpu_policy> replicas;
    for (unsigned w = 0; w < a.workers; ++w) replicas.emplace_back(threads);
    nerpipe::mpi<nerpipe::round_robin<nerpipe::cpu_policy>> exec(nerpipe::round_robin<nerpipe::cpu_policy>(std::move(replicas), eo));
    stats = exec.run(nerpipe::pipeline_factory(model, ao), a.input, ro, a.output, wo);
  } catch (const nerpipe::io_error& e) {
    die(bad_output, e.what(), "check that the --output directory exists and is writable by every rank");
  } catch (const nerpipe::input_error& e) {
    die(bad_input, e.what(), "every rank must be able to read --input");
  } catch (const nerpipe::model_error& e) {
    die(bad_model, e.what(), "the model could not be run");
  }
  (void)devices;
#else
  std::unique_ptr<nerpipe::jsonl_writer> writer;
  try {
    writer = std::make_unique<nerpipe::jsonl_writer>(a.output, wo);
  } catch (const nerpipe::error& e) {
    die(bad_output, e.what(), "check that the --output directory exists and is writable (use - for standard output)");
  }

  const bool show_progress = !a.quiet && ::isatty(2);
  const auto start = std::chrono::steady_clock::now();
  nerpipe::run_stats stats;
  try {
    if (is_cuda) {
#if defined(__CUDACC__)
      // --precision: fp32 exact; bf16 activations and weights; fp8 = bf16 plus FP8 GEMMs in the encoder.
      const nerpipe::dtype compute = a.precision == "bf16"  ? nerpipe::dtype::bf16
                                     : a.precision == "fp8" ? nerpipe::dtype::fp8_e4m3
                                                            : nerpipe::dtype::f32;
      std::vector<nerpipe::cuda_policy> replicas;
      for (int d : devices)
        for (unsigned w = 0; w < a.workers; ++w) replicas.emplace_back(d, compute);
      stats = execute(std::move(replicas), eo, model, ao, *reader, *writer, show_progress);
#else
      (void)devices;
      die(usage, "--device " + a.device + ": this nerpipe was built without CUDA",
          "use --device cpu, or build the CUDA program (examples/nerpipe/main.cpp compiled by nvcc)");
#endif
    } else {
      if (a.precision != "fp32") die(usage, "--precision " + a.precision + " needs --device cuda", "use --precision fp32 on the CPU");
      const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
      const unsigned threads = a.threads ? a.threads : std::max(1u, hw / a.workers);
      std::vector<nerpipe::cpu_policy> replicas;
      for (unsigned w = 0; w < a.workers; ++w) replicas.emplace_back(threads);
      stats = execute(std::move(replicas), eo, model, ao, *reader, *writer, show_progress);
    }
  } catch (const nerpipe::io_error& e) {
    die(bad_output, e.what(), "the output could not be written (disk full? closed pipe?); the output file is incomplete");
  } catch (const nerpipe::input_error& e) {
    die(bad_input, e.what(), "the input could not be read to the end; the output holds the records before the failure");
  } catch (const nerpipe::model_error& e) {
    die(bad_model, e.what(), "the model could not be run; try `nerpipe info --model DIR`, or fewer --workers");
  } catch (const nerpipe::config_error& e) {
    die(usage, e.what(), "");
  } catch (const nerpipe::cuda_error& e) {
    if (e.code() == nerpipe::errc::cuda_no_device)
      die(usage, e.what(), "--device cuda:N must name a visible GPU (see nvidia-smi and CUDA_VISIBLE_DEVICES)");
    die(internal, e.what(), "a CUDA call failed; the output file is incomplete");
  }
#endif
  const double s = std::max(1e-6, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!a.quiet && mpi_rank() == 0) {
    std::fprintf(stderr,
                 "nerpipe: %llu records, %llu entities, %llu errors in %.2f s (%.1f docs/s, %.0f tokens/s, %s of text)%s\n",
                 static_cast<unsigned long long>(stats.docs), static_cast<unsigned long long>(stats.entities),
                 static_cast<unsigned long long>(stats.errors), s, double(stats.docs) / s, double(stats.tokens) / s,
                 human_bytes(double(stats.text_bytes)).c_str(),
                 stats.retired ? (", " + std::to_string(stats.retired) + " replica(s) retired").c_str() : "");
    if (stats.out_of_memory)
      std::fprintf(stderr, "nerpipe: %llu batches ran out of device memory and were split (a smaller --batch-tokens avoids it)\n",
                   static_cast<unsigned long long>(stats.out_of_memory));
    if (stats.errors)
      std::fprintf(stderr, "nerpipe: %llu records could not be processed; see the records with an \"error\" field\n",
                   static_cast<unsigned long long>(stats.errors));
  }
  return stats.errors ? some_failed : ok;
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
  std::cout << "files:    " << files.size() << " (" << human_bytes(double(total)) << ")\n";
  for (const auto& [name, size] : files) std::cout << "  " << name << "  " << human_bytes(double(size)) << '\n';
}

int info_command(const std::string& dir) {
  nerpipe::model m;
  try {
    m = nerpipe::load_model(dir);
  } catch (const nerpipe::error& e) {
    die(bad_model, std::string("cannot load the model: ") + e.what(),
        "--model must be a Hugging Face token-classification directory or a spaCy pipeline directory");
  }
  std::cout << "model:    " << fs::absolute(m.dir).string() << '\n';
  std::cout << "family:   " << nerpipe::to_string(m.family) << '\n';
#if NERPIPE_HAS_HF_FAMILY
  if (m.hf) {
    const auto& c = m.hf->config;
    std::cout << "type:     " << c.model_type << '\n';
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
  run->add_option("--aggregation", a.aggregation, "Hugging Face aggregation: none, simple, first, average, max")
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
    if (*run) return run_command(a);
    if (*info) return info_command(info_dir);
  } catch (const std::exception& e) {
    std::cerr << "nerpipe: " << e.what() << '\n';
    return internal;
  }
  return usage;
}
