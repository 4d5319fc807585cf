// SPDX-License-Identifier: Apache-2.0
//! @file Reads .safetensors files: mmap, full validation of the header, F32/F16/BF16 tensors as float.
//!
//! Format: [u64 LE header length N][N bytes of JSON][byte buffer]. Each JSON entry is
//! "name": {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to the buffer;
//! "__metadata__" is an optional string->string map. Validated as the reference reader does:
//! entries sorted by offset must tile the buffer exactly (no holes, no overlap, nothing after),
//! each entry's byte count must equal prod(shape) * element size, no duplicate names.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>

#include <simdjson.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// One tensor entry of a safetensors header.
struct safetensors_entry {
  std::string name;
  std::string dtype;                ///< as written: "F32", "F16", "BF16", "I64", ...
  std::vector<std::size_t> shape;
  std::size_t begin = 0, end = 0;   ///< byte range in the data buffer

  [[nodiscard]] std::size_t elements() const noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace detail {
/// "[9,768]": how shapes appear in messages.
inline std::string shape_string(std::span<const std::size_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Element size in bits of every dtype the format defines; 0 for an unknown name.
inline std::size_t safetensors_bits(std::string_view d) noexcept {
  static constexpr std::pair<std::string_view, std::size_t> table[] = {
      {"BOOL", 8},        {"F4", 4},          {"F6_E2M3", 6},     {"F6_E3M2", 6}, {"U8", 8},   {"I8", 8},
      {"F8_E5M2", 8},     {"F8_E4M3", 8},     {"F8_E8M0", 8},     {"F8_E4M3FNUZ", 8},
      {"F8_E5M2FNUZ", 8}, {"I16", 16},        {"U16", 16},        {"F16", 16},    {"BF16", 16}, {"I32", 32},
      {"U32", 32},        {"F32", 32},        {"C64", 64},        {"F64", 64},    {"I64", 64}, {"U64", 64}};
  for (const auto& [name, bits] : table)
    if (name == d) return bits;
  return 0;
}

/// A read-only memory map that unmaps itself.
class mapped_file {
 public:
  mapped_file() = default;
  explicit mapped_file(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      NERPIPE_THROW(model_error(errc::model_file_missing, path.string() + ": cannot open the file (" + std::strerror(errno) +
                                                              "; expected a readable safetensors file)"));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      const std::string why = S_ISDIR(st.st_mode) ? std::string("is a directory") : std::strerror(errno);
      ::close(fd);
      NERPIPE_THROW(model_error(errc::model_file_missing, path.string() + ": cannot read the file (" + why + ")"));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ != 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        NERPIPE_THROW(model_error(errc::model_file_missing, path.string() + ": cannot map the file into memory (" + std::strerror(e) + ")"));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~mapped_file() { reset(); }

  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  void reset() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};
}  // namespace detail

/// A validated, memory-mapped safetensors file. Tensors are read on demand (and converted to float).
class safetensors_file {
 public:
  /// Upper bound on the JSON header, as in the reference implementation.
  static constexpr std::uint64_t max_header_size = 100'000'000;

  /// Maps and validates `path`; throws model_error naming the file, the entry, what was expected and what was found.
  explicit safetensors_file(const std::filesystem::path& path) : path_(path), map_(path) { parse(); }
  /// Validates a file image held in memory (e.g. model/torch_state.hpp's); `name` names it in messages.
  safetensors_file(std::filesystem::path name, std::string image) : path_(std::move(name)), image_(std::move(image)) { parse(); }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// Every entry, sorted by offset.
  [[nodiscard]] const std::vector<safetensors_entry>& entries() const noexcept { return entries_; }
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  [[nodiscard]] const safetensors_entry* find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  [[nodiscard]] bool contains(std::string_view name) const { return find(name) != nullptr; }

  /// The entry `name`, or model_error(model_tensor_missing).
  [[nodiscard]] const safetensors_entry& at(std::string_view name) const {
    const auto* e = find(name);
    if (e == nullptr)
      NERPIPE_THROW(model_error(errc::model_tensor_missing,
                                where() + ": tensor '" + std::string(name) + "' is missing (the architecture needs it)"));
    return *e;
  }

  /// The raw bytes of an entry (little-endian, row-major).
  [[nodiscard]] std::span<const std::byte> bytes(const safetensors_entry& e) const noexcept {
    return {base() + data_start_ + e.begin, e.end - e.begin};
  }

  /// Tensor `name` as float, converting F16 / BF16 exactly. `expected` is checked when not empty
  /// (model_shape_mismatch); any dtype other than F32/F16/BF16 is model_dtype_unsupported.
  [[nodiscard]] std::vector<float> read_float(std::string_view name, std::span<const std::size_t> expected = {}) const {
    const auto& e = at(name);
    if (!expected.empty() &&
        !std::equal(expected.begin(), expected.end(), e.shape.begin(), e.shape.end()))
      NERPIPE_THROW(model_error(errc::model_shape_mismatch, where() + ": tensor '" + e.name + "' has shape " +
                                                                detail::shape_string(e.shape) + "; expected " +
                                                                detail::shape_string(expected)));
    const auto raw = bytes(e);
    const std::size_t n = e.elements();
    std::vector<float> out(n);
    // Offsets are only aligned by convention: copy element by element through memcpy, which is
    // correct for any alignment (and for aligned F32 data the compiler makes it one bulk copy).
    if (e.dtype == "F32") {
      if (n != 0) std::memcpy(out.data(), raw.data(), n * 4);  // an empty tensor has no buffer to copy to
    } else if (e.dtype == "F16") {
      for (std::size_t i = 0; i < n; ++i) {
        float16 h;
        std::memcpy(&h.bits, raw.data() + 2 * i, 2);
        out[i] = to_float(h);
      }
    } else if (e.dtype == "BF16") {
      for (std::size_t i = 0; i < n; ++i) {
        bfloat16 h;
        std::memcpy(&h.bits, raw.data() + 2 * i, 2);
        out[i] = to_float(h);
      }
    } else {
      NERPIPE_THROW(model_error(errc::model_dtype_unsupported, where() + ": tensor '" + e.name + "' has dtype " +
                                                                   e.dtype + "; expected F32, F16 or BF16"));
    }
    return out;
  }

 private:
  [[nodiscard]] std::string where() const { return path_.string(); }

  [[noreturn]] void malformed(const std::string& what) const {
    NERPIPE_THROW(model_error(errc::model_file_malformed, where() + ": " + what));
  }

  [[nodiscard]] const std::byte* base() const noexcept {
    return image_.empty() ? map_.data() : reinterpret_cast<const std::byte*>(image_.data());
  }

  void parse() {
    const std::size_t size = image_.empty() ? map_.size() : image_.size();
    if (size < 8)
      malformed("file is " + std::to_string(size) + " bytes; expected at least 8 (the header length)");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(base()[i]);
    if (n > max_header_size)
      malformed("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_header_size));
    if (n > size - 8)
      malformed("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
                " bytes): the file is truncated");
    data_start_ = 8 + static_cast<std::size_t>(n);
    const std::string_view header(reinterpret_cast<const char*>(base()) + 8, static_cast<std::size_t>(n));
    if (header.empty() || header.front() != '{')
      malformed("header does not start with '{'; expected a JSON object");

    simdjson::dom::parser parser;
    simdjson::padded_string padded(header);
    simdjson::dom::element root;
    if (auto err = parser.parse(padded).get(root))
      malformed(std::string("header is not valid JSON: ") + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (root.get_object().get(obj)) malformed("header is not a JSON object");

    std::set<std::string> seen;
    for (auto field : obj) {
      std::string key(field.key);
      if (!seen.insert(key).second) malformed("tensor '" + key + "' appears twice in the header");
      if (key == "__metadata__") {
        simdjson::dom::object meta;
        if (field.value.get_object().get(meta)) malformed("'__metadata__' is not an object of strings");
        for (auto m : meta) {
          std::string_view v;
          if (m.value.get_string().get(v))
            malformed("'__metadata__' value of '" + std::string(m.key) + "' is not a string");
          metadata_.emplace(std::string(m.key), std::string(v));
        }
        continue;
      }
      entries_.push_back(parse_entry(key, field.value));
    }

    std::stable_sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::size_t expect = 0;
    for (const auto& e : entries_) {
      if (e.begin != expect)
        malformed("tensor '" + e.name + "' starts at buffer offset " + std::to_string(e.begin) + "; expected " +
                  std::to_string(expect) + (e.begin < expect ? " (it overlaps the previous tensor)" : " (a hole)"));
      expect = e.end;
    }
    const std::size_t buffer = size - data_start_;
    if (expect != buffer)
      malformed("tensors cover " + std::to_string(expect) + " bytes of data; the file holds " +
                std::to_string(buffer) + (expect > buffer ? " (the file is truncated)" : " (trailing bytes)"));
    for (std::size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].name, i);
  }

  safetensors_entry parse_entry(const std::string& name, simdjson::dom::element v) const {
    safetensors_entry e;
    e.name = name;
    simdjson::dom::object o;
    if (v.get_object().get(o)) malformed("entry '" + name + "' is not an object");
    std::string_view dt;
    if (o["dtype"].get_string().get(dt)) malformed("tensor '" + name + "' has no string 'dtype'");
    e.dtype = std::string(dt);
    const std::size_t bits = detail::safetensors_bits(dt);
    if (bits == 0) malformed("tensor '" + name + "' has unknown dtype '" + e.dtype + "'");
    simdjson::dom::array shape;
    if (o["shape"].get_array().get(shape)) malformed("tensor '" + name + "' has no 'shape' array");
    for (auto d : shape) {
      std::uint64_t x = 0;
      if (d.get_uint64().get(x)) malformed("tensor '" + name + "' has a shape entry that is not a non-negative integer");
      e.shape.push_back(static_cast<std::size_t>(x));
    }
    simdjson::dom::array offs;
    if (o["data_offsets"].get_array().get(offs) || offs.size() != 2)
      malformed("tensor '" + name + "' has no 'data_offsets' pair [begin, end]");
    std::uint64_t b = 0, en = 0;
    if (offs.at(0).get_uint64().get(b) || offs.at(1).get_uint64().get(en))
      malformed("tensor '" + name + "' has data_offsets that are not non-negative integers");
    if (en < b)
      malformed("tensor '" + name + "' has data_offsets [" + std::to_string(b) + "," + std::to_string(en) +
                "]; expected begin <= end");
    e.begin = static_cast<std::size_t>(b);
    e.end = static_cast<std::size_t>(en);
    // prod(shape) * bits must be whole bytes and equal end - begin (checked for overflow).
    std::uint64_t elems = 1, total_bits = 0;
    for (auto d : e.shape)
      if (__builtin_mul_overflow(elems, static_cast<std::uint64_t>(d), &elems))
        malformed("tensor '" + name + "' has a shape too large");
    if (__builtin_mul_overflow(elems, static_cast<std::uint64_t>(bits), &total_bits))
      malformed("tensor '" + name + "' has a shape too large");
    if (total_bits % 8 != 0) malformed("tensor '" + name + "' does not fill a whole number of bytes");
    if (total_bits / 8 != static_cast<std::uint64_t>(e.end - e.begin))
      malformed("tensor '" + name + "' of dtype " + e.dtype + " and shape " + detail::shape_string(e.shape) +
                " needs " + std::to_string(total_bits / 8) + " bytes; data_offsets give " +
                std::to_string(e.end - e.begin));
    return e;
  }

  std::filesystem::path path_;
  detail::mapped_file map_;
  std::string image_;  // a file image held in memory (then map_ is empty)
  std::size_t data_start_ = 0;
  std::vector<safetensors_entry> entries_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

NERPIPE_NAMESPACE_END
