// SPDX-License-Identifier: Apache-2.0
//! @file BERT / DistilBERT in bf16 on cuda_policy against the fp32 CPU oracle: logits within a stated
//! tolerance, and per-document entity agreement for all five strategies, measured and printed.
//!
//! Tolerances (the tiny committed fixtures: hidden 32, 2 layers, random weights drawn with std 0.2,
//! logits up to ~9). PyTorch 2.x running the same models with model.to(torch.bfloat16) on the CPU
//! differs from its fp32 run by max |logit| 0.195 (bert) / 0.097 (distilbert), mean 0.031 / 0.015, and
//! flips the argmax of 36 / 1917 and 11 / 1061 tokens; on documents whose entity spans it keeps, entity
//! scores move by up to 0.047 / 0.016. nerpipe's bf16 mode rounds at the same places
//! (weights, GEMM outputs, LayerNorm outputs; fp32 accumulation, LayerNorm and softmax math), so the
//! bounds asserted here are about twice those figures: max |logit diff| <= 0.4, mean <= 0.06, token
//! argmax agreement >= 95%, entity score difference <= 0.1.
//!
//! Entities. With random weights the top two logits of a token are often close: every committed fixture
//! document has a token whose fp32 top-2 margin is below 0.6, and PyTorch's own bf16 run reproduces
//! only 9 / 28 (bert) and 10 / 16 (distilbert) documents' `simple` entities exactly. So the >= 99%
//! identical-documents target is asserted for fp32 mode (100%, label/word/start/end, scores within
//! 1e-4); for bf16 the agreement is printed per strategy, and every document whose `simple` entities
//! differ must contain a near tie: a token whose fp32 top-2 margin is below twice the logit tolerance
//! (a flip is impossible elsewhere). A trained model's margins are mostly far larger: the last test
//! case takes the committed one (tests/fixtures/hf/models/trained-tiny, tools/models/train_tiny_ner.py;
//! NERPIPE_TRAINED_NER may name another) over every EWT document: 100% for fp32, a near tie in every
//! bf16 document that differs, and the >= 99.9% target for bf16 wherever the model's own margins leave
//! it reachable (else the figure is printed). For the committed model (40 epochs, token accuracy 97.7% on
//! the stride-32 windows), 2,514 of 300,969 tokens (0.84%) have an fp32 top-2 margin below 0.25, so the
//! target is reported, not asserted; PyTorch's own CPU bf16 run (LayerNorm and softmax in bf16 too)
//! keeps the fp32 `simple` entity spans of 800 of the 858 documents (tools/models/tiny_ner_reference.py
//! --bf16); nerpipe's CPU fp32 matches the transformers pipeline on 858/858 (tests/unit/hf_trained.cpp).
#include <catch2/catch.hpp>

#include <nerpipe/cuda.cuh>
#include <nerpipe/hf.hpp>

#include <simdjson.h>

#include "support/data.hpp"
#include "support/prerequisite.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {
namespace fs = std::filesystem;
using namespace nerpipe;

const fs::path fixtures = fs::path(NERPIPE_SOURCE_DIR) / "tests/fixtures/hf/models";

constexpr double logit_max_tol = 0.4;    // max |bf16 GPU - fp32 CPU| over every logit
constexpr double logit_mean_tol = 0.06;  // mean of the same
constexpr double argmax_agree_min = 0.95;
constexpr float bf16_score_tol = 0.1f;  // entity scores (softmax probabilities) of equal-span docs, bf16 mode

struct fixture_doc {
  std::string text;
  std::vector<std::int32_t> ids;
};

std::vector<fixture_doc> load_docs(const std::string& kind) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.load((fixtures / "reference" / (kind + ".json")).string());
  std::vector<fixture_doc> out;
  for (auto d : root["docs"]) {
    fixture_doc r;
    r.text = std::string_view(d["text"]);
    for (auto v : d["ids"]) r.ids.push_back(static_cast<std::int32_t>(std::int64_t(v)));
    out.push_back(std::move(r));
  }
  return out;
}

