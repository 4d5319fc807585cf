// SPDX-License-Identifier: Apache-2.0
//! @file End-to-end BERT-base NER on one GPU: text -> WordPiece -> bert_ner<cuda_policy> -> entities, in
//! fp32, bf16 and fp8 (bf16 with the encoder's GEMMs in FP8 e4m3), with the time of every stage and the encoder's
//! GEMM TFLOP/s.
//!
//! The model has bert-base shapes (12 layers, hidden 768, 12 heads, FFN 3072, 512 positions, 2 token
//! types, 9 labels) and random weights generated in memory (seeded; std 0.02 like BERT's initialiser;
//! the classifier's "O" bias is raised so that most tokens are O, as with a trained NER model, and
//! post-processing does realistic work). The tokenizer is the committed uncased WordPiece vocabulary.
//! Text: the JSONL file named by NERPIPE_BERT_CORPUS, else the shared EWT dev split, else the committed
//! fixture documents; repeated to NERPIPE_BERT_DOCS documents (default 20000 for bf16, 4000 for fp32,
//! whose GEMMs run without tensor cores), annotated in chunks of 2000 documents as an executor would.
//! Tokens counted are model tokens ([CLS]/[SEP] and window overlaps included).
//!
//! Stages come from pipeline_options::time_stages (one device synchronisation per stage and pass).
//! Encoder TFLOP/s = the encoder's GEMM FLOPs / the encoder stage's time (which also holds the embedding,
//! attention and LayerNorms, so it understates the GEMMs' own rate), compared with 800 TFLOP/s, the
//! bf16 dense GEMM rate measured on the H100 (bench_cuda_ops).
#include <benchmark/benchmark.h>

#include <nerpipe/cuda.cuh>
#include <nerpipe/hf.hpp>

#include <common/corpus.hpp>
#include <common/hf_tokenizer.hpp>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

using namespace nerpipe;

constexpr double bf16_peak_tflops = 800.0;  // measured cuBLASLt bf16 GEMM rate on the H100 (bench_cuda_ops)
constexpr std::size_t chunk_docs = 2000;

