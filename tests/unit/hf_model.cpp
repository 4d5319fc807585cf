// SPDX-License-Identifier: Apache-2.0
// Hugging Face BERT / DistilBERT token classifiers against transformers 4.57.6 (fixtures from
// tools/fixtures/hf_model_fixtures.py): fp32 logits, the pipeline's post-processing for all five
// aggregation strategies with and without stride windows, and the errors of broken model folders.
#include <catch2/catch.hpp>

#include <nerpipe/hf.hpp>
#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/embedding/bert_embedding.hpp>
#include <nerpipe/encoder/transformer_encoder.hpp>
#include <nerpipe/head/hf_postprocess.hpp>
#include <nerpipe/head/token_classifier.hpp>
#include <nerpipe/model/hf/config.hpp>
#include <nerpipe/model/hf/weights.hpp>
#include <nerpipe/model/safetensors.hpp>

#include <simdjson.h>

#include "support/hf_entities.hpp"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {
namespace fs = std::filesystem;
using namespace nerpipe;

const fs::path fixtures = fs::path(NERPIPE_SOURCE_DIR) / "tests/fixtures/hf/models";

struct ref_chunk {
  std::vector<std::int32_t> ids;
  std::vector<std::size_t> starts, ends;
  std::vector<std::uint8_t> special;
  std::vector<float> logits;
  std::vector<std::int32_t> real_ids;  // without the trailing [PAD]s the reference batches windows with
  [[nodiscard]] hf_chunk view() const { return {ids, starts, ends, special, logits}; }
};

struct ref_doc {
  std::string id, text;
  std::vector<ref_chunk> chunks;
  std::map<std::string, std::vector<hf_entity>> entities;  // by strategy name
};

struct reference {
  std::vector<ref_doc> docs, stride_docs;
  std::size_t stride_max_length = 0, stride = 0;
};

ref_chunk read_chunk(simdjson::dom::element d) {
  ref_chunk c;
  for (auto v : d["ids"]) c.ids.push_back(static_cast<std::int32_t>(std::int64_t(v)));
  for (auto o : d["offsets"]) {
    c.starts.push_back(static_cast<std::size_t>(std::int64_t(o.at(0))));
    c.ends.push_back(static_cast<std::size_t>(std::int64_t(o.at(1))));
  }
  for (auto v : d["special"]) c.special.push_back(static_cast<std::uint8_t>(std::int64_t(v)));
  for (auto row : d["logits"])
    for (auto v : row) c.logits.push_back(static_cast<float>(double(v)));
  std::size_t n = c.ids.size();
  while (n > 0 && c.special[n - 1] && c.ids[n - 1] == 0) --n;
  c.real_ids.assign(c.ids.begin(), c.ids.begin() + static_cast<std::ptrdiff_t>(n));
  return c;
}

std::map<std::string, std::vector<hf_entity>> read_entities(simdjson::dom::object ents) {
  std::map<std::string, std::vector<hf_entity>> out;
  for (auto f : ents) {
    auto& list = out[std::string(f.key)];
    for (auto e : f.value) list.push_back(test::hf_entity_from_json(e));
  }
  return out;
}

const reference& load_reference(const std::string& kind) {
  static std::map<std::string, reference> cache;
  auto it = cache.find(kind);
  if (it != cache.end()) return it->second;
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.load((fixtures / "reference" / (kind + ".json")).string());
  reference r;
  for (auto d : root["docs"]) {
    ref_doc doc;
    doc.id = std::string_view(d["id"]);
    doc.text = std::string_view(d["text"]);
    doc.chunks.push_back(read_chunk(d));
    doc.entities = read_entities(d["entities"]);
    r.docs.push_back(std::move(doc));
  }
  r.stride_max_length = static_cast<std::size_t>(std::int64_t(root["stride"]["max_length"]));
  r.stride = static_cast<std::size_t>(std::int64_t(root["stride"]["stride"]));
  for (auto d : root["stride"]["docs"]) {
    ref_doc doc;
    doc.id = std::string_view(d["id"]);
    doc.text = std::string_view(d["text"]);
    for (auto c : d["chunks"]) doc.chunks.push_back(read_chunk(c));
    doc.entities = read_entities(d["entities"]);
    r.stride_docs.push_back(std::move(doc));
  }
  return cache.emplace(kind, std::move(r)).first->second;
}

