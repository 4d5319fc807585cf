// SPDX-License-Identifier: Apache-2.0
// Executors and out of memory: a batch that runs out of memory (cuda_error cuda_out_of_memory, or
// std::bad_alloc) is split and retried, so the output is byte-identical to a run that never ran out;
// a document too big alone gets exactly one error record saying so; a replica learns how much fits
// and stops running out; running out is no strike. All on the CPU with a test annotator that throws
// the CUDA error a GPU would.
#include <catch2/catch.hpp>

#include "support/data.hpp"

#include "executor_test_annotator.hpp"

#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/pipeline/executor.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using nerpipe::document;
using nerpipe::test::test_annotator_options;

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
  nerpipe::jsonl_reader reader(nerpipe::test::ewt_file("dev"));
  document d;
  while (reader.next(d)) docs.push_back(d);
  if (poison_every > 0)
    for (std::size_t i = 3; i < docs.size(); i += static_cast<std::size_t>(poison_every)) docs[i].text += " THROW_ME";
  return docs;
}

/// `n` documents of `words` capitalised-or-not four-byte words ("Abc " / "abc "), seeded.
std::vector<document> uniform_docs(std::size_t n, std::size_t words, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<document> docs(n);
  for (std::size_t i = 0; i < n; ++i) {
    docs[i].id = std::to_string(i);
    docs[i].index = i;
    for (std::size_t w = 0; w < words; ++w) {
      if (w) docs[i].text += ' ';
      docs[i].text += static_cast<char>((rng() % 3 == 0 ? 'A' : 'a') + rng() % 26);
      docs[i].text += static_cast<char>('a' + rng() % 26);
      docs[i].text += static_cast<char>('a' + rng() % 26);
    }
  }
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

collected run_sequential(const std::vector<document>& docs, nerpipe::executor_options o = {}, test_annotator_options ao = {},
                         std::atomic<std::uint64_t>* ooms = nullptr) {
  collected c;
  vector_source src{&docs};
  nerpipe::sequential<> seq(nerpipe::cpu_policy(1), o);
  c.stats = seq.run([&](nerpipe::cpu_policy&, std::size_t) { return std::make_unique<nerpipe::test::capitalised_annotator>(ao, nullptr, ooms); },
                    src, collect_into(c));
  return c;
}

/// round_robin with `workers` CPU replicas; replica r gets `options_of(r)`.
collected run_round_robin(const std::vector<document>& docs, std::size_t workers, nerpipe::executor_options o,
                          const std::function<test_annotator_options(std::size_t)>& options_of,
                          std::atomic<std::uint64_t>* ooms = nullptr) {
  collected c;
  vector_source src{&docs};
  std::vector<nerpipe::cpu_policy> replicas;
  for (std::size_t i = 0; i < workers; ++i) replicas.emplace_back(1u);
  nerpipe::round_robin<nerpipe::cpu_policy> rr(std::move(replicas), o);
  c.stats = rr.run(
      [&](nerpipe::cpu_policy&, std::size_t r) {
        auto ao = options_of(r);
        ao.seed = static_cast<std::uint32_t>(1000 + r);
        return std::make_unique<nerpipe::test::capitalised_annotator>(ao, nullptr, ooms);
      },
      src, collect_into(c));
  return c;
}

std::size_t largest_document(const std::vector<document>& docs) {
  return static_cast<std::size_t>(std::max_element(docs.begin(), docs.end(),
                                                   [](const document& a, const document& b) {
                                                     return nerpipe::test::count_words(a.text) < nerpipe::test::count_words(b.text);
                                                   }) -
                                  docs.begin());
}

}  // namespace

