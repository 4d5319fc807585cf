// SPDX-License-Identifier: Apache-2.0
//! @file What a test needs and may not have: a downloaded model, a data file, a GPU. A missing prerequisite
//! makes the test case *skipped* (counted and named by the runner in tests/main.cpp, which then exits 77,
//! CTest's skip code) — never passed. Under CI=true a missing model or data file is a *failure* instead:
//! the test command (scripts/test.sh) fetches every one of them, so missing means broken. Only a missing
//! device may skip in CI.
//!
//!     if (!nerpipe::test::require_path(dir / "config.cfg", "en_core_web_sm (scripts/get-model.sh models sm)")) return;
#pragma once

#include <catch2/catch.hpp>

#include "device_count.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nerpipe::test {

/// The runner's record of skipped test cases (one process; tests/main.cpp reads it).
struct skip_record {
  bool current = false;                                       ///< the running test case was skipped
  std::string reason;                                         ///< why
  std::vector<std::pair<std::string, std::string>> skipped;  ///< (test case, why), for the summary
};
inline skip_record& skips() {
  static skip_record r;
  return r;
}

/// Whether this run is CI's (CI=true, as CI services set it; "1" too).
inline bool in_ci() {
  const char* v = std::getenv("CI");
  return v != nullptr && (std::string_view(v) == "true" || std::string_view(v) == "1");
}

/// Marks the running test case skipped because `what` is missing; always returns false, so a test
/// writes `if (!...) return;`. `may_skip_in_ci`: only for devices (a GPU); for models and data files a
/// CI run fails here with the same message.
inline bool missing_prerequisite(std::string_view what, bool may_skip_in_ci = false) {
  if (in_ci() && !may_skip_in_ci)
    FAIL("missing under CI=true: " << what << " (scripts/test.sh must fetch it; nothing may skip in CI but GPU tests)");
  skips().current = true;
  skips().reason = std::string(what);
  SUCCEED("skipped: " << what);  // an assertion, so --warn NoAssertions does not turn the skip into a failure
  return false;
}

/// True when `path` exists; otherwise the test case is skipped (failed under CI) naming `what`.
inline bool require_path(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return true;
  return missing_prerequisite(std::string(what) + ": " + path.string() + " not found");
}

/// True when at least `n` CUDA devices exist; otherwise the test case is skipped, in CI too.
inline bool require_devices(int n = 1) {
  const int have = cuda_device_count();
  if (have >= n) return true;
  return missing_prerequisite(std::to_string(n) + " CUDA device(s) (" + std::to_string(have) + " found)", true);
}

}  // namespace nerpipe::test
