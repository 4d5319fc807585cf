// SPDX-License-Identifier: Apache-2.0
//! @file libFuzzer targets for everything nerpipe reads from outside: one binary, the target named by
//! NERPIPE_FUZZ_TARGET (scripts/fuzz.sh sets it; seeds in tests/fuzz/corpus/<target>/).
//!
//!   jsonl          the JSONL / text reader (options from the first byte), the writer in every format, and
//!                  the resume check of a partial output against its input (input and output split by \x1e)
//!   tokenizer_json tokenizer.json (WordPiece; BPE / Unigram) and tokenizer_config.json, then encoding
//!   tokenizers     the WordPiece, BPE and Unigram tokenizers of the committed fixtures on arbitrary text
//!   safetensors    a .safetensors file (then every tensor read, and BERT weights against a tiny config),
//!                  or a config.json
//!   spacy_model    one file of a small spaCy pipeline (tests/fuzz/spacy_base, with static vectors)
//!                  replaced, then the pipeline loaded and run on a few texts
//!   spacy_files    each spaCy reader alone: msgpack (tokenizer, lookups, moves, thinc model, key2row),
//!                  .npy vectors, config.cfg, JSON
//!
//! Every input must either work or throw nerpipe::error; anything else (a crash, a sanitizer report, another
//! exception, a hang) is a finding. Built by scripts/fuzz.sh with clang -fsanitize=fuzzer,address,undefined.
#include <nerpipe/hf.hpp>
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/io/resume.hpp>
#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/nerpipe.hpp>
#include <nerpipe/pipeline/model.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#ifndef NERPIPE_SOURCE_DIR
#error "NERPIPE_SOURCE_DIR (the repository root) must be defined"
#endif

namespace fs = std::filesystem;

