// SPDX-License-Identifier: Apache-2.0
// Long documents run window group by window group (bounded memory, issue #15): a document of a few hundred windows
// (EWT text, max_length 32) gives the same entities, byte offsets and scores in groups of 8 windows as all at once,
// for every aggregation strategy, with stride set and unset, in every HF family; the tokenizers' window streams give
// encode_windows' windows; the writer's record written in parts from packed entities is the one-shot record byte
// for byte; and a failure in a late group gives the document its ordinary error record and no partial entities.
#include <catch2/catch.hpp>

#include <nerpipe/hf.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/pipeline/executor.hpp>
#include <nerpipe/pipeline/model.hpp>

#include "support/data.hpp"
#include "support/hf_family_fixtures.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

namespace {
namespace fs = std::filesystem;
using namespace nerpipe;

const fs::path fixtures = test::fixtures_dir() / "hf" / "models";

/// EWT dev texts joined until `bytes`, with some non-ASCII words (code-point and byte offsets differ).
std::string long_text(std::size_t bytes) {
  static const auto docs = test::load_docs(test::ewt_file("dev"));
  std::string t;
  for (std::size_t i = 0; t.size() < bytes; ++i) {
    t += docs[i % docs.size()].text;
    t += i % 3 == 0 ? " Zürich — naïve café, Ḱóbe 東京. " : " ";
  }
  return t;
}

pipeline_options options_for(aggregation s, std::size_t stride, std::size_t group_windows) {
  pipeline_options o;
  o.max_length = 32;
  o.strategy = s;
  o.stride = stride;
  o.group_windows = group_windows;  // 8: a 30 KB text runs in groups; 1'000'000: all windows at once
  o.batch_tokens = 64;              // passes of 2 windows: groups of 8 (or 4) are whole passes, as in the CLI
  return o;
}

document annotate_one(const model& m, const pipeline_options& o, const std::string& text, bool* grouped = nullptr) {
  auto a = make_annotator(cpu_policy(1), m, o);
  std::vector<document> docs(1);
  docs[0].id = "\"long\"";
  docs[0].text = text;
  if (grouped) *grouped = a->runs_in_groups(docs[0]);
  a->annotate(docs);
  return std::move(docs[0]);
}

std::string record(const document& d, bool byte_offsets = true) {
  std::string out;
  format_record(d, {output_format::entities, byte_offsets}, out);
  return out;
}

void require_same_entities(const std::vector<entity>& got, const std::vector<entity>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("entity " << i << " want [" << want[i].start << "," << want[i].end << ") " << want[i].label << " got ["
                   << got[i].start << "," << got[i].end << ") " << got[i].label);
    REQUIRE(got[i].start == want[i].start);
    REQUIRE(got[i].end == want[i].end);
    REQUIRE(got[i].start_byte == want[i].start_byte);
    REQUIRE(got[i].end_byte == want[i].end_byte);
    REQUIRE(got[i].label == want[i].label);
    REQUIRE(got[i].text == want[i].text);
    REQUIRE(std::memcmp(&got[i].score, &want[i].score, sizeof(float)) == 0);
  }
}

const aggregation all_strategies[] = {aggregation::none, aggregation::simple, aggregation::first, aggregation::average,
                                      aggregation::max};

}  // namespace

TEST_CASE("a long document gives the same entities in window groups as all at once", "[hf][long]") {
  const auto m = load_model(fixtures / "bert");
  const std::string text = long_text(30000);
  for (const auto s : all_strategies) {
    for (const std::size_t stride : {std::size_t{0}, std::size_t{11}}) {
      INFO("strategy " << static_cast<int>(s) << ", stride " << stride);
      bool grouped = true, whole_grouped = true;
      const document whole = annotate_one(m, options_for(s, stride, 1000000), text, &whole_grouped);
      const document groups = annotate_one(m, options_for(s, stride, 8), text, &grouped);
      CHECK_FALSE(whole_grouped);
      CHECK(grouped);
      REQUIRE(whole.ok());
      REQUIRE(groups.ok());
      REQUIRE(whole.entities.size() > 100);
      require_same_entities(groups.entities, whole.entities);
      // Packed: the same entities, and the writer's record (written in parts) is the one-shot record.
      auto po = options_for(s, stride, 8);
      po.pack_entities = true;
      const document packed = annotate_one(m, po, text);
      REQUIRE(packed.entities.empty());
      REQUIRE(packed.packed.size() == whole.entities.size());
      auto unpacked = packed.packed.unpack();
      for (auto& e : unpacked) e.text = whole.entities[static_cast<std::size_t>(&e - unpacked.data())].text;  // not kept
      require_same_entities(unpacked, whole.entities);
      CHECK(record(packed) == record(whole));
      CHECK(record(packed, false) == record(whole, false));
    }
  }
}

