// SPDX-License-Identifier: Apache-2.0
// Executors: round_robin with 1-4 workers gives byte-for-byte what sequential gives, also when batches
// throw, documents are poisoned and a replica is broken; nothing lost, nothing doubled, order kept.
#include <catch2/catch.hpp>

#include "executor_test_annotator.hpp"

#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/pipeline/executor.hpp>

#include <atomic>
#include <set>
#include <stdexcept>
#include "support/data.hpp"

#include <string>
#include <vector>

namespace {

using nerpipe::document;

const std::string ewt_dev = nerpipe::test::ewt_file("dev").string();

/// Replays documents, so every executor sees the same input.
struct vector_source {
  const std::vector<document>* docs;
  std::size_t next_index = 0;
  bool next(document& d) {
    if (next_index >= docs->size()) return false;
    d = (*docs)[next_index++];
    return true;
  }
};

std::vector<document> load_ewt(int poison_every = 0) {
  std::vector<document> docs;
  nerpipe::jsonl_reader reader(ewt_dev);
  document d;
  while (reader.next(d)) docs.push_back(d);
  if (poison_every > 0)
    for (std::size_t i = 3; i < docs.size(); i += static_cast<std::size_t>(poison_every)) docs[i].text += " THROW_ME";
  return docs;
}

struct collected {
  std::vector<std::string> lines;
  nerpipe::run_stats stats;
  std::string joined() const {
    std::string s;
    for (const auto& l : lines) s += l;
    return s;
  }
};

auto collect_into(collected& c) {
  return [&c](document& d) {
    std::string line;
    nerpipe::format_record(d, {}, line);
    c.lines.push_back(std::move(line));
  };
}

collected run_sequential(const std::vector<document>& docs, nerpipe::executor_options o = {}) {
  collected c;
  vector_source src{&docs};
  nerpipe::sequential<> seq(nerpipe::cpu_policy(1), o);
  c.stats = seq.run([](nerpipe::cpu_policy&, std::size_t) { return std::make_unique<nerpipe::test::capitalised_annotator>(); },
                    src, collect_into(c));
  return c;
}

std::vector<nerpipe::cpu_policy> cpu_workers(std::size_t n) {
  std::vector<nerpipe::cpu_policy> v;
  for (std::size_t i = 0; i < n; ++i) v.emplace_back(1u);
  return v;
}

collected run_round_robin(const std::vector<document>& docs, std::size_t workers, nerpipe::executor_options o,
                          nerpipe::test::test_annotator_options ao, bool first_broken = false) {
  collected c;
  vector_source src{&docs};
  nerpipe::round_robin<nerpipe::cpu_policy> rr(cpu_workers(workers), o);
  c.stats = rr.run(
      [&](nerpipe::cpu_policy&, std::size_t r) {
        auto opts = ao;
        opts.seed = static_cast<std::uint32_t>(1000 + r);
        opts.always_throw = first_broken && r == 0;
        return std::make_unique<nerpipe::test::capitalised_annotator>(opts);
      },
      src, collect_into(c));
  return c;
}

}  // namespace

TEST_CASE("sequential annotates every EWT document in input order", "[executor]") {
  const auto docs = load_ewt();
  REQUIRE(docs.size() == 318);
  const auto c = run_sequential(docs);
  REQUIRE(c.lines.size() == docs.size());
  CHECK(c.stats.docs == 318);
  CHECK(c.stats.errors == 0);
  CHECK(c.stats.entities > 1000);
  CHECK(c.stats.tokens > 10000);
  for (std::size_t i = 0; i < docs.size(); ++i) REQUIRE(c.lines[i].rfind("{\"id\": " + docs[i].id + ",", 0) == 0);
  // Batching must not change results: one document at a time gives the same bytes.
  nerpipe::executor_options tiny;
  tiny.batch_tokens = 1;
  tiny.window_docs = 1;
  CHECK(run_sequential(docs, tiny).joined() == c.joined());
}

TEST_CASE("round_robin with 1-4 workers is byte-identical to sequential", "[executor]") {
  const auto docs = load_ewt();
  const auto expected = run_sequential(docs).joined();
  for (std::size_t workers = 1; workers <= 4; ++workers) {
    for (const std::size_t budget : {std::size_t{64}, std::size_t{4096}}) {
      nerpipe::executor_options o;
      o.batch_tokens = budget;
      o.window_docs = 16;
      o.max_in_flight = 1;  // raised to two windows: back-pressure on every window
      const auto got = run_round_robin(docs, workers, o, {});
      INFO("workers " << workers << ", budget " << budget);
      CHECK(got.lines.size() == docs.size());
      CHECK(got.joined() == expected);
      CHECK(got.stats.errors == 0);
      CHECK(got.stats.retired == 0);
    }
  }
}

