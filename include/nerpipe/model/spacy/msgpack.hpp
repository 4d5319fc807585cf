// SPDX-License-Identifier: Apache-2.0
//! @file Reading spaCy/srsly msgpack files with msgpack-cxx: typed accessors that throw model_error.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/file_read.hpp>

#ifndef MSGPACK_NO_BOOST
#  define MSGPACK_NO_BOOST 1
#endif
#include <msgpack.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy::detail {

/// The whole content of a model file; a missing file is errc::model_file_missing.
[[nodiscard]] inline std::string read_file(const std::filesystem::path& path, std::string_view what) {
  std::string out;
  if (!read_whole_file(path, out))
    NERPIPE_THROW(model_error(errc::model_file_missing, path.string() + ": cannot read " + std::string(what) + " (" +
                                                            file_problem(path) + "), expected a readable file"));
  return out;
}

[[nodiscard]] inline std::string_view type_name(const msgpack::object& o) noexcept {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER: return "int";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "float";
    case msgpack::type::STR: return "str";
    case msgpack::type::BIN: return "bin";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    case msgpack::type::EXT: return "ext";
  }
  return "?";
}

/// A decoded msgpack document plus the file name used in error messages.
class msgpack_doc {
 public:
  msgpack_doc(std::string file, const char* data, std::size_t size) : file_(std::move(file)) {
    try {
      if (size == 0) malformed("the file is empty", "a msgpack value", "0 bytes");
      std::size_t off = 0;
      // Counts and lengths in a header cannot exceed the bytes there are (each element takes at least one),
      // so a forged header cannot make the decoder allocate gigabytes; nesting is bounded too.
      const msgpack::unpack_limit limit(size, size, size, size, size, 256);
      handle_ = msgpack::unpack(data, size, off, nullptr, nullptr, limit);
      if (off != size) {
        malformed("trailing bytes after the msgpack value", std::to_string(size) + " bytes",
                  std::to_string(off) + " bytes used");
      }
    } catch (const msgpack::insufficient_bytes&) {
      malformed("msgpack data ends early (truncated file?)", "a complete msgpack value",
                std::to_string(size) + " bytes");
    } catch (const msgpack::unpack_error& e) {
      malformed(std::string("msgpack decode failed (") + e.what() + ")", "valid msgpack",
                std::to_string(size) + " bytes");
    }
  }

  [[nodiscard]] const msgpack::object& root() const noexcept { return handle_.get(); }
  [[nodiscard]] const std::string& file() const noexcept { return file_; }

  [[noreturn]] void malformed(const std::string& what, const std::string& expected, const std::string& got) const {
    NERPIPE_THROW(model_error(errc::model_file_malformed, file_ + ": " + what + ", expected " + expected + ", got " + got));
  }

  void expect(const msgpack::object& o, msgpack::type::object_type t, std::string_view where) const {
    if (o.type != t) {
      msgpack::object probe;
      probe.type = t;
      malformed(std::string(where) + " has the wrong type", std::string(type_name(probe)), std::string(type_name(o)));
    }
  }

  /// Value of key `key` (str or bin key) in map `m`, or nullptr.
  [[nodiscard]] static const msgpack::object* find(const msgpack::object& m, std::string_view key) noexcept {
    if (m.type != msgpack::type::MAP) return nullptr;
    for (std::uint32_t i = 0; i < m.via.map.size; ++i) {
      const auto& k = m.via.map.ptr[i].key;
      if ((k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) ||
          (k.type == msgpack::type::BIN && std::string_view(k.via.bin.ptr, k.via.bin.size) == key)) {
        return &m.via.map.ptr[i].val;
      }
    }
    return nullptr;
  }
  [[nodiscard]] const msgpack::object& at(const msgpack::object& m, std::string_view key, std::string_view where) const {
    expect(m, msgpack::type::MAP, where);
    const auto* v = find(m, key);
    if (v == nullptr) malformed(std::string(where) + " lacks key '" + std::string(key) + "'", "the key", "no such key");
    return *v;
  }

  [[nodiscard]] std::string_view str(const msgpack::object& o, std::string_view where) const {
    if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
    if (o.type == msgpack::type::BIN) return {o.via.bin.ptr, o.via.bin.size};
    malformed(std::string(where) + " is not a string", "str", std::string(type_name(o)));
  }
  [[nodiscard]] std::int64_t integer(const msgpack::object& o, std::string_view where) const {
    if (o.type == msgpack::type::POSITIVE_INTEGER) return static_cast<std::int64_t>(o.via.u64);
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
    malformed(std::string(where) + " is not an integer", "int", std::string(type_name(o)));
  }
  [[nodiscard]] std::uint64_t uinteger(const msgpack::object& o, std::string_view where) const {
    if (o.type == msgpack::type::POSITIVE_INTEGER) return o.via.u64;
    malformed(std::string(where) + " is not an unsigned integer", "uint", std::string(type_name(o)));
  }

 private:
  std::string file_;
  msgpack::object_handle handle_;
};

/// srsly encodes numpy arrays as {b"nd": true, b"type": "<f4", b"kind": b"", b"shape": [...], b"data": bin}.
struct float_array {
  std::vector<std::size_t> shape;
  std::vector<float> data;

  [[nodiscard]] std::size_t size() const noexcept { return data.size(); }
  [[nodiscard]] std::string shape_string() const {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
  }
};

[[nodiscard]] inline float_array decode_array(const msgpack_doc& doc, const msgpack::object& o, const std::string& where) {
  const auto& type = doc.at(o, "type", where);
  const auto t = doc.str(type, where + ".type");
  if (t != "<f4") {
    NERPIPE_THROW(model_error(errc::model_dtype_unsupported,
                              doc.file() + ": " + where + " has dtype '" + std::string(t) + "', expected '<f4'"));
  }
  const auto& shp = doc.at(o, "shape", where);
  doc.expect(shp, msgpack::type::ARRAY, where + ".shape");
  float_array a;
  std::size_t n = 1;
  if (shp.via.array.size > 8) doc.malformed(where + " has " + std::to_string(shp.via.array.size) + " dimensions", "at most 8", "more");
  for (std::uint32_t i = 0; i < shp.via.array.size; ++i) {
    a.shape.push_back(static_cast<std::size_t>(doc.uinteger(shp.via.array.ptr[i], where + ".shape")));
    if (__builtin_mul_overflow(n, a.shape.back(), &n)) doc.malformed(where + " has a shape too large", "a size that fits in memory", a.shape_string());
  }
  const auto bytes = doc.str(doc.at(o, "data", where), where + ".data");
  if (n > bytes.size() / sizeof(float) || bytes.size() != n * sizeof(float)) {
    doc.malformed(where + " data size does not match its shape " + a.shape_string(),
                  std::to_string(n * sizeof(float)) + " bytes", std::to_string(bytes.size()) + " bytes");
  }
  a.data.resize(n);
  if (n != 0) std::memcpy(a.data.data(), bytes.data(), bytes.size());  // little-endian <f4, as stored
  return a;
}

}  // namespace spacy::detail
NERPIPE_NAMESPACE_END