/// Logits [tokens, L] of every document, packed in order, through the components with element type T.
template <class T, class Policy>
std::vector<float> component_logits(const Policy& p, const hf_model& m, const std::vector<fixture_doc>& docs) {
  bert_embedding<Policy> emb(p, m.config, *m.weights);
  transformer_encoder<Policy> enc(p, m.config, *m.weights);
  token_classifier<Policy> head(p, m.config, *m.weights);
  std::vector<std::int32_t> ids, types, pos, offs{0};
  std::size_t longest = 0;
  for (const auto& d : docs) {
    ids.insert(ids.end(), d.ids.begin(), d.ids.end());
    for (std::size_t k = 0; k < d.ids.size(); ++k) {
      pos.push_back(static_cast<std::int32_t>(k));
      types.push_back(0);
    }
    offs.push_back(static_cast<std::int32_t>(ids.size()));
    longest = std::max(longest, d.ids.size());
  }
  const std::size_t n = ids.size(), H = m.config.hidden, L = m.config.num_labels();
  const auto d_ids = p.upload(std::span<const std::int32_t>(ids));
  const auto d_types = p.upload(std::span<const std::int32_t>(types));
  const auto d_pos = p.upload(std::span<const std::int32_t>(pos));
  const auto d_offs = p.upload(std::span<const std::int32_t>(offs));
  typename Policy::template buffer<T> x(p, n * H);
  typename Policy::template buffer<float> lg(p, n * L);
  const matrix_view<T> xv(x.data(), n, H);
  emb.forward(p, d_ids.data(), d_types.data(), d_pos.data(), xv);
  enc.forward(p, xv, d_offs.data(), offs.data(), docs.size(), longest);
  head.forward(p, matrix_view<const T>(xv), matrix_view<float>(lg.data(), n, L));
  std::vector<float> out(n * L);
  p.download(std::span<const float>(lg.data(), n * L), std::span<float>(out));
  p.synchronize();
  return out;
}

std::size_t argmax_row(const float* row, std::size_t L) {
  return static_cast<std::size_t>(std::max_element(row, row + L) - row);
}
float top2_margin(const float* row, std::size_t L) {
  float a = -INFINITY, b = -INFINITY;
  for (std::size_t j = 0; j < L; ++j) {
    if (row[j] > a) {
      b = a;
      a = row[j];
    } else if (row[j] > b) {
      b = row[j];
    }
  }
  return a - b;
}

bool same_spans(const std::vector<hf_entity>& a, const std::vector<hf_entity>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (a[k].label != b[k].label || a[k].word != b[k].word || a[k].start != b[k].start || a[k].end != b[k].end)
      return false;
  return true;
}
float max_score_diff(const std::vector<hf_entity>& a, const std::vector<hf_entity>& b) {
  float d = 0;
  for (std::size_t k = 0; k < std::min(a.size(), b.size()); ++k) d = std::max(d, std::fabs(a[k].score - b[k].score));
  return d;
}

/// The trained model: the committed fixture tests/fixtures/hf/models/trained-tiny (tools/models/train_tiny_ner.py),
/// or another model directory named by $NERPIPE_TRAINED_NER.
fs::path trained_model_dir() {
  if (const char* env = std::getenv("NERPIPE_TRAINED_NER"); env != nullptr && *env != '\0') return env;
  return test::fixtures_dir() / "hf" / "models" / "trained-tiny";
}


const char* const strategy_names[] = {"none", "simple", "first", "average", "max"};
const aggregation strategies[] = {aggregation::none, aggregation::simple, aggregation::first, aggregation::average,
                                  aggregation::max};

}  // namespace