/// Uniform floats with the given standard deviation from a seeded xorshift (fast: 110M weights).
struct weight_rng {
  std::uint64_t s;
  explicit weight_rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<float>(static_cast<double>(s >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
  }
  std::vector<float> fill(std::size_t n, float stddev, float mean = 0.0f) {
    std::vector<float> v(n);
    const float a = stddev * 1.7320508f;  // uniform [-a, a] has std a / sqrt 3
    for (auto& x : v) x = mean + a * next();
    return v;
  }
};

/// bert-base with random weights and the committed uncased tokenizer; built once per process.
const hf_model& bert_base() {
  static const hf_model m = [] {
    hf_model m;
    const auto& [tok, vocab] = bench::uncased_wordpiece();
    hf_config& c = m.config;
    c.arch = hf_arch::bert;
    c.model_type = "bert";
    c.vocab_size = tok->vocab_size();
    c.hidden = 768;
    c.layers = 12;
    c.heads = 12;
    c.intermediate = 3072;
    c.max_position = 512;
    c.type_vocab_size = 2;
    c.layer_norm_eps = 1e-12f;
    c.activation = hf_activation::gelu;
    c.id2label = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"};
    for (std::size_t i = 0; i < c.id2label.size(); ++i) c.label2id[c.id2label[i]] = static_cast<std::int64_t>(i);

    const std::size_t H = c.hidden, I = c.intermediate, L = c.num_labels();
    weight_rng rng(20240601);
    auto w = std::make_shared<hf_weights>();
    w->word = rng.fill(c.vocab_size * H, 0.02f);
    w->position = rng.fill(c.max_position * H, 0.02f);
    w->token_type = rng.fill(c.type_vocab_size * H, 0.02f);
    w->emb_ln_g = rng.fill(H, 0.02f, 1.0f);
    w->emb_ln_b = rng.fill(H, 0.02f);
    for (std::size_t l = 0; l < c.layers; ++l) {
      hf_layer_weights lw;
      lw.qkv_w = rng.fill(3 * H * H, 0.02f);
      lw.qkv_b = rng.fill(3 * H, 0.02f);
      lw.attn_out_w = rng.fill(H * H, 0.02f);
      lw.attn_out_b = rng.fill(H, 0.02f);
      lw.attn_ln_g = rng.fill(H, 0.02f, 1.0f);
      lw.attn_ln_b = rng.fill(H, 0.02f);
      lw.ffn_in_w = rng.fill(I * H, 0.02f);
      lw.ffn_in_b = rng.fill(I, 0.02f);
      lw.ffn_out_w = rng.fill(H * I, 0.02f);
      lw.ffn_out_b = rng.fill(H, 0.02f);
      lw.out_ln_g = rng.fill(H, 0.02f, 1.0f);
      lw.out_ln_b = rng.fill(H, 0.02f);
      w->layers.push_back(std::move(lw));
    }
    w->classifier_w = rng.fill(L * H, 0.05f);  // logits of std ~1.4 over unit-variance features
    w->classifier_b = rng.fill(L, 0.02f);
    w->classifier_b[0] += 3.5f;  // "O" wins most tokens: ~5 entities per 100 tokens on EWT (measured on the CPU)
    m.weights = std::move(w);
    m.max_length = 512;
    m.tokenizer = std::make_shared<const any_tokenizer>(*tok);
    m.vocab = vocab;
    return m;
  }();
  return m;
}

/// The benchmark text: NERPIPE_BERT_CORPUS, the shared EWT dev split, or the committed fixture docs.
const std::vector<std::string>& base_texts(std::string& source) {
  static std::string src;
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    std::error_code ec;
    std::string path;
    if (const char* env = std::getenv("NERPIPE_BERT_CORPUS"); env != nullptr && *env != '\0') path = env;
    else if (std::filesystem::exists(bench::ewt_path("dev"), ec)) path = bench::ewt_path("dev");
    if (!path.empty()) {
      for (auto& d : bench::load_jsonl(path)) out.push_back(std::move(d.text));
      src = path;
      return out;
    }
    const auto fixture = std::filesystem::path(NERPIPE_SOURCE_DIR) / "tests/fixtures/hf/models/reference/bert.json";
    simdjson::dom::parser parser;
    simdjson::dom::element root = parser.load(fixture.string());
    for (auto d : root["docs"]) out.emplace_back(std::string_view(d["text"]));
    src = fixture.string() + " (no EWT corpus found: set NERPIPE_BERT_CORPUS)";
    return out;
  }();
  source = src;
  return texts;
}

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  const long long n = std::atoll(v);
  return n > 0 ? static_cast<std::size_t>(n) : fallback;
}

/// The precision of a benchmark argument: 0 fp32, 1 bf16, 2 fp8.
dtype precision_of(std::int64_t arg) { return arg == 2 ? dtype::fp8_e4m3 : arg == 1 ? dtype::bf16 : dtype::f32; }
const char* precision_name(std::int64_t arg) { return arg == 2 ? "fp8" : arg == 1 ? "bf16" : "fp32"; }

