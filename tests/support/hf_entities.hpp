// SPDX-License-Identifier: Apache-2.0
//! @file One entity of the transformers token-classification pipeline, read from its JSON form (the
//! golden files of the HF tests): {"entity" + "index"} (aggregation none) or {"entity_group"}, with
//! "word", "score", "start", "end".
#pragma once

#include <nerpipe/head/hf_postprocess.hpp>

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nerpipe::test {

inline hf_entity hf_entity_from_json(simdjson::dom::element e) {
  hf_entity x;
  std::string_view s;
  if (!e["entity"].get_string().get(s)) {
    x.label = s;
    x.grouped = false;
    x.index = std::int64_t(e["index"]);
  } else {
    x.label = std::string_view(e["entity_group"]);
  }
  x.word = std::string_view(e["word"]);
  x.score = static_cast<float>(double(e["score"]));
  x.start = static_cast<std::size_t>(std::int64_t(e["start"]));
  x.end = static_cast<std::size_t>(std::int64_t(e["end"]));
  return x;
}

}  // namespace nerpipe::test