TEST_CASE("hf bf16 on cuda_policy: logits within the bf16 tolerance of the fp32 CPU oracle", "[gpu][hf][bf16]") {
  const cuda_policy gpu = cuda_policy{0}.with_compute_dtype(dtype::bf16);
  const cpu_policy cpu{1};
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto docs = load_docs(kind);
    const hf_model m = load_hf_model(fixtures / kind);
    const std::size_t L = m.config.num_labels();
    const auto g = component_logits<nerpipe::bfloat16>(gpu, m, docs);
    const auto c = component_logits<float>(cpu, m, docs);
    REQUIRE(g.size() == c.size());
    double mx = 0, sum = 0, mag = 0;
    std::size_t agree = 0, rows = g.size() / L;
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double d = std::fabs(double(g[i]) - double(c[i]));
      REQUIRE(std::isfinite(g[i]));
      mx = std::max(mx, d);
      sum += d;
      mag = std::max(mag, std::fabs(double(c[i])));
    }
    for (std::size_t r = 0; r < rows; ++r) agree += argmax_row(&g[r * L], L) == argmax_row(&c[r * L], L);
    const double mean = sum / static_cast<double>(g.size());
    const double agree_frac = static_cast<double>(agree) / static_cast<double>(rows);
    WARN(kind << " logits, bf16 GPU vs fp32 CPU (max |logit| " << mag << "):\n  max |diff| " << mx
              << " (tolerance " << logit_max_tol << "), mean |diff| " << mean << " (tolerance " << logit_mean_tol
              << ")\n  token argmax agreement " << agree << "/" << rows << " (minimum " << argmax_agree_min
              << ")");
    CHECK(mx <= logit_max_tol);
    CHECK(mean <= logit_mean_tol);
    CHECK(agree_frac >= argmax_agree_min);
  }
}

TEST_CASE("hf bert_ner bf16 vs fp32 CPU: per-document entity agreement, all five strategies", "[gpu][hf][bf16]") {
  const cuda_policy gpu32{0};
  const cuda_policy gpu16 = gpu32.with_compute_dtype(dtype::bf16);
  const cpu_policy cpu{1};
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto docs = load_docs(kind);
    const hf_model m = load_hf_model(fixtures / kind);
    const std::size_t L = m.config.num_labels();
    std::vector<std::string_view> texts;
    for (const auto& d : docs) texts.push_back(d.text);
    // fp32 CPU logits per document, for the near-tie explanation of bf16 differences.
    const auto c = component_logits<float>(cpu, m, docs);
    std::vector<float> min_margin(docs.size(), INFINITY);
    for (std::size_t i = 0, row = 0; i < docs.size(); ++i)
      for (std::size_t k = 0; k < docs[i].ids.size(); ++k, ++row)
        min_margin[i] = std::min(min_margin[i], top2_margin(&c[row * L], L));

    std::ostringstream table;
    table << kind << ": documents with the fp32 CPU's entities\n  (label, word, start, end; " << docs.size()
          << " documents)\n  strategy  fp32-GPU  bf16-GPU  bf16 max |score diff|\n";
    for (std::size_t s = 0; s < 5; ++s) {
      annotate_options o;
      o.strategy = strategies[s];
      bert_ner<cpu_policy> ner_cpu(cpu, m, o);
      bert_ner<cuda_policy> ner32(gpu32, m, o), ner16(gpu16, m, o);
      REQUIRE(ner16.stage<stages::bert_embedding>().compute_dtype() == dtype::bf16);
      REQUIRE(ner32.stage<stages::bert_embedding>().compute_dtype() == dtype::f32);
      const auto want = hf_entities(ner_cpu, texts), got32 = hf_entities(ner32, texts), got16 = hf_entities(ner16, texts);
      std::size_t same32 = 0, same16 = 0;
      float score16 = 0;
      for (std::size_t i = 0; i < docs.size(); ++i) {
        INFO(kind << " doc " << i << " " << strategy_names[s]);
        const bool eq32 = same_spans(got32[i], want[i]);
        same32 += eq32;
        if (eq32) CHECK(max_score_diff(got32[i], want[i]) < 1e-4f);
        const bool eq16 = same_spans(got16[i], want[i]);
        same16 += eq16;
        if (eq16) {
          score16 = std::max(score16, max_score_diff(got16[i], want[i]));
          CHECK(max_score_diff(got16[i], want[i]) <= bf16_score_tol);
        } else if (strategies[s] == aggregation::simple) {
          // simple's spans follow the per-token argmax alone: a difference needs a flipped token,
          // and a flip needs an fp32 margin below twice the logit error bound.
          INFO("fp32 min top-2 margin " << min_margin[i]);
          CHECK(min_margin[i] < 2 * logit_max_tol);
        }
      }
      table << "  " << std::left << std::setw(9) << strategy_names[s] << std::right << std::setw(4) << same32 << "/"
            << std::left << std::setw(5) << docs.size() << std::right << std::setw(4) << same16 << "/" << std::left
            << std::setw(5) << docs.size() << std::setprecision(3) << score16 << "\n";
      CHECK(same32 == docs.size());  // fp32 mode: every document identical
    }
    std::size_t near_tie_docs = 0;
    for (const float mm : min_margin) near_tie_docs += mm < 2 * logit_max_tol;
    table << "  documents with a near tie (fp32 top-2 margin < " << 2 * logit_max_tol << "): " << near_tie_docs
          << "/" << docs.size();
    WARN(table.str());
  }
}

