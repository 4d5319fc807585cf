// SPDX-License-Identifier: Apache-2.0
// Loading spaCy pipeline directories: damaged and unsupported ones give model_error with the file
// and the setting in the message (synthetic directories made here, and copies of the real sm one).
#include <catch2/catch.hpp>

#include "spacy_test_support.hpp"

#include <nerpipe/model/spacy/loader.hpp>

#include <algorithm>
#include <string>

using namespace nerpipe;
namespace st = nerpipe_spacy_test;
namespace fs = std::filesystem;

namespace {

// The error load_spacy_model throws for `dir` (fails the test when it loads).
model_error load_error(const fs::path& dir) {
  try {
    (void)load_spacy_model(dir);
  } catch (const model_error& e) {
    return e;
  }
  FAIL("load_spacy_model(" << dir.string() << ") did not throw");
  return model_error(errc::model_file_missing, "unreachable");
}

void replace_in_file(const fs::path& p, const std::string& from, const std::string& to) {
  std::string s = st::read_file(p);
  const auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  s.replace(pos, from.size(), to);
  st::write_file(p, s);
}

}  // namespace

TEST_CASE("spacy loader: missing directory and missing files", "[spacy]") {
  st::temp_dir tmp;
  auto e = load_error(tmp.path / "nope");
  CHECK(e.code() == errc::model_file_missing);
  CHECK_THAT(e.what(), Catch::Contains("not a directory"));

  e = load_error(tmp.path);
  CHECK(e.code() == errc::model_file_missing);
  CHECK_THAT(e.what(), Catch::Contains("meta.json"));

  st::write_synthetic_model(tmp.path);
  fs::remove(tmp.path / "ner" / "moves");
  e = load_error(tmp.path);
  CHECK(e.code() == errc::model_file_missing);
  CHECK_THAT(e.what(), Catch::Contains("moves"));
}

TEST_CASE("spacy loader: truncated and malformed msgpack", "[spacy]") {
  st::temp_dir tmp;
  st::write_synthetic_model(tmp.path);
  const auto model = st::read_file(tmp.path / "ner" / "model");
  st::write_file(tmp.path / "ner" / "model", model.substr(0, model.size() / 2));
  auto e = load_error(tmp.path);
  CHECK(e.code() == errc::model_file_malformed);
  CHECK_THAT(e.what(), Catch::Contains("model") && Catch::Contains("truncated"));

  st::write_file(tmp.path / "ner" / "model", model);
  const auto tok = st::read_file(tmp.path / "tokenizer");
  st::write_file(tmp.path / "tokenizer", tok.substr(0, tok.size() - 3));
  e = load_error(tmp.path);
  CHECK(e.code() == errc::model_file_malformed);
  CHECK_THAT(e.what(), Catch::Contains("tokenizer"));

  st::write_file(tmp.path / "tokenizer", tok);
  CHECK(is_spacy_model_dir(tmp.path));
  st::write_file(tmp.path / "meta.json", "{\"lang\": \"en\",");
  e = load_error(tmp.path);
  CHECK(e.code() == errc::model_file_malformed);
  CHECK_THAT(e.what(), Catch::Contains("meta.json"));
}

TEST_CASE("spacy loader: unsupported architectures and settings are named", "[spacy]") {
  {
    st::temp_dir tmp;
    st::synthetic_options o;
    o.architecture = "spacy.TransitionBasedParser.v3";
    st::write_synthetic_model(tmp.path, o);
    const auto e = load_error(tmp.path);
    CHECK(e.code() == errc::model_unsupported);
    CHECK_THAT(e.what(), Catch::Contains("config.cfg") && Catch::Contains("spacy.TransitionBasedParser.v3"));
  }
  {
    st::temp_dir tmp;
    st::synthetic_options o;
    o.tok2vec = "spacy.Tok2VecListener.v1";
    st::write_synthetic_model(tmp.path, o);
    const auto e = load_error(tmp.path);
    CHECK(e.code() == errc::model_unsupported);
    CHECK_THAT(e.what(), Catch::Contains("spacy.Tok2VecListener.v1"));
  }
  {
    st::temp_dir tmp;
    st::synthetic_options o;
    o.attrs = "[\"NORM\",\"PREFIX\",\"SUFFIX\",\"LOWER\"]";
    st::write_synthetic_model(tmp.path, o);
    const auto e = load_error(tmp.path);
    CHECK(e.code() == errc::model_unsupported);
    CHECK_THAT(e.what(), Catch::Contains("LOWER"));
  }
  {
    st::temp_dir tmp;
    st::synthetic_options o;
    o.beam_width = 4;
    st::write_synthetic_model(tmp.path, o);
    const auto e = load_error(tmp.path);
    CHECK(e.code() == errc::model_unsupported);
    CHECK_THAT(e.what(), Catch::Contains("beam_width"));
  }
  {
    st::temp_dir tmp;
    st::write_synthetic_model(tmp.path);
    replace_in_file(tmp.path / "config.cfg", "lang = \"en\"", "lang = \"de\"");
    const auto e = load_error(tmp.path);
    CHECK(e.code() == errc::model_unsupported);
    CHECK_THAT(e.what(), Catch::Contains("\"de\""));
  }
  {
    st::temp_dir tmp;
    st::write_synthetic_model(tmp.path);
    replace_in_file(tmp.path / "config.cfg", "hidden_width = 4\n", "");
    const auto e = load_error(tmp.path);
    CHECK(e.code() == errc::model_key_missing);
    CHECK_THAT(e.what(), Catch::Contains("hidden_width"));
  }
}