TEST_CASE("a poisoned document gets an error record; its batch-mates do not", "[executor]") {
  const auto docs = load_ewt(/*poison_every=*/37);
  const auto expected = run_sequential(docs);
  const std::size_t poisoned = (docs.size() - 3 + 36) / 37;
  CHECK(expected.stats.errors == poisoned);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const bool bad = i >= 3 && (i - 3) % 37 == 0;
    const bool is_error = expected.lines[i].find("\"error\": \"failed: poisoned document\"") != std::string::npos;
    REQUIRE(bad == is_error);
  }
  for (std::size_t workers = 1; workers <= 4; ++workers) {
    nerpipe::executor_options o;
    o.window_docs = 32;
    o.batch_tokens = 512;
    const auto got = run_round_robin(docs, workers, o, {});
    INFO("workers " << workers);
    CHECK(got.joined() == expected.joined());
    CHECK(got.stats.retired == 0);  // a bad document fails everywhere: no replica is blamed
  }
}

TEST_CASE("batches that throw at random are retried and change nothing", "[executor]") {
  const auto docs = load_ewt(/*poison_every=*/50);
  const auto expected = run_sequential(docs).joined();
  for (std::size_t workers = 1; workers <= 4; ++workers) {
    nerpipe::test::test_annotator_options ao;
    ao.batch_failure_rate = 0.4;
    nerpipe::executor_options o;
    o.window_docs = 24;
    o.batch_tokens = 300;
    const auto got = run_round_robin(docs, workers, o, ao);
    INFO("workers " << workers);
    CHECK(got.joined() == expected);
  }
}

TEST_CASE("a replica that always throws is retired and its work is done by the others", "[executor]") {
  const auto docs = load_ewt(/*poison_every=*/41);
  const auto expected = run_sequential(docs).joined();
  for (std::size_t workers = 2; workers <= 4; ++workers) {
    nerpipe::executor_options o;
    o.window_docs = 16;
    o.batch_tokens = 256;
    nerpipe::test::test_annotator_options ao;
    ao.batch_failure_rate = 0.2;
    const auto got = run_round_robin(docs, workers, o, ao, /*first_broken=*/true);
    INFO("workers " << workers);
    CHECK(got.lines.size() == docs.size());
    CHECK(got.joined() == expected);
    CHECK(got.stats.retired <= 1);
  }
}

TEST_CASE("unordered output holds every document exactly once", "[executor]") {
  const auto docs = load_ewt(/*poison_every=*/29);
  const auto expected = run_sequential(docs);
  nerpipe::executor_options o;
  o.ordered = false;
  o.window_docs = 8;
  o.batch_tokens = 200;
  nerpipe::test::test_annotator_options ao;
  ao.batch_failure_rate = 0.3;
  const auto got = run_round_robin(docs, 3, o, ao, true);
  REQUIRE(got.lines.size() == docs.size());
  std::multiset<std::string> a(expected.lines.begin(), expected.lines.end()), b(got.lines.begin(), got.lines.end());
  CHECK(a == b);
}

TEST_CASE("bad input records pass through executors in their place", "[executor]") {
  std::vector<document> docs = load_ewt();
  docs.resize(40);
  for (std::size_t i = 5; i < docs.size(); i += 7) {
    docs[i].status = nerpipe::record_status::invalid_json;
    docs[i].error = "invalid_json: test";
    docs[i].text.clear();
  }
  const auto expected = run_sequential(docs);
  CHECK(expected.stats.errors == 5);
  CHECK(expected.lines[5] == "{\"id\": " + docs[5].id + ", \"line\": 6, \"error\": \"invalid_json: test\"}\n");
  for (std::size_t workers = 1; workers <= 3; ++workers)
    CHECK(run_round_robin(docs, workers, {}, {}).joined() == expected.joined());
}

