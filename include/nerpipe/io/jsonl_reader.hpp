// SPDX-License-Identifier: Apache-2.0
//! @file Streaming reader: JSONL (or plain text) lines in, one nerpipe::document per non-blank line out.
//!
//! Every line is parsed on its own with simdjson's On-Demand parser, in place in the reader's bounded
//! window. (simdjson's `iterate_many` would batch lines, but it stops at the first malformed record and
//! cannot say which line an error came from; one `iterate` per line keeps the error on its line.)
//! Records are fully validated: values that are not read (other fields) are walked too, so a record
//! Python's json.loads would reject is never silently accepted. A record that cannot be used comes
//! out with its status and message set, in its place; only an unreadable stream throws.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>
#include <nerpipe/io/line_reader.hpp>

#include <simdjson.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN

// The On-Demand parser is named by implementation (simdjson::fallback), not through simdjson::ondemand (the
// compile-time "builtin" one): nvcc only sees simdjson's portable kernels (cuda.cuh), while a .cpp built with
// -mavx2 would pick another implementation, and jsonl_reader's members would then differ between a program's
// .cu and .cpp translation units. (Without such flags the builtin implementation is the fallback one anyway.)

enum class input_format : unsigned char { jsonl, text };
enum class invalid_utf8_policy : unsigned char { reject, replace };

struct reader_options {
  input_format format = input_format::jsonl;
  std::string text_field = "text";
  std::string id_field = "id";
  invalid_utf8_policy invalid_utf8 = invalid_utf8_policy::reject;
  line_reader_options lines{};
};

/// Chooses the input format from a file name: ".txt" (and ".text") is plain text, anything else JSONL.
inline input_format input_format_for(const std::filesystem::path& path) {
  const auto ext = path.extension().string();
  return (ext == ".txt" || ext == ".text") ? input_format::text : input_format::jsonl;
}

