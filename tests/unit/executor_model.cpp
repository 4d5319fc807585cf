// SPDX-License-Identifier: Apache-2.0
// The model seam (load_model / make_annotator) and executors with real models: family detection,
// errors that say what to do, and round_robin over real annotators equal to sequential.
#include <catch2/catch.hpp>

#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/pipeline/executor.hpp>
#include <nerpipe/pipeline/model.hpp>

#include "support/data.hpp"
#include "support/prerequisite.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

const std::filesystem::path fixtures = nerpipe::test::fixtures_dir() / "hf" / "models";
const std::filesystem::path spacy_sm = nerpipe::test::models_dir() / "en_core_web_sm-3.8.0";

std::vector<nerpipe::document> ewt_dev(std::size_t n) {
  std::vector<nerpipe::document> docs;
  nerpipe::jsonl_reader r(nerpipe::test::ewt_file("dev"));
  nerpipe::document d;
  while (docs.size() < n && r.next(d)) docs.push_back(d);
  return docs;
}

struct replay {
  const std::vector<nerpipe::document>* docs;
  std::size_t i = 0;
  bool next(nerpipe::document& d) {
    if (i >= docs->size()) return false;
    d = (*docs)[i++];
    return true;
  }
};

/// Output lines of `docs` through round_robin with `workers` single-threaded CPU replicas.
std::string run_model(const nerpipe::model& m, const std::vector<nerpipe::document>& docs, std::size_t workers,
                      nerpipe::output_format format = nerpipe::output_format::entities, bool overlap = false) {
  std::vector<nerpipe::cpu_policy> replicas;
  for (std::size_t w = 0; w < workers; ++w) replicas.emplace_back(1u);
  nerpipe::executor_options eo;
  eo.window_docs = 16;
  eo.batch_tokens = 1024;
  eo.overlap = overlap ? nerpipe::executor_options::overlap_mode::on : nerpipe::executor_options::overlap_mode::off;
  nerpipe::round_robin<nerpipe::cpu_policy> rr(std::move(replicas), eo);
  nerpipe::annotate_options ao;
  ao.want_tokens = format != nerpipe::output_format::entities;
  replay src{&docs};
  std::string out;
  rr.run([&](nerpipe::cpu_policy& p, std::size_t) { return nerpipe::make_annotator(p, m, ao); }, src,
         [&](nerpipe::document& d) { nerpipe::format_record(d, {format, false}, out); });
  return out;
}

}  // namespace

TEST_CASE("load_model recognises the family from the directory", "[executor][families]") {
  REQUIRE(std::filesystem::exists(fixtures / "bert" / "config.json"));  // committed
  for (const char* name : {"bert", "distilbert"}) {
    CHECK(nerpipe::detect_model_family(fixtures / name) == nerpipe::model_family::hugging_face);
    const auto m = nerpipe::load_model(fixtures / name);
    CHECK(m.family == nerpipe::model_family::hugging_face);
    CHECK(m.labels() == std::vector<std::string>{"PER", "ORG", "LOC", "MISC"});
  }
  if (std::filesystem::exists(spacy_sm / "meta.json")) {
    CHECK(nerpipe::detect_model_family(spacy_sm) == nerpipe::model_family::spacy);
    const auto m = nerpipe::load_model(spacy_sm);
    CHECK(m.labels().size() == 18);
  }
}

TEST_CASE("load_model says what a model directory lacks", "[executor][families]") {
  const auto dir = std::filesystem::temp_directory_path() / ("nerpipe-model-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  try {
    nerpipe::load_model(dir / "missing");
    FAIL("no exception");
  } catch (const nerpipe::model_error& e) {
    CHECK(e.code() == nerpipe::errc::model_file_missing);
    CHECK(std::string(e.what()).find("does not exist") != std::string::npos);
  }
  try {
    nerpipe::load_model(dir);
    FAIL("no exception");
  } catch (const nerpipe::model_error& e) {
    CHECK(e.code() == nerpipe::errc::model_file_missing);
    CHECK(std::string(e.what()).find("config.json") != std::string::npos);
    CHECK(std::string(e.what()).find("meta.json") != std::string::npos);
  }
  std::ofstream(dir / "config.json") << "{\"model_type\": \"bert\"";
  CHECK_THROWS_AS(nerpipe::load_model(dir), nerpipe::model_error);
  std::filesystem::remove_all(dir);
}

/// round_robin with 1, 2 and 3 workers over a real model gives the same output (entities and iob).
static void check_round_robin(const std::filesystem::path& dir) {
  const auto docs = ewt_dev(60);
  const auto m = nerpipe::load_model(dir);
  const std::string one = run_model(m, docs, 1);
  INFO(dir.string());
  CHECK(std::count(one.begin(), one.end(), '\n') == static_cast<long>(docs.size()));
  CHECK(one.find("\"line\": ") == std::string::npos);  // no error records
  CHECK(one.find("\"label\"") != std::string::npos);
  CHECK(run_model(m, docs, 2) == one);
  CHECK(run_model(m, docs, 3) == one);
  // The pipeline's phases overlapped across batches (tokenizing k+1 and decoding k-1 while k computes).
  CHECK(run_model(m, docs, 1, nerpipe::output_format::entities, true) == one);
  CHECK(run_model(m, docs, 2, nerpipe::output_format::entities, true) == one);
  const std::string iob = run_model(m, docs, 2, nerpipe::output_format::iob);
  CHECK(std::count(iob.begin(), iob.end(), '\n') == static_cast<long>(docs.size()));
  CHECK(iob.find("\"B-") != std::string::npos);
}

TEST_CASE("round_robin over real annotators equals one worker: BERT fixture", "[executor][families]") {
  REQUIRE(std::filesystem::exists(fixtures / "bert" / "config.json"));  // committed
  check_round_robin(fixtures / "bert");
}

TEST_CASE("round_robin over real annotators equals one worker: spaCy sm", "[executor][families][model]") {
  if (!nerpipe::test::require_path(spacy_sm / "meta.json", "en_core_web_sm 3.8.0 (scripts/get-model.sh models sm)")) return;
  check_round_robin(spacy_sm);
}