namespace {

/// An in-memory file with a path, for the readers that take one (rewritten for every input).
class memory_file {
 public:
  memory_file() {
    fd_ = ::memfd_create("nerpipe-fuzz", 0);
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const fs::path& write(std::string_view bytes) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  int fd_ = -1;
  fs::path path_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read %s\n", p.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const fs::path source_dir = NERPIPE_SOURCE_DIR;

/// Runs `f`; nerpipe::error is an accepted outcome (the input was refused with a message).
template <class F>
void accept_errors(F&& f) {
  try {
    f();
  } catch (const nerpipe::error&) {
  }
}

const char* const sample_texts[] = {
    "Barack Obama was born in Hawaii. He don't live in (New York) anymore.",
    "  Ünïcödé  tëxt, 北京 and emoji 😀 — with\ttabs and\u00a0no-break spaces.",
    "",
    "a",
    "http://example.com/x?y=1 e-mail: someone@example.org #tag @user 3.14 $5",
};

// ---- jsonl ---------------------------------------------------------------------------------------------------

void fuzz_jsonl(std::string_view data) {
  static memory_file in, out;
  if (data.empty()) return;
  const unsigned char opt = static_cast<unsigned char>(data[0]);
  data.remove_prefix(1);
  if (opt & 0x80) {  // the resume check: input \x1e partial output
    const std::size_t sep = data.find('\x1e');
    if (sep == std::string_view::npos) return;
    const std::string input(data.substr(0, sep));
    const fs::path ip = in.write(input);
    const fs::path op = out.write(data.substr(sep + 1));
    accept_errors([&] {
      nerpipe::reader_options ro;
      ro.lines.block_bytes = 4096;
      nerpipe::jsonl_reader reader(ip, ro);
      nerpipe::resume_manifest m;
      m.input_bytes = input.size();
      m.records = opt & 7;
      m.input_hash = "0000000000000000";
      nerpipe::file_prefix_hash hasher(ip, 0);
      nerpipe::resume_window w;
      w.docs = 1 + ((opt >> 3) & 3);
      const auto rp = nerpipe::verify_resume_prefix(op, reader, m, hasher, w, [] { return false; });
      nerpipe::tracked_source<nerpipe::jsonl_reader> source(reader, nullptr, true);
      auto replay = rp.replay;
      source.replay_first(std::move(replay));
      for (nerpipe::document d; source.next(d);) (void)source.offset_after(d.index);
    });
    return;
  }
  const fs::path p = in.write(data);
  nerpipe::reader_options o;
  o.lines.block_bytes = 4096;  // the smallest block: lines span blocks, and no 1 MiB buffer per input
  o.format = (opt & 1) ? nerpipe::input_format::text : nerpipe::input_format::jsonl;
  o.invalid_utf8 = (opt & 2) ? nerpipe::invalid_utf8_policy::replace : nerpipe::invalid_utf8_policy::reject;
  if (opt & 4) o.lines.max_line_bytes = 40;
  if (opt & 8) o.text_field = "t", o.id_field = "i";
  nerpipe::writer_options wo;
  wo.format = static_cast<nerpipe::output_format>((opt >> 4) % 3);
  wo.byte_offsets = (opt & 64) != 0;
  accept_errors([&] {
    nerpipe::jsonl_reader reader(p, o);
    std::string line;
    for (nerpipe::document d; reader.next(d);) {
      if (d.ok() && !d.text.empty()) {  // an entity over the first character, as an annotator would give
        nerpipe::entity e;
        e.end = 1;
        e.end_byte = std::min<std::size_t>(d.text.size(), 1);
        e.label = "X";
        d.entities.push_back(e);
      }
      line.clear();
      nerpipe::format_record(d, wo, line);
      if (line.empty() || line.back() != '\n') std::abort();
    }
  });
}

// ---- tokenizer_json ------------------------------------------------------------------------------------------

void exercise(const nerpipe::any_tokenizer& tok) {
  for (const char* t : sample_texts) {
    (void)tok.encode(t);
    (void)tok.encode_windows(t, 8 + tok.num_special_tokens(), 3);
  }
}

void fuzz_tokenizer_json(std::string_view data) {
  if (data.empty()) return;
  const unsigned char kind = static_cast<unsigned char>(data[0]) % 3;
  data.remove_prefix(1);
  accept_errors([&] {
    if (kind == 0) {
      nerpipe::hf_tokenizer_info info;
      auto cfg = nerpipe::parse_tokenizer_json(data, "tokenizer.json", &info);
      exercise(nerpipe::any_tokenizer(nerpipe::wordpiece_tokenizer(std::move(cfg))));
    } else if (kind == 1) {
      nerpipe::hf_tokenizer_info info;
      auto cfg = nerpipe::parse_subword_tokenizer_json(data, "tokenizer.json", &info);
      exercise(nerpipe::any_tokenizer(nerpipe::subword_tokenizer(std::move(cfg))));
    } else {
      nerpipe::hf_tokenizer_info info;
      nerpipe::wordpiece_config wp;
      wp.normalizer = nerpipe::bert_normalizer_options{};
      nerpipe::apply_tokenizer_config(data, "tokenizer_config.json", wp, info);
      nerpipe::subword_config sw;
      nerpipe::apply_subword_tokenizer_config(data, "tokenizer_config.json", sw, info);
    }
  });
}

// ---- tokenizers ----------------------------------------------------------------------------------------------

void fuzz_tokenizers(std::string_view data) {
  static const auto tokenizers = [] {
    std::vector<std::unique_ptr<nerpipe::any_tokenizer>> v;
    for (const char* dir : {"uncased", "bpe-roberta", "unigram-xlmr", "unigram-camembert"})
      v.push_back(std::make_unique<nerpipe::any_tokenizer>(
          nerpipe::load_any_tokenizer(source_dir / "tests" / "fixtures" / "hf" / "tokenizer" / dir).tokenizer));
    return v;
  }();
  if (data.size() < 2) return;
  const auto& tok = *tokenizers[static_cast<unsigned char>(data[0]) % tokenizers.size()];
  const std::size_t max_length = tok.num_special_tokens() + 2 + static_cast<unsigned char>(data[1]) % 30;
  const std::size_t stride = (static_cast<unsigned char>(data[1]) >> 5) % (max_length - tok.num_special_tokens());
  data.remove_prefix(2);
  // Texts reach tokenizers as valid UTF-8 (the reader checks it): repair, as --invalid-utf8 replace does.
  std::string text;
  nerpipe::utf8::replace_invalid(data, text);
  accept_errors([&] {
    const auto e = tok.encode(text);
    for (const auto& o : e.offsets)
      if (o.begin > o.end || o.end > text.size() * 4) std::abort();
    (void)tok.encode_windows(text, max_length, stride);
  });
}

// ---- safetensors ---------------------------------------------------------------------------------------------

void fuzz_safetensors(std::string_view data) {
  static memory_file file;
  static const nerpipe::hf_config tiny = [] {
    return nerpipe::parse_hf_config(
        R"({"model_type": "bert", "vocab_size": 4, "hidden_size": 2, "num_hidden_layers": 1, "num_attention_heads": 1,
            "intermediate_size": 2, "max_position_embeddings": 4, "type_vocab_size": 1, "id2label": {"0": "O", "1": "B-X"}})");
  }();
  if (data.empty()) return;
  const bool config = (static_cast<unsigned char>(data[0]) & 1) != 0;
  data.remove_prefix(1);
  accept_errors([&] {
    if (config) {
      (void)nerpipe::parse_hf_config(data);
      return;
    }
    const nerpipe::safetensors_file f(file.write(data));
    for (const auto& e : f.entries()) {
      if (e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16") (void)f.read_float(e.name);
      (void)f.bytes(e);
    }
    (void)nerpipe::load_hf_weights(f, tiny);
  });
}

// ---- spacy ---------------------------------------------------------------------------------------------------

/// The files of tests/fuzz/spacy_base (a small pipeline with static vectors) that an input may replace.
const char* const spacy_files[] = {"config.cfg", "meta.json",     "tokenizer",      "ner/cfg",         "ner/moves",
                                   "ner/model",  "vocab/vectors", "vocab/key2row", "vocab/lookups.bin", "vocab/vectors.cfg"};

void fuzz_spacy_model(std::string_view data) {
  static const fs::path dir = [] {
    const fs::path d = fs::path("/dev/shm").string() + "/nerpipe-fuzz-spacy-" + std::to_string(::getpid());
    fs::remove_all(d);
    fs::copy(source_dir / "tests" / "fuzz" / "spacy_base", d, fs::copy_options::recursive);
    std::atexit([] { std::error_code ec; fs::remove_all(dir, ec); });
    return d;
  }();
  static std::map<std::string, std::string> originals = [] {
    std::map<std::string, std::string> m;
    for (const char* f : spacy_files) m[f] = read_file(dir / f);
    return m;
  }();
  if (data.empty()) return;
  const char* name = spacy_files[static_cast<unsigned char>(data[0]) % std::size(spacy_files)];
  data.remove_prefix(1);
  {
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc).write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  accept_errors([&] {
    nerpipe::model m = nerpipe::load_model(dir);
    auto nlp = nerpipe::make_annotator(nerpipe::cpu_policy(1), m);
    std::vector<nerpipe::document> docs;
    for (const char* t : sample_texts) {
      docs.emplace_back();
      docs.back().text = t;
    }
    nlp->annotate(docs);
  });
  std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << originals[name];
}

void fuzz_spacy_files(std::string_view data) {
  static memory_file file;
  if (data.empty()) return;
  const unsigned char which = static_cast<unsigned char>(data[0]) % 9;
  data.remove_prefix(1);
  namespace sd = nerpipe::spacy::detail;
  accept_errors([&] {
    switch (which) {
      case 0: (void)sd::load_tokenizer(file.write(data)); break;
      case 1: (void)sd::load_lexeme_norm(file.write(data)); break;
      case 2: (void)sd::load_moves(file.write(data)); break;
      case 3: (void)sd::load_thinc(file.write(data)); break;
      case 4: (void)sd::load_key2row(file.write(data), 7); break;
      case 5: (void)sd::load_npy(file.write(data)); break;
      case 6: {
        const nerpipe::spacy::config_file cfg(data, "config.cfg");
        for (const char* k : {"width", "depth", "rows", "attrs", "window_size", "hidden_width"}) {
          for (const char* s : {"components.ner.model.tok2vec.encode", "components.ner.model.tok2vec.embed", "components.ner.model"}) {
            accept_errors([&] { (void)cfg.get_int(s, k); });
            accept_errors([&] { (void)cfg.get(s, k); });
          }
        }
        break;
      }
      case 7: (void)nerpipe::spacy::parse_json(data, "x.json"); break;
      default: {
        const sd::msgpack_doc doc("x", data.data(), data.size());
        accept_errors([&] { (void)sd::decode_array(doc, doc.root(), "a"); });
        break;
      }
    }
  });
}

using target_fn = void (*)(std::string_view);
target_fn target = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  static const std::map<std::string, target_fn> targets = {
      {"jsonl", fuzz_jsonl},           {"tokenizer_json", fuzz_tokenizer_json}, {"tokenizers", fuzz_tokenizers},
      {"safetensors", fuzz_safetensors}, {"spacy_model", fuzz_spacy_model},     {"spacy_files", fuzz_spacy_files}};
  const char* name = std::getenv("NERPIPE_FUZZ_TARGET");
  const auto it = name ? targets.find(name) : targets.end();
  if (it == targets.end()) {
    std::fprintf(stderr, "set NERPIPE_FUZZ_TARGET to one of:");
    for (const auto& [k, v] : targets) std::fprintf(stderr, " %s", k.c_str());
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  target = it->second;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  target(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