namespace detail {

inline bool is_blank(std::string_view s) noexcept {
  for (const char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') return false;
  return true;
}

/// Where the object or array that starts `s` (after blanks) ends: the index after its closing bracket,
/// found by matching brackets outside strings; npos when `s` does not start with one or it is not closed.
/// Lets a line like `{"id": "a", "text": "x"} xyz` be reported as trailing content, with its id.
inline std::size_t json_container_end(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  if (i == s.size() || (s[i] != '{' && s[i] != '[')) return std::string_view::npos;
  std::size_t depth = 0;
  bool in_string = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

inline std::string_view trim_json_token(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

/// JSON number grammar (RFC 8259): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
inline bool valid_json_number(std::string_view s) noexcept {
  std::size_t i = 0;
  const auto digit = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') ++i;
  else while (digit(i)) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == s.size();
}

enum class unescape_result { ok, malformed, lone_surrogate };

/// Decodes a raw JSON string token (with its quotes). Unpaired surrogate escapes, which JSON's grammar
/// allows but UTF-8 cannot hold, become U+FFFD when `out` is given and are reported.
inline unescape_result json_unescape(std::string_view raw, std::string* out) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return unescape_result::malformed;
  raw = raw.substr(1, raw.size() - 2);
  unescape_result result = unescape_result::ok;
  const auto hex4 = [&](std::size_t k, std::uint32_t& v) {
    if (k + 4 > raw.size()) return false;
    v = 0;
    for (std::size_t j = k; j < k + 4; ++j) {
      const char c = raw[j];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else return false;
    }
    return true;
  };
  for (std::size_t i = 0; i < raw.size();) {
    const char c = raw[i];
    if (static_cast<unsigned char>(c) < 0x20 || c == '"') return unescape_result::malformed;
    if (c != '\\') {
      if (out) out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= raw.size()) return unescape_result::malformed;
    const char e = raw[i + 1];
    char simple = 0;
    switch (e) {
      case '"': simple = '"'; break;
      case '\\': simple = '\\'; break;
      case '/': simple = '/'; break;
      case 'b': simple = '\b'; break;
      case 'f': simple = '\f'; break;
      case 'n': simple = '\n'; break;
      case 'r': simple = '\r'; break;
      case 't': simple = '\t'; break;
      case 'u': break;
      default: return unescape_result::malformed;
    }
    if (simple) {
      if (out) out->push_back(simple);
      i += 2;
      continue;
    }
    std::uint32_t cp;
    if (!hex4(i + 2, cp)) return unescape_result::malformed;
    i += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      std::uint32_t lo;
      if (i + 1 < raw.size() && raw[i] == '\\' && raw[i + 1] == 'u' && hex4(i + 2, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        i += 6;
      } else {
        result = unescape_result::lone_surrogate;
        cp = 0xFFFD;
      }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      result = unescape_result::lone_surrogate;
      cp = 0xFFFD;
    }
    if (out) ::nerpipe::utf8::append(*out, cp);
  }
  return result;
}

inline const char* json_type_name(simdjson::fallback::ondemand::json_type t) noexcept {
  using simdjson::fallback::ondemand::json_type;
  switch (t) {
    case json_type::array: return "an array";
    case json_type::object: return "an object";
    case json_type::number: return "a number";
    case json_type::string: return "a string";
    case json_type::boolean: return "a boolean";
    case json_type::null: return "null";
  }
  return "an unknown value";
}

/// Walks a value completely so that malformed content is found even where we do not need the value.
inline simdjson::error_code validate_json_value(simdjson::fallback::ondemand::value v, int depth = 0) {
  using namespace simdjson;
  using fallback::ondemand::json_type;
  if (depth > 512) return DEPTH_ERROR;
  json_type t;
  if (auto e = v.type().get(t)) return e;
  switch (t) {
    case json_type::array: {
      fallback::ondemand::array a;
      if (auto e = v.get_array().get(a)) return e;
      for (auto element : a) {
        fallback::ondemand::value x;
        if (auto e = element.get(x)) return e;
        if (auto e = validate_json_value(x, depth + 1)) return e;
      }
      return SUCCESS;
    }
    case json_type::object: {
      fallback::ondemand::object o;
      if (auto e = v.get_object().get(o)) return e;
      for (auto field : o) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        fallback::ondemand::value x;
        if (auto e = field.value().get(x)) return e;
        if (auto e = validate_json_value(x, depth + 1)) return e;
      }
      return SUCCESS;
    }
    case json_type::number: {
      std::string_view raw;
      raw = v.raw_json_token();
      return valid_json_number(trim_json_token(raw)) ? SUCCESS : NUMBER_ERROR;
    }
    case json_type::string: {
      std::string_view raw;
      raw = v.raw_json_token();
      return json_unescape(trim_json_token(raw), nullptr) == unescape_result::malformed ? STRING_ERROR : SUCCESS;
    }
    case json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case json_type::null: {
      bool is_null;
      if (auto e = v.is_null().get(is_null)) return e;
      return is_null ? SUCCESS : N_ATOM_ERROR;
    }
  }
  return INCORRECT_TYPE;
}

}  // namespace detail

/// Reads documents from a JSONL (or text) stream. `next()` fills one document per non-blank line;
/// it can also be used as an input range: `for (const document& d : reader) ...`.
class jsonl_reader {
 public:
  /// `path` "-" reads standard input.
  explicit jsonl_reader(const std::filesystem::path& path, reader_options options = {})
      : options_(std::move(options)), lines_(path, options_.lines) {}
  jsonl_reader(const std::filesystem::path& path, input_format format) : jsonl_reader(path, with_format(format)) {}
  /// Movable, so a reader can be handed to a range that owns it (`nlp.pipe(jsonl_reader(path))`).
  jsonl_reader(jsonl_reader&& o) noexcept
      : options_(std::move(o.options_)),
        lines_(std::move(o.lines_)),
        parser_(std::move(o.parser_)),
        scratch_(std::move(o.scratch_)),
        index_(o.index_),
        bytes_(o.bytes_.load()),
        records_(o.records_.load()) {}
  jsonl_reader(const jsonl_reader&) = delete;
  jsonl_reader& operator=(const jsonl_reader&) = delete;
  jsonl_reader& operator=(jsonl_reader&&) = delete;

