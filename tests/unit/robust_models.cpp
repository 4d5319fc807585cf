// SPDX-License-Identifier: Apache-2.0
// Issue #15, model side: model files are untrusted input. key2row rows outside the vectors table (the
// en_core_web_md crash), forged sizes in .npy / msgpack / config.cfg / JSON, a config.json that disagrees
// with the weights (layers, hidden size, vocabulary), and messages that say why a file cannot be read.
// The crash cases run in the sanitizer build too (unit and models entries).
#include <catch2/catch.hpp>

#include "spacy_test_support.hpp"
#include "support/data.hpp"
#include "support/prerequisite.hpp"

#include <nerpipe/hf.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/model/torch_state.hpp>
#include <nerpipe/nerpipe.hpp>
#include <nerpipe/pipeline/model.hpp>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace fs = std::filesystem;
namespace st = nerpipe_spacy_test;
using nerpipe::errc;
using nerpipe::model_error;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write_bytes(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

/// The model_error `f` throws (fails the test when it throws nothing).
template <class F>
std::string model_error_of(F&& f) {
  try {
    f();
  } catch (const model_error& e) {
    return e.what();
  }
  FAIL("no model_error");
  return {};
}

/// key2row bytes: a msgpack map of string id -> row.
std::string key2row_bytes(const std::vector<std::pair<std::uint64_t, std::int64_t>>& entries) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(static_cast<std::uint32_t>(entries.size()));
  for (const auto& [k, v] : entries) {
    pk.pack(k);
    pk.pack(v);
  }
  return std::string(buf.data(), buf.size());
}

/// A copy of model directory `from` whose files are links to the originals, except the ones in `real`
/// (relative paths), which are copied so that a test can change them.
void link_copy(const fs::path& from, const fs::path& to, const std::vector<std::string>& real) {
  for (const auto& e : fs::recursive_directory_iterator(from)) {
    const auto rel = fs::relative(e.path(), from);
    if (e.is_directory()) {
      fs::create_directories(to / rel);
    } else if (std::find(real.begin(), real.end(), rel.generic_string()) != real.end()) {
      fs::copy_file(e.path(), to / rel);
    } else {
      fs::create_symlink(fs::absolute(e.path()), to / rel);
    }
  }
}

/// A copy of the tiny BERT fixture with its config.json edited by `edit`.
fs::path bert_copy(const st::temp_dir& t, const std::function<void(std::string&)>& edit, const std::string& name = "bert") {
  const auto dir = t.path / name;
  fs::create_directories(dir);
  link_copy(nerpipe::test::fixtures_dir() / "hf" / "models" / "bert", dir, {"config.json", "tokenizer.json"});
  std::string c = read_bytes(dir / "config.json");
  edit(c);
  write_bytes(dir / "config.json", c);
  return dir;
}

void replace_once(std::string& s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("key2row: every row must index the vectors table", "[spacy][robust]") {
  st::temp_dir t;
  const auto p = t.path / "key2row";
  write_bytes(p, key2row_bytes({{11, 0}, {12, 4}}));
  CHECK(nerpipe::spacy::detail::load_key2row(p, 5).size() == 2);
  for (const std::int64_t row : {5, 6, 1 << 30, -1, -2}) {
    INFO("row " << row);
    write_bytes(p, key2row_bytes({{11, 0}, {12, row}}));
    const auto msg = model_error_of([&] { (void)nerpipe::spacy::detail::load_key2row(p, 5); });
    CHECK_THAT(msg, Catch::Contains("key 12 maps to row " + std::to_string(row)));
    CHECK_THAT(msg, Catch::Contains("table with 5 rows"));
  }
  write_bytes(p, "\x81\xa1x\x01");  // a string key
  CHECK_THROWS_AS(nerpipe::spacy::detail::load_key2row(p, 5), model_error);
}

TEST_CASE("npy: forged shapes and sizes are refused before anything is allocated", "[spacy][robust]") {
  st::temp_dir t;
  const auto p = t.path / "vectors";
  auto npy = [&](const std::string& shape, std::size_t data_bytes) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    header.resize(118, ' ');
    header += '\n';
    std::string b = std::string("\x93NUMPY\x01\x00", 8);
    b += static_cast<char>(header.size() & 0xff);
    b += static_cast<char>(header.size() >> 8);
    b += header;
    b += std::string(data_bytes, '\0');
    write_bytes(p, b);
  };
  npy("(2, 3)", 24);
  CHECK(nerpipe::spacy::detail::load_npy(p).shape == std::vector<std::size_t>{2, 3});
  npy("(2, 3)", 20);
  CHECK_THAT(model_error_of([&] { (void)nerpipe::spacy::detail::load_npy(p); }), Catch::Contains("data size does not match"));
  npy("(4611686018427387904, 4)", 0);  // 2^62 * 4 floats: the product overflows to 0 bytes
  CHECK_THROWS_AS(nerpipe::spacy::detail::load_npy(p), model_error);
  npy("(99999999999999999999999, 1)", 0);
  CHECK_THAT(model_error_of([&] { (void)nerpipe::spacy::detail::load_npy(p); }), Catch::Contains("too large"));
  npy("(2L, 3L)", 24);  // not digits: used to loop forever
  CHECK_THAT(model_error_of([&] { (void)nerpipe::spacy::detail::load_npy(p); }), Catch::Contains("not a number"));
  npy("(2, 3", 24);
  CHECK_THROWS_AS(nerpipe::spacy::detail::load_npy(p), model_error);
}

