// SPDX-License-Identifier: Apache-2.0
//! @file Packed (no-padding) attention through cuDNN's fused SDPA, via the header-only cuDNN frontend.
//!
//! Compiled in when NERPIPE_WITH_CUDNN_FRONTEND is defined (CMake does it when it finds the frontend's
//! headers: scripts/get-cudnn-frontend.sh); libcudnn.so.9 is loaded at run time (dlopen), so a machine
//! without cuDNN still runs, on nerpipe's own kernels. Without the define, cudnn_sdpa_run() returns false.
//!
//! nerpipe's packed layout is cuDNN's "THD" layout: q, k and v are column slices of one [T, 3H] matrix, so
//! each is a [b, h, s_max, d] tensor with strides {s_max·ld, d, ld, 1} plus a ragged offset per sequence
//! (seq_offsets[i]·ld elements), and a padding mask with per-sequence lengths (cuDNN wants both together).
//! The graph's b and s_max are build-time shapes: one graph per bucket (b rounded up to a power of two,
//! s_max up to a power of two >= 64), padded with empty sequences; built once per policy and cached.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/cuda/cuda_policy.cuh>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/cuda/kernels/common.cuh>
#include <nerpipe/ops/attention.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>  // the frontend's shim uses std::strlen without including it
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>

#if defined(NERPIPE_WITH_CUDNN_FRONTEND)
#  include <dlfcn.h>
#  include <cudnn_frontend.h>
// The frontend's dynamic-loading shim declares this handle extern and leaves its definition (and the
// dlopen) to the program; header-only, it is an inline variable.
namespace cudnn_frontend {
inline void* cudnn_dlhandle = nullptr;
}
#endif

NERPIPE_NAMESPACE_BEGIN
namespace detail {

#if defined(NERPIPE_WITH_CUDNN_FRONTEND)
inline constexpr bool cudnn_attention_compiled = true;

namespace kernels {
/// Per-sequence lengths and element offsets of the ragged tensors, padded with empty sequences to `bucket`.
template <int Variant = 0>
__global__ void cudnn_ragged_kernel(const std::int32_t* __restrict__ offs, std::size_t seqs, std::size_t bucket,
                                    std::int64_t ld_qkv, std::int64_t ld_o, std::int32_t* __restrict__ lens,
                                    std::int64_t* __restrict__ rag_qkv, std::int64_t* __restrict__ rag_o) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i <= bucket;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::int64_t o = offs[i <= seqs ? i : seqs];
    rag_qkv[i] = o * ld_qkv;
    rag_o[i] = o * ld_o;
    if (i < bucket) lens[i] = i < seqs ? offs[i + 1] - offs[i] : 0;
  }
}
}  // namespace kernels

