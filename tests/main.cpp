// SPDX-License-Identifier: Apache-2.0
//! @file The shared Catch2 2.13 runner. It counts test cases as passed, failed or *skipped* (a missing
//! prerequisite, tests/support/prerequisite.hpp), prints one summary line, appends it to
//! $NERPIPE_TEST_SUMMARY when set (scripts/test.sh adds them up), and exits 77 — CTest's SKIP_RETURN_CODE —
//! when nothing failed but something was skipped, so CTest reports the entry skipped, never passed.
//! `--require-devices N` skips the whole binary (exit 77) when fewer than N CUDA devices exist.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/device_count.hpp"
#include "support/prerequisite.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct outcome_counts {
  std::size_t passed = 0, failed = 0, skipped = 0;
};
outcome_counts& counts() {
  static outcome_counts c;
  return c;
}

/// Sorts each finished test case into passed / failed / skipped.
struct outcome_listener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    auto& s = nerpipe::test::skips();
    s.current = false;
    s.reason.clear();
    TestEventListenerBase::testCaseStarting(info);
  }
  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    auto& s = nerpipe::test::skips();
    if (stats.totals.assertions.failed > 0 || stats.totals.testCases.failed > 0) {
      ++counts().failed;
    } else if (s.current) {
      ++counts().skipped;
      s.skipped.emplace_back(stats.testInfo.name, s.reason);
    } else {
      ++counts().passed;
    }
    TestEventListenerBase::testCaseEnded(stats);
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(outcome_listener)

int main(int argc, char** argv) {
  Catch::Session session;
  int required = 0;
  std::string label = "tests";
  session.cli(session.cli() |
              Catch::clara::Opt(required, "n")["--require-devices"]("skip (exit 77) unless n CUDA devices exist") |
              Catch::clara::Opt(label, "name")["--summary-label"]("the name of this run in the summary line"));
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  const bool listing = session.configData().listTests || session.configData().listTestNamesOnly ||
                       session.configData().listTags || session.configData().listReporters;
  auto report = [&](std::size_t passed, std::size_t failed, std::size_t skipped, const std::string& extra) {
    if (listing) return;
    char head[256];
    std::snprintf(head, sizeof head, "test-summary %s: %zu test cases ran, %zu passed, %zu failed, %zu skipped",
                  label.c_str(), passed + failed + skipped, passed, failed, skipped);
    const std::string line = head + extra + "\n";
    std::fputs(line.c_str(), stdout);
    if (const char* path = std::getenv("NERPIPE_TEST_SUMMARY"); path != nullptr && *path != '\0')
      if (std::FILE* f = std::fopen(path, "a")) {  // one short append per run: whole lines under ctest -j
        std::fputs(line.c_str(), f);
        std::fclose(f);
      }
  };
  if (required > 0) {
    const int have = nerpipe::test::cuda_device_count();
    if (have < required) {
      std::printf("SKIPPED: %d CUDA device(s) required, %d found\n", required, have);
      report(0, 0, 0, " (whole binary skipped: no CUDA device)");
      return 77;
    }
  }
  const int failures = session.run();
  const auto& c = counts();
  std::string names;
  for (const auto& [name, why] : nerpipe::test::skips().skipped) {
    std::printf("SKIPPED: %s — %s\n", name.c_str(), why.c_str());
    names += names.empty() ? " (skipped: " : "; ";
    names += name;
  }
  if (!names.empty()) names += ")";
  report(c.passed, c.failed, c.skipped, names);
  if (failures != 0) return failures;
  return c.skipped > 0 ? 77 : 0;
}