TEST_CASE("memory_budget: no limit until out of memory, then between half the failure and the best success", "[executor][oom]") {
  nerpipe::detail::memory_budget b;
  CHECK(b.cap() == nerpipe::detail::memory_budget::unlimited);
  b.succeeded(3000);
  CHECK(b.cap() == nerpipe::detail::memory_budget::unlimited);
  b.out_of_memory(4000);
  CHECK(b.cap() == 3000);  // the largest that worked below the failure
  b.out_of_memory(3500);
  CHECK(b.cap() == 3000);
  b.out_of_memory(3000);  // what worked once no longer does
  CHECK(b.cap() == 1500);
  b.succeeded(1700);
  CHECK(b.cap() == 1700);
  b.succeeded(5000);  // above a failure: proves nothing
  CHECK(b.cap() == 1700);
  b.out_of_memory(1);
  CHECK(b.cap() == 1);
}

TEST_CASE("out of memory splits batches; the output is byte-identical to a run that never ran out", "[executor][oom]") {
  const auto docs = load_ewt();
  const auto expected = run_sequential(docs);
  REQUIRE(expected.stats.errors == 0);
  const std::size_t biggest = nerpipe::test::count_words(docs[largest_document(docs)].text);
  REQUIRE(biggest < 800);

  for (const bool bad_alloc : {false, true}) {
    test_annotator_options ao;
    ao.oom_above_words = 800;  // every document fits alone; most planned batches do not
    ao.oom_as_bad_alloc = bad_alloc;
    INFO("std::bad_alloc: " << bad_alloc);
    std::atomic<std::uint64_t> ooms{0};
    const auto seq = run_sequential(docs, {}, ao, &ooms);
    CHECK(seq.joined() == expected.joined());
    CHECK(seq.stats.errors == 0);
    CHECK(seq.stats.out_of_memory == ooms.load());
    CHECK(seq.stats.out_of_memory > 0);  // the splitting was exercised
    CHECK(seq.stats.tokens == expected.stats.tokens);  // every word annotated exactly once

    for (std::size_t workers = 1; workers <= 4; ++workers) {
      for (const std::size_t budget : {std::size_t{2048}, std::size_t{8192}}) {
        nerpipe::executor_options o;
        o.batch_tokens = budget;
        o.window_docs = 64;
        std::atomic<std::uint64_t> rr_ooms{0};
        const auto got = run_round_robin(docs, workers, o, [&](std::size_t) { return ao; }, &rr_ooms);
        INFO("workers " << workers << ", budget " << budget);
        CHECK(got.lines.size() == docs.size());
        CHECK(got.joined() == expected.joined());
        CHECK(got.stats.errors == 0);
        CHECK(got.stats.retired == 0);  // running out of memory is no strike
        CHECK(got.stats.out_of_memory == rr_ooms.load());
        CHECK(got.stats.out_of_memory > 0);
        CHECK(got.stats.tokens == expected.stats.tokens);
      }
    }
  }
}

TEST_CASE("a document that runs out of memory alone gets exactly one error record", "[executor][oom]") {
  const auto docs = load_ewt();
  const auto clean = run_sequential(docs);
  const std::size_t big = largest_document(docs);
  std::vector<std::size_t> words;
  for (const auto& d : docs) words.push_back(nerpipe::test::count_words(d.text));
  std::vector<std::size_t> sorted = words;
  std::sort(sorted.rbegin(), sorted.rend());
  REQUIRE(sorted[0] > sorted[1]);
  test_annotator_options ao;
  ao.oom_above_words = (sorted[0] + sorted[1]) / 2;  // only the largest document does not fit alone

  const auto seq = run_sequential(docs, {}, ao);
  REQUIRE(seq.lines.size() == docs.size());
  CHECK(seq.stats.errors == 1);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    if (i == big) continue;
    REQUIRE(seq.lines[i] == clean.lines[i]);
  }
  const std::string& line = seq.lines[big];
  INFO(line);
  CHECK(line.rfind("{\"id\": " + docs[big].id + ", ", 0) == 0);
  CHECK(line.find("\"error\": \"failed: out of memory on this document alone (" + std::to_string(docs[big].text.size()) +
                  " bytes, about " + std::to_string(nerpipe::detail::estimate_tokens(docs[big])) + " tokens)") !=
        std::string::npos);
  CHECK(line.find("cuda_error.304") != std::string::npos);
  CHECK(line.find("--batch-tokens") != std::string::npos);
  CHECK(line.find("\"entities\"") == std::string::npos);

  for (std::size_t workers = 1; workers <= 4; ++workers) {
    nerpipe::executor_options o;
    o.window_docs = 32;
    o.batch_tokens = 2048;
    const auto got = run_round_robin(docs, workers, o, [&](std::size_t) { return ao; });
    INFO("workers " << workers);
    CHECK(got.joined() == seq.joined());
    CHECK(got.stats.errors == 1);
    CHECK(got.stats.retired == 0);
  }
}

