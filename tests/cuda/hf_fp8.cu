// SPDX-License-Identifier: Apache-2.0
//! @file BERT with FP8 (e4m3) GEMMs on cuda_policy (compute dtype fp8_e4m3: the encoder's four GEMMs per layer in
//! FP8 with per-tensor scales, bf16 elsewhere) against the fp32 CPU oracle, on the committed trained model
//! (tests/fixtures/hf/models/trained-tiny, or $NERPIPE_TRAINED_NER) over every EWT document.
//!
//! What is asserted (as tests/cuda/hf_bf16.cu does for bf16):
//!  - every document whose `simple` entities differ from the fp32 CPU's has a near tie: a token whose fp32 top-2
//!    logit margin is below twice the largest FP8 logit error measured on this model (a flip is impossible
//!    elsewhere); each such document is listed with its margin;
//!  - the >= 99.9% identical-documents target wherever the model's margins leave it reachable (at most 0.1% of
//!    the documents have a near tie), else the figure is printed;
//!  - token argmax agreement >= 97% (a guard against a broken scale: FP8's 3 mantissa bits move logits by a few
//!    percent, so only near-tied tokens may flip).
//! The measured figures (logit error, agreement, documents) are printed as the parity table.
#include <catch2/catch.hpp>

#include <nerpipe/cuda.cuh>
#include <nerpipe/hf.hpp>

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