/// state.range(0): the precision (0 fp32, 1 bf16, 2 fp8).
void bm_bert_base_e2e(benchmark::State& state) {
  if (cuda_device_count() == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const bool bf16 = state.range(0) != 0;  // bf16 or fp8: tensor cores (the larger default corpus)
  const char* mode = precision_name(state.range(0));
  try {
    const hf_model& m = bert_base();
    std::string source;
    const auto& base = base_texts(source);
    const std::size_t n_docs =
        env_size(bf16 ? "NERPIPE_BERT_DOCS" : "NERPIPE_BERT_DOCS_FP32", bf16 ? 20000 : 4000);
    std::vector<std::string_view> texts;
    texts.reserve(n_docs);
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n_docs; ++i) {
      texts.push_back(base[i % base.size()]);
      bytes += texts.back().size();
    }

    const cuda_policy gpu = cuda_policy{0}.with_compute_dtype(precision_of(state.range(0)));
    pipeline_options opts;  // aggregation simple, "O" ignored
    opts.batch_tokens = env_size("NERPIPE_BERT_BATCH_TOKENS", 32768);
    opts.time_stages = true;
    const auto t_load0 = std::chrono::steady_clock::now();
    bert_ner<cuda_policy> ner(gpu, m, opts);
    gpu.synchronize();
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load0).count();

    // Warm-up: cuBLASLt plans and the largest scratch buffers, outside the measured time.
    {
      const std::size_t w = std::min<std::size_t>(texts.size(), 256);
      (void)ner(std::span<const std::string_view>(texts.data(), w));
      ner.reset_stage_seconds();
    }

    for (auto _ : state) {
      std::size_t tokens = 0, entities = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t b = 0; b < texts.size(); b += chunk_docs) {
        const std::size_t n = std::min(chunk_docs, texts.size() - b);
        const auto out = ner(std::span<const std::string_view>(texts.data() + b, n));
        tokens += ner.last_token_count();
        for (const auto& d : out) entities += d.entities.size();
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      state.SetIterationTime(secs);

      // Stages in pipeline order: hf_tokenizer, bert_embedding, transformer_encoder, token_classifier (+ download),
      // hf_decoder, merge_entities.
      const auto& sec = ner.stage_seconds();
      struct {
        double tokenize, upload, encoder, head_download, postprocess;
        double total() const { return tokenize + upload + encoder + head_download + postprocess; }
      } st{sec[0], sec[1], sec[2], sec[3], sec[4] + sec[5]};
      const double tok_s = static_cast<double>(tokens) / secs;
      const double gemm_flops = ner.stage<stages::transformer_encoder>().component().gemm_flops(tokens) +
                                ner.stage<stages::token_classifier>().gemm_flops(tokens);
      const double gemm_tflops = gemm_flops / st.encoder / 1e12;
      state.counters["tokens/s"] = tok_s;
      state.counters["docs/s"] = static_cast<double>(texts.size()) / secs;
      state.counters["MB/s"] = static_cast<double>(bytes) / secs / 1e6;
      state.counters["tokens"] = static_cast<double>(tokens);
      state.counters["entities/doc"] = static_cast<double>(entities) / static_cast<double>(texts.size());
      state.counters["s_tokenize"] = st.tokenize;
      state.counters["s_upload"] = st.upload;
      state.counters["s_encoder"] = st.encoder;
      state.counters["s_head_download"] = st.head_download;
      state.counters["s_postprocess"] = st.postprocess;
      state.counters["enc_TFLOP/s"] = gemm_tflops;
      std::printf(
          "BERT-E2E %s: %.2f M tokens/s end to end (%zu docs, %.1f MB, %zu tokens, %.2f s, %.2f entities/doc, "
          "batch_tokens %zu)\n"
          "BERT-E2E %s stages: tokenize %.3f s | embedding (upload + gather) %.3f s | encoder %.3f s | head+download %.3f s | "
          "post-process %.3f s | other %.3f s\n"
          "BERT-E2E %s encoder: %.1f TFLOP/s of GEMM work over the encoder stage (%.1f%% of %.0f TFLOP/s bf16 "
          "peak); model load + weight upload %.2f s; text: %s\n",
          mode, tok_s / 1e6, texts.size(), static_cast<double>(bytes) / 1e6, tokens, secs,
          static_cast<double>(entities) / static_cast<double>(texts.size()), opts.batch_tokens, mode, st.tokenize,
          st.upload, st.encoder, st.head_download, st.postprocess, std::max(0.0, secs - st.total()), mode,
          gemm_tflops, 100.0 * gemm_tflops / bf16_peak_tflops, bf16_peak_tflops, load_s, source.c_str());
      std::fflush(stdout);
      ner.reset_stage_seconds();
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

/// A JSON string literal for `s` (quotes, backslashes and control characters escaped).
std::string json_quote(std::string_view s) {
  std::string o = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += ch;
    }
  }
  return o + "\"";
}

/// The benchmark corpus as a JSONL file of `n` records (the base texts repeated), written once per process
/// and removed at exit.
const std::string& jsonl_corpus(std::size_t n) {
  static struct temp_file {
    std::string path;
    ~temp_file() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
    }
  } file;
  std::string& path = file.path;
  if (!path.empty()) return path;
  std::string source;
  const auto& base = base_texts(source);
  const char* tmp = std::getenv("TMPDIR");
  path = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/nerpipe-bert-bench-" +
         std::to_string(static_cast<long long>(::getpid())) + ".jsonl";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (std::size_t i = 0; i < n; ++i)
    out << "{\"id\":\"d" << i << "\",\"text\":" << json_quote(base[i % base.size()]) << "}\n";
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

