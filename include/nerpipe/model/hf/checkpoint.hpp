// SPDX-License-Identifier: Apache-2.0
//! @file The weights of a Hugging Face model directory as one set of named tensors: model.safetensors, or a
//! sharded checkpoint (model.safetensors.index.json naming the file of every tensor, as save_pretrained writes it
//! beyond max_shard_size).
//!
//! The index is untrusted input like the rest: every shard must be a plain file name inside the directory, every
//! file it names must exist and hold the tensors the index puts there, and a tensor is read from the file the
//! index names (a stray copy in another shard is not looked at).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/safetensors.hpp>

#include <simdjson.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

class hf_checkpoint {
 public:
  static constexpr std::string_view single_file = "model.safetensors";
  static constexpr std::string_view index_file = "model.safetensors.index.json";

  /// A view of one already-open file (not owned).
  explicit hf_checkpoint(const safetensors_file& f) : where_(f.path().string()) { files_.push_back(&f); }

  /// Opens `dir`/model.safetensors, else the sharded checkpoint of `dir`/model.safetensors.index.json.
  [[nodiscard]] static hf_checkpoint open(const std::filesystem::path& dir) {
    std::error_code ec;
    const auto single = dir / single_file;
    if (std::filesystem::exists(single, ec)) {
      hf_checkpoint c;
      c.own(single);
      c.where_ = single.string();
      return c;
    }
    const auto index = dir / index_file;
    if (std::filesystem::exists(index, ec)) return open_index(dir, index);
    const bool torch_bin = std::filesystem::exists(dir / "pytorch_model.bin", ec) ||
                           std::filesystem::exists(dir / "pytorch_model.bin.index.json", ec);
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              single.string() + ": file is missing (expected the weights as model.safetensors, or a "
                                                "sharded checkpoint with model.safetensors.index.json" +
                                  (torch_bin ? "; pytorch_model.bin is not read: convert it to safetensors" : "") + ")"));
  }

  /// The checkpoint's name in messages: the single file or the index.
  [[nodiscard]] const std::string& where() const noexcept { return where_; }
  /// How many safetensors files hold the tensors.
  [[nodiscard]] std::size_t file_count() const noexcept { return files_.size(); }
  /// Whether the checkpoint came from an index.
  [[nodiscard]] bool sharded() const noexcept { return !shard_of_.empty(); }

  [[nodiscard]] const safetensors_entry* find(std::string_view name) const {
    const safetensors_file* f = file_of(name);
    return f == nullptr ? nullptr : f->find(name);
  }
  [[nodiscard]] bool contains(std::string_view name) const { return find(name) != nullptr; }
  /// The entry `name`, or model_error(model_tensor_missing) naming the checkpoint.
  [[nodiscard]] const safetensors_entry& at(std::string_view name) const {
    const auto* e = find(name);
    if (e == nullptr)
      NERPIPE_THROW(model_error(errc::model_tensor_missing,
                                where_ + ": tensor '" + std::string(name) + "' is missing (the architecture needs it)"));
    return *e;
  }
  /// The file that holds `name` (its path names it in messages); at() must have found it.
  [[nodiscard]] const safetensors_file& file_holding(std::string_view name) const {
    (void)at(name);
    return *file_of(name);
  }
  /// Every tensor entry of every file (each once; an index's shards hold disjoint names).
  template <class F>
  void for_each_entry(F&& f) const {
    for (const auto* file : files_)
      for (const auto& e : file->entries()) f(e);
  }
  /// Tensor `name` as float (safetensors_file::read_float of the file that holds it).
  [[nodiscard]] std::vector<float> read_float(std::string_view name, std::span<const std::size_t> expected = {}) const {
    return file_holding(name).read_float(name, expected);
  }

 private:
  hf_checkpoint() = default;

  const safetensors_file* own(const std::filesystem::path& p) {
    owned_.push_back(std::make_shared<const safetensors_file>(p));
    files_.push_back(owned_.back().get());
    return files_.back();
  }

  [[nodiscard]] const safetensors_file* file_of(std::string_view name) const {
    if (shard_of_.empty()) return files_.empty() ? nullptr : files_.front();
    const auto it = shard_of_.find(std::string(name));
    return it == shard_of_.end() ? nullptr : it->second;
  }

  static hf_checkpoint open_index(const std::filesystem::path& dir, const std::filesystem::path& index) {
    hf_checkpoint c;
    c.where_ = index.string();
    auto fail = [&](errc code, const std::string& what) { NERPIPE_THROW(model_error(code, index.string() + ": " + what)); };
    simdjson::padded_string text;
    if (simdjson::padded_string::load(index.string()).get(text)) fail(errc::model_file_missing, "cannot read the file");
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto err = parser.parse(text).get(root))
      fail(errc::model_file_malformed, std::string("not valid JSON: ") + simdjson::error_message(err));
    simdjson::dom::object map;
    if (root["weight_map"].get_object().get(map))
      fail(errc::model_key_missing, "key 'weight_map' is missing (expected {\"tensor name\": \"shard file\", ...})");
    std::map<std::string, const safetensors_file*> by_file;
    for (auto entry : map) {
      std::string_view file;
      if (entry.value.get_string().get(file))
        fail(errc::model_file_malformed, "weight_map entry '" + std::string(entry.key) + "' is not a file name");
      const std::string shard(file);
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
          shard == "." || shard == "..")
        fail(errc::model_file_malformed, "weight_map entry '" + std::string(entry.key) + "' names '" + shard +
                                             "' (expected a file name inside the model directory)");
      auto it = by_file.find(shard);
      if (it == by_file.end()) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(dir / shard, ec))
          fail(errc::model_file_missing, "weight_map names '" + shard + "', which is missing from " + dir.string());
        it = by_file.emplace(shard, c.own(dir / shard)).first;
      }
      if (!it->second->contains(entry.key))
        fail(errc::model_file_malformed, "weight_map puts tensor '" + std::string(entry.key) + "' in '" + shard +
                                             "', which does not hold it");
      c.shard_of_.emplace(std::string(entry.key), it->second);
    }
    if (c.shard_of_.empty()) fail(errc::model_file_malformed, "weight_map is empty");
    return c;
  }

  std::vector<std::shared_ptr<const safetensors_file>> owned_;
  std::vector<const safetensors_file*> files_;
  std::map<std::string, const safetensors_file*, std::less<>> shard_of_;
  std::string where_;
};

NERPIPE_NAMESPACE_END