aggregation strategy_of(const std::string& s) {
  if (s == "none") return aggregation::none;
  if (s == "simple") return aggregation::simple;
  if (s == "first") return aggregation::first;
  if (s == "average") return aggregation::average;
  return aggregation::max;
}

/// Same entities (label, key kind, index, word, offsets) in the same order; scores within 1e-4.
void require_same(const std::vector<hf_entity>& got, const std::vector<hf_entity>& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("entity " << i << ": want " << want[i].label << " '" << want[i].word << "' [" << want[i].start << ","
                   << want[i].end << ") got " << got[i].label << " '" << got[i].word << "' [" << got[i].start << ","
                   << got[i].end << ")");
    REQUIRE(got[i].label == want[i].label);
    REQUIRE(got[i].grouped == want[i].grouped);
    REQUIRE(got[i].word == want[i].word);
    REQUIRE(got[i].start == want[i].start);
    REQUIRE(got[i].end == want[i].end);
    if (!want[i].grouped) REQUIRE(got[i].index == want[i].index);
    REQUIRE(std::fabs(got[i].score - want[i].score) <= 1e-4f);
  }
}

const std::vector<std::string> strategies{"none", "simple", "first", "average", "max"};
const std::vector<std::string> ignore_default{"O"};

/// The model of one fixture folder, on the CPU.
struct cpu_model {
  hf_config cfg;
  hf_weights w;
  cpu_policy p{1};
  bert_embedding<cpu_policy> emb;
  transformer_encoder<cpu_policy> enc;
  token_classifier<cpu_policy> head;

  explicit cpu_model(const fs::path& dir)
      : cfg(read_hf_config(dir)),
        w(load_hf_weights(safetensors_file(dir / "model.safetensors"), cfg)),
        emb(p, cfg, w),
        enc(p, cfg, w),
        head(p, cfg, w) {}

  /// Logits of several sequences packed into one batch (no padding).
  std::vector<float> logits(const std::vector<const std::vector<std::int32_t>*>& seqs) {
    std::vector<std::int32_t> ids, pos, types, offs{0};
    std::size_t longest = 0;
    for (const auto* s : seqs) {
      for (std::size_t i = 0; i < s->size(); ++i) {
        ids.push_back((*s)[i]);
        pos.push_back(static_cast<std::int32_t>(i));
        types.push_back(0);
      }
      offs.push_back(static_cast<std::int32_t>(ids.size()));
      longest = std::max(longest, s->size());
    }
    const std::size_t T = ids.size(), H = cfg.hidden, L = cfg.num_labels();
    auto bid = p.upload(std::span<const std::int32_t>(ids));
    auto bpos = p.upload(std::span<const std::int32_t>(pos));
    auto btype = p.upload(std::span<const std::int32_t>(types));
    auto boffs = p.upload(std::span<const std::int32_t>(offs));
    host_buffer<float> x(T * H), lg(T * L);
    emb.forward(p, bid.data(), btype.data(), bpos.data(), {x.data(), T, H});
    enc.forward(p, {x.data(), T, H}, boffs.data(), offs.data(), seqs.size(), longest);
    head.forward(p, matrix_view<const float>(x.data(), T, H), {lg.data(), T, L});
    return {lg.data(), lg.data() + T * L};
  }
};

}  // namespace

TEST_CASE("hf post-processing reproduces the pipeline from reference logits", "[hf][fidelity]") {
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto& ref = load_reference(kind);
    const auto cfg = read_hf_config(fixtures / kind);
    const auto vocab = read_hf_vocab_info(fixtures / kind);
    REQUIRE(vocab.continuing_subword_prefix == "##");
    REQUIRE(vocab.unk_id == 100);
    const hf_postprocessor post(cfg.id2label, &vocab);
    std::size_t checked = 0;
    for (const auto& d : ref.docs)
      for (const auto& s : strategies) {
        const hf_chunk c = d.chunks[0].view();
        require_same(post.run(d.text, std::span(&c, 1), strategy_of(s), ignore_default), d.entities.at(s),
                     kind + " " + d.id + " " + s);
        ++checked;
      }
    for (const auto& d : ref.stride_docs) {
      std::vector<hf_chunk> cs;
      for (const auto& c : d.chunks) cs.push_back(c.view());
      REQUIRE(cs.size() > 1);
      for (const auto& s : strategies) {
        if (s == "none") continue;  // the reference refuses stride with aggregation none
        require_same(post.run(d.text, cs, strategy_of(s), ignore_default), d.entities.at(s),
                     kind + " stride " + d.id + " " + s);
        ++checked;
      }
    }
    CHECK(checked > 50);
  }
}

