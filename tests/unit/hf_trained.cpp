// SPDX-License-Identifier: Apache-2.0
//! @file Trained weights on the CPU: nerpipe's bert_ner<cpu_policy> against the transformers 4.57.6
//! token-classification pipeline (fp32, CPU) on EVERY EWT document (858, dev then train), for all five
//! aggregation strategies. The model and the pipeline's output are the committed fixture
//! tests/fixtures/hf/models/trained-tiny/ (tools/models/train_tiny_ner.py: 8,000-entry WordPiece, 4 layers,
//! hidden 128, 37 BIO labels, bf16 weights, model_max_length 256; tools/models/tiny_ner_reference.py
//! writes reference.jsonl).
//!
//! Documents that fit one 256-token window: every strategy with stride unset (nerpipe's default overlap
//! never applies to them). Longer documents: simple / first / average / max with stride 32 on both sides
//! (same windows, same merge of overlapping entities). The pipeline refuses stride with aggregation
//! "none" and truncates instead, which bert_ner never does; for those documents "none" is compared on the
//! first window alone, run through nerpipe's own parts exactly as bert_ner runs one window (the
//! tokenizer's first window, embedding + encoder + classifier, hf_postprocessor on that one chunk).
//!
//! Required: entities identical (label, index for "none", word, start, end) on 100% of documents, scores
//! within 1e-4. Measured: 858/858 documents identical for each strategy (none 12,141 entities, simple
//! 18,281, first 17,666, average 17,490, max 17,537), max |score diff| 2.6e-6 (the reference's scores are
//! exact to 5e-8). About 40 s of one core (release; five passes of the 4-layer model over ~300k tokens).
#include <catch2/catch.hpp>

#include <nerpipe/hf.hpp>
#include <nerpipe/embedding/bert_embedding.hpp>
#include <nerpipe/encoder/transformer_encoder.hpp>
#include <nerpipe/head/hf_postprocess.hpp>
#include <nerpipe/head/token_classifier.hpp>

#include <simdjson.h>

#include "support/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {
namespace fs = std::filesystem;
using namespace nerpipe;

const char* const strategy_names[] = {"none", "simple", "first", "average", "max"};
const aggregation strategies[] = {aggregation::none, aggregation::simple, aggregation::first, aggregation::average,
                                  aggregation::max};

struct reference_doc {
  std::string id;
  std::size_t tokens = 0, windows = 0;
  std::vector<hf_entity> entities[5];  // by strategy, in strategy_names order
};

struct reference {
  std::size_t max_length = 0, stride = 0;
  std::vector<reference_doc> docs;
};

/// The text of code points [start, end) of `text`, ASCII letters lowercased: the word the reference leaves out.
std::string lowered_piece(std::string_view text, std::size_t start, std::size_t end) {
  std::size_t cp = 0, b = 0, from = text.size();
  for (; b < text.size(); ++b) {
    if ((static_cast<unsigned char>(text[b]) & 0xC0u) == 0x80u) continue;
    if (cp == start) from = b;
    if (cp == end) break;
    ++cp;
  }
  std::string out(text.substr(std::min(from, b), b - std::min(from, b)));
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// One line's entities of one strategy: rows [label, (index,) gap, length, q(, word)] (none / grouped); with
/// `base` (simple's entities), also numbers: q >= 0 takes base's next entity with score 1 - q / 1e7, -n skips n.
std::vector<hf_entity> read_rows(simdjson::dom::array rows, bool grouped, const std::vector<std::string>& names,
                                 std::string_view text, const std::vector<hf_entity>* base = nullptr) {
  std::vector<hf_entity> out;
  std::size_t prev_end = 0, cursor = 0;
  for (const simdjson::dom::element r : rows) {
    if (!r.is_array()) {
      REQUIRE(base != nullptr);
      const std::int64_t v = std::int64_t(r);
      if (v < 0) {
        cursor += static_cast<std::size_t>(-v);
        continue;
      }
      REQUIRE(cursor < base->size());
      hf_entity e = (*base)[cursor++];
      e.score = static_cast<float>(1.0 - double(v) / 1e7);
      prev_end = e.end;
      out.push_back(std::move(e));
      continue;
    }
    const simdjson::dom::array row = r.get_array();
    hf_entity e;
    std::size_t k = 0;
    e.label = names.at(static_cast<std::size_t>(std::int64_t(row.at(k++))));
    e.grouped = grouped;
    if (!grouped) e.index = std::int64_t(row.at(k++));
    e.start = prev_end + static_cast<std::size_t>(std::int64_t(row.at(k++)));
    e.end = e.start + static_cast<std::size_t>(std::int64_t(row.at(k++)));
    e.score = static_cast<float>(1.0 - double(std::int64_t(row.at(k++))) / 1e7);
    e.word = k < row.size() ? std::string(std::string_view(row.at(k))) : lowered_piece(text, e.start, e.end);
    prev_end = e.end;
    out.push_back(std::move(e));
  }
  return out;
}

/// reference.jsonl (its format: tools/models/tiny_ner_reference.py) for the EWT documents `ewt`.
reference read_reference(const fs::path& file, const std::vector<test::text_doc>& ewt) {
  reference r;
  simdjson::dom::parser parser;
  std::ifstream in(file, std::ios::binary);
  std::string line;
  REQUIRE(std::getline(in, line));
  const simdjson::dom::element head = parser.parse(line);
  REQUIRE(std::string_view(head["format"]) == "nerpipe-hf-trained-reference/2");
  r.max_length = static_cast<std::size_t>(std::int64_t(head["model_max_length"]));
  r.stride = static_cast<std::size_t>(std::int64_t(head["stride"]));
  std::vector<std::string> labels, groups;
  for (const auto x : head["labels"]) labels.emplace_back(std::string_view(x));
  for (const auto x : head["entity_groups"]) groups.emplace_back(std::string_view(x));
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const simdjson::dom::element d = parser.parse(line);
    const std::size_t n = r.docs.size();
    REQUIRE(std::size_t(std::int64_t(d["doc"])) == n);
    REQUIRE(n < ewt.size());
    INFO("reference document " << n);
    reference_doc doc;
    doc.id = std::string_view(d["id"]);
    REQUIRE(doc.id == ewt[n].id);
    doc.tokens = static_cast<std::size_t>(std::int64_t(d["tokens"]));
    doc.windows = static_cast<std::size_t>(std::int64_t(d["windows"]));
    for (std::size_t s = 0; s < 5; ++s) {
      const simdjson::dom::element v = d[strategy_names[s]];
      if (v.is_string()) {  // "simple": exactly simple's list
        REQUIRE(std::string_view(v) == "simple");
        doc.entities[s] = doc.entities[1];
        continue;
      }
      doc.entities[s] = read_rows(v.get_array(), s != 0, s == 0 ? labels : groups, ewt[n].text,
                                  s >= 2 ? &doc.entities[1] : nullptr);
    }
    r.docs.push_back(std::move(doc));
  }
  return r;
}

