// SPDX-License-Identifier: Apache-2.0
//! @file The per-token feature ids a spaCy tok2vec hashes (doc.to_array(attrs) of MultiHashEmbed's
//! extract_features) and its static-vector rows, with a lexeme cache like spaCy's Vocab.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/tokenizer/spacy/string_id.hpp>
#include <nerpipe/tokenizer/spacy_tokenizer.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy {

/// The token attributes spaCy's tok2vec models of en_core_web_* read.
enum class token_attr : std::uint8_t { norm, prefix, suffix, shape, spacy, is_space };

/// The attribute of a MultiHashEmbed `attrs` name; model_error for one nerpipe does not compute.
[[nodiscard]] inline token_attr token_attr_of(const std::string& name) {
  if (name == "NORM") return token_attr::norm;
  if (name == "PREFIX") return token_attr::prefix;
  if (name == "SUFFIX") return token_attr::suffix;
  if (name == "SHAPE") return token_attr::shape;
  if (name == "SPACY") return token_attr::spacy;
  if (name == "IS_SPACE") return token_attr::is_space;
  NERPIPE_THROW(model_error(errc::model_unsupported, "token attribute \"" + name + "\" is not supported, expected NORM, PREFIX, SUFFIX, SHAPE, SPACY or IS_SPACE"));
}

/// The attributes of a tok2vec's hash tables, in column order (`w.embeds[i].attr`).
template <class Weights>
[[nodiscard]] std::vector<token_attr> token_attrs_of(const Weights& w) {
  std::vector<token_attr> out;
  for (const auto& t : w.embeds) out.push_back(token_attr_of(t.attr));
  return out;
}

/// Column of attribute `a` in a batch's word_features (stages::spacy_tokenizer writes every attribute, in
/// token_attr order).
[[nodiscard]] constexpr std::size_t feature_column(token_attr a) noexcept { return static_cast<std::size_t>(a); }
inline constexpr std::size_t feature_columns = 6;

/// Feature ids per token: NORM (the exception's token-level NORM first), PREFIX, SUFFIX, SHAPE as string ids,
/// SPACY and IS_SPACE as 0/1 (get_token_attr in doc.pyx). One object is not for several threads at once.
class token_features {
 public:
  explicit token_features(const spacy_tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  /// Appends n rows of attrs.size() ids for the tokens of `text` to `feats`; with `key2row`, appends each
  /// token's static-vector row (-1: none; key = ORTH's string id) to `vec_rows`.
  void extract(std::string_view text, std::span<const raw_token> toks, std::span<const token_attr> attrs, std::vector<std::uint64_t>& feats,
               const std::unordered_map<std::uint64_t, std::int64_t>* key2row = nullptr, std::vector<std::int64_t>* vec_rows = nullptr) {
    for (const auto& tok : toks) {
      const std::string_view orth = text.substr(tok.begin, tok.end - tok.begin);
      const lex_entry& lx = lexeme(orth);
      for (const token_attr a : attrs) {
        std::uint64_t v = 0;
        switch (a) {
          case token_attr::norm: v = (tok.special && tok.special->has_norm) ? string_id(tok.special->norm) : lx.attrs.norm; break;
          case token_attr::prefix: v = lx.attrs.prefix; break;
          case token_attr::suffix: v = lx.attrs.suffix; break;
          case token_attr::shape: v = lx.attrs.shape; break;
          case token_attr::spacy: v = tok.space ? 1 : 0; break;
          case token_attr::is_space: v = lx.attrs.is_space ? 1 : 0; break;
        }
        feats.push_back(v);
      }
      if (key2row != nullptr && vec_rows != nullptr) {
        const auto r = key2row->find(lx.orth);
        vec_rows->push_back(r == key2row->end() ? -1 : r->second);
      }
    }
  }

  /// IS_SPACE of each token, appended to `out`.
  void is_space(std::string_view text, std::span<const raw_token> toks, std::vector<char>& out) {
    for (const auto& tok : toks) out.push_back(lexeme(text.substr(tok.begin, tok.end - tok.begin)).attrs.is_space ? 1 : 0);
  }

 private:
  struct lex_entry {
    lexeme_attrs attrs;
    std::uint64_t orth = 0;
  };
  const lex_entry& lexeme(std::string_view orth) {
    auto it = cache_.find(orth);
    if (it != cache_.end()) return it->second;
    lex_entry e;
    e.attrs = tokenizer_->lexeme(orth);
    e.orth = string_id(orth);
    return cache_.emplace(std::string(orth), e).first->second;
  }
  struct sv_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  const spacy_tokenizer* tokenizer_;
  std::unordered_map<std::string, lex_entry, sv_hash, std::equal_to<>> cache_;
};

}  // namespace spacy
NERPIPE_NAMESPACE_END
