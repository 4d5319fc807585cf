// SPDX-License-Identifier: Apache-2.0
//! @file The layering check: scans include/nerpipe/ and fails on every header that breaks a layout rule.
//!
//! Rules (style anchors §4):
//!  - components (embedding/ encoder/ head/) and host-only stages (tokenizer/ io/ model/ merge/) never
//!    include cpu/, cuda/ or any .cuh, directly or through other nerpipe headers;
//!  - host-only stages never include ops/ (directly or indirectly);
//!  - .cuh files live under cuda/ (or are the cuda.cuh umbrella) and start with the nvcc #error guard;
//!  - no .hpp includes a .cuh;
//!  - every header has the SPDX line first and `#pragma once`.
//! Each violation is printed as `path:line: rule: text`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef NERPIPE_SOURCE_DIR
#error "NERPIPE_SOURCE_DIR (the repository root) must be defined for the layout check"
#endif

namespace fs = std::filesystem;

namespace {

struct violation {
  std::string file;  // relative to the scanned include directory, e.g. nerpipe/encoder/x.hpp
  std::size_t line;  // 1-based; 0 when the rule is about the whole file
  std::string rule;
  std::string text;
};

struct include_line {
  std::size_t line;
  std::string target;  // normalised to "nerpipe/..." when it names a nerpipe header
  std::string text;
};

struct header {
  std::string rel;  // nerpipe/<folder>/<name>
  std::vector<std::string> lines;
  std::vector<include_line> includes;
};

const std::set<std::string> component_dirs{"embedding", "encoder", "head", "tokenizer", "io", "model", "merge"};
const std::set<std::string> host_only_dirs{"io", "model", "tokenizer", "merge"};

std::string top_folder(const std::string& rel) {  // "nerpipe/encoder/x.hpp" -> "encoder"; top-level files -> ""
  const auto a = rel.find('/');
  const auto b = rel.find('/', a + 1);
  return b == std::string::npos ? std::string() : rel.substr(a + 1, b - a - 1);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool is_device_target(const std::string& t) {
  return starts_with(t, "nerpipe/cpu/") || starts_with(t, "nerpipe/cuda/") || ends_with(t, ".cuh");
}

std::map<std::string, header> load_headers(const fs::path& include_dir) {
  static const std::regex include_re(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  std::map<std::string, header> out;
  const fs::path root = include_dir / "nerpipe";
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const auto ext = entry.path().extension().string();
    if (ext != ".hpp" && ext != ".cuh" && ext != ".h") continue;
    header h;
    h.rel = entry.path().lexically_relative(include_dir).generic_string();
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      h.lines.push_back(line);
      std::smatch m;
      if (std::regex_search(line, m, include_re)) {
        std::string target = m[2].str();
        if (m[1].str() == "\"") {  // resolve a relative include against the including file
          const fs::path resolved = (entry.path().parent_path() / target).lexically_normal();
          const auto rel = resolved.lexically_relative(include_dir).generic_string();
          if (!rel.empty() && !starts_with(rel, "..")) target = rel;
        }
        h.includes.push_back({h.lines.size(), target, line});
      }
    }
    out.emplace(h.rel, std::move(h));
  }
  return out;
}

/// The first nerpipe header reachable from `from` (not counting itself) that `bad` accepts, as a chain.
template <class Pred>
std::optional<std::vector<std::string>> reaches(const std::map<std::string, header>& all, const std::string& from,
                                                Pred bad) {
  std::map<std::string, std::string> parent;
  std::vector<std::string> stack{from};
  std::set<std::string> seen{from};
  while (!stack.empty()) {
    const std::string cur = stack.back();
    stack.pop_back();
    const auto it = all.find(cur);
    if (it == all.end()) continue;
    for (const auto& inc : it->second.includes) {
      if (!starts_with(inc.target, "nerpipe/") || !seen.insert(inc.target).second) continue;
      parent[inc.target] = cur;
      if (bad(inc.target)) {
        std::vector<std::string> chain{inc.target};
        for (std::string p = cur; p != from; p = parent[p]) chain.push_back(p);
        chain.push_back(from);
        std::reverse(chain.begin(), chain.end());
        return chain;
      }
      stack.push_back(inc.target);
    }
  }
  return std::nullopt;
}

std::string join_chain(const std::vector<std::string>& chain) {
  std::string s;
  for (const auto& c : chain) s += (s.empty() ? "" : " -> ") + c;
  return s;
}

std::vector<violation> check_layout(const fs::path& include_dir) {
  std::vector<violation> v;
  const auto all = load_headers(include_dir);
  for (const auto& [rel, h] : all) {
    const std::string folder = top_folder(rel);
    const bool is_cuh = ends_with(rel, ".cuh");

    // Every header: SPDX first, #pragma once somewhere.
    if (h.lines.empty() || h.lines[0] != "// SPDX-License-Identifier: Apache-2.0")
      v.push_back({rel, 1, "the first line must be '// SPDX-License-Identifier: Apache-2.0'",
                   h.lines.empty() ? "(empty file)" : h.lines[0]});
    static const std::regex pragma_re(R"(^\s*#\s*pragma\s+once\b)");
    if (std::none_of(h.lines.begin(), h.lines.end(),
                     [](const std::string& l) { return std::regex_search(l, pragma_re); }))
      v.push_back({rel, 0, "missing '#pragma once'", ""});

    // .cuh: location and the nvcc guard before any include.
    if (is_cuh) {
      if (folder != "cuda" && rel != "nerpipe/cuda.cuh")
        v.push_back({rel, 0, ".cuh files live only under nerpipe/cuda/ (or are nerpipe/cuda.cuh)", ""});
      static const std::regex if_re(R"(^\s*#\s*if\s+!\s*defined\s*\(?\s*__CUDACC__\s*\)?\s*$)");
      static const std::regex error_re(R"(^\s*#\s*error\s+"nerpipe: .+")");
      std::optional<std::size_t> guard;
      for (std::size_t i = 0; i + 1 < h.lines.size(); ++i)
        if (std::regex_search(h.lines[i], if_re) && std::regex_search(h.lines[i + 1], error_re)) {
          guard = i + 1;
          break;
        }
      const std::size_t first_include = h.includes.empty() ? h.lines.size() + 1 : h.includes.front().line;
      if (!guard)
        v.push_back(
            {rel, 0, ".cuh must start with '#if !defined(__CUDACC__)' followed by '#error \"nerpipe: ...\"'", ""});
      else if (*guard > first_include)
        v.push_back({rel, h.includes.front().line, "the nvcc #error guard must come before the first #include",
                     h.includes.front().text});
    }

    for (const auto& inc : h.includes) {
      if (!is_cuh && ends_with(inc.target, ".cuh"))
        v.push_back({rel, inc.line, "a .hpp never includes a .cuh", inc.text});
      if (component_dirs.count(folder) && is_device_target(inc.target))
        v.push_back(
            {rel, inc.line, folder + "/ never includes cpu/, cuda/ or a .cuh (use <nerpipe/ops/ops.hpp>)", inc.text});
      if (host_only_dirs.count(folder) && starts_with(inc.target, "nerpipe/ops/"))
        v.push_back({rel, inc.line, folder + "/ is host-only and never includes ops/", inc.text});
    }

    // The same rules through other nerpipe headers (reported once per header, with the chain).
    if (component_dirs.count(folder)) {
      if (auto chain = reaches(all, rel, is_device_target); chain && chain->size() > 2)
        v.push_back({rel, 0, folder + "/ reaches cpu/, cuda/ or a .cuh indirectly", join_chain(*chain)});
    }
    if (host_only_dirs.count(folder)) {
      if (auto chain = reaches(all, rel, [](const std::string& t) { return starts_with(t, "nerpipe/ops/"); });
          chain && chain->size() > 2)
        v.push_back({rel, 0, folder + "/ is host-only and reaches ops/ indirectly", join_chain(*chain)});
    }
  }
  return v;
}

std::string describe(const std::vector<violation>& v, const std::string& prefix) {
  std::ostringstream s;
  s << v.size() << " layout violation(s):\n";
  for (const auto& x : v) {
    s << "  " << prefix << x.file;
    if (x.line) s << ":" << x.line;
    s << ": " << x.rule;
    if (!x.text.empty()) s << ": " << x.text;
    s << "\n";
  }
  return s.str();
}

// A scratch include tree for the self-test.
struct scratch_tree {
  fs::path dir;
  scratch_tree() {
    std::random_device rd;
    dir = fs::temp_directory_path() / ("nerpipe_layout_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir / "nerpipe");
  }
  ~scratch_tree() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write(const std::string& rel, const std::string& body) const {
    const fs::path p = dir / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << body;
  }
};

const char* const good_prefix = "// SPDX-License-Identifier: Apache-2.0\n//! @file x\n#pragma once\n";
const char* const cuda_guard =
    "#if !defined(__CUDACC__)\n#error \"nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file\"\n"
    "#endif\n";

bool has(const std::vector<violation>& v, const std::string& file, std::size_t line, const std::string& rule_part) {
  return std::any_of(v.begin(), v.end(), [&](const violation& x) {
    return x.file == file && x.line == line && x.rule.find(rule_part) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("include/nerpipe follows the layering rules", "[layout]") {
  const fs::path include_dir = fs::path(NERPIPE_SOURCE_DIR) / "include";
  REQUIRE(fs::is_directory(include_dir / "nerpipe"));
  const auto v = check_layout(include_dir);
  if (!v.empty()) std::cerr << describe(v, "include/");  // unwrapped, one per line, for editors and grep
  INFO(describe(v, "include/"));
  CHECK(v.empty());
}

TEST_CASE("the layout check reports each kind of violation with its file and line", "[layout]") {
  const scratch_tree t;
  const std::string p = good_prefix;
  // Clean files, including a .cuh done right and a component that uses ops/.
  t.write("nerpipe/ops/ops.hpp", p);
  t.write("nerpipe/cpu/ops.hpp", p + "#include <nerpipe/ops/ops.hpp>\n");
  t.write("nerpipe/cuda/good.cuh", "// SPDX-License-Identifier: Apache-2.0\n#pragma once\n" + std::string(cuda_guard) +
                                       "#include <nerpipe/ops/ops.hpp>\n");
  t.write("nerpipe/encoder/clean.hpp", p + "#include <nerpipe/ops/ops.hpp>\n");
  REQUIRE(check_layout(t.dir).empty());

  // One violation of each kind.
  t.write("nerpipe/encoder/bad_cpu.hpp", p + "#include <vector>\n#include <nerpipe/cpu/ops.hpp>\n");
  t.write("nerpipe/head/bad_cuda.hpp", p + "\n#include <nerpipe/cuda/good.cuh>\n");
  t.write("nerpipe/embedding/bad_rel.hpp", p + "#include \"../cpu/ops.hpp\"\n");
  t.write("nerpipe/model/bad_ops.hpp", p + "#include <nerpipe/ops/ops.hpp>\n");
  t.write("nerpipe/merge/bad_indirect.hpp", p + "#include <nerpipe/encoder/bad_cpu.hpp>\n");
  t.write("nerpipe/cuda/no_guard.cuh", p + "#include <nerpipe/ops/ops.hpp>\n");
  t.write("nerpipe/cuda/late_guard.cuh", p + "#include <nerpipe/ops/ops.hpp>\n" + cuda_guard);
  t.write("nerpipe/pipeline/includes_cuh.hpp", p + "#include <nerpipe/cuda/good.cuh>\n");
  t.write("nerpipe/core/stray.cuh", p + cuda_guard);
  t.write("nerpipe/core/no_spdx.hpp", "#pragma once\n");
  t.write("nerpipe/core/no_pragma.hpp", "// SPDX-License-Identifier: Apache-2.0\n");

  const auto v = check_layout(t.dir);
  INFO(describe(v, ""));
  CHECK(has(v, "nerpipe/encoder/bad_cpu.hpp", 5, "encoder/ never includes cpu/"));
  CHECK(has(v, "nerpipe/head/bad_cuda.hpp", 5, "head/ never includes cpu/"));
  CHECK(has(v, "nerpipe/head/bad_cuda.hpp", 5, "a .hpp never includes a .cuh"));
  CHECK(has(v, "nerpipe/embedding/bad_rel.hpp", 4, "embedding/ never includes cpu/"));
  CHECK(has(v, "nerpipe/model/bad_ops.hpp", 4, "host-only and never includes ops/"));
  CHECK(has(v, "nerpipe/merge/bad_indirect.hpp", 0, "reaches cpu/, cuda/ or a .cuh indirectly"));
  CHECK(has(v, "nerpipe/merge/bad_indirect.hpp", 0, "host-only and reaches ops/ indirectly"));
  CHECK(has(v, "nerpipe/cuda/no_guard.cuh", 0, "must start with '#if !defined(__CUDACC__)'"));
  CHECK(has(v, "nerpipe/cuda/late_guard.cuh", 4, "guard must come before the first #include"));
  CHECK(has(v, "nerpipe/pipeline/includes_cuh.hpp", 4, "a .hpp never includes a .cuh"));
  CHECK(has(v, "nerpipe/core/stray.cuh", 0, ".cuh files live only under nerpipe/cuda/"));
  CHECK(has(v, "nerpipe/core/no_spdx.hpp", 1, "SPDX"));
  CHECK(has(v, "nerpipe/core/no_pragma.hpp", 0, "#pragma once"));
  // ...and nothing about the clean files.
  for (const char* clean :
       {"nerpipe/ops/ops.hpp", "nerpipe/cpu/ops.hpp", "nerpipe/cuda/good.cuh", "nerpipe/encoder/clean.hpp"})
    CHECK_FALSE(std::any_of(v.begin(), v.end(), [&](const violation& x) { return x.file == clean; }));
  CHECK(v.size() == 13);
}
