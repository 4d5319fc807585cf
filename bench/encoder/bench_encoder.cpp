// SPDX-License-Identifier: Apache-2.0
//! @file BERT-base encoder throughput on the CPU (random weights, real variable-length EWT documents,
//! packed without padding), with this machine's sgemm rate as the reference point; and the same for the base
//! sizes of the other Hugging Face families (RoBERTa / XLM-R / CamemBERT, ELECTRA, DeBERTa-v3), whose FLOP/s
//! divided by BM_sgemm_reference's is the fraction of the sgemm rate each encoder reaches.
//!
//! Documents: the first EWT dev documents (file order) of at most 512 tokens, taken while the total
//! stays within 2048 tokens, tokenized with the bert-base-uncased WordPiece tokenizer of the test
//! fixture. tools/peers/hf_peer.py uses the same rule, so its tokens/s compare directly.
//! The last argument of each benchmark is the policy's thread count. Time is wall-clock (UseRealTime);
//! the CPU column is the whole process's CPU time, which on a shared machine is the steadier figure
//! (tools/peers/hf_peer.py prints both too).
#include <nerpipe/hf.hpp>

#include <benchmark/benchmark.h>

#include "common/corpus.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {
using namespace nerpipe;

constexpr std::size_t max_batch_tokens = 2048;

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float scale) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}
std::vector<float> around(std::size_t n, float centre, std::uint64_t seed) {
  auto v = random_floats(n, seed, 0.05f);
  for (auto& x : v) x += centre;
  return v;
}

/// bert-base-uncased shapes (H 768, 12 layers, 12 heads, I 3072, V 30522, P 512) with a 9-label head.
hf_config bert_base_config() {
  hf_config c;
  c.arch = hf_arch::bert;
  c.model_type = "bert";
  c.vocab_size = 30522;
  c.hidden = 768;
  c.layers = 12;
  c.heads = 12;
  c.intermediate = 3072;
  c.max_position = 512;
  c.type_vocab_size = 2;
  c.id2label = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"};
  return c;
}

const hf_weights& bert_base_weights() {
  static const hf_weights w = [] {
    const hf_config c = bert_base_config();
    const std::size_t H = c.hidden, I = c.intermediate;
    hf_weights w;
    std::uint64_t seed = 1;
    w.word = random_floats(c.vocab_size * H, seed++, 0.02f);
    w.position = random_floats(c.max_position * H, seed++, 0.02f);
    w.token_type = random_floats(c.type_vocab_size * H, seed++, 0.02f);
    w.emb_ln_g = around(H, 1.0f, seed++);
    w.emb_ln_b = around(H, 0.0f, seed++);
    for (std::size_t l = 0; l < c.layers; ++l) {
      hf_layer_weights x;
      x.qkv_w = random_floats(3 * H * H, seed++, 0.02f);
      x.qkv_b = random_floats(3 * H, seed++, 0.02f);
      x.attn_out_w = random_floats(H * H, seed++, 0.02f);
      x.attn_out_b = random_floats(H, seed++, 0.02f);
      x.attn_ln_g = around(H, 1.0f, seed++);
      x.attn_ln_b = around(H, 0.0f, seed++);
      x.ffn_in_w = random_floats(I * H, seed++, 0.02f);
      x.ffn_in_b = random_floats(I, seed++, 0.02f);
      x.ffn_out_w = random_floats(H * I, seed++, 0.02f);
      x.ffn_out_b = random_floats(H, seed++, 0.02f);
      x.out_ln_g = around(H, 1.0f, seed++);
      x.out_ln_b = around(H, 0.0f, seed++);
      w.layers.push_back(std::move(x));
    }
    w.classifier_w = random_floats(c.num_labels() * H, seed++, 0.5f);
    w.classifier_b = random_floats(c.num_labels(), seed++, 0.5f);
    return w;
  }();
  return w;
}

/// The fixture's tokenizer (bert-base-uncased vocabulary) with bert-base weights.
const hf_model& bert_base_model() {
  static const hf_model m = [] {
    hf_model m = load_hf_model(std::string(NERPIPE_SOURCE_DIR) + "/tests/fixtures/hf/models/bert");
    m.config = bert_base_config();
    m.weights = std::shared_ptr<const hf_weights>(&bert_base_weights(), [](const hf_weights*) {});
    m.max_length = 512;
    return m;
  }();
  return m;
}

struct doc_batch {
  std::vector<std::string_view> texts;
  std::vector<encoding> encs;
  std::size_t tokens = 0;
  std::size_t longest = 0;
  double attention_flop = 0;  // 4 * len^2 * H per layer: QK^T and PV
};

