// SPDX-License-Identifier: Apache-2.0
//! @file Streaming writer: one JSON line per document (entities, merged text or IOB tags, or the error).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/merge/merge_entities.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

NERPIPE_NAMESPACE_BEGIN

enum class output_format : unsigned char { entities, merged, iob };

struct writer_options {
  output_format format = output_format::entities;
  bool byte_offsets = false;  ///< also write start_byte / end_byte of every entity
};

/// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped, the
/// rest (valid UTF-8) written as is.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

namespace detail {

inline void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// Shortest text that reads back as the same float; JSON has no NaN or infinity, so those are null.
inline void append_float(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

inline std::string_view token_text(const document& doc, const token& t) {
  if (t.end_byte > doc.text.size() || t.start_byte > t.end_byte) return {};
  return std::string_view(doc.text).substr(t.start_byte, t.end_byte - t.start_byte);
}

/// The document's tokens, or, when the annotator gave none, whitespace-separated words.
inline std::vector<token> tokens_or_words(const document& doc) {
  if (!doc.tokens.empty() || doc.text.empty()) return doc.tokens;
  std::vector<token> words;
  std::size_t cp = 0, i = 0;
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  const auto cont = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
  while (i < doc.text.size()) {
    if (is_space(doc.text[i])) {
      ++i, ++cp;
      continue;
    }
    token t;
    t.start_byte = i;
    t.start = cp;
    while (i < doc.text.size() && !is_space(doc.text[i])) cp += !cont(doc.text[i++]);
    t.end_byte = i;
    t.end = cp;
    t.whitespace = i < doc.text.size();
    words.push_back(std::move(t));
  }
  return words;
}

/// IOB tag of every token: B-/I- for tokens inside an entity (by byte span), O otherwise. Tags an
/// annotator already set are kept.
inline std::vector<std::string> iob_tags(const std::vector<token>& tokens, const std::vector<entity>& entities) {
  std::vector<std::string> tags(tokens.size());
  std::size_t e = 0;
  const entity* open = nullptr;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const token& t = tokens[i];
    if (!t.tag.empty()) {
      tags[i] = t.tag;
      continue;
    }
    while (e < entities.size() && entities[e].end_byte <= t.start_byte) ++e;
    if (e < entities.size() && entities[e].start_byte < t.end_byte && t.start_byte < entities[e].end_byte) {
      tags[i] = (open == &entities[e] ? "I-" : "B-") + entities[e].label;
      open = &entities[e];
    } else {
      tags[i] = "O";
      open = nullptr;
    }
  }
  return tags;
}

}  // namespace detail

/// The category word an error record's message starts with ("invalid_json: ...").
[[nodiscard]] inline std::string_view record_status_name(record_status s) noexcept {
  switch (s) {
    case record_status::ok: return "ok";
    case record_status::invalid_json: return "invalid_json";
    case record_status::missing_text: return "missing_text";
    case record_status::invalid_utf8: return "invalid_utf8";
    case record_status::too_large: return "too_large";
    case record_status::failed: break;
  }
  return "failed";
}

/// Appends one entity of `doc` to an entities record ("{...}", without a separator).
inline void append_entity(const document& doc, const entity& e, const writer_options& options, std::string& out) {
  out += "{\"start\": ";
  detail::append_uint(out, e.start);
  out += ", \"end\": ";
  detail::append_uint(out, e.end);
  if (options.byte_offsets) {
    out += ", \"start_byte\": ";
    detail::append_uint(out, e.start_byte);
    out += ", \"end_byte\": ";
    detail::append_uint(out, e.end_byte);
  }
  out += ", \"label\": ";
  append_json_string(out, e.label);
  out += ", \"text\": ";
  // The document's own characters (HF's `word` may be lower-cased or hold "##"); the annotator's
  // text only when the byte span is unusable.
  if (e.end_byte > e.start_byte && e.end_byte <= doc.text.size())
    append_json_string(out, std::string_view(doc.text).substr(e.start_byte, e.end_byte - e.start_byte));
  else
    append_json_string(out, e.text);
  out += ", \"score\": ";
  detail::append_float(out, e.score);
  out += '}';
}

/// An entities record written in parts (a long document's entity array need never be built whole): `begin`, then
/// `entities` once per part, then `end`; the parts joined are format_record's line, byte for byte.
struct entity_record_parts {
  static void begin(const document& doc, std::string& out) {
    out += "{\"id\": ";
    out += doc.id.empty() ? std::string_view("null") : std::string_view(doc.id);
    out += ", \"entities\": [";
  }
  /// `first`: no entity was written before this part (and is set false once one is).
  static void entities(const document& doc, std::span<const entity> part, const writer_options& options, bool& first,
                       std::string& out) {
    for (const entity& e : part) {
      if (!first) out += ", ";
      first = false;
      append_entity(doc, e, options, out);
    }
  }
  static void end(std::string& out) { out += "]}\n"; }
};

