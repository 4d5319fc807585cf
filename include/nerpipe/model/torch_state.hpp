// SPDX-License-Identifier: Apache-2.0
//! @file Reads a PyTorch state dict as `torch.save(model.state_dict(), f)` writes it (the zip format of torch >= 1.6)
//! without running Python's pickle: the bytes spacy-transformers stores for its transformer inside a spaCy
//! pipeline (transformer/model). The result is re-expressed as a safetensors image in memory, so the one weight
//! reader (model/safetensors.hpp, model/hf/weights.hpp) reads both formats.
//!
//! Untrusted input. The zip must hold stored (uncompressed) entries, as torch writes them; every offset and
//! length is checked against the buffer. The pickle is not executed: a small stack machine knows the opcodes
//! torch's protocol-2 state dicts use (and protocol 4's framing), and of the globals only
//! collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the storage types; any
//! other opcode or global is model_error(model_file_malformed / model_unsupported) naming it.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

namespace torch_state_detail {

[[noreturn]] inline void malformed(const std::string& where, const std::string& what) {
  NERPIPE_THROW(model_error(errc::model_file_malformed, where + ": " + what));
}

inline std::uint64_t le(std::string_view b, std::size_t at, std::size_t n, const std::string& where) {
  if (at > b.size() || n > b.size() - at) malformed(where, "the zip structure points past the end of the data");
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

/// The stored entries of a zip archive: name -> bytes (views into the archive).
inline std::map<std::string, std::string_view, std::less<>> zip_entries(std::string_view zip, const std::string& where) {
  // End of central directory: 22 bytes plus a comment of at most 64 KiB, searched from the end.
  if (zip.size() < 22) malformed(where, "not a zip archive (" + std::to_string(zip.size()) + " bytes)");
  std::size_t eocd = std::string_view::npos;
  const std::size_t lowest = zip.size() > 22 + 65535 ? zip.size() - 22 - 65535 : 0;
  for (std::size_t i = zip.size() - 22 + 1; i-- > lowest;)
    if (le(zip, i, 4, where) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string_view::npos) malformed(where, "no zip end-of-central-directory record (not a torch.save zip)");
  const auto count = le(zip, eocd + 10, 2, where);
  const auto cd_size = le(zip, eocd + 12, 4, where), cd_off = le(zip, eocd + 16, 4, where);
  if (count == 0xFFFF || cd_off == 0xFFFFFFFF)
    NERPIPE_THROW(model_error(errc::model_unsupported, where + ": a ZIP64 archive (over 4 GiB or 65535 entries) is not supported"));
  if (cd_off > zip.size() || cd_size > zip.size() - cd_off) malformed(where, "the central directory lies outside the archive");
  std::map<std::string, std::string_view, std::less<>> out;
  std::size_t p = static_cast<std::size_t>(cd_off);
  for (std::uint64_t e = 0; e < count; ++e) {
    if (le(zip, p, 4, where) != 0x02014b50) malformed(where, "a central directory entry has a bad signature");
    const auto method = le(zip, p + 10, 2, where);
    const auto csize = le(zip, p + 20, 4, where), usize = le(zip, p + 24, 4, where);
    const auto nlen = le(zip, p + 28, 2, where), xlen = le(zip, p + 30, 2, where), clen = le(zip, p + 32, 2, where);
    const auto local = le(zip, p + 42, 4, where);
    if (p + 46 + nlen > zip.size()) malformed(where, "a central directory entry runs past the end");
    std::string name(zip.substr(p + 46, nlen));
    if (method != 0)
      NERPIPE_THROW(model_error(errc::model_unsupported, where + ": zip entry '" + name + "' is compressed (method " +
                                                             std::to_string(method) + "); torch.save stores entries uncompressed"));
    if (csize != usize || csize == 0xFFFFFFFF || local == 0xFFFFFFFF)
      NERPIPE_THROW(model_error(errc::model_unsupported, where + ": zip entry '" + name + "' uses ZIP64 sizes, which are not supported"));
    if (le(zip, local, 4, where) != 0x04034b50) malformed(where, "zip entry '" + name + "' has no local header");
    const auto data = local + 30 + le(zip, local + 26, 2, where) + le(zip, local + 28, 2, where);
    if (data > zip.size() || csize > zip.size() - data) malformed(where, "zip entry '" + name + "' lies outside the archive");
    out[name] = zip.substr(static_cast<std::size_t>(data), static_cast<std::size_t>(csize));
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

/// One value on the pickle machine's stack.
struct value;
using value_ptr = std::shared_ptr<value>;
struct storage_ref {
  std::string dtype;  // safetensors name
  std::size_t elem = 0;
  std::string key;
};
struct tensor_ref {
  storage_ref storage;
  std::size_t offset = 0;
  std::vector<std::size_t> size, stride;
};
struct value {
  enum class kind { none, boolean, integer, floating, string, tuple, list, dict, global, storage, tensor, mark } k = kind::none;
  std::int64_t i = 0;
  std::string s;                                      // string; global: "module name"
  std::vector<value_ptr> items;                       // tuple, list
  std::vector<std::pair<value_ptr, value_ptr>> dict;  // dict (insertion order)
  storage_ref storage;
  tensor_ref tensor;
};

inline value_ptr make(value::kind k) {
  auto v = std::make_shared<value>();
  v->k = k;
  return v;
}

/// The dtype of a storage global ("torch FloatStorage") as a safetensors name, and its element size.
inline bool storage_dtype(std::string_view g, std::string& dtype, std::size_t& elem) {
  static constexpr std::pair<std::string_view, std::pair<std::string_view, std::size_t>> table[] = {
      {"torch FloatStorage", {"F32", 4}},  {"torch HalfStorage", {"F16", 2}}, {"torch BFloat16Storage", {"BF16", 2}},
      {"torch DoubleStorage", {"F64", 8}}, {"torch LongStorage", {"I64", 8}}, {"torch IntStorage", {"I32", 4}},
      {"torch ShortStorage", {"I16", 2}},  {"torch CharStorage", {"I8", 1}},  {"torch ByteStorage", {"U8", 1}},
      {"torch BoolStorage", {"BOOL", 1}}};
  for (const auto& [name, t] : table)
    if (name == g) {
      dtype = t.first;
      elem = t.second;
      return true;
    }
  return false;
}

/// Runs the pickle of a state dict; returns the top-level dict.
inline value_ptr unpickle(std::string_view pk, const std::string& where) {
  std::vector<value_ptr> stack;
  std::vector<std::size_t> marks;
  std::map<std::uint32_t, value_ptr> memo;
  std::size_t p = 0;
  auto need = [&](std::size_t n) {
    if (n > pk.size() - p) malformed(where, "the pickle ends early");
  };
  auto u = [&](std::size_t n) {
    need(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(pk[p + i])) << (8 * i);
    p += n;
    return v;
  };
  auto pop = [&]() {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) malformed(where, "the pickle pops an empty stack");
    auto v = stack.back();
    stack.pop_back();
    return v;
  };
  auto pop_mark = [&]() {
    if (marks.empty()) malformed(where, "the pickle closes a MARK it never opened");
    const std::size_t m = marks.back();
    marks.pop_back();
    std::vector<value_ptr> items(stack.begin() + static_cast<std::ptrdiff_t>(m), stack.end());
    stack.resize(m);
    return items;
  };
  auto top = [&]() -> value& {
    if (stack.empty()) malformed(where, "the pickle reads an empty stack");
    return *stack.back();
  };
  auto line = [&]() {
    const auto nl = pk.find('\n', p);
    if (nl == std::string_view::npos) malformed(where, "a GLOBAL without its newline");
    std::string s(pk.substr(p, nl - p));
    p = nl + 1;
    return s;
  };
  auto as_size = [&](const value_ptr& v, const char* what) -> std::size_t {
    if (v->k != value::kind::integer || v->i < 0) malformed(where, std::string(what) + " is not a non-negative integer");
    return static_cast<std::size_t>(v->i);
  };
  auto sizes = [&](const value_ptr& v, const char* what) {
    if (v->k != value::kind::tuple || v->items.size() > 8) malformed(where, std::string(what) + " is not a tuple of at most 8 integers");
    std::vector<std::size_t> out;
    for (const auto& x : v->items) out.push_back(as_size(x, what));
    return out;
  };
  auto string_value = [&](std::size_t n) {
    need(n);
    auto v = make(value::kind::string);
    v->s = std::string(pk.substr(p, n));
    p += n;
    stack.push_back(v);
  };
  // A state dict has a few entries per tensor; bound the work so a forged pickle cannot loop for long.
  for (std::size_t steps = 0; steps <= pk.size(); ++steps) {
    need(1);
    const auto op = static_cast<unsigned char>(pk[p++]);
    switch (op) {
      case 0x80: u(1); break;  // PROTO
      case 0x95: u(8); break;  // FRAME (protocol 4): the frame length, its bytes follow inline
      case '(': marks.push_back(stack.size()); break;  // MARK
      case '.': {  // STOP
        if (stack.size() != 1 || !marks.empty()) malformed(where, "the pickle stops with " + std::to_string(stack.size()) + " values on the stack");
        if (stack.back()->k != value::kind::dict) malformed(where, "the pickle holds no dict (expected a state dict)");
        return stack.back();
      }
      case 'N': stack.push_back(make(value::kind::none)); break;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        auto v = make(value::kind::boolean);
        v->i = op == 0x88;
        stack.push_back(v);
        break;
      }
      case 'K': case 'M': case 'J': {  // BININT1, BININT2, BININT
        auto v = make(value::kind::integer);
        v->i = op == 'K' ? static_cast<std::int64_t>(u(1)) : op == 'M' ? static_cast<std::int64_t>(u(2)) : static_cast<std::int32_t>(u(4));
        stack.push_back(v);
        break;
      }
      case 0x8a: {  // LONG1: a little-endian two's complement integer of n bytes (at most 8 here)
        const auto n = static_cast<std::size_t>(u(1));
        if (n > 8) malformed(where, "an integer of " + std::to_string(n) + " bytes");
        auto v = make(value::kind::integer);
        std::uint64_t x = u(n);
        if (n != 0 && n < 8 && (x >> (8 * n - 1)) != 0) x |= ~std::uint64_t{0} << (8 * n);
        v->i = static_cast<std::int64_t>(x);
        stack.push_back(v);
        break;
      }
      case 'G': {  // BINFLOAT (big-endian double): kept only so a state dict's metadata parses
        need(8);
        p += 8;
        stack.push_back(make(value::kind::floating));
        break;
      }
      case 'X': string_value(static_cast<std::size_t>(u(4))); break;  // BINUNICODE
      case 0x8c: string_value(static_cast<std::size_t>(u(1))); break;  // SHORT_BINUNICODE
      case 'c': {  // GLOBAL module\nname\n
        auto v = make(value::kind::global);
        v->s = line();
        v->s += ' ' + line();
        stack.push_back(v);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop(), module = pop();
        if (name->k != value::kind::string || module->k != value::kind::string) malformed(where, "STACK_GLOBAL of non-strings");
        auto v = make(value::kind::global);
        v->s = module->s + ' ' + name->s;
        stack.push_back(v);
        break;
      }
      case ')': stack.push_back(make(value::kind::tuple)); break;  // EMPTY_TUPLE
      case ']': stack.push_back(make(value::kind::list)); break;   // EMPTY_LIST
      case '}': stack.push_back(make(value::kind::dict)); break;   // EMPTY_DICT
      case 't': {  // TUPLE
        auto v = make(value::kind::tuple);
        v->items = pop_mark();
        stack.push_back(v);
        break;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        auto v = make(value::kind::tuple);
        v->items.resize(static_cast<std::size_t>(op - 0x84));
        for (std::size_t i = v->items.size(); i-- > 0;) v->items[i] = pop();
        stack.push_back(v);
        break;
      }
      case 'a': case 'e': {  // APPEND, APPENDS
        auto items = op == 'a' ? std::vector<value_ptr>{pop()} : pop_mark();
        if (top().k != value::kind::list) malformed(where, "APPEND to a non-list");
        for (auto& x : items) top().items.push_back(std::move(x));
        break;
      }
      case 's': case 'u': {  // SETITEM, SETITEMS
        std::vector<value_ptr> items;
        if (op == 's') {
          auto v = pop(), k = pop();
          items = {k, v};
        } else {
          items = pop_mark();
        }
        if (items.size() % 2 != 0 || top().k != value::kind::dict) malformed(where, "SETITEMS on a non-dict or with an odd count");
        for (std::size_t i = 0; i < items.size(); i += 2) top().dict.emplace_back(items[i], items[i + 1]);
        break;
      }
      case 'q': memo[static_cast<std::uint32_t>(u(1))] = stack.empty() ? nullptr : stack.back(); break;  // BINPUT
      case 'r': memo[static_cast<std::uint32_t>(u(4))] = stack.empty() ? nullptr : stack.back(); break;  // LONG_BINPUT
      case 0x94: memo[static_cast<std::uint32_t>(memo.size())] = stack.empty() ? nullptr : stack.back(); break;  // MEMOIZE
      case 'h': case 'j': {  // BINGET, LONG_BINGET
        const auto k = static_cast<std::uint32_t>(u(op == 'h' ? 1 : 4));
        const auto it = memo.find(k);
        if (it == memo.end() || it->second == nullptr) malformed(where, "the pickle reads memo " + std::to_string(k) + ", never stored");
        stack.push_back(it->second);
        break;
      }
      case 'Q': {  // BINPERSID: ('storage', <storage type>, key, location, numel)
        auto id = pop();
        if (id->k != value::kind::tuple || id->items.size() != 5 || id->items[0]->k != value::kind::string || id->items[0]->s != "storage" ||
            id->items[1]->k != value::kind::global || id->items[2]->k != value::kind::string)
          malformed(where, "a persistent id that is not ('storage', type, key, location, numel)");
        auto v = make(value::kind::storage);
        if (!storage_dtype(id->items[1]->s, v->storage.dtype, v->storage.elem))
          NERPIPE_THROW(model_error(errc::model_dtype_unsupported, where + ": storage type '" + id->items[1]->s + "' is not supported"));
        v->storage.key = id->items[2]->s;
        stack.push_back(v);
        break;
      }
      case 'R': {  // REDUCE: only the allowed callables
        auto args = pop(), fn = pop();
        if (fn->k != value::kind::global || args->k != value::kind::tuple) malformed(where, "REDUCE of something other than a global");
        if (fn->s == "collections OrderedDict") {
          stack.push_back(make(value::kind::dict));
        } else if (fn->s == "torch._utils _rebuild_tensor_v2") {
          // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
          if (args->items.size() < 4 || args->items[0]->k != value::kind::storage) malformed(where, "_rebuild_tensor_v2 with unexpected arguments");
          auto v = make(value::kind::tensor);
          v->tensor.storage = args->items[0]->storage;
          v->tensor.offset = as_size(args->items[1], "a storage offset");
          v->tensor.size = sizes(args->items[2], "a tensor size");
          v->tensor.stride = sizes(args->items[3], "a tensor stride");
          if (v->tensor.size.size() != v->tensor.stride.size()) malformed(where, "a tensor's size and stride differ in length");
          stack.push_back(v);
        } else if (fn->s == "torch._utils _rebuild_parameter") {  // (tensor, requires_grad, backward_hooks)
          if (args->items.empty() || args->items[0]->k != value::kind::tensor) malformed(where, "_rebuild_parameter without a tensor");
          stack.push_back(args->items[0]);
        } else {
          NERPIPE_THROW(model_error(errc::model_unsupported, where + ": the pickle calls '" + fn->s +
                                                                 "'; only a state dict of tensors (OrderedDict, _rebuild_tensor_v2) is read"));
        }
        break;
      }
      case 'b': pop(); break;  // BUILD: the state dict's _metadata (version numbers) is not needed
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        NERPIPE_THROW(model_error(errc::model_unsupported, where + ": pickle opcode " + hex + " at byte " + std::to_string(p - 1) +
                                                               " is not one a torch state dict uses"));
      }
    }
    if (stack.size() > pk.size()) malformed(where, "the pickle stack grows past its size");
  }
  malformed(where, "the pickle never stops");
}

inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace torch_state_detail

/// The tensors of a torch.save'd state dict (`bytes`, a zip) as a safetensors file image: each tensor made
/// contiguous, in the dict's order. `where` names the source in messages.
[[nodiscard]] inline std::string torch_state_to_safetensors(std::string_view bytes, const std::string& where) {
  namespace d = torch_state_detail;
  const auto entries = d::zip_entries(bytes, where);
  // torch names every entry "<archive>/...": the folder of data.pkl.
  std::string prefix;
  std::size_t found = 0;
  for (const auto& [name, data] : entries)
    if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0 && (name.size() == 8 || name[name.size() - 9] == '/')) {
      prefix = name.substr(0, name.size() - 8);
      ++found;
    }
  if (found != 1) d::malformed(where, std::to_string(found) + " data.pkl entries, expected one (a torch.save zip)");
  if (const auto bo = entries.find(prefix + "byteorder"); bo != entries.end() && bo->second != "little")
    NERPIPE_THROW(model_error(errc::model_unsupported, where + ": byteorder '" + std::string(bo->second) + "', expected little"));
  const auto root = d::unpickle(entries.find(prefix + "data.pkl")->second, where + " (" + prefix + "data.pkl)");