  /// Fills `doc` with the next record; false at the end of the stream.
  bool next(document& doc) {
    input_line line;
    for (;;) {
      if (!lines_.next(line)) return false;
      if (line.too_large || !detail::is_blank(line.bytes)) break;
    }
    reset(doc);
    doc.index = index_++;
    doc.line = line.number;
    bytes_.store(lines_.position(), std::memory_order_relaxed);
    records_.store(index_, std::memory_order_relaxed);
    if (line.too_large) {
      fail(doc, record_status::too_large,
           "too_large: the line is " + std::to_string(line.length) + " bytes; the limit is " +
               std::to_string(options_.lines.max_line_bytes) + " bytes");
      if (options_.format == input_format::text) doc.id = std::to_string(line.number);
      return true;
    }
    std::string_view bytes = line.bytes;
    // A byte-order mark is allowed at the start of the input only (Python's json.loads refuses one elsewhere).
    const bool bom = bytes.substr(0, 3) == "\xEF\xBB\xBF";
    if (bom && line.offset == 0) bytes.remove_prefix(3);
    if (options_.format == input_format::text) {
      read_text(bytes, doc);
    } else if (bom && line.offset != 0) {
      read_json(bytes.substr(3), doc);  // for the id
      fail(doc, record_status::invalid_json,
           "invalid_json: the line starts with a byte-order mark (bytes EF BB BF, U+FEFF); only the first line of "
           "the input may have one (was a file with a BOM appended to this one?)");
    } else {
      read_json(bytes, doc);
    }
    return true;
  }