// cpu_policy's compute dtype is the compile-time f32: its components never instantiate bf16 paths.
static_assert(nerpipe::detail::fp32_only_policy<nerpipe::cpu_policy>);
static_assert(!nerpipe::detail::fp32_only_policy<nerpipe::cuda_policy>);

TEST_CASE("hf bf16 components refuse activations of another precision than their weights", "[gpu][hf][bf16]") {
  const cuda_policy gpu16 = cuda_policy{0}.with_compute_dtype(dtype::bf16);
  const hf_model m = load_hf_model(fixtures / "bert");
  transformer_encoder<cuda_policy> enc(gpu16, m.config, *m.weights);
  token_classifier<cuda_policy> head(gpu16, m.config, *m.weights);
  CHECK(enc.compute_dtype() == dtype::bf16);
  const std::vector<std::int32_t> offs{0, 4};
  const auto d_offs = gpu16.upload(std::span<const std::int32_t>(offs));
  cuda_policy::buffer<float> x(gpu16, 4 * m.config.hidden), lg(gpu16, 4 * m.config.num_labels());
  CHECK_THROWS_AS(enc.forward(gpu16, matrix_view<float>(x.data(), 4, m.config.hidden), d_offs.data(), offs.data(), 1, 4),
                  nerpipe::config_error);
  CHECK_THROWS_AS(head.forward(gpu16, matrix_view<const float>(x.data(), 4, m.config.hidden),
                               matrix_view<float>(lg.data(), 4, m.config.num_labels())),
                  nerpipe::config_error);
  CHECK_THROWS_AS(bert_ner<cuda_policy>(gpu16.with_compute_dtype(dtype::f16), m), nerpipe::config_error);
}

