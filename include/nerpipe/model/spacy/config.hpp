// SPDX-License-Identifier: Apache-2.0
//! @file JSON values (read with simdjson) and the confection (config.cfg) subset spaCy pipelines use.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>

#include <simdjson.h>

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

/// simdjson's DOM element as a json_value (numbers as doubles: every number spaCy's JSON files hold fits).
inline json_value from_dom(simdjson::dom::element e) {
  json_value v;
  simdjson::dom::object obj;
  simdjson::dom::array arr;
  std::string_view str;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  double dbl = 0;
  bool bl = false;
  if (e.get(obj) == simdjson::SUCCESS) {
    v.type = json_value::kind::object;
    for (const auto field : obj) v.members.push_back(json_member{std::string(field.key), from_dom(field.value)});
  } else if (e.get(arr) == simdjson::SUCCESS) {
    v.type = json_value::kind::array;
    for (const auto x : arr) v.items.push_back(from_dom(x));
  } else if (e.get(str) == simdjson::SUCCESS) {
    v.type = json_value::kind::string;
    v.str = std::string(str);
  } else if (e.get(i64) == simdjson::SUCCESS) {
    v.type = json_value::kind::number;
    v.num = static_cast<double>(i64);
  } else if (e.get(u64) == simdjson::SUCCESS) {
    v.type = json_value::kind::number;
    v.num = static_cast<double>(u64);
  } else if (e.get(dbl) == simdjson::SUCCESS) {
    v.type = json_value::kind::number;
    v.num = dbl;
  } else if (e.get(bl) == simdjson::SUCCESS) {
    v.type = json_value::kind::boolean;
    v.b = bl;
  }  // else null
  return v;
}

}  // namespace detail

/// Parses one JSON document (meta.json, ner/cfg, a config.cfg value) with simdjson; model_error naming `file`
/// and simdjson's reason when it is not JSON.
[[nodiscard]] inline json_value parse_json(std::string_view text, const std::string& file) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (const auto err = parser.parse(text.data(), text.size()).get(root); err != simdjson::SUCCESS)
    NERPIPE_THROW(model_error(errc::model_file_malformed, file + ": not valid JSON (" + simdjson::error_message(err) + ")"));
  return detail::from_dom(root);
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
    if (v.type != json_value::kind::number || !(v.num >= -9.0e15 && v.num <= 9.0e15) ||
        v.num != static_cast<double>(static_cast<std::int64_t>(v.num)))
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
