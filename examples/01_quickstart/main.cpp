// SPDX-License-Identifier: Apache-2.0
//! @file A user's first program (docs: api.md): load a model, run its pipeline over a JSONL corpus, print every
//! entity. The pipeline batches inside; documents come back in input order, bad records with their status set.
//!   example_01_quickstart MODEL_DIR CORPUS.jsonl
#include <nerpipe/nerpipe.hpp>

#include <iostream>

int main(int argc, char** argv) try {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR CORPUS.jsonl\n";
    return 2;
  }
  auto model = nerpipe::load_model(argv[1]);                      // spaCy or Hugging Face directory
  auto nlp = nerpipe::make_pipeline(nerpipe::cpu_policy{}, model);  // cuda_policy{0} in a .cu file
  for (const nerpipe::document& doc : nlp.pipe(nerpipe::jsonl_reader(argv[2])))
    for (const nerpipe::entity& e : doc.entities)
      std::cout << doc.id << '\t' << e.start << '\t' << e.end << '\t' << e.label << '\t' << e.text << '\n';
  return 0;
} catch (const nerpipe::error& e) {
  std::cerr << e.what() << '\n';
  return 1;
}