/// Empty when `got` equals `want` (label, grouped, index, word, start, end; scores within 1e-4), else the
/// first difference. `max_diff` takes the largest score difference of equal spans.
std::string compare(const std::vector<hf_entity>& got, const std::vector<hf_entity>& want, float& max_diff) {
  std::ostringstream why;
  for (std::size_t k = 0; k < std::max(got.size(), want.size()); ++k) {
    if (k >= got.size() || k >= want.size()) {
      why << "entity " << k << ": " << (k < want.size() ? "missing" : "extra") << " (" << got.size() << " entities, want "
          << want.size() << ")";
      return why.str();
    }
    const hf_entity &g = got[k], &w = want[k];
    if (g.label != w.label || g.grouped != w.grouped || g.index != w.index || g.word != w.word || g.start != w.start ||
        g.end != w.end) {
      why << "entity " << k << ": got " << g.label << " #" << g.index << " '" << g.word << "' [" << g.start << ","
          << g.end << "), want " << w.label << " #" << w.index << " '" << w.word << "' [" << w.start << "," << w.end
          << ")";
      return why.str();
    }
    const float d = std::fabs(g.score - w.score);
    max_diff = std::max(max_diff, d);
    if (!(d <= 1e-4f)) {
      why << "entity " << k << " '" << w.word << "': score " << g.score << ", want " << w.score;
      return why.str();
    }
  }
  return {};
}

/// Aggregation "none" of the first window alone (the pipeline's truncation), through bert_ner's parts.
class first_window_none {
 public:
  first_window_none(const cpu_policy& p, const hf_model& m)
      : p_(p), m_(m), emb_(p, m.config, *m.weights), enc_(p, m.config, *m.weights), head_(p, m.config, *m.weights),
        post_(m.config.id2label, m.vocab.get()) {}

  std::vector<hf_entity> run(std::string_view text, std::size_t max_length, std::size_t stride) {
    const encoding e = m_.tokenizer->encode_windows(text, max_length, stride).at(0);
    const std::size_t T = e.size(), H = m_.config.hidden, L = m_.config.num_labels();
    std::vector<std::int32_t> pos(T), types(T, 0), offs{0, static_cast<std::int32_t>(T)};
    for (std::size_t k = 0; k < T; ++k) pos[k] = static_cast<std::int32_t>(k);
    if (e.type_ids.size() == T) types = e.type_ids;
    const auto d_ids = p_.upload(std::span<const std::int32_t>(e.ids));
    const auto d_types = p_.upload(std::span<const std::int32_t>(types));
    const auto d_pos = p_.upload(std::span<const std::int32_t>(pos));
    const auto d_offs = p_.upload(std::span<const std::int32_t>(offs));
    host_buffer<float> x(T * H), lg(T * L);
    emb_.forward(p_, d_ids.data(), d_types.data(), d_pos.data(), {x.data(), T, H});
    enc_.forward(p_, {x.data(), T, H}, d_offs.data(), offs.data(), 1, T);
    head_.forward(p_, matrix_view<const float>(x.data(), T, H), {lg.data(), T, L});
    std::vector<std::size_t> starts, ends;
    for (const auto& o : e.offsets) {
      starts.push_back(o.begin);
      ends.push_back(o.end);
    }
    const hf_chunk c{e.ids, starts, ends, e.special_tokens_mask, std::span<const float>(lg.data(), T * L)};
    const std::vector<std::string> ignore{"O"};
    return post_.run(text, std::span(&c, 1), aggregation::none, ignore);
  }