TEST_CASE("a document too big for one replica is annotated by one with more memory, and nobody is blamed", "[executor][oom]") {
  const auto docs = load_ewt();
  const auto expected = run_sequential(docs).joined();
  for (std::size_t workers = 2; workers <= 4; ++workers) {
    nerpipe::executor_options o;
    o.window_docs = 32;
    o.batch_tokens = 1024;
    o.retire_after = 2;
    // Replica 0 holds 150 words: dozens of documents do not fit there alone. The others hold 1000.
    std::atomic<std::uint64_t> ooms{0};
    const auto got = run_round_robin(
        docs, workers, o,
        [](std::size_t r) {
          test_annotator_options ao;
          ao.oom_above_words = r == 0 ? 150 : 1000;
          return ao;
        },
        &ooms);
    INFO("workers " << workers);
    CHECK(got.joined() == expected);
    CHECK(got.stats.errors == 0);
    CHECK(got.stats.retired == 0);
    CHECK(got.stats.out_of_memory == ooms.load());
  }
}

TEST_CASE("a replica learns how much fits and stops running out of memory", "[executor][oom]") {
  // 100 windows of 100 documents of 50 words; every planned batch is a whole window (5000 words)
  // and only 500 words fit. Without learning, every window would run out at least once.
  constexpr std::size_t windows = 100;
  const auto docs = uniform_docs(windows * 100, 50, 7);
  nerpipe::executor_options o;
  o.window_docs = 100;
  o.batch_tokens = 1 << 20;
  const auto expected = run_sequential(docs, o).joined();
  test_annotator_options ao;
  ao.oom_above_words = 500;

  const auto seq = run_sequential(docs, o, ao);
  CHECK(seq.joined() == expected);
  CHECK(seq.stats.errors == 0);
  CHECK(seq.stats.out_of_memory > 0);
  CHECK(seq.stats.out_of_memory < 10);  // the first window's splits (4), then none
  for (std::size_t workers = 1; workers <= 4; ++workers) {
    const auto got = run_round_robin(docs, workers, o, [&](std::size_t) { return ao; });
    INFO("workers " << workers << ": " << got.stats.out_of_memory << " out of memory");
    CHECK(got.joined() == expected);
    CHECK(got.stats.out_of_memory > 0);
    CHECK(got.stats.out_of_memory < 10 * workers);  // each replica learns once
    CHECK(got.stats.out_of_memory < windows);
  }
}

TEST_CASE("out of memory, poisoned documents, random failures and a broken replica together", "[executor][oom]") {
  const auto docs = load_ewt(/*poison_every=*/23);
  const auto expected = run_sequential(docs);
  CHECK(expected.stats.errors > 10);
  for (std::size_t workers = 1; workers <= 4; ++workers) {
    nerpipe::executor_options o;
    o.window_docs = 24;
    o.batch_tokens = 3000;
    o.ordered = workers != 3;
    const auto got = run_round_robin(docs, workers, o, [&](std::size_t r) {
      test_annotator_options ao;
      ao.oom_above_words = 800;
      ao.batch_failure_rate = 0.25;
      ao.always_throw = workers > 1 && r == 1;
      return ao;
    });
    INFO("workers " << workers);
    REQUIRE(got.lines.size() == docs.size());
    if (o.ordered) {
      CHECK(got.joined() == expected.joined());
    } else {
      std::multiset<std::string> a(expected.lines.begin(), expected.lines.end()), b(got.lines.begin(), got.lines.end());
      CHECK(a == b);
    }
    CHECK(got.stats.errors == expected.stats.errors);
    // Whether the broken replica collects enough strikes before the others finish is up to the
    // scheduler; no working replica may be retired (running out of memory is no strike).
    CHECK(got.stats.retired <= (workers > 1 ? 1u : 0u));
  }
}