TEST_CASE("hf trained model: bf16 and fp32 on cuda_policy give the fp32 CPU's entities on EWT", "[gpu][hf][bf16][trained]") {
  const fs::path dir = trained_model_dir();
  std::vector<std::string> texts_owned;
  for (auto& d : test::load_ewt()) texts_owned.push_back(std::move(d.text));
  REQUIRE(texts_owned.size() == 858);
  const hf_model m = load_hf_model(dir);
  const std::size_t L = m.config.num_labels();
  std::vector<std::string_view> texts(texts_owned.begin(), texts_owned.end());
  const cuda_policy gpu32{0};
  const cuda_policy gpu16 = gpu32.with_compute_dtype(dtype::bf16);
  const cpu_policy cpu{std::max(1u, std::thread::hardware_concurrency())};
  annotate_options o;  // simple aggregation, "O" ignored: what users run
  bert_ner<cpu_policy> ner_cpu(cpu, m, o);
  bert_ner<cuda_policy> ner32(gpu32, m, o), ner16(gpu16, m, o);
  const auto want = hf_entities(ner_cpu, texts), got32 = hf_entities(ner32, texts), got16 = hf_entities(ner16, texts);

  // Logits of every window the pipeline runs (same windows, stride and positions), fp32 CPU and bf16 GPU:
  // the bf16 error bound, and each document's smallest fp32 top-2 margin.
  std::vector<std::vector<fixture_doc>> windows(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i)
    for (auto& e : m.tokenizer->encode_windows(texts[i], ner_cpu.stage<stages::hf_tokenizer>().max_length(), ner_cpu.stage<stages::hf_tokenizer>().stride()))
      windows[i].push_back(fixture_doc{std::string(), std::move(e.ids)});
  double max_diff = 0;
  std::vector<float> min_margin(texts.size(), INFINITY);
  std::size_t tokens = 0;
  constexpr std::size_t docs_per_pass = 64;
  for (std::size_t b = 0; b < texts.size(); b += docs_per_pass) {
    std::vector<fixture_doc> pass;
    std::vector<std::size_t> owner;
    for (std::size_t i = b; i < std::min(texts.size(), b + docs_per_pass); ++i)
      for (const auto& w : windows[i]) {
        pass.push_back(w);
        owner.push_back(i);
      }
    const auto c = component_logits<float>(cpu, m, pass);
    const auto g = component_logits<nerpipe::bfloat16>(gpu16, m, pass);
    REQUIRE(c.size() == g.size());
    for (std::size_t k = 0, row = 0; k < pass.size(); ++k)
      for (std::size_t t = 0; t < pass[k].ids.size(); ++t, ++row) {
        for (std::size_t j = 0; j < L; ++j) max_diff = std::max(max_diff, std::fabs(double(g[row * L + j]) - c[row * L + j]));
        min_margin[owner[k]] = std::min(min_margin[owner[k]], top2_margin(&c[row * L], L));
        ++tokens;
      }
  }

  std::size_t same32 = 0, same16 = 0, entities = 0;
  float score16 = 0;
  std::ostringstream differing;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    entities += want[i].size();
    const bool eq32 = same_spans(got32[i], want[i]);
    same32 += eq32;
    if (eq32) CHECK(max_score_diff(got32[i], want[i]) < 1e-4f);
    if (same_spans(got16[i], want[i])) {
      ++same16;
      score16 = std::max(score16, max_score_diff(got16[i], want[i]));
    } else {
      // A span can only change where a token's argmax flips, which needs an fp32 top-2 margin below
      // twice the largest bf16 logit error measured on this model.
      INFO("document " << i << ": fp32 min top-2 margin " << min_margin[i] << ", bf16 max |logit diff| " << max_diff);
      CHECK(min_margin[i] < 2 * max_diff);
      differing << " " << i << " (margin " << min_margin[i] << ")";
    }
  }
  std::size_t near_tie_docs = 0;
  for (const float mm : min_margin) near_tie_docs += mm < 2 * max_diff;
  std::ostringstream table;
  table << "trained model " << dir.filename().string() << " (" << m.config.layers << " layers, hidden " << m.config.hidden
        << ", " << L << " labels) on " << texts.size() << " EWT documents, " << tokens << " tokens, " << entities
        << " fp32-CPU entities:\n  documents with the fp32 CPU's entities: fp32-GPU " << same32 << "/" << texts.size()
        << ", bf16-GPU " << same16 << "/" << texts.size() << " (" << std::setprecision(5)
        << 100.0 * static_cast<double>(same16) / static_cast<double>(texts.size()) << "%)\n  bf16 max |logit diff| "
        << max_diff << "; bf16 max entity |score diff| " << score16 << "; documents with a near tie (fp32 top-2 margin < "
        << 2 * max_diff << "): " << near_tie_docs << "\n  bf16 documents that differ:" << (same16 == texts.size() ? " none" : differing.str());
  // The >= 99.9% target is a statement about the implementation only where the model leaves it reachable:
  // a document whose fp32 margins all exceed twice the bf16 error cannot change, one with a near tie may.
  const bool target_reachable = static_cast<double>(near_tie_docs) <= 0.001 * static_cast<double>(texts.size());
  if (!target_reachable)
    table << "\n  (the model has near ties in " << near_tie_docs
          << " documents, so the 99.9% target is reported, not asserted; every difference must be a near tie)";
  WARN(table.str());
  CHECK(same32 == texts.size());
  if (target_reachable) CHECK(static_cast<double>(same16) >= 0.999 * static_cast<double>(texts.size()));
}