 private:
  cpu_policy p_;
  const hf_model& m_;
  bert_embedding<cpu_policy> emb_;
  transformer_encoder<cpu_policy> enc_;
  token_classifier<cpu_policy> head_;
  hf_postprocessor post_;
};

}  // namespace

TEST_CASE("hf trained model on cpu_policy: the transformers pipeline's entities on every EWT document",
          "[hf][fidelity][trained]") {
  const fs::path dir = test::fixtures_dir() / "hf" / "models" / "trained-tiny";
  const auto ewt = test::load_ewt();
  REQUIRE(ewt.size() == 858);
  const reference ref = read_reference(dir / "reference.jsonl", ewt);
  REQUIRE(ref.docs.size() == ewt.size());
  const hf_model model = load_hf_model(dir);
  REQUIRE(model.max_length == ref.max_length);

  // One window or several: the reference's split, checked against nerpipe's tokenizer.
  std::vector<std::size_t> fits, long_docs;
  for (std::size_t i = 0; i < ewt.size(); ++i) {
    INFO("document " << i << " " << ewt[i].id);
    const auto windows = model.tokenizer->encode_windows(ewt[i].text, ref.max_length, ref.stride);
    std::size_t text_tokens = 0;
    for (const auto m : windows[0].special_tokens_mask) text_tokens += m == 0;
    if (windows.size() == 1) REQUIRE(text_tokens == ref.docs[i].tokens);
    REQUIRE(windows.size() == ref.docs[i].windows);
    (windows.size() == 1 ? fits : long_docs).push_back(i);
  }
  REQUIRE(long_docs.size() > 100);  // stride is exercised

  const cpu_policy cpu{1};
  std::ostringstream table;
  table << "trained-tiny on " << ewt.size() << " EWT documents (" << long_docs.size()
        << " need several windows), nerpipe CPU fp32 vs transformers:\n";
  // The model runs once per window setting; the five strategies re-run only the pipeline's finish phase (the
  // post-processing) on the same logits, as the reference applies its strategies to one forward pass.
  auto documents_of = [&](const std::vector<std::size_t>& which) {
    std::vector<document> docs(which.size());
    for (std::size_t k = 0; k < which.size(); ++k) docs[k].text = ewt[which[k]].text;
    return docs;
  };
  std::vector<document> fit_docs = documents_of(fits), long_docs_in = documents_of(long_docs);
  pipeline_options one_window, strided;
  strided.stride = ref.stride;
  bert_ner<cpu_policy> ner_one(cpu, model, one_window), ner_strided(cpu, model, strided);
  REQUIRE(ner_strided.stage<stages::hf_tokenizer>().stride() == ref.stride);
  auto fit_batch = ner_one.make_batch(), long_batch = ner_strided.make_batch();
  ner_one.annotate(*fit_batch, fit_docs);
  ner_strided.annotate(*long_batch, long_docs_in);
  first_window_none first(cpu, model);
  float max_diff_all = 0;
  for (std::size_t s = 0; s < 5; ++s) {
    std::size_t same = 0, entities = 0;
    float max_diff = 0;
    auto check = [&](std::size_t i, const std::vector<hf_entity>& got, const char* how) {
      const auto& want = ref.docs[i].entities[s];
      entities += want.size();
      const std::string why = compare(got, want, max_diff);
      INFO(strategy_names[s] << ", document " << i << " " << ewt[i].id << " (" << how << "): " << why);
      CHECK(why.empty());
      same += why.empty();
    };
    ner_one.stage<stages::hf_decoder>().strategy(strategies[s]);
    ner_one.finish(*fit_batch);
    const auto& got_one = ner_one.stage<stages::hf_decoder>().raw();
    REQUIRE(got_one.size() == fits.size());
    for (std::size_t k = 0; k < fits.size(); ++k) check(fits[k], got_one[k], "one window");
    if (strategies[s] == aggregation::none) {
      for (const auto i : long_docs) check(i, first.run(ewt[i].text, ref.max_length, ref.stride), "first window");
    } else {
      ner_strided.stage<stages::hf_decoder>().strategy(strategies[s]);
      ner_strided.finish(*long_batch);
      const auto& got = ner_strided.stage<stages::hf_decoder>().raw();
      REQUIRE(got.size() == long_docs.size());
      for (std::size_t k = 0; k < long_docs.size(); ++k) check(long_docs[k], got[k], "stride windows");
    }
    table << "  " << strategy_names[s] << ": " << same << "/" << ewt.size() << " documents identical, " << entities
          << " entities, max |score diff| " << max_diff << "\n";
    max_diff_all = std::max(max_diff_all, max_diff);
    REQUIRE(same == ewt.size());
  }
  WARN(table.str());
  CHECK(max_diff_all <= 1e-4f);
}
