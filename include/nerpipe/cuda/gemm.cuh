// SPDX-License-Identifier: Apache-2.0
//! @file cuBLASLt plans for row-major gemms: the layout mapping, per-shape descriptor/heuristic cache, fallbacks.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/cuda/cuda_policy.cuh>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/cuda/kernels/common.cuh>
#include <nerpipe/cuda/kernels/elementwise.cuh>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

template <class T>
[[nodiscard]] constexpr cudaDataType_t cuda_data_type() noexcept {
  using U = std::remove_const_t<T>;
  if constexpr (std::is_same_v<U, float8_e4m3>)
    return CUDA_R_8F_E4M3;
  else if constexpr (std::is_same_v<U, bfloat16>)
    return CUDA_R_16BF;
  else if constexpr (std::is_same_v<U, float16>)
    return CUDA_R_16F;
  else
    return CUDA_R_32F;
}

/// The alignment cuBLASLt may assume for a matrix: the largest power of two (<= 256) dividing both
/// the base address and the byte stride between rows. Its heuristics default to 256, which a row
/// sub-view or a 9-label classifier breaks (facts-cuda §1.10).
[[nodiscard]] inline std::uint32_t lt_alignment(const void* p, std::size_t ld_bytes) noexcept {
  const auto addr = reinterpret_cast<std::uintptr_t>(p) | static_cast<std::uintptr_t>(ld_bytes) | 256u;
  return static_cast<std::uint32_t>(addr & (~addr + 1));  // lowest set bit
}

/// Everything a cuBLASLt plan depends on.
struct gemm_key {
  std::int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;  // cuBLAS (column-major) terms
  int type_ab = 0, type_c = 0;
  int transa = 0;
  int lt_epilogue = 0;
  std::uint32_t align_a = 0, align_b = 0, align_c = 0;
  bool exact = false;
  bool operator==(const gemm_key&) const = default;
};
struct gemm_key_hash {
  std::size_t operator()(const gemm_key& k) const noexcept {
    std::size_t h = 1469598103934665603ull;
    auto mix = [&h](std::uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix(static_cast<std::uint64_t>(k.m));
    mix(static_cast<std::uint64_t>(k.n));
    mix(static_cast<std::uint64_t>(k.k));
    mix(static_cast<std::uint64_t>(k.lda));
    mix(static_cast<std::uint64_t>(k.ldb));
    mix(static_cast<std::uint64_t>(k.ldc));
    mix((static_cast<std::uint64_t>(k.type_ab) << 32) | static_cast<std::uint32_t>(k.type_c));
    mix((static_cast<std::uint64_t>(k.transa) << 32) | static_cast<std::uint32_t>(k.lt_epilogue));
    mix((static_cast<std::uint64_t>(k.align_a) << 40) | (static_cast<std::uint64_t>(k.align_b) << 20) | k.align_c);
    mix(k.exact ? 1u : 0u);
    return h;
  }
};

/// Descriptors and heuristic results for one key, created once. `chosen` is the first algorithm that
/// ran; `usable` turns false when none does (the caller then takes its fallback).
class gemm_plan {
 public:
  static constexpr int max_algos = 8;