  [[nodiscard]] const std::string& name() const noexcept { return lines_.name(); }
  /// Bytes of input consumed so far (readable from any thread), and the input size when known
  /// (0 otherwise), for progress displays.
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return bytes_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t total_bytes() const noexcept { return lines_.total_bytes(); }
  /// Records handed out so far (readable from any thread).
  [[nodiscard]] std::uint64_t records_read() const noexcept { return records_.load(std::memory_order_relaxed); }
  [[nodiscard]] const reader_options& options() const noexcept { return options_; }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = document;
    using difference_type = std::ptrdiff_t;
    using pointer = const document*;
    using reference = const document&;
    iterator() = default;
    explicit iterator(jsonl_reader* r) : r_(r) { ++*this; }
    reference operator*() const { return doc_; }
    pointer operator->() const { return &doc_; }
    iterator& operator++() {
      if (r_ && !r_->next(doc_)) r_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(const iterator& o) const noexcept { return r_ == o.r_; }

   private:
    jsonl_reader* r_ = nullptr;
    document doc_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  static reader_options with_format(input_format f) {
    reader_options o;
    o.format = f;
    return o;
  }

  static void reset(document& doc) {
    doc.id = "null";
    doc.text.clear();
    doc.tokens.clear();
    doc.entities.clear();
    doc.status = record_status::ok;
    doc.error.clear();
  }
  static void fail(document& doc, record_status status, std::string message) {
    doc.status = status;
    doc.error = std::move(message);
    doc.text.clear();
  }

  static std::string invalid_byte_message(std::string_view bytes, std::size_t at, const char* where) {
    static const char* hex = "0123456789ABCDEF";
    const auto b = static_cast<unsigned char>(bytes[at]);
    std::string m = "invalid_utf8: byte 0x";
    m += hex[b >> 4];
    m += hex[b & 15];
    m += " at byte " + std::to_string(at) + " of the " + where +
         " is not valid UTF-8 (use --invalid-utf8 replace to replace bad bytes with U+FFFD)";
    return m;
  }

  void read_text(std::string_view bytes, document& doc) {
    doc.id = std::to_string(doc.line);
    const std::size_t bad = utf8::find_invalid(bytes);
    if (bad == std::string_view::npos) {
      doc.text.assign(bytes);
    } else if (options_.invalid_utf8 == invalid_utf8_policy::replace) {
      utf8::replace_invalid(bytes, doc.text);
    } else {
      fail(doc, record_status::invalid_utf8, invalid_byte_message(bytes, bad, "line"));
    }
  }

  void read_json(std::string_view bytes, document& doc) {
    using namespace simdjson;
    const std::size_t bad = utf8::find_invalid(bytes);
    const char* data = bytes.data();
    std::size_t capacity = bytes.size() + line_reader::line_padding;  // the window pads every line
    std::string utf8_message;
    if (bad != std::string_view::npos) {
      utf8_message = invalid_byte_message(bytes, bad, "line");
      // Parse a repaired copy: with `replace` that is the record; with `reject` it still gives us the id.
      scratch_.clear();
      utf8::replace_invalid(bytes, scratch_);
      const std::size_t n = scratch_.size();
      scratch_.append(SIMDJSON_PADDING, '\0');
      data = scratch_.data();
      capacity = scratch_.size();
      bytes = std::string_view(data, n);
    }
    const bool reject_utf8 = bad != std::string_view::npos && options_.invalid_utf8 == invalid_utf8_policy::reject;
    // Content after a complete object: parse the object alone (for its id), then report what follows it.
    std::size_t trailing_at = std::string_view::npos;
    std::string trailing;  // the first bytes of what follows, for the message
    if (const std::size_t end = detail::json_container_end(bytes); end != std::string_view::npos) {
      std::size_t k = end;
      while (k < bytes.size() && (bytes[k] == ' ' || bytes[k] == '\t' || bytes[k] == '\r')) ++k;
      if (k < bytes.size()) {
        trailing_at = k;
        for (const char c : bytes.substr(k, 20)) trailing += (static_cast<unsigned char>(c) < 0x20 || c == '\'') ? '?' : c;
        if (bytes.size() - k > 20) trailing += "...";
        bytes = bytes.substr(0, end);
      }
    }

    fallback::ondemand::document json;
    fallback::ondemand::object object;
    auto fail_json = [&](error_code e, const char* context) {
      fail(doc, record_status::invalid_json, std::string("invalid_json: ") + context + " (" + error_message(e) + ")");
    };
    if (auto e = parser_.iterate(data, bytes.size(), capacity).get(json)) return fail_json(e, "cannot parse the line");
    fallback::ondemand::json_type top;
    if (auto e = json.type().get(top)) return fail_json(e, "cannot parse the line");
    if (top != fallback::ondemand::json_type::object) {
      // The type comes from the first byte; make sure a scalar is one before naming it.
      const std::string_view raw = detail::trim_json_token(json.raw_json_token());
      const bool scalar_ok = top == fallback::ondemand::json_type::array ||
                             (top == fallback::ondemand::json_type::number && detail::valid_json_number(raw)) ||
                             (top == fallback::ondemand::json_type::string &&
                              detail::json_unescape(raw, nullptr) != detail::unescape_result::malformed) ||
                             (top == fallback::ondemand::json_type::boolean && (raw == "true" || raw == "false")) ||
                             (top == fallback::ondemand::json_type::null && raw == "null");
      if (!scalar_ok) {
        fail(doc, record_status::invalid_json, "invalid_json: cannot parse the line (not a JSON value)");
        return;
      }
      fail(doc, record_status::invalid_json,
           std::string("invalid_json: the line is ") + detail::json_type_name(top) + ", expected a JSON object");
      return;
    }
    if (auto e = json.get_object().get(object)) return fail_json(e, "cannot parse the line");

    bool have_text = false;
    std::string text_problem;  // why the text field cannot be used, when it is present
    bool lone_surrogate = false;
    for (auto field : object) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return fail_json(e, "malformed key");
      fallback::ondemand::value value;
      if (auto e = field.value().get(value)) return fail_json(e, "malformed value");
      if (key == options_.id_field) {
        if (auto e = read_id(value, doc.id)) return fail_json(e, "malformed id");
      } else if (key == options_.text_field) {
        fallback::ondemand::json_type t;
        if (auto e = value.type().get(t)) return fail_json(e, "malformed text");
        if (t != fallback::ondemand::json_type::string) {
          if (auto e = detail::validate_json_value(value)) return fail_json(e, "malformed text");
          text_problem = "field '" + options_.text_field + "' is " + detail::json_type_name(t) + ", expected a string";
          have_text = false;
          continue;
        }
        std::string_view raw;
        raw = value.raw_json_token();
        doc.text.clear();
        // Our own decoder: simdjson's refuses unpaired surrogate escapes, which Python reads.
        const auto r = detail::json_unescape(detail::trim_json_token(raw), &doc.text);
        if (r == detail::unescape_result::malformed) return fail_json(STRING_ERROR, "malformed text");
        lone_surrogate = r == detail::unescape_result::lone_surrogate;
        have_text = true;
        text_problem.clear();
      } else {
        if (auto e = detail::validate_json_value(value)) return fail_json(e, "malformed value");
      }
    }
    // After the object, the iterator must be out of tokens; a location means more follows.
    const char* rest = nullptr;
    if (json.current_location().get(rest) == SUCCESS) return fail_json(TRAILING_CONTENT, "trailing characters after the object");
    if (trailing_at != std::string_view::npos) {
      fail(doc, record_status::invalid_json,
           "invalid_json: trailing characters after the object at byte " + std::to_string(trailing_at) + " ('" + trailing + "')");
      return;
    }

    if (reject_utf8) {
      fail(doc, record_status::invalid_utf8, std::move(utf8_message));
      return;
    }
    if (!have_text) {
      fail(doc, record_status::missing_text,
           "missing_text: " + (text_problem.empty() ? "no field '" + options_.text_field + "'" : text_problem));
      return;
    }
    if (lone_surrogate && options_.invalid_utf8 == invalid_utf8_policy::reject) {
      fail(doc, record_status::invalid_utf8,
           "invalid_utf8: field '" + options_.text_field +
               "' holds an unpaired surrogate escape (\\uD800-\\uDFFF), which is not valid UTF-8 "
               "(use --invalid-utf8 replace to replace it with U+FFFD)");
    }
  }