/// JSONL text in -> entities out, as `nerpipe-cuda run --device cuda --workers R` does it: jsonl_reader ->
/// round_robin<cuda_policy> with R replicas sharing GPU 0 (each its own stream, weights and host thread, so
/// one replica's host work -- tokenizing, post-processing -- overlaps the others' GPU work) -> jsonl_writer.
/// Building the replicas (weight conversion and upload) is timed apart. state.range(0) = R, state.range(1) = the
/// precision (1 bf16, 2 fp8).
void bm_bert_base_jsonl(benchmark::State& state) {
  if (cuda_device_count() == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const auto replicas = static_cast<std::size_t>(state.range(0));
  const char* mode = precision_name(state.range(1));
  try {
    const hf_model& m = bert_base();
    const std::size_t n_docs = env_size("NERPIPE_BERT_DOCS", 20000);
    const std::string& input = jsonl_corpus(n_docs);
    const std::string output = input + ".out";

    executor_options eo;  // the command line's GPU defaults
    eo.batch_tokens = env_size("NERPIPE_BERT_BATCH_TOKENS", 32768);
    eo.window_docs = 2048;
    pipeline_options ao;
    ao.batch_tokens = eo.batch_tokens + eo.batch_tokens / 2;

    const auto t_build0 = std::chrono::steady_clock::now();
    std::vector<cuda_policy> policies;
    std::vector<std::unique_ptr<annotator>> built;
    for (std::size_t r = 0; r < replicas; ++r) {
      policies.push_back(cuda_policy{0}.with_compute_dtype(precision_of(state.range(1))));
      built.push_back(make_hf_annotator(policies.back(), m, ao));
      // Warm-up: cuBLASLt plans and scratch buffers of a small batch.
      std::vector<document> warm(8);
      for (std::size_t i = 0; i < warm.size(); ++i) warm[i].text = "Warm-up sentence number " + std::to_string(i) + " in Paris.";
      built.back()->annotate(warm);
      policies.back().synchronize();
    }
    const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_build0).count();

    for (auto _ : state) {
      jsonl_reader reader(input);
      jsonl_writer writer(output);
      round_robin<cuda_policy> exec(policies, eo);
      const auto t0 = std::chrono::steady_clock::now();
      const run_stats st = exec.run([&](cuda_policy&, std::size_t r) { return std::move(built[r]); }, reader,
                                    [&](document& d) { writer.write(d); });
      writer.flush();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      state.SetIterationTime(secs);
      const double tok_s = static_cast<double>(st.tokens) / secs;
      state.counters["tokens/s"] = tok_s;
      state.counters["docs/s"] = static_cast<double>(st.docs) / secs;
      state.counters["MB/s"] = static_cast<double>(st.text_bytes) / secs / 1e6;
      state.counters["tokens"] = static_cast<double>(st.tokens);
      state.counters["errors"] = static_cast<double>(st.errors);
      std::printf(
          "BERT-JSONL %s replicas %zu: %.2f M tokens/s (%llu docs, %.1f MB of text, %llu tokens, %llu entities, "
          "%llu errors, %.2f s; batch_tokens %zu, window_docs %zu; building the replicas %.2f s, not timed)\n",
          mode, replicas, tok_s / 1e6, static_cast<unsigned long long>(st.docs), static_cast<double>(st.text_bytes) / 1e6,
          static_cast<unsigned long long>(st.tokens), static_cast<unsigned long long>(st.entities),
          static_cast<unsigned long long>(st.errors), secs, eo.batch_tokens, eo.window_docs, build_s);
      std::fflush(stdout);
      if (st.docs != n_docs || st.errors != 0) state.SkipWithError("not every record came back without error");
    }
    std::error_code ec;
    std::filesystem::remove(output, ec);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

}  // namespace

BENCHMARK(bm_bert_base_e2e)
    ->ArgName("precision")  // 1 bf16, 2 fp8, 0 fp32
    ->Arg(1)
    ->Arg(2)
    ->Arg(0)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

BENCHMARK(bm_bert_base_jsonl)
    ->ArgNames({"replicas", "precision"})  // precision 1 bf16, 2 fp8
    ->Args({1, 1})
    ->Args({2, 1})
    ->Args({4, 1})
    ->Args({1, 2})
    ->Args({2, 2})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);