TEST_CASE("spacy loader: shapes that disagree with config.cfg", "[spacy]") {
  st::temp_dir tmp;
  st::synthetic_options o;
  o.stored_norm_rows = 49;
  st::write_synthetic_model(tmp.path, o);
  const auto e = load_error(tmp.path);
  CHECK(e.code() == errc::model_shape_mismatch);
  CHECK_THAT(e.what(), Catch::Contains("NORM") && Catch::Contains("(49, 8)") && Catch::Contains("(50, 8)"));
}

TEST_CASE("spacy loader: damaged copies of en_core_web_sm", "[spacy][model]") {
  auto dir = st::model_dir("sm");
  if (!dir) return;  // skipped, or failed under CI: model_dir says what is missing
  st::temp_dir tmp;
  st::copy_pipeline(*dir, tmp.path);
  const auto m = load_spacy_model(tmp.path);
  CHECK(m.version == "3.8.0");
  CHECK(m.lexeme_norm.size() == 3510);
  CHECK(m.tokenizer.exceptions.size() == 1347);

  const auto model = st::read_file(tmp.path / "ner" / "model");
  st::write_file(tmp.path / "ner" / "model", model.substr(0, model.size() - 100));
  auto e = load_error(tmp.path);
  CHECK(e.code() == errc::model_file_malformed);
  CHECK_THAT(e.what(), Catch::Contains("ner/model") || Catch::Contains("ner\\model"));
  st::write_file(tmp.path / "ner" / "model", model);

  replace_in_file(tmp.path / "config.cfg", "@architectures = \"spacy.MaxoutWindowEncoder.v2\"",
                  "@architectures = \"spacy.MishWindowEncoder.v2\"");
  e = load_error(tmp.path);
  CHECK(e.code() == errc::model_unsupported);
  CHECK_THAT(e.what(), Catch::Contains("spacy.MishWindowEncoder.v2"));
}

TEST_CASE("spacy loader: strings.json and lexeme_norm keys are string ids", "[spacy][model]") {
  auto dir = st::model_dir("sm");
  if (!dir) return;  // skipped, or failed under CI: model_dir says what is missing
  const auto strings = load_spacy_strings(*dir);
  CHECK(strings.size() == 84780);
  const auto m = load_spacy_model(*dir);
  for (const char* s : {"Cuz", "cuz", "colour", "Centre"}) {
    INFO(s);
    CHECK(std::find(strings.begin(), strings.end(), s) != strings.end());
    CHECK(m.lexeme_norm.count(spacy::string_id(s)) == 1);
  }
  CHECK(m.lexeme_norm.at(spacy::string_id("colour")) == "color");
}

TEST_CASE("spacy loader: tokenizer exceptions must spell their key", "[spacy]") {
  st::temp_dir tmp;
  st::synthetic_options o;
  o.exception_second_orth = "nt";
  st::write_synthetic_model(tmp.path, o);
  const auto e = load_error(tmp.path);
  CHECK(e.code() == errc::model_file_malformed);
  CHECK_THAT(e.what(), Catch::Contains("tokenizer") && Catch::Contains("don't") && Catch::Contains("'dont'"));
  CHECK_FALSE(is_spacy_model_dir(tmp.path / "ner"));
}
