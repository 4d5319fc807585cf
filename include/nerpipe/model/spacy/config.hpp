// SPDX-License-Identifier: Apache-2.0
//! @file A small JSON value reader and the confection (config.cfg) subset spaCy pipelines use.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>

#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy {

struct json_member;

/// A parsed JSON value (meta.json, ner/cfg, the moves string, config.cfg values).
struct json_value {
  enum class kind : std::uint8_t { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool b = false;
  double num = 0.0;
  std::string str;
  std::vector<json_value> items;                             // array
  std::vector<json_member> members;  // object, in file order

  [[nodiscard]] const json_value* find(std::string_view key) const noexcept;
  [[nodiscard]] bool is_null() const noexcept { return type == kind::null; }
};

/// One key of a JSON object.
struct json_member {
  std::string key;
  json_value value;
};

inline const json_value* json_value::find(std::string_view key) const noexcept {
  for (const auto& m : members)
    if (m.key == key) return &m.value;
  return nullptr;
}

namespace detail {

class json_parser {
 public:
  json_parser(std::string_view text, std::string file) : s_(text), file_(std::move(file)) {}

  json_value parse_document() {
    json_value v = parse_value();
    skip_ws();
    if (i_ != s_.size()) fail("trailing characters after the JSON value", "end of input");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what, const std::string& expected) const {
    // Built with append: GCC 12 at -O3 warns (-Wrestrict, a false positive) on "'" + std::string(...).
    std::string got;
    if (i_ < s_.size()) {
      got.append(1, '\'').append(s_.substr(i_, 12)).append(1, '\'');
    } else {
      got = "end of input";
    }
    NERPIPE_THROW(model_error(errc::model_file_malformed, file_ + ": " + what + " at offset " + std::to_string(i_) +
                                                              ", expected " + expected + ", got " + got));
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  bool consume(std::string_view lit) {
    if (s_.substr(i_, lit.size()) == lit) {
      i_ += lit.size();
      return true;
    }
    return false;
  }
  std::uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape", "4 hex digits");
    std::uint32_t v = 0;
    auto r = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, v, 16);
    if (r.ptr != s_.data() + i_ + 4) fail("bad \\u escape", "4 hex digits");
    i_ += 4;
    return v;
  }
  std::string parse_string() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string", "'\"'");
      char c = s_[i_++];
      if (c == '"') break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape", "an escape character");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
            const std::size_t at = i_;
            i_ += 2;
            const std::uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else i_ = at;  // not a pair: the high surrogate stands alone
          }
          if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;  // a lone surrogate has no UTF-8 form
          ::nerpipe::utf8::append(out, cp);
          break;
        }
        default: fail("unknown escape", "one of \"\\/bfnrtu");
      }
    }
    return out;
  }
  json_value parse_value(std::size_t depth = 0) {
    skip_ws();
    if (i_ >= s_.size()) fail("missing value", "a JSON value");
    if (depth > 256) fail("nesting deeper than 256 levels", "a shallower value");
    json_value v;
    char c = s_[i_];
    if (c == '"') {
      v.type = json_value::kind::string;
      v.str = parse_string();
    } else if (c == '[') {
      ++i_;
      v.type = json_value::kind::array;
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      while (true) {
        v.items.push_back(parse_value(depth + 1));
        skip_ws();
        if (consume("]")) break;
        if (!consume(",")) fail("bad array", "',' or ']'");
      }
    } else if (c == '{') {
      ++i_;
      v.type = json_value::kind::object;
      skip_ws();
      if (consume("}")) return v;
      while (true) {
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != '"') fail("bad object key", "a string");
        std::string k = parse_string();
        skip_ws();
        if (!consume(":")) fail("bad object", "':'");
        v.members.push_back(json_member{std::move(k), parse_value(depth + 1)});
        skip_ws();
        if (consume("}")) break;
        if (!consume(",")) fail("bad object", "',' or '}'");
      }
    } else if (consume("true")) {
      v.type = json_value::kind::boolean;
      v.b = true;
    } else if (consume("false")) {
      v.type = json_value::kind::boolean;
    } else if (consume("null")) {
    } else {
      std::size_t j = i_;
      while (j < s_.size() && (std::string_view("+-.eE0123456789").find(s_[j]) != std::string_view::npos)) ++j;
      if (j == i_) fail("bad value", "a JSON value");
      v.type = json_value::kind::number;
      auto r = std::from_chars(s_.data() + i_, s_.data() + j, v.num);
      if (r.ptr != s_.data() + j) fail("bad number", "a number");
      i_ = j;
    }
    return v;
  }

  std::string_view s_;
  std::string file_;
  std::size_t i_ = 0;
};

}  // namespace detail