TEST_CASE("msgpack: forged counts, lengths and depths are refused", "[spacy][robust]") {
  using nerpipe::spacy::detail::msgpack_doc;
  const std::string huge_array("\xdd\xff\xff\xff\xff", 5);  // an array of 4 billion elements, no bytes for them
  CHECK_THROWS_AS(msgpack_doc("x", huge_array.data(), huge_array.size()), model_error);
  const std::string huge_map("\xdf\xff\xff\xff\xff\x01", 6);
  CHECK_THROWS_AS(msgpack_doc("x", huge_map.data(), huge_map.size()), model_error);
  const std::string deep(1000, '\x91');  // [[[[...
  CHECK_THROWS_AS(msgpack_doc("x", deep.data(), deep.size()), model_error);
  CHECK_THROWS_AS(msgpack_doc("x", "", 0), model_error);
  // A float array whose shape product overflows.
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(3);
  pk.pack(std::string("type"));
  pk.pack(std::string("<f4"));
  pk.pack(std::string("shape"));
  pk.pack_array(2);
  pk.pack(std::uint64_t{1} << 62);
  pk.pack(std::uint64_t{4});
  pk.pack(std::string("data"));
  pk.pack_bin(0);
  msgpack_doc doc("x", buf.data(), buf.size());
  CHECK_THROWS_AS(nerpipe::spacy::detail::decode_array(doc, doc.root(), "W"), model_error);
}

TEST_CASE("config.cfg and JSON: numbers out of range and deep nesting are model errors", "[spacy][robust]") {
  const nerpipe::spacy::config_file cfg("[a]\nbig = 1e300\nneg = -5\nfrac = 2.5\nnan = NaN\n", "config.cfg");
  CHECK_THROWS_AS(cfg.get_int("a", "big"), model_error);
  CHECK(cfg.get_int("a", "neg") == -5);
  CHECK_THROWS_AS(cfg.get_int("a", "frac"), model_error);
  CHECK_THROWS_AS(cfg.get_int("a", "nan"), model_error);
  CHECK_THROWS_AS(nerpipe::spacy::parse_json(std::string(100000, '['), "x.json"), model_error);
  // A surrogate pair decodes; a lone high surrogate (alone or before a non-surrogate escape) has no UTF-8 form,
  // and simdjson refuses it: a model error naming the file, never a malformed string.
  CHECK(nerpipe::spacy::parse_json("\"\\ud83d\\ude00\"", "x").str == "\xF0\x9F\x98\x80");
  CHECK_THROWS_AS(nerpipe::spacy::parse_json("\"\\ud83d\"", "x"), model_error);
  CHECK_THROWS_AS(nerpipe::spacy::parse_json("\"\\ud83d\\u0041\"", "x"), model_error);
}

TEST_CASE("spaCy config sizes are bounded before use", "[spacy][robust]") {
  st::temp_dir t;
  st::write_synthetic_model(t.path);
  std::string cfg = read_bytes(t.path / "config.cfg");
  const auto at = cfg.find("width = ");
  REQUIRE(at != std::string::npos);
  cfg.replace(at, cfg.find('\n', at) - at, "width = -8");
  write_bytes(t.path / "config.cfg", cfg);
  CHECK_THAT(model_error_of([&] { (void)nerpipe::load_spacy_model(t.path); }), Catch::Contains("width = -8"));
}