TEST_CASE("hf encoder logits match PyTorch fp32 within 1e-4 (packed batch)", "[hf][fidelity]") {
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto& ref = load_reference(kind);
    cpu_model m(fixtures / kind);
    const std::size_t L = m.cfg.num_labels();
    // Whole reference set in one packed batch, plus the stride windows in a second one.
    std::vector<const std::vector<std::int32_t>*> seqs;
    std::vector<const std::vector<float>*> want;
    for (const auto& d : ref.docs) {
      seqs.push_back(&d.chunks[0].real_ids);
      want.push_back(&d.chunks[0].logits);
    }
    for (const auto& d : ref.stride_docs)
      for (const auto& c : d.chunks) {
        seqs.push_back(&c.real_ids);
        want.push_back(&c.logits);
      }
    const auto got = m.logits(seqs);
    std::size_t at = 0;
    double max_diff = 0;
    std::size_t tokens = 0;
    for (std::size_t s = 0; s < seqs.size(); ++s) {
      // Padding of the stride windows is masked in the reference (and ignored by its
      // post-processing); packed execution has none, so real positions are compared.
      const std::size_t n = seqs[s]->size();
      for (std::size_t i = 0; i < n * L; ++i) max_diff = std::max(max_diff, double(std::fabs(got[at + i] - (*want[s])[i])));
      at += n * L;
      tokens += n;
    }
    INFO(kind << ": " << tokens << " tokens, max |logit diff| " << max_diff);
    CHECK(max_diff < 1e-4);
  }
}

TEST_CASE("hf entities from nerpipe's own logits equal the pipeline's", "[hf][fidelity]") {
  // Reference token ids and offsets, nerpipe logits: isolates the model from the tokenizer.
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto& ref = load_reference(kind);
    cpu_model m(fixtures / kind);
    const auto vocab = read_hf_vocab_info(fixtures / kind);
    const hf_postprocessor post(m.cfg.id2label, &vocab);
    const std::size_t L = m.cfg.num_labels();
    auto with_logits = [&](const ref_chunk& c) {
      ref_chunk out = c;
      auto lg = m.logits({&c.real_ids});
      std::fill(out.logits.begin(), out.logits.end(), 0.0f);  // padding rows: special, never read
      std::copy(lg.begin(), lg.end(), out.logits.begin());
      REQUIRE(lg.size() == c.real_ids.size() * L);
      return out;
    };
    for (const auto& d : ref.docs) {
      const ref_chunk c = with_logits(d.chunks[0]);
      const hf_chunk v = c.view();
      for (const auto& s : strategies)
        require_same(post.run(d.text, std::span(&v, 1), strategy_of(s), ignore_default), d.entities.at(s),
                     kind + " " + d.id + " " + s);
    }
    for (const auto& d : ref.stride_docs) {
      std::vector<ref_chunk> cs;
      for (const auto& c : d.chunks) cs.push_back(with_logits(c));
      std::vector<hf_chunk> vs;
      for (const auto& c : cs) vs.push_back(c.view());
      for (const auto& s : strategies)
        if (s != "none")
          require_same(post.run(d.text, vs, strategy_of(s), ignore_default), d.entities.at(s),
                       kind + " stride " + d.id + " " + s);
    }
  }
}

TEST_CASE("hf bert_ner end to end (tokenizer + model + post-processing) equals the pipeline", "[hf][fidelity]") {
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto& ref = load_reference(kind);
    const hf_model model = load_hf_model(fixtures / kind);
    REQUIRE(model.max_length == 512);
    std::vector<std::string_view> texts;
    for (const auto& d : ref.docs) texts.push_back(d.text);
    for (const auto& s : strategies) {
      pipeline_options o;
      o.strategy = strategy_of(s);
      o.batch_tokens = 700;  // several packed forward passes per batch, so packing boundaries are exercised too
      bert_ner<cpu_policy> ner(cpu_policy{2}, model, o);
      const auto got = hf_entities(ner, texts);
      for (std::size_t i = 0; i < texts.size(); ++i)
        require_same(got[i], ref.docs[i].entities.at(s), kind + " " + ref.docs[i].id + " " + s);
    }
    std::vector<std::string_view> long_texts;
    for (const auto& d : ref.stride_docs) long_texts.push_back(d.text);
    for (const auto& s : strategies) {
      if (s == "none") continue;
      pipeline_options o;
      o.strategy = strategy_of(s);
      o.stride = ref.stride;
      o.max_length = ref.stride_max_length;
      bert_ner<cpu_policy> ner(cpu_policy{1}, model, o);
      const auto got = hf_entities(ner, long_texts);
      for (std::size_t i = 0; i < long_texts.size(); ++i)
        require_same(got[i], ref.stride_docs[i].entities.at(s), kind + " stride " + ref.stride_docs[i].id + " " + s);
    }
  }
}