/// libcudnn.so.9 opened once per process (NERPIPE_CUDNN=0 turns the path off); empty string when usable,
/// else why not.
inline const std::string& cudnn_unavailable_reason() {
  static const std::string reason = []() -> std::string {
    if (const char* env = std::getenv("NERPIPE_CUDNN"); env != nullptr && std::string(env) == "0")
      return "NERPIPE_CUDNN=0";
    void* h = nullptr;
    for (const char* name : {"libcudnn.so.9", "libcudnn.so"})
      if ((h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    if (h == nullptr) return "libcudnn.so.9 not found (dlopen; set LD_LIBRARY_PATH)";
    cudnn_frontend::cudnn_dlhandle = h;
    try {
      const std::size_t v = cudnn_frontend::detail::get_backend_version();
      // Ragged (THD) SDPA needs cuDNN 9; 9.10.0/9.10.1 have known SDPA bugs (the frontend refuses them too).
      if (v < 90000 || (v >= 91000 && v < 91002))
        return "cuDNN " + cudnn_frontend::detail::convert_version_to_str(v) + " is not supported for packed SDPA";
    } catch (const std::exception& e) {
      return std::string("cuDNN: ") + e.what();
    }
    return {};
  }();
  return reason;
}

/// The built graphs of one policy (per bucket), its cuDNN handle (bound to the policy's stream), the
/// workspace and the small per-call arrays. Lives in cuda_resources::attention_state.
struct cudnn_attention_state {
  struct key {
    std::int64_t b, s, h, d, ld_qkv, ld_o;
    int io;
    std::uint32_t scale_bits;
    bool operator==(const key&) const = default;
  };
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept {
      std::size_t h = 1469598103934665603ull;
      for (std::int64_t v : {k.b, k.s, k.h, k.d, k.ld_qkv, k.ld_o, std::int64_t{k.io}, std::int64_t{k.scale_bits}})
        h = (h ^ static_cast<std::uint64_t>(v)) * 1099511628211ull;
      return h;
    }
  };
  struct entry {
    std::shared_ptr<cudnn_frontend::graph::Graph> graph;  // null: this bucket is not supported
    std::int64_t workspace = 0;
  };
  enum uid : std::int64_t { q_uid = 1, k_uid, v_uid, o_uid, seq_q_uid, seq_kv_uid, rag_q_uid, rag_k_uid, rag_v_uid, rag_o_uid };
  static constexpr std::size_t max_graphs = 256;

  std::mutex mutex;
  cudnnHandle_t handle = nullptr;
  int device = 0;
  std::unordered_map<key, entry, key_hash> graphs;
  std::string last_error;  // the last build failure (for tests and benchmarks)
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  std::int32_t* lens = nullptr;
  std::int64_t *rag_qkv = nullptr, *rag_o = nullptr;
  std::size_t capacity = 0;  // sequences the arrays hold

  explicit cudnn_attention_state(const cuda_resources& res) : device(res.device) {
    if (cudnn_frontend::detail::create_handle(&handle) != CUDNN_STATUS_SUCCESS) {
      handle = nullptr;
      NERPIPE_THROW(cuda_error(errc::cuda_library, "cudnnCreate failed"));
    }
    if (cudnn_frontend::detail::set_stream(handle, res.stream) != CUDNN_STATUS_SUCCESS)
      NERPIPE_THROW(cuda_error(errc::cuda_library, "cudnnSetStream failed"));
  }
  ~cudnn_attention_state() {
    // cuda_resources synchronises its stream before releasing this state.
    for (void* p : {workspace, static_cast<void*>(lens), static_cast<void*>(rag_qkv), static_cast<void*>(rag_o)})
      if (p != nullptr) (void)cudaFree(p);
    graphs.clear();
    if (handle != nullptr) (void)cudnn_frontend::detail::destroy_handle(handle);
  }
  cudnn_attention_state(const cudnn_attention_state&) = delete;
  cudnn_attention_state& operator=(const cudnn_attention_state&) = delete;

  /// The graph of `k`, built on first use; null when cuDNN does not support it (then the caller falls back).
  entry& graph_for(const key& k) {
    namespace fe = cudnn_frontend;
    auto it = graphs.find(k);
    if (it != graphs.end()) return it->second;
    if (graphs.size() >= max_graphs) graphs.clear();
    entry e;
    try {
      auto g = std::make_shared<fe::graph::Graph>();
      g->set_io_data_type(static_cast<fe::DataType_t>(k.io))
          .set_intermediate_data_type(fe::DataType_t::FLOAT)
          .set_compute_data_type(fe::DataType_t::FLOAT);
      auto ragged = [&](const char* name, std::int64_t id) {
        return g->tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(id).set_dim({k.b + 1, 1, 1, 1})
                             .set_stride({1, 1, 1, 1}).set_data_type(fe::DataType_t::INT64));
      };
      auto packed = [&](const char* name, std::int64_t id, std::int64_t ld, const std::shared_ptr<fe::graph::Tensor_attributes>& r) {
        return g->tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(id).set_dim({k.b, k.h, k.s, k.d})
                             .set_stride({k.s * ld, k.d, ld, 1}).set_ragged_offset(r));
      };
      auto q = packed("q", q_uid, k.ld_qkv, ragged("rag_q", rag_q_uid));
      auto kk = packed("k", k_uid, k.ld_qkv, ragged("rag_k", rag_k_uid));
      auto v = packed("v", v_uid, k.ld_qkv, ragged("rag_v", rag_v_uid));
      auto lens_t = [&](const char* name, std::int64_t id) {
        return g->tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(id).set_dim({k.b, 1, 1, 1})
                             .set_stride({1, 1, 1, 1}).set_data_type(fe::DataType_t::INT32));
      };
      float scale = 0.0f;
      std::memcpy(&scale, &k.scale_bits, sizeof scale);
      auto opts = fe::graph::SDPA_attributes()
                      .set_name("nerpipe_packed_sdpa")
                      .set_generate_stats(false)
                      .set_attn_scale(scale)
                      .set_padding_mask(true)
                      .set_seq_len_q(lens_t("seq_q", seq_q_uid))
                      .set_seq_len_kv(lens_t("seq_kv", seq_kv_uid));
      auto [o, stats] = g->sdpa(q, kk, v, opts);
      (void)stats;
      o->set_output(true).set_uid(o_uid).set_dim({k.b, k.h, k.s, k.d}).set_stride({k.s * k.ld_o, k.d, k.ld_o, 1})
          .set_ragged_offset(ragged("rag_o", rag_o_uid));
      auto status = g->build(handle, {fe::HeurMode_t::A});
      if (status.is_good() && g->get_workspace_size(e.workspace).is_good()) {
        e.graph = std::move(g);
      } else {
        last_error = status.get_message();
      }
    } catch (const std::exception& ex) {
      last_error = ex.what();
      e.graph.reset();
    }
    return graphs.emplace(k, std::move(e)).first->second;
  }

  void ensure(cudaStream_t stream, std::size_t seqs, std::int64_t ws) {
    if (static_cast<std::size_t>(ws) > workspace_bytes) {
      NERPIPE_CUDA_CHECK(cudaStreamSynchronize(stream));  // the old workspace may still be in use
      if (workspace != nullptr) NERPIPE_CUDA_CHECK(cudaFree(workspace));
      workspace = nullptr;
      workspace_bytes = 0;
      NERPIPE_CUDA_CHECK(cudaMalloc(&workspace, static_cast<std::size_t>(ws)));
      workspace_bytes = static_cast<std::size_t>(ws);
    }
    if (seqs > capacity) {
      NERPIPE_CUDA_CHECK(cudaStreamSynchronize(stream));
      for (void* p : {static_cast<void*>(lens), static_cast<void*>(rag_qkv), static_cast<void*>(rag_o)})
        if (p != nullptr) NERPIPE_CUDA_CHECK(cudaFree(p));
      lens = nullptr;
      rag_qkv = rag_o = nullptr;
      capacity = 0;
      NERPIPE_CUDA_CHECK(cudaMalloc(&lens, seqs * sizeof(std::int32_t)));
      NERPIPE_CUDA_CHECK(cudaMalloc(&rag_qkv, (seqs + 1) * sizeof(std::int64_t)));
      NERPIPE_CUDA_CHECK(cudaMalloc(&rag_o, (seqs + 1) * sizeof(std::int64_t)));
      capacity = seqs;
    }
  }
};