TEST_CASE("unreadable model files say why (errno), a missing model says it does not exist", "[spacy][hf][robust]") {
  st::temp_dir t;
  CHECK_THAT(model_error_of([&] { (void)nerpipe::load_model(t.path / "nope"); }), Catch::Contains("nope: does not exist"));
  write_bytes(t.path / "file", "x");
  CHECK_THAT(model_error_of([&] { (void)nerpipe::load_model(t.path / "file"); }), Catch::Contains("is not a directory"));
  // spaCy: a file that is a directory.
  st::write_synthetic_model(t.path / "sp");
  fs::remove(t.path / "sp" / "ner" / "moves");
  fs::create_directories(t.path / "sp" / "ner" / "moves");
  CHECK_THAT(model_error_of([&] { (void)nerpipe::load_spacy_model(t.path / "sp"); }), Catch::Contains("(is a directory)"));
  fs::remove(t.path / "sp" / "ner" / "moves");
  CHECK_THAT(model_error_of([&] { (void)nerpipe::load_spacy_model(t.path / "sp"); }), Catch::Contains("(does not exist)"));
  // Hugging Face: config.json and tokenizer.json that are directories.
  const auto hf = bert_copy(t, [](std::string&) {});
  fs::remove(hf / "tokenizer.json");
  fs::create_directories(hf / "tokenizer.json");
  CHECK_THAT(model_error_of([&] { (void)nerpipe::load_hf_model(hf); }), Catch::Contains("is a directory"));
  fs::remove(hf / "config.json");
  fs::create_directories(hf / "config.json");
  CHECK_THAT(model_error_of([&] { (void)nerpipe::load_hf_model(hf); }), Catch::Contains("is a directory"));
}