TEST_CASE("every HF family gives the same entities in window groups", "[hf][long]") {
  const std::string text = long_text(12000);
  for (const auto& family : test::hf_families()) {
    const auto m = load_model(test::hf_family_dir(family));
    for (const auto s : {aggregation::simple, aggregation::first}) {
      for (const std::size_t stride : {std::size_t{0}, std::size_t{9}}) {
        INFO(family << ", strategy " << static_cast<int>(s) << ", stride " << stride);
        bool grouped = false;
        const document whole = annotate_one(m, options_for(s, stride, 1000000), text);
        const document groups = annotate_one(m, options_for(s, stride, 4), text, &grouped);
        CHECK(grouped);
        REQUIRE(whole.ok());
        REQUIRE(groups.ok());
        require_same_entities(groups.entities, whole.entities);
      }
    }
  }
}

TEST_CASE("window streams give encode_windows' windows, the text tokenized in pieces", "[hf][long][tokenizer]") {
  const std::string text = long_text(20000) + "  trailing\tspaces\n ";
  std::vector<std::string> dirs{"bert"};
  for (const auto& f : test::hf_families()) dirs.push_back(test::hf_family_dir(f).string());
  for (const auto& dir : dirs) {
    const auto m = load_model(dir == "bert" ? fixtures / "bert" : fs::path(dir));
    const any_tokenizer& tok = *m.hf->tokenizer;
    for (const std::size_t stride : {std::size_t{0}, std::size_t{7}}) {
      INFO(dir << ", stride " << stride);
      const auto want = tok.encode_windows(text, 32, stride);
      REQUIRE(want.size() > 100);
      window_stream ws;
      tok.start_windows(text, 32, stride, ws, 300);  // pieces of about 300 bytes
      encoding e;
      std::size_t i = 0;
      while (tok.next_window(ws, e)) {
        REQUIRE(i < want.size());
        INFO("window " << i);
        CHECK(e.ids == want[i].ids);
        CHECK(e.type_ids == want[i].type_ids);
        CHECK(e.offsets == want[i].offsets);
        CHECK(e.byte_offsets == want[i].byte_offsets);
        CHECK(e.word_ids == want[i].word_ids);
        CHECK(e.special_tokens_mask == want[i].special_tokens_mask);
        ++i;
      }
      CHECK(i == want.size());
    }
  }
}

// Named, not anonymous: the pipeline type that holds the stage would otherwise warn (-Wsubobject-linkage).
namespace long_docs {

/// A rule stage that fails the group holding code point `at` and later ones (a fault deep in a long document).
template <class Policy>
struct fail_after {
  static constexpr stage_kind kind = stage_kind::rule;
  static constexpr field_set reads = field::entities;
  static constexpr field_set writes = field::entities;
  static constexpr std::string_view name = "fail_after";
  static inline std::size_t at = 0;
  template <class Model>
  fail_after(const Policy&, const Model&, const pipeline_options&) {}
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }
  void run(batch<Policy>& b) {
    for (std::size_t i = 0; i < b.piece_begin.size(); ++i)
      if (b.group.active && static_cast<std::size_t>(b.piece_begin[i]) >= at)
        NERPIPE_THROW(model_error(errc::model_shape_mismatch, "injected fault at code point " + std::to_string(at)));
  }
};