[[nodiscard]] inline std::int64_t next_pow2(std::int64_t x, std::int64_t lo) {
  std::int64_t p = lo;
  while (p < x) p *= 2;
  return p;
}

/// The policy's attention state (created on first use); the caller holds nothing.
[[nodiscard]] inline cudnn_attention_state& cudnn_state_of(cuda_resources& res) {
  std::lock_guard<std::mutex> lock(res.gemm_mutex);
  if (!res.attention_state) res.attention_state = std::make_shared<cudnn_attention_state>(res);
  return *static_cast<cudnn_attention_state*>(res.attention_state.get());
}

/// Runs the attention through cuDNN's fused SDPA when it can: 16-bit types, head_dim 64 or 128, q/k/v with one
/// row stride, 16-byte aligned rows, sm_80+, libcudnn loadable, and cuDNN supports the bucket's graph.
/// Returns false (nothing enqueued) otherwise; the caller then runs nerpipe's own kernel.
template <class T>
bool cudnn_sdpa_run(const cuda_policy& p, const attention_args<T>& a, std::size_t max_len, float scale) {
  using U = std::remove_const_t<T>;
  if constexpr (std::is_same_v<U, float>) {
    return false;
  } else {
    auto aligned = [](const void* ptr, std::size_t ld) {
      return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0 && ld % 8 == 0;
    };
    if (p.compute_capability() < 80 || (a.head_dim != 64 && a.head_dim != 128) || a.q.ld != a.k.ld || a.q.ld != a.v.ld ||
        !aligned(a.q.data, a.q.ld) || !aligned(a.k.data, a.k.ld) || !aligned(a.v.data, a.v.ld) ||
        !aligned(a.out.data, a.out.ld) || a.num_seqs > (std::size_t{1} << 20))
      return false;
    if (!cudnn_unavailable_reason().empty()) return false;
    cuda_resources& res = p.resources();
    device_guard guard(res.device);
    cudnn_attention_state* state = nullptr;
    try {
      state = &cudnn_state_of(res);
    } catch (const cuda_error&) {
      return false;  // no cuDNN handle on this device: the own kernels run
    }
    cudnn_attention_state& st = *state;
    std::lock_guard<std::mutex> lock(st.mutex);
    cudnn_attention_state::key k{};
    k.b = next_pow2(static_cast<std::int64_t>(a.num_seqs), 1);
    k.s = next_pow2(static_cast<std::int64_t>(max_len), 64);
    k.h = static_cast<std::int64_t>(a.heads);
    k.d = static_cast<std::int64_t>(a.head_dim);
    k.ld_qkv = static_cast<std::int64_t>(a.q.ld);
    k.ld_o = static_cast<std::int64_t>(a.out.ld);
    k.io = static_cast<int>(std::is_same_v<U, bfloat16> ? cudnn_frontend::DataType_t::BFLOAT16
                                                        : cudnn_frontend::DataType_t::HALF);
    std::memcpy(&k.scale_bits, &scale, sizeof scale);
    auto& e = st.graph_for(k);
    if (!e.graph) return false;
    const auto b = static_cast<std::size_t>(k.b);
    st.ensure(res.stream, b, e.workspace);
    kernels::cudnn_ragged_kernel<<<static_cast<unsigned>((b + 256) / 256), 256, 0, res.stream>>>(
        a.seq_offsets, a.num_seqs, b, k.ld_qkv, k.ld_o, st.lens, st.rag_qkv, st.rag_o);
    NERPIPE_CUDA_CHECK_LAUNCH();
    using S = cudnn_attention_state;
    std::unordered_map<std::int64_t, void*> pack{
        {S::q_uid, const_cast<U*>(a.q.data)},  {S::k_uid, const_cast<U*>(a.k.data)},
        {S::v_uid, const_cast<U*>(a.v.data)},  {S::o_uid, a.out.data},
        {S::seq_q_uid, st.lens},               {S::seq_kv_uid, st.lens},
        {S::rag_q_uid, st.rag_qkv},            {S::rag_k_uid, st.rag_qkv},
        {S::rag_v_uid, st.rag_qkv},            {S::rag_o_uid, st.rag_o}};
    auto status = e.graph->execute(st.handle, pack, st.workspace);
    if (!status.is_good())
      NERPIPE_THROW(cuda_error(errc::cuda_library, "cuDNN SDPA execute failed: " + status.get_message()));
    return true;
  }
}

/// Why the last cuDNN graph build of `p` failed (empty if none failed), or why cuDNN is not loaded.
[[nodiscard]] inline std::string cudnn_attention_status(const cuda_policy& p) {
  if (!cudnn_unavailable_reason().empty()) return cudnn_unavailable_reason();
  auto& st = cudnn_state_of(p.resources());
  std::lock_guard<std::mutex> lock(st.mutex);
  return st.last_error;
}

#else  // no frontend headers at build time

inline constexpr bool cudnn_attention_compiled = false;

inline const std::string& cudnn_unavailable_reason() {
  static const std::string reason = "built without the cuDNN frontend (scripts/get-cudnn-frontend.sh)";
  return reason;
}

template <class T>
bool cudnn_sdpa_run(const cuda_policy&, const attention_args<T>&, std::size_t, float) {
  return false;
}
[[nodiscard]] inline std::string cudnn_attention_status(const cuda_policy&) { return cudnn_unavailable_reason(); }

#endif

}  // namespace detail
NERPIPE_NAMESPACE_END