TEST_CASE("when most documents do not fit alone, each gets its error record once, in its place", "[executor][oom]") {
  const auto docs = load_ewt();
  test_annotator_options ao;
  ao.oom_above_words = 40;
  const auto expected = run_sequential(docs, {}, ao);
  std::size_t too_big = 0;
  for (const auto& d : docs) too_big += nerpipe::test::count_words(d.text) > 40;
  CHECK(too_big > 100);
  CHECK(expected.stats.errors == too_big);
  for (std::size_t workers = 1; workers <= 4; ++workers) {
    nerpipe::executor_options o;
    o.window_docs = 40;
    o.batch_tokens = 600;
    const auto got = run_round_robin(docs, workers, o, [&](std::size_t) { return ao; });
    INFO("workers " << workers);
    CHECK(got.joined() == expected.joined());
    CHECK(got.stats.errors == too_big);
    CHECK(got.stats.retired == 0);
  }
}

namespace {
/// A CPU policy that says how much memory it has free, as cuda_policy does (cudaMemGetInfo).
struct limited_cpu_policy : nerpipe::cpu_policy {
  limited_cpu_policy() : nerpipe::cpu_policy(1u) {}
  std::size_t free_bytes = 0;
  [[nodiscard]] std::size_t free_memory_bytes() const noexcept { return free_bytes; }
};

/// The test annotator with workspace arithmetic: `bytes_per_row` bytes per model row of a pass.
class measured_annotator final : public nerpipe::annotator {
 public:
  measured_annotator(nerpipe::test::test_annotator_options o, std::atomic<std::uint64_t>* ooms, std::size_t bytes_per_row)
      : inner_(o, nullptr, ooms), bytes_(bytes_per_row) {}
  void annotate(std::span<nerpipe::document> docs) override { inner_.annotate(docs); }
  [[nodiscard]] std::size_t last_token_count() const noexcept override { return inner_.last_token_count(); }
  [[nodiscard]] std::size_t workspace_bytes(const nerpipe::batch_shape& s) const override { return s.rows * bytes_; }

 private:
  nerpipe::test::capitalised_annotator inner_;
  std::size_t bytes_;
};
}  // namespace

TEST_CASE("workspace arithmetic sizes batches to the free memory before anything runs out", "[executor][oom]") {
  const auto docs = load_ewt();
  const auto expected = run_sequential(docs).joined();
  for (const bool with_arithmetic : {false, true}) {
    std::vector<limited_cpu_policy> replicas(2);
    for (auto& r : replicas) r.free_bytes = with_arithmetic ? 400 * 1000 : 0;  // 0: unknown
    nerpipe::executor_options o;
    o.window_docs = 64;
    o.batch_tokens = 4096;
    nerpipe::round_robin<limited_cpu_policy> rr(std::move(replicas), o);
    std::atomic<std::uint64_t> ooms{0};
    vector_source src{&docs};
    std::string out;
    const auto stats = rr.run(
        [&](limited_cpu_policy&, std::size_t) {
          nerpipe::test::test_annotator_options ao;
          ao.oom_above_words = 800;  // every document fits alone
          return std::make_unique<measured_annotator>(ao, &ooms, 1000);
        },
        src, [&](document& d) { nerpipe::format_record(d, {}, out); });
    INFO("with the arithmetic: " << with_arithmetic);
    CHECK(out == expected);
    // 3/4 of 400 kB at 1 kB per row: 256 rows (a power of two), about 1,000 bytes of text, well under 800 words.
    if (with_arithmetic) CHECK(stats.out_of_memory == 0);
    else CHECK(stats.out_of_memory > 0);
  }
}