  /// a_scale / b_scale: FP8 plans get their scale pointers before the heuristic query (each run sets them again).
  gemm_plan(cublasLtHandle_t lt, const gemm_key& key, std::size_t workspace_bytes, const float* a_scale = nullptr,
            const float* b_scale = nullptr) {
    try {
      NERPIPE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      const auto transa = static_cast<cublasOperation_t>(key.transa);
      const cublasOperation_t transb = CUBLAS_OP_N;
      NERPIPE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)));
      NERPIPE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)));
      const auto epi = static_cast<cublasLtEpilogue_t>(key.lt_epilogue);
      NERPIPE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      if (a_scale != nullptr)
        NERPIPE_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale, sizeof(a_scale)));
      if (b_scale != nullptr)
        NERPIPE_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale, sizeof(b_scale)));
      // The bias type stays the default, the output type: cuBLASLt 13 rejects an fp32 bias with 16-bit
      // operands (CUBLAS_STATUS_INVALID_VALUE on H100), so lt_gemm converts biases for 16-bit outputs. FP8
      // operands take a bf16 bias with an fp32 output too (cuBLASLt's exception for fp8 kernels): said explicitly.
      const auto tab = static_cast<cudaDataType_t>(key.type_ab), tc = static_cast<cudaDataType_t>(key.type_c);
      if (tab == CUDA_R_8F_E4M3 && tc == CUDA_R_32F) {
        const auto bias_type = static_cast<std::int32_t>(CUDA_R_16BF);
        NERPIPE_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
      }
      // A = op's left operand (the weights/B of the row-major call), B = the activations.
      const bool a_t = transa == CUBLAS_OP_T;
      NERPIPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a_, tab, a_t ? key.k : key.m, a_t ? key.m : key.k, key.lda));
      NERPIPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b_, tab, key.k, key.n, key.ldb));
      NERPIPE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c_, tc, key.m, key.n, key.ldc));

      cublasLtMatmulPreference_t pref = nullptr;
      NERPIPE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
      struct pref_guard {
        cublasLtMatmulPreference_t p;
        ~pref_guard() { (void)cublasLtMatmulPreferenceDestroy(p); }
      } guard{pref};
      const std::uint64_t ws = workspace_bytes;
      NERPIPE_CUBLAS_CHECK(
          cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
      const std::array<std::pair<cublasLtMatmulPreferenceAttributes_t, std::uint32_t>, 4> aligns{{
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c},
      }};
      for (const auto& [attr, value] : aligns)
        NERPIPE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
      // fp32 mode: one dot product per output, no split-K, so a row never depends on batch composition
      // through the reduction scheme (facts-cuda §1.7). 16-bit outputs: split-K partial sums may only be
      // reduced in the fp32 compute type, never in (or in place of) the 16-bit output.
      const std::uint32_t scheme =
          key.exact ? static_cast<std::uint32_t>(CUBLASLT_REDUCTION_SCHEME_NONE)
          : tc != CUDA_R_32F
              ? static_cast<std::uint32_t>(CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE)
              : static_cast<std::uint32_t>(CUBLASLT_REDUCTION_SCHEME_MASK);
      NERPIPE_CUBLAS_CHECK(
          cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &scheme, sizeof(scheme)));
      int found = 0;
      const cublasStatus_t s =
          cublasLtMatmulAlgoGetHeuristic(lt, op_, a_, b_, c_, c_, pref, max_algos, results_.data(), &found);
      // No algorithm (NOT_SUPPORTED), or a combination this cuBLASLt refuses outright (INVALID_VALUE, e.g.
      // 2-byte aligned bf16 rows): the caller falls back.
      if (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE)
        found = 0;
      else
        NERPIPE_CUBLAS_CHECK(s);
      count_ = found;
      usable_ = found > 0;
    } catch (...) {
      release();
      throw;
    }
  }
  ~gemm_plan() { release(); }
  gemm_plan(const gemm_plan&) = delete;
  gemm_plan& operator=(const gemm_plan&) = delete;

  [[nodiscard]] bool usable() const noexcept { return usable_; }

  /// Enqueues D = epilogue(alpha sA sB op(A) B + beta C (+ bias)) with D == C; sA / sB are the FP8 scale
  /// pointers (device floats; null: no scale). Returns false when no algorithm accepts the call (the plan is
  /// then marked unusable).
  bool run(cublasLtHandle_t lt, cudaStream_t stream, void* workspace, std::size_t workspace_bytes, const void* a,
           const void* b, void* c, const void* bias, float alpha, float beta, const float* a_scale = nullptr,
           const float* b_scale = nullptr) {
    if (bias != nullptr)
      NERPIPE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    if (a_scale != nullptr)
      NERPIPE_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale, sizeof(a_scale)));
    if (b_scale != nullptr)
      NERPIPE_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale, sizeof(b_scale)));
    for (; chosen_ < count_; ++chosen_) {
      const auto& r = results_[static_cast<std::size_t>(chosen_)];
      if (r.state != CUBLAS_STATUS_SUCCESS || r.workspaceSize > workspace_bytes) continue;
      const cublasStatus_t s = cublasLtMatmul(lt, op_, &alpha, a, a_, b, b_, &beta, c, c_, c, c_, &r.algo, workspace,
                                              workspace_bytes, stream);
      if (s == CUBLAS_STATUS_SUCCESS) return true;
      // The first heuristic result is not guaranteed to run (LtSgemm sample): try the next.
      if (s != CUBLAS_STATUS_NOT_SUPPORTED && s != CUBLAS_STATUS_INVALID_VALUE) NERPIPE_CUBLAS_CHECK(s);
    }
    usable_ = false;
    return false;
  }

 private:
  void release() noexcept {
    if (a_ != nullptr) (void)cublasLtMatrixLayoutDestroy(a_);
    if (b_ != nullptr) (void)cublasLtMatrixLayoutDestroy(b_);
    if (c_ != nullptr) (void)cublasLtMatrixLayoutDestroy(c_);
    if (op_ != nullptr) (void)cublasLtMatmulDescDestroy(op_);
    a_ = b_ = c_ = nullptr;
    op_ = nullptr;
  }

  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  std::array<cublasLtMatmulHeuristicResult_t, max_algos> results_{};
  int count_ = 0;
  int chosen_ = 0;
  bool usable_ = false;
};