TEST_CASE("hf bert_ner covers long documents when stride is unset", "[hf]") {
  const hf_model model = load_hf_model(fixtures / "bert");
  const auto& ref = load_reference("bert");
  pipeline_options o;  // stride 0: nerpipe's default overlap, never truncation
  o.strategy = aggregation::none;
  o.ignore_labels.clear();  // every token is an entity: coverage is directly visible
  o.max_length = 64;
  bert_ner<cpu_policy> ner(cpu_policy{1}, model, o);
  CHECK(ner.stage<stages::hf_tokenizer>().stride() == (64 - 2) / 4);
  for (const auto& d : ref.stride_docs) {
    const std::string_view t = d.text;
    const auto got = hf_entities(ner, std::span(&t, 1))[0];
    const encoding whole = model.tokenizer->encode(d.text);
    REQUIRE(whole.size() > 64);
    // One entity per model token of the whole text, in order, each token exactly once.
    std::vector<std::pair<std::size_t, std::size_t>> want;
    for (std::size_t k = 0; k < whole.size(); ++k)
      if (!whole.special_tokens_mask[k]) want.emplace_back(whole.offsets[k].begin, whole.offsets[k].end);
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
      REQUIRE(got[k].start == want[k].first);
      REQUIRE(got[k].end == want[k].second);
    }
  }
}

TEST_CASE("hf annotator fills documents: labels, code-point and byte offsets, errors per record", "[hf]") {
  const hf_model model = load_hf_model(fixtures / "bert");
  const auto& ref = load_reference("bert");
  annotate_options o;
  o.want_tokens = true;
  auto a = make_hf_annotator(cpu_policy{1}, model, o);
  std::vector<document> docs;
  for (const auto& d : ref.docs) {
    document x;
    x.text = d.text;
    docs.push_back(std::move(x));
  }
  docs.push_back(document{});
  docs.back().text = "Zürich, Genève – naïve café 東京 🙂 Ærøskøbing.";
  docs.push_back(document{});
  docs.back().status = record_status::invalid_json;  // not ok: left alone
  a->annotate(docs);
  CHECK(a->last_token_count() > 0);
  for (std::size_t i = 0; i < ref.docs.size(); ++i) {
    const auto& want = ref.docs[i].entities.at("simple");
    REQUIRE(docs[i].ok());
    REQUIRE(docs[i].entities.size() == want.size());
    for (std::size_t k = 0; k < want.size(); ++k) {
      CHECK(docs[i].entities[k].label == want[k].label);
      CHECK(docs[i].entities[k].text == want[k].word);
      CHECK(docs[i].entities[k].start == want[k].start);
    }
    CHECK(!docs[i].tokens.empty());
  }
  const document& u = docs[ref.docs.size()];
  REQUIRE(u.ok());
  for (const auto& e : u.entities) {
    // Byte offsets cut the text at the same characters as the code-point offsets.
    const std::string piece = u.text.substr(e.start_byte, e.end_byte - e.start_byte);
    std::size_t cps = 0;
    for (unsigned char ch : piece) cps += (ch & 0xC0) != 0x80;
    CHECK(cps == e.end - e.start);
  }
  CHECK(docs.back().status == record_status::invalid_json);
  CHECK(docs.back().entities.empty());
}

// ---- broken model directories --------------------------------------------------------------