const doc_batch& docs() {
  static const doc_batch b = [] {
    doc_batch b;
    const auto& tok = *bert_base_model().tokenizer;
    for (const auto& d : bench::ewt("dev")) {
      encoding e = tok.encode(d.text);
      if (e.size() > 512) continue;
      if (b.tokens + e.size() > max_batch_tokens) break;
      b.tokens += e.size();
      b.longest = std::max(b.longest, e.size());
      b.attention_flop += 4.0 * double(e.size()) * double(e.size()) * 768.0;
      b.texts.push_back(d.text);
      b.encs.push_back(std::move(e));
    }
    return b;
  }();
  return b;
}

/// Threads 1, 2 and, on a larger machine, every hardware thread.
void thread_args(benchmark::internal::Benchmark* b) {
  b->ArgName("threads");
  b->Arg(1)->Arg(2);
  const unsigned hw = std::thread::hardware_concurrency();
  if (hw > 2) b->Arg(static_cast<int>(hw));
}

void set_rate(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] = benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

/// The machine's reference: the policy's fp32 GEMM on the encoder's largest shape (FFN up: 2048 x 3072 x 768).
void BM_sgemm_reference(benchmark::State& state) {
  const std::size_t m = 2048, n = 3072, k = 768;
  const cpu_policy p(static_cast<unsigned>(state.range(0)));
  const auto a = random_floats(m * k, 11, 1.0f), w = random_floats(n * k, 12, 1.0f);
  std::vector<float> c(m * n);
  const gemm_args<float, float, float> g{{a.data(), m, k}, {w.data(), n, k}, {c.data(), m, n}, true, nullptr,
                                         epilogue::none};
  for (auto _ : state) {
    ops::gemm(p, g);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, "FLOP/s", 2.0 * double(m) * double(n) * double(k));
}
BENCHMARK(BM_sgemm_reference)->Apply(thread_args)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);

/// Embedding + 12 encoder layers + classifier over the packed batch (no tokenizer, no post-processing).
void BM_bert_base_forward(benchmark::State& state) {
  const cpu_policy p(static_cast<unsigned>(state.range(0)));
  const hf_config c = bert_base_config();
  const auto& w = bert_base_weights();
  bert_embedding<cpu_policy> emb(p, c, w);
  transformer_encoder<cpu_policy> enc(p, c, w);
  token_classifier<cpu_policy> head(p, c, w);
  const auto& b = docs();
  std::vector<std::int32_t> ids, types, pos, offs{0};
  for (const auto& e : b.encs) {
    ids.insert(ids.end(), e.ids.begin(), e.ids.end());
    for (std::size_t k = 0; k < e.size(); ++k) {
      pos.push_back(static_cast<std::int32_t>(k));
      types.push_back(0);
    }
    offs.push_back(static_cast<std::int32_t>(ids.size()));
  }
  const std::size_t T = b.tokens, H = c.hidden, L = c.num_labels();
  host_buffer<float> x(T * H), lg(T * L);
  for (auto _ : state) {
    emb.forward(p, ids.data(), types.data(), pos.data(), {x.data(), T, H});
    enc.forward(p, {x.data(), T, H}, offs.data(), offs.data(), b.encs.size(), b.longest);
    head.forward(p, matrix_view<const float>(x.data(), T, H), {lg.data(), T, L});
    benchmark::DoNotOptimize(lg.data());
    benchmark::ClobberMemory();
  }
  const double gemm_flop = 2.0 * double(T) * double(c.layers) *
                           double(4 * H * H + 2 * H * c.intermediate);
  set_rate(state, "tokens/s", double(T));
  set_rate(state, "FLOP/s", gemm_flop + double(c.layers) * b.attention_flop);
  state.counters["docs"] = double(b.encs.size());
  state.counters["tokens"] = double(T);
}
BENCHMARK(BM_bert_base_forward)->Apply(thread_args)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

// ---- the other families at base size ------------------------------------------------------------
// roberta-base / xlm-roberta-base / camembert-base, electra-base-discriminator and deberta-v3-base shapes
// (H 768, 12 layers, 12 heads, I 3072), vocabularies cut to bert's 30522 rows (the table's size does not change
// the speed, and the fixture tokenizer's ids index it). The same documents as BM_bert_base_forward.

hf_config family_config(hf_arch a) {
  hf_config c = bert_base_config();
  c.arch = a;
  switch (a) {
    case hf_arch::roberta:
      c.model_type = "roberta";
      c.max_position = 514;
      c.type_vocab_size = 1;
      c.pad_token_id = 1;
      c.position_ids = hf_position_ids::roberta;
      c.layer_norm_eps = 1e-5f;
      break;
    case hf_arch::electra:
      c.model_type = "electra";
      break;
    case hf_arch::deberta_v2:
      c.model_type = "deberta-v2";
      c.type_vocab_size = 0;
      c.position_embeddings = false;
      c.layer_norm_eps = 1e-7f;
      c.relative.enabled = true;
      c.relative.position_buckets = 256;
      c.relative.max_relative_positions = 512;
      c.relative.c2p = c.relative.p2c = true;
      c.relative.share_att_key = true;
      c.relative.norm_rel_ebd = true;
      break;
    default: break;
  }
  c.embedding_size = c.hidden;
  return c;
}

