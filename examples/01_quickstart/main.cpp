// SPDX-License-Identifier: Apache-2.0
//! @file A user's first program: load a model, read a JSONL corpus, print every entity.
//!   example_01_quickstart MODEL_DIR CORPUS.jsonl
#include <nerpipe/nerpipe.hpp>

#include <iostream>
#include <span>
#include <vector>

int main(int argc, char** argv) try {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR CORPUS.jsonl\n";
    return 2;
  }
  auto model = nerpipe::load_model(argv[1]);                               // spaCy or Hugging Face directory
  auto nlp = nerpipe::make_annotator(nerpipe::cpu_policy{}, model);        // cuda_policy{0} in a .cu file
  nerpipe::jsonl_reader corpus(argv[2]);
  std::vector<nerpipe::document> batch(64);
  for (std::size_t n = 0;;) {
    n = 0;
    while (n < batch.size() && corpus.next(batch[n])) ++n;                 // bad records come with status set
    if (n == 0) break;
    nlp->annotate(std::span(batch.data(), n));
    for (const auto& doc : std::span(batch.data(), n))
      for (const auto& e : doc.entities)
        std::cout << doc.id << '\t' << e.start << '\t' << e.end << '\t' << e.label << '\t' << e.text << '\n';
  }
  return 0;
} catch (const nerpipe::error& e) {
  std::cerr << e.what() << '\n';
  return 1;
}