  static simdjson::error_code read_id(simdjson::fallback::ondemand::value value, std::string& id) {
    using namespace simdjson;
    fallback::ondemand::json_type t;
    if (auto e = value.type().get(t)) return e;
    std::string_view raw;
    if (t == fallback::ondemand::json_type::object || t == fallback::ondemand::json_type::array) {
      // Copy the raw text, then check it with a parser of its own (ids are small).
      if (t == fallback::ondemand::json_type::object) {
        fallback::ondemand::object o;
        if (auto e = value.get_object().get(o)) return e;
        if (auto e = o.raw_json().get(raw)) return e;
      } else {
        fallback::ondemand::array a;
        if (auto e = value.get_array().get(a)) return e;
        if (auto e = a.raw_json().get(raw)) return e;
      }
      id.assign(detail::trim_json_token(raw));
      padded_string copy(id);
      fallback::ondemand::parser p;
      fallback::ondemand::document d;
      if (auto e = p.iterate(copy).get(d)) return e;
      fallback::ondemand::value v;
      if (auto e = d.get_value().get(v)) return e;
      if (auto e = detail::validate_json_value(v)) return e;
      return SUCCESS;
    }
    // Scalars: keep the token as written (a number keeps its digits, a string its escapes), check it.
    raw = value.raw_json_token();
    raw = detail::trim_json_token(raw);
    bool ok = false;
    switch (t) {
      case fallback::ondemand::json_type::number: ok = detail::valid_json_number(raw); break;
      case fallback::ondemand::json_type::string: ok = detail::json_unescape(raw, nullptr) != detail::unescape_result::malformed; break;
      case fallback::ondemand::json_type::boolean: ok = raw == "true" || raw == "false"; break;
      case fallback::ondemand::json_type::null: ok = raw == "null"; break;
      default: break;
    }
    if (!ok) return t == fallback::ondemand::json_type::string ? STRING_ERROR : (t == fallback::ondemand::json_type::number ? NUMBER_ERROR : T_ATOM_ERROR);
    id.assign(raw);
    return SUCCESS;
  }

  reader_options options_;
  line_reader lines_;
  simdjson::fallback::ondemand::parser parser_;
  std::string scratch_;
  std::uint64_t index_ = 0;
  std::atomic<std::uint64_t> bytes_{0}, records_{0};
};

NERPIPE_NAMESPACE_END
