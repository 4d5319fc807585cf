// SPDX-License-Identifier: Apache-2.0
//! @file The one error hierarchy: every error nerpipe throws derives from nerpipe::error.
//!
//! Messages say what, where, expected and got, and start with a stable id:
//!   [nerpipe.model_error.3] model.safetensors: tensor 'classifier.weight' has shape [9,768]; config.json has 12 labels
#pragma once

#include <nerpipe/config/macros.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN

/// Stable error ids. Numbers are never reused; new ones are appended.
enum class errc : int {
  // model_error: a model directory or file that cannot be used
  model_file_missing = 1,       ///< a required file is not in the model directory
  model_file_malformed = 2,     ///< a file's bytes do not follow its format
  model_shape_mismatch = 3,     ///< a tensor's shape disagrees with the config
  model_tensor_missing = 4,     ///< a tensor the architecture needs is absent
  model_dtype_unsupported = 5,  ///< a tensor's dtype is not one we read
  model_unsupported = 6,        ///< an architecture or setting nerpipe does not implement
  model_key_missing = 7,        ///< a required key is absent from a config file
  model_every_replica_failed = 8,  ///< every annotator replica of a run failed and was retired
  // input_error: a record or input stream that cannot be read
  input_not_readable = 101,     ///< an input file cannot be opened or read
  input_invalid_json = 102,     ///< a line is not valid JSON
  input_missing_field = 103,    ///< the text field is absent or not a string
  input_invalid_utf8 = 104,     ///< the text is not valid UTF-8
  input_too_large = 105,        ///< a record exceeds a hard limit
  // config_error: options that contradict each other or are out of range
  config_invalid = 201,         ///< an option value is invalid
  config_unsupported = 202,     ///< a combination of options is not supported
  // cuda_error: the CUDA runtime or a CUDA library reported a failure
  cuda_runtime = 301,           ///< a CUDA runtime call failed
  cuda_library = 302,           ///< cuBLAS / cuBLASLt failed
  cuda_no_device = 303,         ///< no usable device
  cuda_out_of_memory = 304,     ///< an allocation on the device failed
  // io_error: output cannot be written
  output_not_writable = 401,    ///< the output file cannot be opened or written
};

/// Base of every exception nerpipe throws.
class error : public std::runtime_error {
 public:
  error(std::string_view kind, errc code, const std::string& message)
      : std::runtime_error("[nerpipe." + std::string(kind) + "." + std::to_string(static_cast<int>(code)) + "] " +
                           message),
        code_(code) {}

  /// The stable id of this error.
  [[nodiscard]] errc code() const noexcept { return code_; }
  /// The numeric id as printed in the message.
  [[nodiscard]] int id() const noexcept { return static_cast<int>(code_); }

 private:
  errc code_;
};

/// A model directory or file cannot be used (missing, malformed, mismatched, unsupported).
class model_error : public error {
 public:
  model_error(errc code, const std::string& message) : error("model_error", code, message) {}
};

/// An input record or stream cannot be read.
class input_error : public error {
 public:
  input_error(errc code, const std::string& message) : error("input_error", code, message) {}
};

/// Options are invalid or contradict each other.
class config_error : public error {
 public:
  config_error(errc code, const std::string& message) : error("config_error", code, message) {}
};

/// The CUDA runtime or a CUDA library reported a failure.
class cuda_error : public error {
 public:
  cuda_error(errc code, const std::string& message) : error("cuda_error", code, message) {}
};

/// Output cannot be written.
class io_error : public error {
 public:
  io_error(errc code, const std::string& message) : error("io_error", code, message) {}
};

NERPIPE_NAMESPACE_END