[[nodiscard]] inline json_value parse_json(std::string_view text, const std::string& file) {
  return detail::json_parser(text, file).parse_document();
}

/// The sections of a confection config: section name -> key -> raw value text. Values are JSON in
/// every place spaCy's pipelines use them (strings quoted, lists in brackets); `${...}` references
/// and unquoted strings are kept as raw text.
class config_file {
 public:
  config_file() = default;
  config_file(std::string_view text, std::string file) : file_(std::move(file)) {
    std::string section;
    std::string* last = nullptr;
    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view line = text.substr(pos, eol - pos);
      pos = eol + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
      std::string_view t = trim(line);
      if (t.empty() || t[0] == '#' || t[0] == ';') continue;
      if (indented && last != nullptr) {  // continuation of a multi-line value
        *last += ' ';
        *last += t;
        continue;
      }
      if (t.front() == '[') {
        if (t.back() != ']') fail(line_no, "section header", "']' at the end of the line");
        section = std::string(t.substr(1, t.size() - 2));
        sections_[section];
        last = nullptr;
        continue;
      }
      const auto eq = t.find('=');
      if (eq == std::string_view::npos) fail(line_no, "line", "'key = value'");
      if (section.empty()) fail(line_no, "key outside a section", "a [section] first");
      auto& slot = sections_[section][std::string(trim(t.substr(0, eq)))];
      slot = std::string(trim(t.substr(eq + 1)));
      last = &slot;
    }
  }

  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] bool has_section(const std::string& s) const { return sections_.count(s) != 0; }
  [[nodiscard]] const std::string* raw(const std::string& section, const std::string& key) const {
    auto s = sections_.find(section);
    if (s == sections_.end()) return nullptr;
    auto k = s->second.find(key);
    return k == s->second.end() ? nullptr : &k->second;
  }
  /// The value parsed as JSON; a missing key is errc::model_key_missing.
  [[nodiscard]] json_value get(const std::string& section, const std::string& key) const {
    const auto* r = raw(section, key);
    if (r == nullptr) {
      NERPIPE_THROW(model_error(errc::model_key_missing,
                                file_ + ": [" + section + "] has no key '" + key + "', expected it to be set"));
    }
    return parse_json(*r, file_ + " [" + section + "] " + key);
  }
  [[nodiscard]] std::string get_string(const std::string& section, const std::string& key) const {
    auto v = get(section, key);
    if (v.type != json_value::kind::string) type_fail(section, key, "a string");
    return v.str;
  }
  [[nodiscard]] std::int64_t get_int(const std::string& section, const std::string& key) const {
    auto v = get(section, key);
    // A double outside the int64 range (or not whole) would be undefined to convert.
    if (v.type != json_value::kind::number || !(v.num >= -9.0e15 && v.num <= 9.0e15) || v.num != static_cast<double>(static_cast<std::int64_t>(v.num)))
      type_fail(section, key, "an integer");
    return static_cast<std::int64_t>(v.num);
  }
  [[nodiscard]] bool get_bool(const std::string& section, const std::string& key) const {
    auto v = get(section, key);
    if (v.type != json_value::kind::boolean) type_fail(section, key, "true or false");
    return v.b;
  }

 private:
  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }
  [[noreturn]] void fail(std::size_t line, const std::string& what, const std::string& expected) const {
    NERPIPE_THROW(model_error(errc::model_file_malformed,
                              file_ + ": line " + std::to_string(line) + ": bad " + what + ", expected " + expected));
  }
  [[noreturn]] void type_fail(const std::string& section, const std::string& key, const std::string& expected) const {
    NERPIPE_THROW(model_error(errc::model_file_malformed, file_ + ": [" + section + "] " + key + " = " +
                                                              *raw(section, key) + ", expected " + expected));
  }

  std::string file_;
  std::map<std::string, std::map<std::string, std::string>> sections_;
};

}  // namespace spacy
NERPIPE_NAMESPACE_END