/// Per-policy-resources cache of plans. Bounded: an unbounded stream of token counts must not grow it forever.
/// Also holds the FP8 gemm's scratch: the quantised activations and two floats (amax bits, scale).
struct gemm_cache {
  static constexpr std::size_t max_plans = 2048;
  std::unordered_map<gemm_key, std::unique_ptr<gemm_plan>, gemm_key_hash> plans;
  void* fp8_act = nullptr;
  std::size_t fp8_act_bytes = 0;
  float* fp8_scalars = nullptr;  // [0]: amax as bits, [1]: the dequantisation scale

  gemm_cache() = default;
  gemm_cache(const gemm_cache&) = delete;
  gemm_cache& operator=(const gemm_cache&) = delete;
  ~gemm_cache() {  // cuda_resources synchronises its stream before releasing the cache
    if (fp8_act != nullptr) (void)cudaFree(fp8_act);
    if (fp8_scalars != nullptr) (void)cudaFree(fp8_scalars);
  }
  /// At least `bytes` of FP8 activation scratch, valid for work enqueued on `stream` after this call.
  void ensure_fp8(cudaStream_t stream, std::size_t bytes) {
    if (fp8_scalars == nullptr) NERPIPE_CUDA_CHECK(cudaMalloc(&fp8_scalars, 2 * sizeof(float)));
    if (bytes <= fp8_act_bytes) return;
    bytes = (bytes + 4095) / 4096 * 4096;
    NERPIPE_CUDA_CHECK(cudaStreamSynchronize(stream));  // earlier GEMMs may still read the old scratch
    if (fp8_act != nullptr) NERPIPE_CUDA_CHECK(cudaFree(fp8_act));
    fp8_act = nullptr;
    fp8_act_bytes = 0;
    NERPIPE_CUDA_CHECK(cudaMalloc(&fp8_act, bytes));
    fp8_act_bytes = bytes;
  }

  gemm_plan& get(cublasLtHandle_t lt, const gemm_key& key, std::size_t workspace_bytes, const float* a_scale = nullptr,
                 const float* b_scale = nullptr) {
    auto it = plans.find(key);
    if (it != plans.end()) return *it->second;
    if (plans.size() >= max_plans) plans.clear();  // enqueued matmuls do not need their descriptors any more
    auto plan = std::make_unique<gemm_plan>(lt, key, workspace_bytes, a_scale, b_scale);
    return *plans.emplace(key, std::move(plan)).first->second;
  }
};

/// The cache of a policy's resources; the caller holds resources().gemm_mutex.
[[nodiscard]] inline gemm_cache& gemm_cache_of(cuda_resources& res) {
  if (!res.gemm_state) res.gemm_state = std::make_shared<gemm_cache>();
  return *static_cast<gemm_cache*>(res.gemm_state.get());
}