TEST_CASE("config.json that disagrees with the weights is an error naming both", "[hf][robust]") {
  st::temp_dir t;
  SECTION("layers") {
    const auto dir = bert_copy(t, [](std::string& c) { replace_once(c, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"); });
    const auto msg = model_error_of([&] { (void)nerpipe::load_hf_model(dir); });
    CHECK_THAT(msg, Catch::Contains("the weights have 2 layers"));
    CHECK_THAT(msg, Catch::Contains("config.json has num_hidden_layers 1"));
  }
  SECTION("more layers than the weights") {
    const auto dir = bert_copy(t, [](std::string& c) { replace_once(c, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000000"); });
    CHECK_THAT(model_error_of([&] { (void)nerpipe::load_hf_model(dir); }), Catch::Contains("num_hidden_layers 1000000000"));
  }
  SECTION("hidden size") {
    const auto dir = bert_copy(t, [](std::string& c) {
      replace_once(c, "\"hidden_size\": 32", "\"hidden_size\": 64");
    });
    const auto msg = model_error_of([&] { (void)nerpipe::load_hf_model(dir); });
    CHECK_THAT(msg, Catch::Contains("hidden_size 64") || Catch::Contains("has shape [9,32]"));
  }
  SECTION("vocabulary") {
    const auto dir = bert_copy(t, [](std::string& c) { replace_once(c, "\"vocab_size\": 30522", "\"vocab_size\": 30000"); });
    const auto msg = model_error_of([&] { (void)nerpipe::load_hf_model(dir); });
    CHECK_THAT(msg, Catch::Contains("[30522,32]"));
    CHECK_THAT(msg, Catch::Contains("vocab_size 30000"));
  }
  SECTION("a tokenizer id past the embedding table") {
    const auto dir = bert_copy(t, [](std::string&) {});
    std::string tok = read_bytes(dir / "tokenizer.json");
    replace_once(tok, "\"added_tokens\":[",
                 "\"added_tokens\":[{\"id\": 40000, \"content\": \"[NEW]\", \"single_word\": false, \"lstrip\": false, "
                 "\"rstrip\": false, \"normalized\": false, \"special\": true},");
    write_bytes(dir / "tokenizer.json", tok);
    const auto msg = model_error_of([&] { (void)nerpipe::load_hf_model(dir); });
    CHECK_THAT(msg, Catch::Contains("token id 40000"));
    CHECK_THAT(msg, Catch::Contains("vocab_size 30522"));
  }
}

TEST_CASE("en_core_web_md with a key2row row outside the vectors table is refused (was a crash)", "[spacy][model][robust]") {
  const auto md = nerpipe::test::models_dir() / "en_core_web_md-3.8.0";
  if (!nerpipe::test::require_path(md / "config.cfg", "en_core_web_md 3.8.0 (scripts/get-model.sh models md)")) return;
  const std::string original = read_bytes(md / "vocab" / "key2row");
  const auto handle = msgpack::unpack(original.data(), original.size());
  const auto& map = handle.get().via.map;
  REQUIRE(map.size > 10);
  std::vector<std::pair<std::uint64_t, std::int64_t>> entries;
  entries.reserve(map.size);
  for (std::uint32_t i = 0; i < map.size; ++i) entries.emplace_back(map.ptr[i].key.via.u64, map.ptr[i].val.as<std::int64_t>());
  std::int64_t rows = 0;
  {
    const auto m = nerpipe::load_spacy_model(md);
    rows = static_cast<std::int64_t>(m.ner.vectors.data.shape[0]);
  }
  st::temp_dir t;
  link_copy(md, t.path, {"vocab/key2row"});
  for (const std::int64_t bad : {rows + 1000, rows, std::int64_t{-3}}) {
    INFO("row " << bad);
    auto changed = entries;
    changed[7].second = bad;
    fs::remove(t.path / "vocab" / "key2row");
    write_bytes(t.path / "vocab" / "key2row", key2row_bytes(changed));
    const auto msg = model_error_of([&] { (void)nerpipe::load_model(t.path); });
    CHECK_THAT(msg, Catch::Contains("vocab/key2row"));
    CHECK_THAT(msg, Catch::Contains("maps to row " + std::to_string(bad)));
  }
}

TEST_CASE("a row outside the table never reaches the embedding, even past the loader", "[spacy][model][robust]") {
  const auto md = nerpipe::test::models_dir() / "en_core_web_md-3.8.0";
  if (!nerpipe::test::require_path(md / "config.cfg", "en_core_web_md 3.8.0 (scripts/get-model.sh models md)")) return;
  auto m = std::make_shared<nerpipe::spacy_model>(nerpipe::load_spacy_model(md));
  const auto rows = static_cast<std::int64_t>(m->ner.vectors.data.shape[0]);
  // Rows of common words pushed out of the table (as a forged key2row would have them).
  for (const char* w : {"the", "The", "of", "and", "Obama", "Paris"})
    m->ner.vectors.key2row[nerpipe::spacy::string_id(w)] = rows + 12345;
  m->ner.vectors.key2row[nerpipe::spacy::string_id("in")] = -7;
  nerpipe::model model;
  model.family = nerpipe::model_family::spacy;
  model.dir = md;
  model.spacy = m;
  auto nlp = nerpipe::make_annotator(nerpipe::cpu_policy(1), model);
  std::vector<nerpipe::document> docs(2);
  docs[0].text = "The president of France and Barack Obama met in Paris.";
  docs[1].text = "the of and in The Obama";
  nlp->annotate(docs);
  for (const auto& d : docs) CHECK(d.ok());
}

namespace {
/// A zip of stored entries, as torch.save writes one.
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, central;
  auto le = [](std::string& s, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  for (const auto& [name, data] : files) {
    const auto offset = out.size();
    le(out, 0x04034b50, 4), le(out, 20, 2), le(out, 0, 2), le(out, 0, 2), le(out, 0, 4), le(out, 0, 4);
    le(out, data.size(), 4), le(out, data.size(), 4), le(out, name.size(), 2), le(out, 0, 2);
    out += name + data;
    le(central, 0x02014b50, 4), le(central, 20, 2), le(central, 20, 2), le(central, 0, 2), le(central, 0, 2), le(central, 0, 4);
    le(central, 0, 4), le(central, data.size(), 4), le(central, data.size(), 4), le(central, name.size(), 2), le(central, 0, 2);
    le(central, 0, 2), le(central, 0, 2), le(central, 0, 2), le(central, 0, 4), le(central, offset, 4);
    central += name;
  }
  const auto cd = out.size();
  out += central;
  le(out, 0x06054b50, 4), le(out, 0, 2), le(out, 0, 2), le(out, files.size(), 2), le(out, files.size(), 2);
  le(out, central.size(), 4), le(out, cd, 4), le(out, 0, 2);
  return out;
}
}  // namespace

TEST_CASE("torch state dicts (spaCy transformer pipelines): damaged or hostile bytes are model errors", "[spacy][robust][trf]") {
  // The real bytes: the zip inside the fixture's transformer/model (the HFShim's "state").
  const std::string bytes = st::read_file(st::fixture_dir() / "trf-tiny" / "transformer" / "model");
  const auto at = bytes.find(std::string("PK\x03\x04", 4));
  const auto eocd = bytes.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(at != std::string::npos);
  REQUIRE(eocd != std::string::npos);
  const std::string zip = bytes.substr(at, eocd + 22 - at);
  const std::string image = nerpipe::torch_state_to_safetensors(zip, "state");
  const nerpipe::safetensors_file f("state", image);
  CHECK(f.at("embeddings.word_embeddings.weight").shape == std::vector<std::size_t>{8000, 64});
  for (std::size_t cut : {std::size_t{0}, std::size_t{21}, zip.size() / 2, zip.size() - 1})
    CHECK_THROWS_AS(nerpipe::torch_state_to_safetensors(std::string_view(zip).substr(0, cut), "state"), model_error);
  // Flipped bytes in the pickle (the archive's first entry): parsed or refused, never read out of bounds.
  std::size_t refused = 0;
  for (std::size_t i = 0; i < 300; ++i) {
    std::string bad = zip;
    const std::size_t k = 40 + (i * 131) % 3500;
    bad[k] = static_cast<char>(bad[k] ^ (1 + i % 255));
    try {
      (void)nerpipe::torch_state_to_safetensors(bad, "state");
    } catch (const model_error&) {
      ++refused;
    }
  }
  CHECK(refused > 0);
  // A pickle that would run code is refused by name, not run.
  using namespace std::string_literals;  // the pickles hold NUL bytes
  const std::string evil = "\x80\x02"s + "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."s;
  try {
    (void)nerpipe::torch_state_to_safetensors(stored_zip({{"archive/data.pkl", evil}}), "state");
    FAIL("no error");
  } catch (const model_error& e) {
    CHECK(e.code() == errc::model_unsupported);
    CHECK(std::string(e.what()).find("os system") != std::string::npos);
  }
  // A tensor that reaches past its storage.
  const std::string past = "\x80\x02}q\x00X\x01\x00\x00\x00wq\x01"s + "ctorch._utils\n_rebuild_tensor_v2\n("s +
                           "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"s + "0X\x03\x00\x00\x00"s + "cpuK\x02tQ"s +
                           "K\x00K\x04\x85K\x01\x85\x89tR"s + "s."s;
  CHECK_THROWS_AS(nerpipe::torch_state_to_safetensors(stored_zip({{"archive/data.pkl", past}, {"archive/data/0", std::string(8, '\0')}}), "state"),
                  model_error);
  // The same pickle with a storage of four floats is read.
  const std::string ok = nerpipe::torch_state_to_safetensors(stored_zip({{"archive/data.pkl", past}, {"archive/data/0", std::string(16, '\0')}}), "state");
  CHECK(nerpipe::safetensors_file("ok", ok).at("w").shape == std::vector<std::size_t>{4});
}

TEST_CASE("spaCy transformer pipelines: a damaged transformer component is a model error naming the file", "[spacy][robust][trf]") {
  st::temp_dir tmp;
  fs::copy(st::fixture_dir() / "trf-tiny", tmp.path, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const auto model_file = tmp.path / "transformer" / "model";
  const std::string bytes = st::read_file(model_file);
  st::write_file(model_file, bytes.substr(0, bytes.size() / 3));
  try {
    (void)nerpipe::load_model(tmp.path);
    FAIL("no error");
  } catch (const model_error& e) {
    CHECK(std::string(e.what()).find("transformer") != std::string::npos);
  }
  // A pooling other than reduce_mean is refused by name.
  st::write_file(model_file, bytes);
  std::string cfg = st::read_file(tmp.path / "config.cfg");
  const auto pos = cfg.find("reduce_mean.v1");
  REQUIRE(pos != std::string::npos);
  st::write_file(tmp.path / "config.cfg", cfg.replace(pos, 14, "reduce_max.v1"));
  CHECK_THROWS_AS(nerpipe::load_model(tmp.path), model_error);
}