  std::string header = "{", data;
  for (const auto& [k, v] : root->dict) {
    if (k->k != d::value::kind::string) d::malformed(where, "a state dict key is not a string");
    if (v->k != d::value::kind::tensor) continue;  // e.g. a module's extra state
    const auto& t = v->tensor;
    const auto it = entries.find(prefix + "data/" + t.storage.key);
    if (it == entries.end()) d::malformed(where, "tensor '" + k->s + "' names storage '" + t.storage.key + "', which the archive lacks");
    const std::string_view st = it->second;
    const std::size_t numel = st.size() / t.storage.elem;
    // Elements are copied in row-major order from offset + sum(index * stride); the largest index must be inside
    // the storage (checked without overflow: every factor is bounded by the storage size first).
    std::size_t count = 1, last = t.offset;
    bool empty = false;
    for (std::size_t i = 0; i < t.size.size(); ++i) {
      if (t.size[i] == 0) empty = true;
      if (t.size[i] > numel + 1 || t.stride[i] > numel + 1 || __builtin_mul_overflow(count, t.size[i], &count))
        d::malformed(where, "tensor '" + k->s + "' has a size or stride larger than its storage");
      if (t.size[i] != 0) last += (t.size[i] - 1) * t.stride[i];
    }
    if (!empty && (t.offset >= numel || last >= numel))
      d::malformed(where, "tensor '" + k->s + "' reaches element " + std::to_string(last) + " of a storage of " + std::to_string(numel));
    if (empty) count = 0;
    const std::size_t begin = data.size(), es = t.storage.elem;
    data.resize(begin + count * es);
    // Row-major strides (what a state dict holds): one copy; anything else element by element.
    bool contiguous = true;
    for (std::size_t i = t.size.size(), want = 1; i-- > 0; want *= t.size[i])
      contiguous = contiguous && (t.size[i] == 1 || t.stride[i] == want);
    if (contiguous && count != 0) std::memcpy(data.data() + begin, st.data() + t.offset * es, count * es);
    std::vector<std::size_t> idx(t.size.size(), 0);
    for (std::size_t n = 0; n < (contiguous ? 0 : count); ++n) {
      std::size_t src = t.offset;
      for (std::size_t i = 0; i < idx.size(); ++i) src += idx[i] * t.stride[i];
      std::memcpy(data.data() + begin + n * es, st.data() + src * es, es);
      for (std::size_t i = idx.size(); i-- > 0;) {
        if (++idx[i] < t.size[i]) break;
        idx[i] = 0;
      }
    }
    if (header.size() > 1) header += ',';
    d::append_json_string(header, k->s);
    header += ":{\"dtype\":\"" + t.storage.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.size.size(); ++i) header += (i ? "," : "") + std::to_string(t.size[i]);
    header += "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  header += '}';
  while ((8 + header.size()) % 8 != 0) header += ' ';  // safetensors pads the header with spaces
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  out += header;
  out += data;
  return out;
}

NERPIPE_NAMESPACE_END