/// Logits [tokens, L] of the windows (token ids), packed in order, through the components on `p`.
template <class T, class Policy>
std::vector<float> window_logits(const Policy& p, const hf_model& m, const std::vector<std::vector<std::int32_t>>& wins) {
  bert_embedding<Policy> emb(p, m.config, *m.weights);
  transformer_encoder<Policy> enc(p, m.config, *m.weights);
  token_classifier<Policy> head(p, m.config, *m.weights);
  std::vector<std::int32_t> ids, types, pos, offs{0};
  std::size_t longest = 0;
  for (const auto& w : wins) {
    ids.insert(ids.end(), w.begin(), w.end());
    for (std::size_t k = 0; k < w.size(); ++k) {
      pos.push_back(static_cast<std::int32_t>(k));
      types.push_back(0);
    }
    offs.push_back(static_cast<std::int32_t>(ids.size()));
    longest = std::max(longest, w.size());
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
  enc.forward(p, xv, d_offs.data(), offs.data(), wins.size(), longest);
  head.forward(p, matrix_view<const T>(xv), matrix_view<float>(lg.data(), n, L));
  std::vector<float> out(n * L);
  p.download(std::span<const float>(lg.data(), n * L), std::span<float>(out));
  p.synchronize();
  return out;
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

}  // namespace

TEST_CASE("hf fp8 compute dtype: the encoder's weights are e4m3, the rest bf16", "[gpu][hf][fp8]") {
  if (!test::require_devices(1)) return;
  const cuda_policy gpu8 = cuda_policy{0}.with_compute_dtype(dtype::fp8_e4m3);
  const hf_model m = load_hf_model(test::fixtures_dir() / "hf" / "models" / "trained-tiny");
  transformer_encoder<cuda_policy> enc(gpu8, m.config, *m.weights);
  bert_embedding<cuda_policy> emb(gpu8, m.config, *m.weights);
  token_classifier<cuda_policy> head(gpu8, m.config, *m.weights);
  CHECK(enc.compute_dtype() == dtype::fp8_e4m3);
  CHECK(emb.compute_dtype() == dtype::bf16);
  CHECK(head.compute_dtype() == dtype::bf16);
  bert_ner<cuda_policy> ner(gpu8, m);
  CHECK(ner.stage<stages::bert_embedding>().compute_dtype() == dtype::bf16);
}

TEST_CASE("hf trained model: fp8 GEMMs on cuda_policy give the fp32 CPU's entities on EWT, differences at near ties",
          "[gpu][hf][fp8][trained]") {
  if (!test::require_devices(1)) return;
  const cuda_policy gpu32{0};
  if (gpu32.compute_capability() < 89) {
    (void)nerpipe::test::missing_prerequisite("FP8 matrix units (sm_89+): this device is sm_" +
                                              std::to_string(gpu32.compute_capability()));
    return;
  }
  fs::path dir = test::fixtures_dir() / "hf" / "models" / "trained-tiny";
  if (const char* env = std::getenv("NERPIPE_TRAINED_NER"); env != nullptr && *env != '\0') dir = env;
  std::vector<std::string> texts_owned;
  for (auto& d : test::load_ewt()) texts_owned.push_back(std::move(d.text));
  REQUIRE(texts_owned.size() == 858);
  const hf_model m = load_hf_model(dir);
  const std::size_t L = m.config.num_labels();
  std::vector<std::string_view> texts(texts_owned.begin(), texts_owned.end());
  const cuda_policy gpu8 = gpu32.with_compute_dtype(dtype::fp8_e4m3);
  const cpu_policy cpu{std::max(1u, std::thread::hardware_concurrency())};
  annotate_options o;  // simple aggregation, "O" ignored
  bert_ner<cpu_policy> ner_cpu(cpu, m, o);
  bert_ner<cuda_policy> ner8(gpu8, m, o);
  const auto want = hf_entities(ner_cpu, texts), got8 = hf_entities(ner8, texts);

  // Logits of every window the pipeline runs, fp32 CPU and FP8 GPU: the error bound and each document's margin.
  const auto& tok = ner_cpu.stage<stages::hf_tokenizer>();
  std::vector<std::vector<std::vector<std::int32_t>>> windows(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i)
    for (auto& e : m.tokenizer->encode_windows(texts[i], tok.max_length(), tok.stride())) windows[i].push_back(std::move(e.ids));
  double max_diff = 0, sum_diff = 0;
  std::size_t tokens = 0, agree = 0;
  std::vector<float> min_margin(texts.size(), INFINITY);
  constexpr std::size_t docs_per_pass = 64;
  for (std::size_t b = 0; b < texts.size(); b += docs_per_pass) {
    std::vector<std::vector<std::int32_t>> pass;
    std::vector<std::size_t> owner;
    for (std::size_t i = b; i < std::min(texts.size(), b + docs_per_pass); ++i)
      for (const auto& w : windows[i]) {
        pass.push_back(w);
        owner.push_back(i);
      }
    const auto c = window_logits<float>(cpu, m, pass);
    const auto g = window_logits<nerpipe::bfloat16>(gpu8, m, pass);
    REQUIRE(c.size() == g.size());
    for (std::size_t k = 0, row = 0; k < pass.size(); ++k)
      for (std::size_t t = 0; t < pass[k].size(); ++t, ++row) {
        for (std::size_t j = 0; j < L; ++j) {
          const double d = std::fabs(double(g[row * L + j]) - c[row * L + j]);
          REQUIRE(std::isfinite(g[row * L + j]));
          max_diff = std::max(max_diff, d);
          sum_diff += d;
        }
        agree += std::max_element(&g[row * L], &g[row * L] + L) == &g[row * L] + (std::max_element(&c[row * L], &c[row * L] + L) - &c[row * L]);
        min_margin[owner[k]] = std::min(min_margin[owner[k]], top2_margin(&c[row * L], L));
        ++tokens;
      }
  }

  std::size_t same8 = 0, entities = 0;
  std::ostringstream differing;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    entities += want[i].size();
    if (same_spans(got8[i], want[i])) {
      ++same8;
    } else {
      INFO("document " << i << ": fp32 min top-2 margin " << min_margin[i] << ", fp8 max |logit diff| " << max_diff);
      CHECK(min_margin[i] < 2 * max_diff);
      differing << " " << i << " (margin " << std::setprecision(3) << min_margin[i] << ")";
    }
  }
  std::size_t near_tie_docs = 0;
  for (const float mm : min_margin) near_tie_docs += mm < 2 * max_diff;
  const double agree_frac = static_cast<double>(agree) / static_cast<double>(tokens);
  std::ostringstream table;
  table << "trained model " << dir.filename().string() << " with FP8 GEMMs on " << texts.size() << " EWT documents, " << tokens
        << " tokens, " << entities << " fp32-CPU entities:\n  documents with the fp32 CPU's entities: fp8-GPU " << same8 << "/"
        << texts.size() << " (" << std::setprecision(5) << 100.0 * static_cast<double>(same8) / static_cast<double>(texts.size())
        << "%)\n  fp8 logits vs fp32 CPU: max |diff| " << max_diff << ", mean |diff| " << sum_diff / double(tokens * L)
        << "; token argmax agreement " << agree << "/" << tokens << "\n  documents with a near tie (fp32 top-2 margin < "
        << 2 * max_diff << "): " << near_tie_docs << "\n  fp8 documents that differ:" << (same8 == texts.size() ? " none" : differing.str());
  const bool target_reachable = static_cast<double>(near_tie_docs) <= 0.001 * static_cast<double>(texts.size());
  if (!target_reachable)
    table << "\n  (the model has near ties in " << near_tie_docs
          << " documents at FP8's error, so the 99.9% target is reported, not asserted; every difference is a near tie)";
  WARN(table.str());
  CHECK(agree_frac >= 0.97);
  if (target_reachable) CHECK(static_cast<double>(same8) >= 0.999 * static_cast<double>(texts.size()));
}