TEST_CASE("round_robin reports fatal conditions instead of hanging", "[executor]") {
  const auto docs = load_ewt();
  SECTION("no replica can be built") {
    vector_source src{&docs};
    nerpipe::round_robin<nerpipe::cpu_policy> rr(cpu_workers(2));
    auto make = [](nerpipe::cpu_policy&, std::size_t) -> std::unique_ptr<nerpipe::annotator> {
      throw std::runtime_error("no weights");
    };
    try {
      rr.run(make, src, [](document&) {});
      FAIL("no error");
    } catch (const nerpipe::model_error& e) {
      CHECK(e.code() == nerpipe::errc::model_every_replica_failed);  // an id of its own
      CHECK_THAT(e.what(), Catch::Contains("no weights"));
    }
  }
  SECTION("one replica cannot be built: the other does all the work") {
    vector_source src{&docs};
    nerpipe::round_robin<nerpipe::cpu_policy> rr(cpu_workers(2));
    std::size_t n = 0;
    auto make = [](nerpipe::cpu_policy&, std::size_t r) -> std::unique_ptr<nerpipe::annotator> {
      if (r == 0) throw std::runtime_error("no weights");
      return std::make_unique<nerpipe::test::capitalised_annotator>();
    };
    const auto stats = rr.run(make, src, [&](document&) { ++n; });
    CHECK(n == docs.size());
    CHECK(stats.retired == 1);
  }
  SECTION("the sink throws (output not writable)") {
    vector_source src{&docs};
    nerpipe::round_robin<nerpipe::cpu_policy> rr(cpu_workers(3));
    std::size_t n = 0;
    auto make = [](nerpipe::cpu_policy&, std::size_t) { return std::make_unique<nerpipe::test::capitalised_annotator>(); };
    CHECK_THROWS_AS(rr.run(make, src,
                           [&](document&) {
                             if (++n == 50) throw nerpipe::io_error(nerpipe::errc::output_not_writable, "disk full");
                           }),
                    nerpipe::io_error);
  }
  SECTION("the source throws (input not readable)") {
    struct failing_source {
      int n = 0;
      bool next(document& d) {
        if (++n == 30) throw nerpipe::input_error(nerpipe::errc::input_not_readable, "read failed");
        d.text = "Some Words here";
        d.id = std::to_string(n);
        return true;
      }
    } src;
    nerpipe::round_robin<nerpipe::cpu_policy> rr(cpu_workers(2));
    auto make = [](nerpipe::cpu_policy&, std::size_t) { return std::make_unique<nerpipe::test::capitalised_annotator>(); };
    CHECK_THROWS_AS(rr.run(make, src, [](document&) {}), nerpipe::input_error);
  }
}

TEST_CASE("executors read straight from a jsonl_reader", "[executor]") {
  nerpipe::jsonl_reader reader(ewt_dev);
  nerpipe::round_robin<nerpipe::cpu_policy> rr(cpu_workers(2));
  std::uint64_t expect_index = 0;
  bool in_order = true;
  const auto stats = rr.run([](nerpipe::cpu_policy&, std::size_t) { return std::make_unique<nerpipe::test::capitalised_annotator>(); },
                            reader, [&](document& d) { in_order = in_order && d.index == expect_index++; });
  CHECK(in_order);
  CHECK(stats.docs == 318);
  CHECK(rr.progress().docs.load() == 318);
}

TEST_CASE("overlapped phases (prepare / compute / finish on three threads per replica) change nothing", "[executor][overlap]") {
  using mode = nerpipe::executor_options::overlap_mode;
  const auto docs = load_ewt(/*poison_every=*/43);
  const auto expected = run_sequential(docs).joined();
  for (std::size_t workers = 1; workers <= 3; ++workers) {
    for (const double failure_rate : {0.0, 0.3}) {
      nerpipe::executor_options o;
      o.overlap = mode::on;
      o.window_docs = 16;
      o.batch_tokens = 256;
      o.max_in_flight = 1;
      nerpipe::test::test_annotator_options ao;
      ao.batch_failure_rate = failure_rate;
      const auto got = run_round_robin(docs, workers, o, ao, /*first_broken=*/workers == 3);
      INFO("workers " << workers << ", failure rate " << failure_rate);
      CHECK(got.lines.size() == docs.size());
      CHECK(got.joined() == expected);
    }
  }
  // Out of memory inside the overlapped compute phase falls back to the splitting path.
  nerpipe::executor_options o;
  o.overlap = mode::on;
  o.window_docs = 32;
  o.batch_tokens = 4096;
  nerpipe::test::test_annotator_options ao;
  ao.oom_above_words = 800;  // every document fits alone (as in executor_oom.cpp); most planned batches do not
  const auto got = run_round_robin(docs, 2, o, ao);
  CHECK(got.joined() == expected);
  CHECK(got.stats.out_of_memory > 0);
}