/// Appends one output line (with its '\n') for `doc` to `out`.
inline void format_record(const document& doc, const writer_options& options, std::string& out) {
  out += "{\"id\": ";
  out += doc.id.empty() ? std::string_view("null") : std::string_view(doc.id);
  if (!doc.ok()) {
    out += ", \"line\": ";
    detail::append_uint(out, doc.line);
    out += ", \"error\": ";
    // Every message starts with its category; a stage that set only the message gets it here.
    const std::string_view category = record_status_name(doc.status);
    const std::string_view message = doc.error.empty() ? std::string_view("no message") : std::string_view(doc.error);
    if (message.size() > category.size() && message.substr(0, category.size()) == category && message[category.size()] == ':')
      append_json_string(out, message);
    else
      append_json_string(out, std::string(category) + ": " + std::string(message));
    out += "}\n";
    return;
  }
  switch (options.format) {
    case output_format::entities: {
      out += ", \"entities\": [";
      bool first = true;
      entity_record_parts::entities(doc, doc.entities, options, first, out);
      doc.packed.for_each_part([&](std::span<const entity> part) { entity_record_parts::entities(doc, part, options, first, out); });
      entity_record_parts::end(out);
      return;
    }
    case output_format::merged: {
      out += ", \"text\": ";
      // spaCy's merge_entities, then " ".join(t.ent_type_ or t.text for t in doc): the pipeline's merge_entities
      // stage when it ran (document::merged), else merged here from the tokens.
      if (!doc.merged.empty()) {
        append_json_string(out, merged_text(doc.text, std::span<const merged_token>(doc.merged)));
      } else {
        const auto tokens = detail::tokens_or_words(doc);
        append_json_string(out, merged_text(doc.text, std::span<const token>(tokens), std::span<const entity>(doc.entities)));
      }
      out += "}\n";
      return;
    }
    case output_format::iob: {
      const auto tokens = detail::tokens_or_words(doc);
      const auto tags = detail::iob_tags(tokens, doc.entities);
      out += ", \"tokens\": [";
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (i) out += ", ";
        append_json_string(out, detail::token_text(doc, tokens[i]));
      }
      out += "], \"tags\": [";
      for (std::size_t i = 0; i < tags.size(); ++i) {
        if (i) out += ", ";
        append_json_string(out, tags[i]);
      }
      out += "]}\n";
      return;
    }
  }
}

/// Writes records to a file or standard output ("-"), buffered; a failed write throws io_error.
class jsonl_writer {
 public:
  explicit jsonl_writer(const std::filesystem::path& path, writer_options options = {}, std::size_t buffer_bytes = 1 << 20)
      : options_(options), limit_(buffer_bytes) {
    if (path == "-") {
      fd_ = 1;
      name_ = "<stdout>";
    } else {
      name_ = path.string();
      fd_ = ::open(name_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd_ < 0)
        NERPIPE_THROW(io_error(errc::output_not_writable,
                               name_ + ": cannot open for writing (" + std::strerror(errno) + ")"));
      owned_ = true;
    }
    buffer_.reserve(limit_ + 4096);
  }
  /// Writes to `fd`, already open (e.g. for appending to a partial output), and closes it at the end.
  jsonl_writer(int fd, std::string name, writer_options options = {}, std::size_t buffer_bytes = 1 << 20)
      : options_(options), limit_(buffer_bytes), fd_(fd), owned_(true), name_(std::move(name)) {
    buffer_.reserve(limit_ + 4096);
  }
  jsonl_writer(const jsonl_writer&) = delete;
  jsonl_writer& operator=(const jsonl_writer&) = delete;
  ~jsonl_writer() {
    try {
      flush();
    } catch (...) {  // a destructor must not throw; call flush() to see the error
    }
    if (owned_) ::close(fd_);
  }

  void write(const document& doc) {
    if (doc.ok() && !doc.packed.empty() && options_.format == output_format::entities) {
      // A long document's packed entities: the line is written a part at a time, never built whole.
      entity_record_parts::begin(doc, buffer_);
      bool first = true;
      entity_record_parts::entities(doc, doc.entities, options_, first, buffer_);
      doc.packed.for_each_part([&](std::span<const entity> part) {
        entity_record_parts::entities(doc, part, options_, first, buffer_);
        if (buffer_.size() >= limit_) flush();
      });
      entity_record_parts::end(buffer_);
    } else {
      format_record(doc, options_, buffer_);
    }
    ++records_;
    if (buffer_.size() >= limit_) flush();
  }
  /// Writes a line as is (it must end with '\n').
  void write_raw(std::string_view line) {
    buffer_ += line;
    if (buffer_.size() >= limit_) flush();
  }

  void flush() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        errno_ = errno;
        const std::string why = std::strerror(errno);
        buffer_.clear();
        NERPIPE_THROW(io_error(errc::output_not_writable, name_ + ": write failed after " +
                                                              std::to_string(bytes_) + " bytes (" + why + ")"));
      }
      done += static_cast<std::size_t>(n);
      bytes_ += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  /// Flushes, then asks the system to put the bytes on disk (fdatasync; a no-op for pipes and terminals).
  void sync() {
    flush();
    if (::fdatasync(fd_) != 0 && errno != EINVAL && errno != EROFS) {
      errno_ = errno;
      NERPIPE_THROW(io_error(errc::output_not_writable, name_ + ": cannot sync to disk (" + std::strerror(errno) + ")"));
    }
  }
  /// errno of the last failed write (EPIPE: the reader of a pipe went away), 0 when none failed.
  [[nodiscard]] int failed_errno() const noexcept { return errno_; }

  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return bytes_ + buffer_.size(); }
  [[nodiscard]] const writer_options& options() const noexcept { return options_; }

 private:
  writer_options options_;
  std::size_t limit_;
  int fd_ = -1;
  bool owned_ = false;
  std::string name_, buffer_;
  std::uint64_t records_ = 0, bytes_ = 0;
  int errno_ = 0;
};

NERPIPE_NAMESPACE_END