namespace {
struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& tag) {
    std::random_device rd;
    path = fs::temp_directory_path() / ("nerpipe_hf_" + tag + "_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

fs::path copy_model(const temp_dir& t, const std::string& kind) {
  const fs::path dst = t.path / kind;
  fs::copy(fixtures / kind, dst, fs::copy_options::recursive);
  return dst;
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
void write_all(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

struct st_tensor {
  std::string name, dtype;
  std::vector<std::size_t> shape;
  std::string bytes;
};

/// Writes a safetensors file the way the reference writer does (header padded to 8 with spaces).
void write_safetensors(const fs::path& p, const std::vector<st_tensor>& ts) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::size_t off = 0;
  for (const auto& t : ts) {
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + t.bytes.size()) + "]}";
    off += t.bytes.size();
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  out += header;
  for (const auto& t : ts) out += t.bytes;
  write_all(p, out);
}

std::vector<st_tensor> read_tensors(const fs::path& p) {
  const safetensors_file f(p);
  std::vector<st_tensor> ts;
  for (const auto& e : f.entries()) {
    const auto b = f.bytes(e);
    ts.push_back({e.name, e.dtype, e.shape, std::string(reinterpret_cast<const char*>(b.data()), b.size())});
  }
  return ts;
}

/// Runs load_hf_model(dir) and returns the model_error it must throw.
std::pair<errc, std::string> load_error(const fs::path& dir) {
  try {
    (void)load_hf_model(dir);
  } catch (const model_error& e) {
    return {e.code(), e.what()};
  }
  FAIL("load_hf_model(" << dir.string() << ") did not throw");
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("safetensors: a rewritten copy of the fixture reads back identically (F16, BF16, F32, misaligned)", "[hf]") {
  temp_dir t("st");
  auto ts = read_tensors(fixtures / "bert/model.safetensors");
  const safetensors_file orig(fixtures / "bert/model.safetensors");
  REQUIRE(orig.metadata().at("format") == "pt");
  // Store one tensor as F32 and one as BF16 (exact for these values) and put an odd-sized U8
  // tensor first, so that every later tensor starts at an odd file offset (misaligned).
  std::vector<st_tensor> out;
  out.push_back({"odd.bytes", "U8", {3}, std::string("\x01\x02\x03", 3)});
  for (auto& x : ts) {
    if (x.name == "classifier.bias") {
      const auto v = orig.read_float(x.name);
      x.dtype = "F32";
      x.bytes.assign(reinterpret_cast<const char*>(v.data()), v.size() * 4);
    }
    out.push_back(x);
  }
  const fs::path p = t.path / "model.safetensors";
  write_safetensors(p, out);
  const safetensors_file f(p);
  for (const auto& e : orig.entries()) {
    if (e.dtype != "F16" && e.dtype != "F32") continue;
    CHECK(f.read_float(e.name) == orig.read_float(e.name));
  }
  CHECK(f.find("odd.bytes")->dtype == "U8");
  CHECK_THROWS_AS(f.read_float("odd.bytes"), model_error);
  // BF16 conversion: the DistilBERT fixture is BF16.
  const safetensors_file d(fixtures / "distilbert/model.safetensors");
  CHECK(d.at("classifier.weight").dtype == "BF16");
  const auto w = d.read_float("classifier.weight");
  CHECK(std::all_of(w.begin(), w.end(), [](float v) { return std::isfinite(v); }));
}

TEST_CASE("hf: each broken model directory gives its own clear error", "[hf]") {
  temp_dir t("bad");

  SECTION("missing model.safetensors") {
    const auto dir = copy_model(t, "bert");
    fs::remove(dir / "model.safetensors");
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_file_missing);
    CHECK(contains(msg, "[nerpipe.model_error.1]"));
    CHECK(contains(msg, "model.safetensors: file is missing"));
  }
  SECTION("missing config.json") {
    const auto dir = copy_model(t, "bert");
    fs::remove(dir / "config.json");
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_file_missing);
    CHECK(contains(msg, "config.json: file is missing"));
  }
  SECTION("truncated safetensors") {
    const auto dir = copy_model(t, "bert");
    const std::string s = read_all(dir / "model.safetensors");
    write_all(dir / "model.safetensors", s.substr(0, s.size() - 1000));
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_file_malformed);
    CHECK(contains(msg, "model.safetensors: tensors cover"));
    CHECK(contains(msg, "truncated"));
  }
  SECTION("safetensors shorter than its header") {
    const auto dir = copy_model(t, "bert");
    write_all(dir / "model.safetensors", read_all(dir / "model.safetensors").substr(0, 100));
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_file_malformed);
    CHECK(contains(msg, "runs past the end of the file"));
  }
  SECTION("malformed header JSON") {
    const auto dir = copy_model(t, "bert");
    std::string s = read_all(dir / "model.safetensors");
    s[8 + 1] = '!';  // {"... becomes {!...: not JSON
    write_all(dir / "model.safetensors", s);
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_file_malformed);
    CHECK(contains(msg, "header is not valid JSON"));
  }
  SECTION("overlapping data offsets") {
    const auto dir = copy_model(t, "bert");
    auto ts = read_tensors(dir / "model.safetensors");
    ts.push_back({"extra", "F32", {0}, ""});
    write_safetensors(dir / "model.safetensors", ts);
    std::string s = read_all(dir / "model.safetensors");
    // Make the last real tensor claim 2 bytes less: a hole appears after it.
    const std::string key = "\"extra\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[";
    const auto at = s.find(key);
    REQUIRE(at != std::string::npos);
    const auto num = at + key.size();
    const auto comma = s.find(',', num);
    const std::size_t begin = std::stoul(s.substr(num, comma - num));
    const std::string repl = std::to_string(begin - 2) + "," + std::to_string(begin - 2);
    s.replace(num, s.find(']', num) - num, repl + std::string(s.find(']', num) - num - repl.size(), ' '));
    write_all(dir / "model.safetensors", s);
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_file_malformed);
    CHECK(contains(msg, "extra"));
  }
  SECTION("missing tensor") {
    const auto dir = copy_model(t, "bert");
    auto ts = read_tensors(dir / "model.safetensors");
    std::erase_if(ts, [](const st_tensor& x) { return x.name == "bert.encoder.layer.1.output.dense.weight"; });
    write_safetensors(dir / "model.safetensors", ts);
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_tensor_missing);
    CHECK(contains(msg, "tensor 'bert.encoder.layer.1.output.dense.weight' is missing"));
  }
  SECTION("wrong shape") {
    const auto dir = copy_model(t, "distilbert");
    auto ts = read_tensors(dir / "model.safetensors");
    for (auto& x : ts)
      if (x.name == "distilbert.transformer.layer.0.ffn.lin1.weight") {
        x.shape = {32, 64};  // transposed: [in, out] instead of nn.Linear's [out, in]
      }
    write_safetensors(dir / "model.safetensors", ts);
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_shape_mismatch);
    CHECK(contains(msg, "tensor 'distilbert.transformer.layer.0.ffn.lin1.weight' has shape [32,64]; expected [64,32]"));
  }
  SECTION("wrong dtype") {
    const auto dir = copy_model(t, "bert");
    auto ts = read_tensors(dir / "model.safetensors");
    for (auto& x : ts)
      if (x.name == "bert.embeddings.LayerNorm.weight") x.dtype = "I16";
    write_safetensors(dir / "model.safetensors", ts);
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_dtype_unsupported);
    CHECK(contains(msg, "tensor 'bert.embeddings.LayerNorm.weight' has dtype I16; expected F32, F16 or BF16"));
  }
  SECTION("unknown model_type") {
    const auto dir = copy_model(t, "bert");
    std::string c = read_all(dir / "config.json");
    c.replace(c.find("\"model_type\": \"bert\""), 20, "\"model_type\": \"gpt2\"");
    write_all(dir / "config.json", c);
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_unsupported);
    CHECK(contains(msg, "model_type \"gpt2\" is not supported; expected \"bert\", \"distilbert\", \"roberta\", "
                        "\"xlm-roberta\", \"camembert\", \"electra\" or \"deberta-v2\""));
  }
  SECTION("label count mismatch") {
    const auto dir = copy_model(t, "bert");
    std::string c = read_all(dir / "config.json");
    const std::string last = "\"8\": \"I-MISC\"";
    c.replace(c.find(last), last.size(), last + ", \"9\": \"B-X\", \"10\": \"I-X\", \"11\": \"S-X\"");
    write_all(dir / "config.json", c);
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_shape_mismatch);
    CHECK(contains(msg, "[nerpipe.model_error.3] "));
    CHECK(contains(msg, "model.safetensors: tensor 'classifier.weight' has shape [9,32]; config.json has 12 labels"));
  }
  SECTION("missing tokenizer.json") {
    const auto dir = copy_model(t, "bert");
    fs::remove(dir / "tokenizer.json");
    const auto [code, msg] = load_error(dir);
    CHECK(code == errc::model_file_missing);
    CHECK(contains(msg, "tokenizer.json"));
  }
  SECTION("not a directory") {
    const auto [code, msg] = load_error(t.path / "nope");
    CHECK(code == errc::model_file_missing);
  }
}