/// One row-major gemm, C[m,n] = alpha A[m,k] op(B) + beta C, with an optional cuBLASLt epilogue, mapped
/// onto column-major cuBLASLt (facts-cuda §1.1): C^T = op(B)^T A^T, so cuBLAS's A is our B (transa = T for
/// an nn.Linear [n,k] weight, N for a [k,n] matrix), cuBLAS's B is our A (N), and m/n swap.
/// Returns false when cuBLASLt has no algorithm for it (the caller falls back).
struct lt_gemm_call {
  const void* a = nullptr;  // row-major [m, k], lda
  const void* b = nullptr;  // row-major [n, k] (b_transposed) or [k, n], ldb
  void* c = nullptr;        // row-major [m, n], ldc
  std::size_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  bool b_transposed = true;
  cudaDataType_t type_ab = CUDA_R_32F, type_c = CUDA_R_32F;
  std::size_t elem_ab = 4, elem_c = 4;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const float* bias = nullptr;
  float alpha = 1.0f, beta = 0.0f;
  const float* a_scale = nullptr;  // FP8: device scale of a (the activations), of b (the weights)
  const float* b_scale = nullptr;
};

inline bool lt_gemm(const cuda_policy& p, const lt_gemm_call& g) {
  gemm_key key;
  key.m = static_cast<std::int64_t>(g.n);
  key.n = static_cast<std::int64_t>(g.m);
  key.k = static_cast<std::int64_t>(g.k);
  key.lda = static_cast<std::int64_t>(g.ldb);
  key.ldb = static_cast<std::int64_t>(g.lda);
  key.ldc = static_cast<std::int64_t>(g.ldc);
  key.type_ab = static_cast<int>(g.type_ab);
  key.type_c = static_cast<int>(g.type_c);
  key.transa = static_cast<int>(g.b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N);
  key.lt_epilogue = static_cast<int>(g.epilogue);
  key.align_a = lt_alignment(g.b, g.ldb * g.elem_ab);
  key.align_b = lt_alignment(g.a, g.lda * g.elem_ab);
  key.align_c = lt_alignment(g.c, g.ldc * g.elem_c);
  key.exact = g.type_ab == CUDA_R_32F;

  cuda_resources& res = p.resources();
  device_guard guard(res.device);
  std::lock_guard<std::mutex> lock(res.gemm_mutex);  // the plan's bias pointer and the scratch are per call
  gemm_plan& plan = gemm_cache_of(res).get(res.lt, key, res.workspace_bytes, g.b_scale, g.a_scale);
  if (!plan.usable()) return false;
  const void* bias = g.bias;
  if (bias != nullptr && (g.type_c != CUDA_R_32F || g.type_ab == CUDA_R_8F_E4M3)) {
    // The epilogue's bias has the output type (bf16 for FP8 operands with an fp32 output): round the fp32 bias
    // once per call into scratch.
    void* scratch = res.ensure_bias_scratch(g.n * 2);
    constexpr unsigned threads = 256;
    const auto blocks = static_cast<unsigned>((g.n + threads - 1) / threads);
    if (g.type_c == CUDA_R_16BF || g.type_c == CUDA_R_32F)
      kernels::convert_kernel<<<blocks, threads, 0, res.stream>>>(g.bias, static_cast<__nv_bfloat16*>(scratch), g.n);
    else
      kernels::convert_kernel<<<blocks, threads, 0, res.stream>>>(g.bias, static_cast<__half*>(scratch), g.n);
    NERPIPE_CUDA_CHECK_LAUNCH();
    bias = scratch;
  }
  // cuBLAS's A is our b and its B our a: the scales swap with them.
  return plan.run(res.lt, res.stream, res.workspace, res.workspace_bytes, g.b, g.a, g.c, bias, g.alpha, g.beta,
                  g.b_scale, g.a_scale);
}

}  // namespace detail
NERPIPE_NAMESPACE_END
