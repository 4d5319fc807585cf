// SPDX-License-Identifier: Apache-2.0
//! @file A user's first program, exactly as the design's api.md writes it: built against the installed package
//! and run (tests/package/run_first_program.sh) in a folder where models/en_core_web_sm is the default model and
//! corpus.jsonl is EWT text.
#include <nerpipe/nerpipe.hpp>
#include <iostream>

int main() {
  auto model = nerpipe::load_model("models/en_core_web_sm");   // or a Hugging Face model directory
  auto nlp   = nerpipe::make_pipeline(nerpipe::cpu_policy{}, model);
  for (const nerpipe::document& doc : nlp.pipe(nerpipe::jsonl_reader("corpus.jsonl")))
    for (const nerpipe::entity& e : doc.entities)
      std::cout << doc.id << '\t' << e.start << '\t' << e.end << '\t' << e.label << '\n';
}