template <class P>
using failing_ner = pipeline<P, stages::hf_tokenizer, stages::bert_embedding, stages::transformer_encoder,
                             stages::token_classifier, stages::hf_decoder, fail_after>;

}  // namespace long_docs

namespace {

using long_docs::fail_after;
using long_docs::failing_ner;

struct replay {
  const std::vector<document>* docs;
  std::size_t i = 0;
  bool next(document& d) {
    if (i >= docs->size()) return false;
    d = (*docs)[i++];
    d.index = i - 1;
    d.line = i;
    return true;
  }
};

}  // namespace

TEST_CASE("a failure in a late window group gives the document its error record, nothing partial", "[hf][long]") {
  const auto m = load_model(fixtures / "bert");
  const std::string text = long_text(30000);
  fail_after<cpu_policy>::at = 25000;  // beyond the first few dozen groups
  auto o = options_for(aggregation::simple, 0, 8);
  o.pack_entities = true;
  std::vector<document> input(3);
  input[0].id = "\"a\"", input[0].text = "Barack Obama visited Paris.";
  input[1].id = "\"long\"", input[1].text = text;
  input[2].id = "\"b\"", input[2].text = "Angela Merkel met him in Berlin.";
  for (const std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
    std::vector<cpu_policy> replicas(workers, cpu_policy(1));
    executor_options eo;
    eo.window_docs = 4;
    round_robin<cpu_policy> rr(std::move(replicas), eo);
    replay src{&input};
    std::vector<std::string> lines;
    const auto stats = rr.run(
        [&](cpu_policy& p, std::size_t) {
          return std::make_unique<pipeline_annotator<failing_ner<cpu_policy>>>(p, m.hf, o);
        },
        src, [&](document& d) {
          CHECK(d.packed.empty());  // no partial entities
          lines.push_back(record(d));
        });
    REQUIRE(lines.size() == 3);
    CHECK(lines[1] ==
          "{\"id\": \"long\", \"line\": 2, \"error\": \"failed: [nerpipe.model_error.3] injected fault at code point 25000\"}\n");
    CHECK(lines[0].find("\"entities\": [") != std::string::npos);
    CHECK(lines[2].find("\"entities\": [") != std::string::npos);
    CHECK(stats.errors == 1);
  }
  // The same pipeline without the fault reaching it: the document comes through.
  fail_after<cpu_policy>::at = 1u << 30;
  pipeline_annotator<failing_ner<cpu_policy>> a(cpu_policy(1), m.hf, o);
  std::vector<document> one(1);
  one[0].text = text;
  a.annotate(one);
  CHECK(one[0].ok());
  CHECK(one[0].packed.size() > 100);
}

TEST_CASE("the writer writes a packed record in parts, equal to the one-shot record", "[io][long]") {
  document d;
  d.id = "\"x\"";
  d.text = "Zürich and Paris and New York, naïve café";
  std::vector<entity> es;
  for (std::size_t i = 0; i < 10000; ++i) {
    entity e;
    e.start = i % 40;
    e.end = e.start + 1 + i % 3;
    e.start_byte = e.start + (e.start > 1 ? 1 : 0);
    e.end_byte = std::min<std::size_t>(e.end + 1, d.text.size() + (i % 7 == 0 ? 5 : 0));  // some spans unusable
    e.label = i % 2 ? "LOC" : "PER";
    e.text = "w" + std::to_string(i);
    e.score = 1.0f / static_cast<float>(i + 1);
    es.push_back(e);
  }
  document whole = d;
  whole.entities = es;
  document packed = d;
  for (const auto& e : es) packed.packed.push_back(e, d.text.size());
  const auto path = fs::temp_directory_path() / ("nerpipe-parts-" + std::to_string(::getpid()) + ".jsonl");
  for (const bool bytes : {false, true}) {
    {
      jsonl_writer w(path, {output_format::entities, bytes}, 4096);  // small buffer: many flushes inside the record
      w.write(packed);
      w.write(whole);
    }
    std::ifstream in(path, std::ios::binary);
    const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string one = record(whole, bytes);
    CHECK(got == one + one);
    CHECK(record(packed, bytes) == one);
  }
  fs::remove(path);
}
