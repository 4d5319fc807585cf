// SPDX-License-Identifier: Apache-2.0
// spaCy's lg pipelines (en_core_web_lg 3.8.0: ~514k keys with a 300-column row each, ~617 MB) have md's
// architecture; what differs is the static vectors table: md shares 20k rows among its keys, lg gives every
// key its own row. en_core_web_lg is not on any package index the test command can use, so this test builds
// the lg shape from md: every key of md's vocab/key2row gets a row of its own (a copy of the row it shares in
// md), rows in key order, unrelated to md's. Each key keeps its vector, so spaCy gives md's entities on the
// copy (checked with spaCy 3.8.7 on all 858 EWT documents: tools/fixtures/lg_shaped.py), and nerpipe must too:
// the md fixtures are the reference. Release build only (the table is too large for a useful ASan run).
#include <catch2/catch.hpp>

#include "spacy_test_support.hpp"

#include <nerpipe/model/spacy/loader.hpp>

#include <msgpack.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace st = nerpipe_spacy_test;
namespace fs = std::filesystem;

namespace {

/// Writes md's vectors as an lg-shaped table into `out` (a copy of the md directory): one row per key.
/// Returns the number of rows written.
std::size_t write_lg_shaped(const fs::path& md, const fs::path& out) {
  fs::copy(md, out, fs::copy_options::recursive);
  const auto table = nerpipe::spacy::detail::load_npy(md / "vocab" / "vectors");
  const std::size_t cols = table.shape.at(1);
  const auto key2row = nerpipe::spacy::detail::load_key2row(md / "vocab" / "key2row", table.shape.at(0));
  std::vector<std::pair<std::uint64_t, std::int64_t>> keys(key2row.begin(), key2row.end());
  std::sort(keys.begin(), keys.end());

  // .npy v1.0: magic, version, little-endian header length, a Python dict literal padded to 64 bytes.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(keys.size()) + ", " +
                       std::to_string(cols) + "), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::ofstream npy(out / "vocab" / "vectors", std::ios::binary | std::ios::trunc);
  npy.write("\x93NUMPY\x01\x00", 8);
  npy.put(static_cast<char>(header.size() & 0xff));
  npy.put(static_cast<char>(header.size() >> 8));
  npy.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& [key, row] : keys)
    npy.write(reinterpret_cast<const char*>(table.data.data() + static_cast<std::size_t>(row) * cols),
              static_cast<std::streamsize>(cols * sizeof(float)));
  npy.close();
  REQUIRE(npy.good());

  msgpack::sbuffer buf;
  st::packer pk(&buf);
  pk.pack_map(static_cast<std::uint32_t>(keys.size()));
  for (std::size_t r = 0; r < keys.size(); ++r) {
    pk.pack_uint64(keys[r].first);
    pk.pack_uint64(r);
  }
  st::write_file(out / "vocab" / "key2row", std::string(buf.data(), buf.size()));
  return keys.size();
}

}  // namespace

TEST_CASE("spacy NER (lg-shaped: a vectors row per key): every EWT document gets spaCy's entities",
          "[spacy][fidelity][model]") {
  auto md = st::model_dir("md");
  if (!md) return;  // skipped, or failed under CI: model_dir says what is missing
  st::temp_dir tmp;
  const fs::path lg = tmp.path / "en_core_web_lg_shaped";
  const std::size_t rows = write_lg_shaped(*md, lg);
  const auto model = nerpipe::load_spacy_model(lg);
  REQUIRE(model.ner.has_static_vectors);
  INFO(rows << " rows of " << model.ner.vectors.data.shape.at(1) << " floats");
  CHECK(rows > 500000);  // en_core_web_lg's order of size, against md's 20k rows
  CHECK(model.ner.vectors.data.shape.at(0) == rows);
  st::check_ewt_entities(model, "ewt_md");
}
