// SPDX-License-Identifier: Apache-2.0
//! @file The error hierarchy: stable ids in messages, catchable by kind and as nerpipe::error.
#include <catch2/catch.hpp>
#include <nerpipe/nerpipe.hpp>

TEST_CASE("errors carry a stable id and their kind", "[core][error]") {
  try {
    NERPIPE_THROW(nerpipe::model_error(nerpipe::errc::model_shape_mismatch,
                                       "model.safetensors: tensor 'classifier.weight' has shape [9,768]; config.json has 12 labels"));
  } catch (const nerpipe::error& e) {
    CHECK(std::string(e.what()) ==
          "[nerpipe.model_error.3] model.safetensors: tensor 'classifier.weight' has shape [9,768]; config.json has 12 labels");
    CHECK(e.code() == nerpipe::errc::model_shape_mismatch);
    CHECK(e.id() == 3);
    CHECK(dynamic_cast<const nerpipe::model_error*>(&e) != nullptr);
  }
  CHECK_THROWS_AS(NERPIPE_THROW(nerpipe::input_error(nerpipe::errc::input_invalid_json, "x")), nerpipe::input_error);
  CHECK_THROWS_WITH(NERPIPE_THROW(nerpipe::cuda_error(nerpipe::errc::cuda_no_device, "no device")),
                    "[nerpipe.cuda_error.303] no device");
  CHECK_THROWS_WITH(NERPIPE_THROW(nerpipe::config_error(nerpipe::errc::config_invalid, "--workers 0")),
                    "[nerpipe.config_error.201] --workers 0");
}

TEST_CASE("device_policy concept", "[core][policy]") {
  STATIC_REQUIRE(nerpipe::device_policy<nerpipe::cpu_policy>);
  STATIC_REQUIRE(nerpipe::can_access<nerpipe::cpu_policy, nerpipe::host_space>);
  STATIC_REQUIRE_FALSE(nerpipe::can_access<nerpipe::cpu_policy, nerpipe::cuda_space>);
  nerpipe::cpu_policy cpu{2};
  CHECK(cpu.threads() == 2);
  std::vector<float> host{1.5f, -2.0f, 3.25f};
  auto buf = cpu.upload(std::span<const float>(host));
  std::vector<float> back(3, 0.0f);
  cpu.download(std::span<const float>(buf.data(), buf.size()), std::span<float>(back));
  CHECK(back == host);
}