const hf_weights& family_weights(hf_arch a) {
  static std::map<hf_arch, hf_weights> cache;
  if (auto it = cache.find(a); it != cache.end()) return it->second;
  const hf_config c = family_config(a);
  hf_weights w = bert_base_weights();  // same layer shapes
  std::uint64_t seed = 1000;
  const std::size_t H = c.hidden;
  w.position = c.position_embeddings ? random_floats(c.max_position * H, seed++, 0.02f) : std::vector<float>{};
  w.token_type = random_floats(c.type_vocab_size * H, seed++, 0.02f);
  if (c.relative.enabled) {
    w.rel_embeddings = random_floats(2 * c.relative.span() * H, seed++, 0.02f);
    w.rel_ln_g = around(H, 1.0f, seed++);
    w.rel_ln_b = around(H, 0.0f, seed++);
  }
  return cache.emplace(a, std::move(w)).first->second;
}

/// Embedding + 12 layers + classifier of one family over the packed batch; FLOP/s counts the GEMMs, the
/// attention products and, for DeBERTa, the c2p / p2c products over the position rows each sequence reaches.
template <class Embedding, class Encoder>
void family_forward(benchmark::State& state, hf_arch arch) {
  const cpu_policy p(static_cast<unsigned>(state.range(0)));
  const hf_config c = family_config(arch);
  const auto& w = family_weights(arch);
  Embedding emb(p, c, w);
  Encoder enc(p, c, w);
  token_classifier<cpu_policy> head(p, c, w);
  const auto& b = docs();
  std::vector<std::int32_t> ids, types, pos, offs{0};
  double relative_flop = 0;  // per layer
  const auto index = c.relative.enabled ? deberta_relative_index(c.relative, c.max_position) : std::vector<std::int32_t>{};
  for (const auto& e : b.encs) {
    ids.insert(ids.end(), e.ids.begin(), e.ids.end());
    types.insert(types.end(), e.size(), 0);
    stages::hf_stage::append_positions(c, e.ids, pos);
    offs.push_back(static_cast<std::int32_t>(ids.size()));
    if (!index.empty()) {
      const std::size_t L = e.size(), mid = c.max_position - 1;
      const double span = double(index[mid + L - 1] - index[mid + 1 - L] + 1);
      relative_flop += 2.0 * 2.0 * double(L) * span * double(c.hidden);  // c2p and p2c
    }
  }
  const std::size_t T = b.tokens, H = c.hidden, L = c.num_labels();
  host_buffer<float> x(T * H), lg(T * L);
  for (auto _ : state) {
    emb.forward(p, ids.data(), types.data(), pos.data(), {x.data(), T, H});
    enc.forward(p, {x.data(), T, H}, offs.data(), offs.data(), b.encs.size(), b.longest);
    head.forward(p, matrix_view<const float>(x.data(), T, H), {lg.data(), T, L});
    benchmark::DoNotOptimize(lg.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, "tokens/s", double(T));
  set_rate(state, "FLOP/s", enc.gemm_flops(T) + double(c.layers) * (b.attention_flop + relative_flop));
  state.counters["docs"] = double(b.encs.size());
  state.counters["tokens"] = double(T);
}

void BM_roberta_base_forward(benchmark::State& state) {
  family_forward<bert_embedding<cpu_policy>, transformer_encoder<cpu_policy>>(state, hf_arch::roberta);
}
BENCHMARK(BM_roberta_base_forward)->Apply(thread_args)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
void BM_electra_base_forward(benchmark::State& state) {
  family_forward<projected_embedding<cpu_policy>, transformer_encoder<cpu_policy>>(state, hf_arch::electra);
}
BENCHMARK(BM_electra_base_forward)->Apply(thread_args)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
void BM_deberta_v3_base_forward(benchmark::State& state) {
  family_forward<projected_embedding<cpu_policy>, deberta_encoder<cpu_policy>>(state, hf_arch::deberta_v2);
}
BENCHMARK(BM_deberta_v3_base_forward)->Apply(thread_args)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

/// The whole annotator path: tokenize, pack, forward, post-process (aggregation simple).
void BM_bert_base_pipeline(benchmark::State& state) {
  const cpu_policy p(static_cast<unsigned>(state.range(0)));
  bert_ner<cpu_policy> ner(p, bert_base_model(), pipeline_options{});
  const auto& b = docs();
  for (auto _ : state) {
    auto out = ner(b.texts);
    benchmark::DoNotOptimize(out.data());
  }
  set_rate(state, "tokens/s", double(b.tokens));
  state.counters["docs"] = double(b.texts.size());
}
BENCHMARK(BM_bert_base_pipeline)->Apply(thread_args)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

}  // namespace
