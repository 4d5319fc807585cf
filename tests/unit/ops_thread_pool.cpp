// SPDX-License-Identifier: Apache-2.0
//! @file thread_pool: coverage of [0, n), exception propagation, many small jobs, inline pools.
#include <nerpipe/core/thread_pool.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using nerpipe::thread_pool;

namespace {
// Runs one parallel_for and returns how often each index was visited and the chunks seen.
struct coverage {
  std::vector<int> hits;
  std::vector<std::pair<std::size_t, std::size_t>> chunks;
};

coverage cover(thread_pool& pool, std::size_t n, std::size_t grain) {
  coverage c;
  c.hits.assign(n, 0);
  std::mutex m;
  pool.parallel_for(
      n,
      [&](std::size_t b, std::size_t e) {
        std::lock_guard lock(m);
        c.chunks.emplace_back(b, e);
        for (std::size_t i = b; i < e; ++i) ++c.hits[i];
      },
      grain);
  return c;
}
}  // namespace

TEST_CASE("thread_pool::parallel_for visits every index exactly once", "[thread_pool]") {
  for (unsigned threads : {1u, 2u, 3u, 5u}) {
    thread_pool pool(threads);
    CHECK(pool.size() == threads);
    for (std::size_t n : {1, 2, 3, 4, 5, 7, 16, 100, 1001})
      for (std::size_t grain : {1, 2, 3, 64}) {
        INFO("threads " << threads << " n " << n << " grain " << grain);
        const auto c = cover(pool, n, grain);
        CHECK(std::count(c.hits.begin(), c.hits.end(), 1) == static_cast<std::ptrdiff_t>(n));
        // At most one chunk per thread, none empty, and never more than n / grain chunks.
        CHECK(c.chunks.size() <= threads);
        CHECK(c.chunks.size() <= std::max<std::size_t>(1, n / grain));
        for (auto [b, e] : c.chunks) CHECK(b < e);
      }
  }
}

TEST_CASE("thread_pool::parallel_for with n == 0 calls nothing", "[thread_pool]") {
  thread_pool pool(3);
  int calls = 0;
  pool.parallel_for(0, [&](std::size_t, std::size_t) { ++calls; });
  CHECK(calls == 0);
}

TEST_CASE("thread_pool of size 1 (or 0) runs inline on the calling thread", "[thread_pool]") {
  for (unsigned threads : {0u, 1u}) {
    thread_pool pool(threads);
    CHECK(pool.size() == 1);
    std::thread::id seen;
    pool.parallel_for(1000, [&](std::size_t b, std::size_t e) {
      CHECK(b == 0);
      CHECK(e == 1000);
      seen = std::this_thread::get_id();
    });
    CHECK(seen == std::this_thread::get_id());
  }
}

TEST_CASE("thread_pool uses its worker threads when there is enough work", "[thread_pool]") {
  thread_pool pool(3);
  std::mutex m;
  std::set<std::thread::id> ids;
  pool.parallel_for(3, [&](std::size_t, std::size_t) {
    std::lock_guard lock(m);
    ids.insert(std::this_thread::get_id());
  });
  CHECK(ids.size() == 3);
  CHECK(ids.count(std::this_thread::get_id()) == 1);  // the caller takes chunk 0
}

TEST_CASE("thread_pool survives many small parallel_fors", "[thread_pool]") {
  thread_pool pool(3);
  std::atomic<long long> sum{0};
  long long expected = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::size_t n = 1 + static_cast<std::size_t>(round % 7);
    pool.parallel_for(n, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) sum += static_cast<long long>(i) + round;
    });
    for (std::size_t i = 0; i < n; ++i) expected += static_cast<long long>(i) + round;
  }
  CHECK(sum.load() == expected);
}

TEST_CASE("thread_pool rethrows an exception thrown in any chunk and stays usable", "[thread_pool]") {
  thread_pool pool(3);
  SECTION("thrown by a worker's chunk") {
    const auto throwing = [](std::size_t b, std::size_t) {
      if (b != 0) throw std::runtime_error("worker chunk " + std::to_string(b));
    };
    CHECK_THROWS_WITH(pool.parallel_for(9, throwing), Catch::Matchers::StartsWith("worker chunk"));
  }
  SECTION("thrown by the caller's own chunk") {
    CHECK_THROWS_AS(pool.parallel_for(9,
                                      [](std::size_t b, std::size_t) {
                                        if (b == 0) throw std::out_of_range("caller chunk");
                                      }),
                    std::out_of_range);
  }
  SECTION("thrown by every chunk: exactly one is rethrown") {
    int caught = 0;
    try {
      pool.parallel_for(9, [](std::size_t, std::size_t) { throw std::logic_error("every chunk"); });
    } catch (const std::logic_error&) {
      ++caught;
    }
    CHECK(caught == 1);
  }
  SECTION("thrown on a pool of one thread") {
    thread_pool single(1);
    CHECK_THROWS_AS(single.parallel_for(5, [](std::size_t, std::size_t) { throw std::runtime_error("x"); }),
                    std::runtime_error);
  }
  // After any of the above, the pool still does ordinary work, and the old error does not resurface.
  for (int i = 0; i < 100; ++i) {
    const auto c = cover(pool, 30, 1);
    REQUIRE(std::count(c.hits.begin(), c.hits.end(), 1) == 30);
  }
}

TEST_CASE("cpu_policy copies share one pool", "[thread_pool][policy]") {
  const nerpipe::cpu_policy a(3);
  const nerpipe::cpu_policy b = a;  // NOLINT(performance-unnecessary-copy-initialization): the copy is the test
  CHECK(&a.pool() == &b.pool());
  CHECK(b.threads() == 3);
  CHECK(nerpipe::cpu_policy(0).threads() >= 1);
}
