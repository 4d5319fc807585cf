// SPDX-License-Identifier: Apache-2.0
//! @file Policy-generic op tests: every op against the double-precision host reference, written once and
//! instantiated per policy (tests/unit/ops_cpu.cpp for cpu_policy, tests/cuda/ops_cuda.cu for cuda_policy),
//! in the pattern of CTranslate2's ops_test (one body, INSTANTIATE per device).
//!
//! The including TU first defines `nerpipe::ops_test::ops_test_policies`, a std::tuple of policy makers:
//!   struct cpu_threads_3 {
//!     using policy = nerpipe::cpu_policy;
//!     using element_types = std::tuple<float>;                             // activations the ops take
//!     using gemm_types = std::tuple<nerpipe::ops_test::gemm_types<float, float>>;  // (input, output) pairs
//!     static policy make() { return policy(3); }
//!     static std::string label() { return "cpu_policy(3)"; }  // Catch names instances only by index
//!   };
//! and includes the op specialisations of those policies. Data moves only through the policy interface
//! (buffer, upload, download, synchronize), so the same bodies run on device memory. Inputs are rounded to
//! the element type first, so the reference sees exactly the values the policy sees.
#pragma once

#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/ops/reference.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace nerpipe::ops_test {

// ---------------------------------------------------------------------------------------------
// The tolerance table: the one place that says how close each op must come, per output type.
// A result passes when |got - want| <= abs + rel * magnitude, where `want` is the double reference on
// the (rounded) inputs and `magnitude` is |want|, except for gemm, where it is the sum of the absolute
// values of the terms (|alpha| sum_k |a b| + |beta c| + |bias|): the error of a dot product scales with its
// terms, not with its possibly cancelling result. Inputs are already in the element type, so the bound
// covers the op's own arithmetic and the one rounding of its output.
// fp32: the worst err/bound measured (NERPIPE_OPS_REPORT=1) on cpu_policy is 0.02 for gemm, 0.23 for
// layer_norm, 0.09 for softmax, 0.10 for gelu, 0.02 for attention; on cuda_policy (H100,
// NVIDIA_TF32_OVERRIDE=0) 0.35 for gemm (the tanh-GELU epilogue), 0.03, 0.02, 0.12 and 0.03.
// bf16 / fp16 (cuda_policy only): the bounds the CUDA op tests passed with on the H100 (fp32 accumulation,
// one rounding of the output: 2^-8 relative for bf16, 2^-11 for fp16, plus the half bias of cuBLASLt's
// epilogue for gemm).
// gather and argmax are exact for every type.
// ---------------------------------------------------------------------------------------------
enum class op_kind { gemm, layer_norm, softmax, gelu, gather, attention };

struct tolerance {
  double abs;
  double rel;
};

template <class T>
constexpr tolerance tolerance_of(op_kind op) {
  constexpr bool half = std::is_same_v<T, float16>, bhalf = std::is_same_v<T, bfloat16>;
  switch (op) {
    case op_kind::gemm:
      return half || bhalf ? tolerance{0, 8e-3} : tolerance{0, 1e-5};
    // fp32 sums of ~1000 values with a non-zero mean: the CPU's float mean is off by a few 1e-6.
    case op_kind::layer_norm:
      return half ? tolerance{2e-3, 2e-3} : bhalf ? tolerance{2e-2, 1e-2} : tolerance{2e-5, 2e-5};
    case op_kind::softmax:
      return half ? tolerance{1e-4, 2e-3} : bhalf ? tolerance{1e-4, 1e-2} : tolerance{1e-7, 1e-5};
    // 1 + erf(x / sqrt 2) cancels for x << 0; fp32 erff's absolute error then dominates.
    case op_kind::gelu:
      return half ? tolerance{1e-3, 2e-3} : bhalf ? tolerance{1e-3, 1e-2} : tolerance{2e-6, 1e-5};
    case op_kind::gather:
      return half || bhalf ? tolerance{0, 1e-2} : tolerance{0, 0};
    // Outputs are convex combinations of values in [-q, q]: absolute bounds are the meaningful ones.
    case op_kind::attention:
      return half ? tolerance{4e-3, 0} : bhalf ? tolerance{2e-2, 0} : tolerance{2e-5, 1e-5};
  }
  return {0, 0};
}

/// One (input, output) element type pair of the gemm tests.
template <class In, class Out>
struct gemm_types {
  using in = In;
  using out = Out;
};

/// Whether the policy of maker M can run here (a device policy without a device reports its test cases
/// skipped through M::available()).
template <class M>
bool available() {
  if constexpr (requires { M::available(); })
    return M::available();
  else
    return true;
}

/// Calls f(T{}) for every type of a std::tuple.
template <class Tuple, class F>
void for_each_type(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(std::tuple_element_t<I, Tuple>{}), ...);
  }(std::make_index_sequence<std::tuple_size_v<Tuple>>{});
}

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bfloat16>)
    return "bf16";
  else if constexpr (std::is_same_v<T, float16>)
    return "fp16";
  else
    return "fp32";
}

// ---------------------------------------------------------------------------------------------
// Data helpers
// ---------------------------------------------------------------------------------------------
inline constexpr float pad_sentinel = -7776.0f;  // fills [cols, ld) of every strided matrix; exact in bf16 and fp16

template <class T>
T from_float(float f) {
  return ::nerpipe::detail::ref_store<T>(f);
}
template <class T>
double to_double(T v) {
  return ::nerpipe::detail::ref_load(v);
}
inline float poison() { return std::numeric_limits<float>::quiet_NaN(); }

/// Uniform in [lo, hi), never exactly zero (zeros hide missing writes and wrong strides).
inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    do x = dist(gen);
    while (x == 0.0f);
  }
  return v;
}

/// A row-major host matrix of element type T whose padding columns hold pad_sentinel.
template <class T = float>
struct host_matrix {
  std::vector<T> v;
  std::size_t rows = 0, cols = 0, ld = 0;

  host_matrix(std::size_t r, std::size_t c, std::size_t l) : v(r * l, from_float<T>(pad_sentinel)), rows(r), cols(c), ld(l) {}
  T& operator()(std::size_t r, std::size_t c) { return v[r * ld + c]; }
  T operator()(std::size_t r, std::size_t c) const { return v[r * ld + c]; }
  matrix_view<T> view() { return {v.data(), rows, cols, ld}; }
  matrix_view<const T> cview() const { return {v.data(), rows, cols, ld}; }

  void fill_random(std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    const auto r = random_floats(rows * cols, seed, lo, hi);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) (*this)(i, j) = from_float<T>(r[i * cols + j]);
  }
  void fill(float x) {
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) (*this)(i, j) = from_float<T>(x);
  }
};

template <class P, class T>
auto to_device(const P& p, const std::vector<T>& host) {
  return p.upload(std::span<const T>(host.data(), host.size()));
}

template <class T, class P, class Buffer>
std::vector<T> to_host(const P& p, const Buffer& buf) {
  p.synchronize();
  std::vector<T> out(buf.size());
  p.download(std::span<const T>(buf.data(), buf.size()), std::span<T>(out));
  p.synchronize();
  return out;
}

template <class T, class Buffer, class U>
matrix_view<T> device_view(Buffer& buf, const host_matrix<U>& shape) {
  return {buf.data(), shape.rows, shape.cols, shape.ld};
}

/// Collects element mismatches; one Catch assertion per matrix, not per element.
class comparison {
 public:
  comparison(std::string what, tolerance tol) : what_(std::move(what)), tol_(tol) {}

  void add(std::size_t r, std::size_t c, double got, double want, double magnitude) {
    ++checked_;
    const double err = std::abs(got - want);
    const double bound = tol_.abs + tol_.rel * magnitude;
    if (bound > 0) worst_ = std::max(worst_, err / bound);
    if (!(err <= bound)) {  // written so that NaN fails
      if (bad_ == 0) {
        std::ostringstream s;
        s.precision(9);
        s << "first mismatch at (" << r << ", " << c << "): got " << got << ", want " << want << ", |err| " << err
          << " > bound " << bound;
        first_ = s.str();
      }
      ++bad_;
    }
  }
  /// Exact expectation (padding, exact ops); NaN never equals.
  void add_exact(std::size_t r, std::size_t c, double got, double want) {
    ++checked_;
    if (!(got == want)) {
      if (bad_ == 0) {
        std::ostringstream s;
        s.precision(9);
        s << "first mismatch at (" << r << ", " << c << "): got " << got << ", want exactly " << want;
        first_ = s.str();
      }
      ++bad_;
    }
  }
  /// With NERPIPE_OPS_REPORT set, every comparison prints its summary (to measure tolerance headroom).
  ~comparison() {
    if (std::getenv("NERPIPE_OPS_REPORT") != nullptr) std::printf("%s\n", describe().c_str());
  }
  comparison(const comparison&) = delete;
  comparison& operator=(const comparison&) = delete;
  [[nodiscard]] bool ok() const { return bad_ == 0 && checked_ > 0; }
  [[nodiscard]] std::string describe() const {
    std::ostringstream s;
    s << what_ << ": " << bad_ << " of " << checked_ << " elements out of tolerance (abs " << tol_.abs << ", rel "
      << tol_.rel << "); worst err/bound " << worst_;
    if (bad_) s << "; " << first_;
    return s.str();
  }
  [[nodiscard]] double worst() const { return worst_; }

 private:
  std::string what_;
  tolerance tol_;
  std::size_t checked_ = 0, bad_ = 0;
  double worst_ = 0;
  std::string first_;
};

/// Checks that the padding columns of `got` (same shape as `like`) still hold pad_sentinel.
template <class T>
void check_padding(const std::vector<T>& got, const host_matrix<T>& like, const std::string& what) {
  if (like.ld == like.cols || like.rows == 0) return;
  comparison cmp(what + " padding", {0, 0});
  for (std::size_t r = 0; r < like.rows; ++r)
    for (std::size_t c = like.cols; c < like.ld; ++c) cmp.add_exact(r, c, to_double(got[r * like.ld + c]), pad_sentinel);
  INFO(cmp.describe());
  CHECK(cmp.ok());
}

inline std::string describe_shape(std::size_t a, std::size_t b, std::size_t c = 0) {
  std::ostringstream s;
  s << a << "x" << b;
  if (c) s << "x" << c;
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// gemm
// ---------------------------------------------------------------------------------------------
struct gemm_case {
  std::size_t m, n, k;
  epilogue ep;
  float alpha, beta;
  bool b_transposed;
  bool strided;
  std::size_t check_every = 1;  // check every n-th output element (large shapes)
};

inline const char* to_string(epilogue ep) {
  switch (ep) {
    case epilogue::none:
      return "none";
    case epilogue::bias:
      return "bias";
    case epilogue::bias_gelu:
      return "bias_gelu";
    case epilogue::bias_gelu_tanh:
      return "bias_gelu_tanh";
  }
  return "?";
}

/// The public entry; a policy's tests may pass another (an internal kernel path) with the same arguments.
struct call_gemm {
  template <class P, class Args>
  void operator()(const P& p, const Args& a) const {
    ops::gemm(p, a);
  }
};

/// Runs one gemm case with inputs of type In and output of type Out; returns the worst err/bound.
template <class In, class Out, class P, class Call = call_gemm>
double run_gemm_case(const P& p, const gemm_case& gc, std::uint64_t seed, Call call = {}) {
  std::ostringstream name;
  name << "gemm " << type_name<In>() << "->" << type_name<Out>() << " " << gc.m << "x" << gc.n << "x" << gc.k
       << " ep=" << to_string(gc.ep) << " alpha=" << gc.alpha << " beta=" << gc.beta << " b_transposed=" << gc.b_transposed
       << " strided=" << gc.strided;
  INFO(name.str());
  const std::size_t pad_a = gc.strided ? 3 : 0, pad_b = gc.strided ? 5 : 0, pad_c = gc.strided ? 2 : 0;
  host_matrix<In> a(gc.m, gc.k, gc.k + pad_a);
  host_matrix<In> b = gc.b_transposed ? host_matrix<In>(gc.n, gc.k, gc.k + pad_b) : host_matrix<In>(gc.k, gc.n, gc.n + pad_b);
  host_matrix<Out> c(gc.m, gc.n, gc.n + pad_c);
  a.fill_random(seed * 7 + 1);
  b.fill_random(seed * 7 + 2);
  // beta == 0 must not read C: poison it. Otherwise C is the residual.
  if (gc.beta != 0.0f)
    c.fill_random(seed * 7 + 3, -2.0f, 2.0f);
  else
    c.fill(poison());
  const auto bias = random_floats(gc.n, seed * 7 + 4, -0.5f, 0.5f);

  auto da = to_device(p, a.v);
  auto db = to_device(p, b.v);
  auto dc = to_device(p, c.v);
  auto dbias = to_device(p, bias);
  gemm_args<In, In, Out> g{device_view<const In>(da, a),
                           device_view<const In>(db, b),
                           device_view<Out>(dc, c),
                           gc.b_transposed,
                           gc.ep == epilogue::none ? nullptr : dbias.data(),
                           gc.ep,
                           gc.alpha,
                           gc.beta};
  call(p, g);
  const auto got = to_host<Out>(p, dc);

  gemm_args<In, In, Out> hg{a.cview(), b.cview(), c.view(), gc.b_transposed, bias.data(), gc.ep, gc.alpha, gc.beta};
  comparison cmp(name.str(), tolerance_of<Out>(op_kind::gemm));
  std::size_t i = 0;
  for (std::size_t r = 0; r < gc.m; ++r)
    for (std::size_t col = 0; col < gc.n; ++col, ++i) {
      if (i % gc.check_every != 0 && !(r + 1 == gc.m && col + 1 == gc.n)) continue;  // always check the last one
      const double old = gc.beta != 0.0f ? to_double(c(r, col)) : 0.0;
      const double want = ops::reference::gemm_element(hg, r, col, old);
      // The output's own rounding scales with the result: |want| joins the magnitude.
      cmp.add(r, col, to_double(got[r * c.ld + col]), want,
              ops::reference::gemm_element_magnitude(hg, r, col, old) + std::abs(want));
    }
  if (gc.m == 0 || gc.n == 0) cmp.add_exact(0, 0, 0, 0);  // nothing to compute: still one check
  INFO(cmp.describe());
  CHECK(cmp.ok());
  check_padding(got, c, name.str());
  return cmp.worst();
}

/// The small and odd shapes, every epilogue, scale and layout.
inline std::vector<gemm_case> small_gemm_cases() {
  struct shape {
    std::size_t m, n, k;
  };
  const shape shapes[] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {4, 6, 0}, {40, 3, 2}, {1, 3, 17}};
  const epilogue eps[] = {epilogue::none, epilogue::bias, epilogue::bias_gelu, epilogue::bias_gelu_tanh};
  const std::pair<float, float> scales[] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.25f, 0.75f}};
  std::vector<gemm_case> out;
  for (const auto& s : shapes)
    for (auto ep : eps)
      for (auto [alpha, beta] : scales)
        for (bool bt : {true, false})
          for (bool strided : {false, true}) out.push_back({s.m, s.n, s.k, ep, alpha, beta, bt, strided});
  return out;
}

/// BERT-base shapes (attention out, FFN1 with GELU, FFN2 with the residual), checked on a subsample.
inline std::vector<gemm_case> bert_gemm_cases() {
  return {{128, 768, 768, epilogue::bias_gelu, 1.0f, 0.0f, true, false, 37},
          {128, 768, 768, epilogue::none, 1.0f, 1.0f, false, true, 41},
          {128, 768, 768, epilogue::bias_gelu_tanh, 0.5f, 0.75f, true, true, 43},
          {96, 3072, 768, epilogue::bias_gelu, 1.0f, 0.0f, true, false, 101},
          {96, 768, 3072, epilogue::bias, 1.0f, 1.0f, true, false, 31}};
}

// ---------------------------------------------------------------------------------------------
// attention over packed variable-length sequences, q/k/v as column slices of one fused matrix
// ---------------------------------------------------------------------------------------------
struct attention_case {
  std::vector<std::int32_t> lengths;
  std::size_t heads, head_dim;
  float scale;    // 0: the default 1/sqrt(head_dim)
  float q_range;  // larger values give peakier softmax rows
};

struct call_attention {
  template <class P, class Args>
  void operator()(const P& p, const Args& a) const {
    ops::attention(p, a);
  }
};

template <class T, class P, class Call = call_attention>
void run_attention_case(const P& p, const attention_case& ac, std::uint64_t seed, Call call = {}) {
  std::ostringstream name;
  name << "attention " << type_name<T>() << " lengths=[";
  for (auto l : ac.lengths) name << l << " ";
  name << "] heads=" << ac.heads << " head_dim=" << ac.head_dim << " scale=" << ac.scale << " q_range=" << ac.q_range;
  INFO(name.str());
  std::vector<std::int32_t> offsets{0};
  std::size_t max_len = 0;
  for (auto l : ac.lengths) {
    offsets.push_back(offsets.back() + l);
    max_len = std::max<std::size_t>(max_len, static_cast<std::size_t>(l));
  }
  const auto tokens = static_cast<std::size_t>(offsets.back());
  const std::size_t hidden = ac.heads * ac.head_dim;
  // A fused [T, 3H] matrix; an odd ld for fp32 (alignment-agnostic kernels), an aligned one for half types
  // (the tensor-core path wants 16-byte rows).
  const std::size_t ld = 3 * hidden + (std::is_same_v<T, float> ? 1 : 8);
  host_matrix<float> values(tokens, 3 * hidden, ld);
  values.fill_random(seed, -1.0f, 1.0f);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t c = 0; c < hidden; ++c) values(t, c) *= ac.q_range;
  host_matrix<T> qkv(tokens, 3 * hidden, ld);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t c = 0; c < 3 * hidden; ++c) qkv(t, c) = from_float<T>(values(t, c));
  host_matrix<T> out(tokens, hidden, hidden + (std::is_same_v<T, float> ? 4 : 8));
  out.fill(poison());

  auto dqkv = to_device(p, qkv.v);
  auto dout = to_device(p, out.v);
  auto doffs = to_device(p, offsets);
  const matrix_view<const T> fused = device_view<const T>(dqkv, qkv);
  attention_args<T> a{fused.slice_cols(0, hidden),
                      fused.slice_cols(hidden, hidden),
                      fused.slice_cols(2 * hidden, hidden),
                      device_view<T>(dout, out),
                      doffs.data(),
                      offsets.data(),
                      ac.lengths.size(),
                      ac.heads,
                      ac.head_dim,
                      max_len,
                      ac.scale};
  call(p, a);
  const auto got = to_host<T>(p, dout);

  host_matrix<T> want = out;
  const matrix_view<const T> hfused = qkv.cview();
  attention_args<T> ha = a;
  ha.q = hfused.slice_cols(0, hidden);
  ha.k = hfused.slice_cols(hidden, hidden);
  ha.v = hfused.slice_cols(2 * hidden, hidden);
  ha.out = want.view();
  ha.seq_offsets = offsets.data();
  ops::reference::attention(ha);
  comparison cmp(name.str(), tolerance_of<T>(op_kind::attention));
  for (std::size_t r = 0; r < tokens; ++r)
    for (std::size_t c = 0; c < hidden; ++c)
      cmp.add(r, c, to_double(got[r * out.ld + c]), to_double(want(r, c)), std::abs(to_double(want(r, c))));
  INFO(cmp.describe());
  CHECK(cmp.ok());
  check_padding(got, out, name.str());
}

/// The attention cases every policy runs: ragged lengths (a 513-token sequence and an empty one among
/// them), head dims 1 to 128, default and explicit scales.
inline std::vector<attention_case> attention_cases() {
  const std::vector<std::int32_t> ragged{1, 2, 7, 64, 129};
  return {{ragged, 2, 8, 0.0f, 1.0f},
          {ragged, 3, 32, 0.0f, 4.0f},
          {ragged, 12, 64, 0.0f, 1.0f},
          {{129, 1, 64, 2, 7}, 4, 16, 0.3f, 2.0f},  // another order, explicit scale
          {{1}, 1, 1, 0.0f, 1.0f},
          {{5}, 2, 3, 0.0f, 1.0f},                  // odd head_dim
          {{3, 0, 65, 1}, 3, 24, 0.0f, 1.0f},       // an empty sequence
          {{1, 7, 200, 513}, 2, 64, 0.0f, 2.0f},
          {{1, 7, 200, 513}, 2, 128, 0.0f, 2.0f}};
}

// ---------------------------------------------------------------------------------------------
// disentangled attention (DeBERTa): attention plus c2p / p2c terms read through a relative index table
// ---------------------------------------------------------------------------------------------
struct disentangled_attention_case {
  std::vector<std::int32_t> lengths;
  std::size_t heads, head_dim;
  std::size_t span;      // the position tables have 2 * span rows
  bool c2p, p2c;
  bool random_index;     // a random (non-monotone) index table instead of a bucket-like one
  float scale;           // 0: the default 1/sqrt(head_dim)
};

template <class T, class P>
void run_disentangled_attention_case(const P& p, const disentangled_attention_case& ac, std::uint64_t seed) {
  std::ostringstream name;
  name << "disentangled_attention " << type_name<T>() << " lengths=[";
  for (auto l : ac.lengths) name << l << " ";
  name << "] heads=" << ac.heads << " head_dim=" << ac.head_dim << " span=" << ac.span << " c2p=" << ac.c2p
       << " p2c=" << ac.p2c << " random_index=" << ac.random_index << " scale=" << ac.scale;
  INFO(name.str());
  std::vector<std::int32_t> offsets{0};
  std::size_t max_len = 0;
  for (auto l : ac.lengths) {
    offsets.push_back(offsets.back() + l);
    max_len = std::max<std::size_t>(max_len, static_cast<std::size_t>(l));
  }
  const auto tokens = static_cast<std::size_t>(offsets.back());
  const std::size_t hidden = ac.heads * ac.head_dim, rows = 2 * ac.span, max_distance = max_len + 3;
  const std::size_t ld = 3 * hidden + (std::is_same_v<T, float> ? 1 : 8);
  host_matrix<T> qkv(tokens, 3 * hidden, ld);
  qkv.fill_random(seed, -1.0f, 1.0f);
  const std::size_t pld = hidden + (std::is_same_v<T, float> ? 3 : 8);
  host_matrix<T> pos_key(rows, hidden, pld), pos_query(rows, hidden, pld);
  pos_key.fill_random(seed + 1, -1.0f, 1.0f);
  pos_query.fill_random(seed + 2, -1.0f, 1.0f);
  // Index of distance d at d + max_distance - 1: a bucket-like map (exact near 0, compressed further out, clamped),
  // or random rows.
  std::vector<std::int32_t> index(2 * max_distance - 1);
  std::mt19937_64 gen(seed + 3);
  for (std::size_t k = 0; k < index.size(); ++k) {
    const auto d = static_cast<std::int64_t>(k) - static_cast<std::int64_t>(max_distance - 1);
    const std::int64_t a = d < 0 ? -d : d, b = a <= 4 ? a : 4 + (a - 4) / 3;
    const std::int64_t bucket = (d < 0 ? -b : b) + static_cast<std::int64_t>(ac.span);
    index[k] = ac.random_index ? static_cast<std::int32_t>(gen() % rows)
                               : static_cast<std::int32_t>(std::clamp<std::int64_t>(bucket, 0, static_cast<std::int64_t>(rows) - 1));
  }
  host_matrix<T> out(tokens, hidden, hidden + (std::is_same_v<T, float> ? 4 : 8));
  out.fill(poison());

  auto dqkv = to_device(p, qkv.v);
  auto dpk = to_device(p, pos_key.v);
  auto dpq = to_device(p, pos_query.v);
  auto didx = to_device(p, index);
  auto dout = to_device(p, out.v);
  auto doffs = to_device(p, offsets);
  const matrix_view<const T> fused = device_view<const T>(dqkv, qkv);
  disentangled_attention_args<T> a;
  a.q = fused.slice_cols(0, hidden);
  a.k = fused.slice_cols(hidden, hidden);
  a.v = fused.slice_cols(2 * hidden, hidden);
  a.out = device_view<T>(dout, out);
  a.seq_offsets = doffs.data();
  a.seq_offsets_host = offsets.data();
  a.num_seqs = ac.lengths.size();
  a.heads = ac.heads;
  a.head_dim = ac.head_dim;
  a.max_seq_len = max_len;
  if (ac.c2p) a.pos_key = device_view<const T>(dpk, pos_key);
  if (ac.p2c) a.pos_query = device_view<const T>(dpq, pos_query);
  a.rel_index = didx.data();
  a.max_distance = max_distance;
  a.scale = ac.scale;
  ops::disentangled_attention(p, a);
  const auto got = to_host<T>(p, dout);

  host_matrix<T> want = out;
  disentangled_attention_args<T> ha = a;
  const matrix_view<const T> hfused = qkv.cview();
  ha.q = hfused.slice_cols(0, hidden);
  ha.k = hfused.slice_cols(hidden, hidden);
  ha.v = hfused.slice_cols(2 * hidden, hidden);
  ha.out = want.view();
  ha.seq_offsets = offsets.data();
  if (ac.c2p) ha.pos_key = pos_key.cview();
  if (ac.p2c) ha.pos_query = pos_query.cview();
  ha.rel_index = index.data();
  ops::reference::disentangled_attention(ha);
  comparison cmp(name.str(), tolerance_of<T>(op_kind::attention));
  for (std::size_t r = 0; r < tokens; ++r)
    for (std::size_t c = 0; c < hidden; ++c)
      cmp.add(r, c, to_double(got[r * out.ld + c]), to_double(want(r, c)), std::abs(to_double(want(r, c))));
  INFO(cmp.describe());
  CHECK(cmp.ok());
  check_padding(got, out, name.str());
}

/// Ragged lengths (an empty sequence and a 513-token one among them), c2p and p2c alone and together, head dims
/// 3 to 64, DeBERTa-v3's span of 256 and small spans that the distances overrun (the clamp).
inline std::vector<disentangled_attention_case> disentangled_attention_cases() {
  const std::vector<std::int32_t> ragged{1, 2, 7, 64, 129};
  return {{ragged, 2, 8, 16, true, true, false, 0.0f},
          {ragged, 3, 32, 8, true, false, false, 0.0f},
          {ragged, 2, 16, 8, false, true, false, 0.0f},
          {{129, 1, 64, 2, 7}, 4, 16, 32, true, true, true, 0.2f},
          {{3, 0, 65, 1}, 3, 24, 4, true, true, false, 0.0f},
          {{5}, 2, 3, 4, false, true, false, 0.0f},
          {{1, 7, 200, 513}, 2, 64, 256, true, true, false, 0.1f}};
}

}  // namespace nerpipe::ops_test

// ---------------------------------------------------------------------------------------------
// The test cases: one body per op, run for every policy of ops_test_policies and every element type
// that policy takes.
// ---------------------------------------------------------------------------------------------
TEMPLATE_LIST_TEST_CASE("ops::gemm matches the reference on small and odd shapes", "[ops][gemm]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::gemm_types>([&](auto types) {
    using G = decltype(types);
    std::uint64_t seed = 100;
    double worst = 0;
    for (const auto& gc : small_gemm_cases())
      worst = std::max(worst, run_gemm_case<typename G::in, typename G::out>(p, gc, ++seed));
    INFO("worst err/bound over all small gemm cases: " << worst);
    CHECK(worst < 1.0);
  });
}

TEMPLATE_LIST_TEST_CASE("ops::gemm matches the reference on BERT-sized shapes (subsampled check)", "[ops][gemm]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::gemm_types>([&](auto types) {
    using G = decltype(types);
    std::uint64_t seed = 9000;
    for (const auto& gc : bert_gemm_cases()) run_gemm_case<typename G::in, typename G::out>(p, gc, ++seed);
  });
}

TEMPLATE_LIST_TEST_CASE("ops::layer_norm (with and without residual) matches the reference", "[ops][layer_norm]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::element_types>([&](auto zero) {
    using T = decltype(zero);
    struct shape {
      std::size_t rows, cols;
    };
    // Short rows take a warp-per-row kernel on CUDA, long ones a block per row: both sides of the switch.
    const shape shapes[] = {{1, 1}, {3, 5}, {17, 33}, {8, 768}, {70, 384}, {2, 1000}, {5, 1024}, {3, 3000}, {2, 9000}};
    std::uint64_t seed = 500;
    for (const auto& s : shapes)
      for (bool with_residual : {false, true})
        for (bool strided : {false, true})
          for (float eps : {1e-12f, 1e-5f}) {
            ++seed;
            std::ostringstream name;
            name << "layer_norm " << type_name<T>() << " " << describe_shape(s.rows, s.cols) << " residual=" << with_residual
                 << " strided=" << strided << " eps=" << eps;
            INFO(name.str());
            const std::size_t pad = strided ? (std::is_same_v<T, float> ? 3 : 8) : 0;
            host_matrix<T> x(s.rows, s.cols, s.cols + pad);
            host_matrix<T> res(s.rows, s.cols, s.cols + (strided ? pad / 2 + 1 : 0));
            x.fill_random(seed * 5 + 1, 1.0f, 5.0f);  // a non-zero mean, so centring matters
            res.fill_random(seed * 5 + 2, -2.0f, 2.0f);
            const auto gamma = random_floats(s.cols, seed * 5 + 3, 0.5f, 1.5f);
            const auto beta = random_floats(s.cols, seed * 5 + 4, -0.5f, 0.5f);

            auto dx = to_device(p, x.v);
            auto dres = to_device(p, res.v);
            auto dgamma = to_device(p, gamma);
            auto dbeta = to_device(p, beta);
            const matrix_view<const T> dres_view = with_residual ? device_view<const T>(dres, res) : matrix_view<const T>{};
            ops::layer_norm(p, device_view<T>(dx, x), dres_view, dgamma.data(), dbeta.data(), eps);
            const auto got = to_host<T>(p, dx);

            host_matrix<T> want = x;
            ops::reference::layer_norm(want.view(), with_residual ? res.cview() : matrix_view<const T>{}, gamma.data(),
                                       beta.data(), eps);
            comparison cmp(name.str(), tolerance_of<T>(op_kind::layer_norm));
            for (std::size_t r = 0; r < s.rows; ++r)
              for (std::size_t c = 0; c < s.cols; ++c)
                cmp.add(r, c, to_double(got[r * x.ld + c]), to_double(want(r, c)), std::abs(to_double(want(r, c))));
            INFO(cmp.describe());
            CHECK(cmp.ok());
            check_padding(got, x, name.str());
          }
  });
}

TEMPLATE_LIST_TEST_CASE("ops::softmax matches the reference, including rows that would overflow exp", "[ops][softmax]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::element_types>([&](auto zero) {
    using T = decltype(zero);
    struct shape {
      std::size_t rows, cols;
    };
    const shape shapes[] = {{1, 1}, {3, 5}, {17, 33}, {48, 129}, {2, 1000}, {7, 2049}, {2, 10000}, {300, 9}};
    std::uint64_t seed = 900;
    for (const auto& s : shapes)
      for (bool strided : {false, true}) {
        ++seed;
        std::ostringstream name;
        name << "softmax " << type_name<T>() << " " << describe_shape(s.rows, s.cols) << " strided=" << strided;
        INFO(name.str());
        host_matrix<T> x(s.rows, s.cols, s.cols + (strided ? 8 : 0));
        x.fill_random(seed, -8.0f, 8.0f);
        // exp(90) is inf in fp32 without the max shift (bf16 holds 90 + x to a few units: still a test).
        for (std::size_t c = 0; c < s.cols; ++c) x(0, c) = from_float<T>(static_cast<float>(to_double(x(0, c))) + 90.0f);
        auto dx = to_device(p, x.v);
        ops::softmax(p, device_view<T>(dx, x));
        const auto got = to_host<T>(p, dx);
        host_matrix<T> want = x;
        ops::reference::softmax(want.view());
        comparison cmp(name.str(), tolerance_of<T>(op_kind::softmax));
        for (std::size_t r = 0; r < s.rows; ++r)
          for (std::size_t c = 0; c < s.cols; ++c)
            cmp.add(r, c, to_double(got[r * x.ld + c]), to_double(want(r, c)), std::abs(to_double(want(r, c))));
        INFO(cmp.describe());
        CHECK(cmp.ok());
        check_padding(got, x, name.str());
      }
  });
}

TEMPLATE_LIST_TEST_CASE("ops::gelu (erf and tanh forms) matches the reference", "[ops][gelu]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::element_types>([&](auto zero) {
    using T = decltype(zero);
    std::uint64_t seed = 1300;
    // Lengths around the 16-byte vector width and its remainders, and a large one.
    for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{4097}, std::size_t{100003}})
      for (gelu_form form : {gelu_form::erf, gelu_form::tanh}) {
        ++seed;
        std::ostringstream name;
        name << "gelu " << type_name<T>() << " n=" << n << " form=" << (form == gelu_form::erf ? "erf" : "tanh");
        INFO(name.str());
        // One extra trailing element must stay untouched.
        const auto xf = random_floats(n + 1, seed, -6.0f, 6.0f);
        std::vector<T> x(n + 1);
        for (std::size_t i = 0; i < n; ++i) x[i] = from_float<T>(xf[i]);
        x[n] = from_float<T>(pad_sentinel);
        auto dx = to_device(p, x);
        ops::gelu(p, dx.data(), n, form);
        const auto got = to_host<T>(p, dx);
        auto want = x;
        ops::reference::gelu(want.data(), n, form);
        comparison cmp(name.str(), tolerance_of<T>(op_kind::gelu));
        for (std::size_t i = 0; i < n; ++i) cmp.add(0, i, to_double(got[i]), to_double(want[i]), std::abs(to_double(want[i])));
        cmp.add_exact(0, n, to_double(got[n]), pad_sentinel);
        INFO(cmp.describe());
        CHECK(cmp.ok());
      }
  });
}

TEMPLATE_LIST_TEST_CASE("ops::gather copies or accumulates table rows exactly", "[ops][gather]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::element_types>([&](auto zero) {
    using T = decltype(zero);  // table and output of one type (the embedding's weights and activations)
    std::uint64_t seed = 1700;
    for (std::size_t vocab : {std::size_t{1}, std::size_t{50}, std::size_t{1000}})
      for (std::size_t hidden : {std::size_t{1}, std::size_t{7}, std::size_t{768}})
        for (std::size_t rows : {std::size_t{1}, std::size_t{5}, std::size_t{300}})
          for (bool accumulate : {false, true})
            for (bool strided : {false, true}) {
              ++seed;
              std::ostringstream name;
              name << "gather " << type_name<T>() << " vocab=" << vocab << " hidden=" << hidden << " rows=" << rows
                   << " accumulate=" << accumulate << " strided=" << strided;
              INFO(name.str());
              host_matrix<T> table(vocab, hidden, hidden + (strided ? 2 : 0));
              table.fill_random(seed * 3 + 1, -3.0f, 3.0f);
              host_matrix<T> out(rows, hidden, hidden + (strided ? 5 : 0));
              if (accumulate)
                out.fill_random(seed * 3 + 2, -3.0f, 3.0f);
              else
                out.fill(poison());
              std::mt19937 gen(static_cast<std::uint32_t>(seed));
              std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(vocab) - 1);
              std::vector<std::int32_t> ids(rows);
              for (auto& id : ids) id = pick(gen);
              ids[0] = static_cast<std::int32_t>(vocab) - 1;  // the last table row, and
              if (rows > 1) ids[rows - 1] = 0;                // the first

              auto dtable = to_device(p, table.v);
              auto dout = to_device(p, out.v);
              auto dids = to_device(p, ids);
              ops::gather(p, device_view<const T>(dtable, table), dids.data(), device_view<T>(dout, out), accumulate);
              const auto got = to_host<T>(p, dout);
              host_matrix<T> want = out;
              ops::reference::gather(table.cview(), ids.data(), want.view(), accumulate);
              comparison cmp(name.str(), tolerance_of<T>(op_kind::gather));
              for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t c = 0; c < hidden; ++c)
                  cmp.add(r, c, to_double(got[r * out.ld + c]), to_double(want(r, c)), std::abs(to_double(want(r, c))));
              INFO(cmp.describe());
              CHECK(cmp.ok());
              check_padding(got, out, name.str());
            }
  });
}

TEMPLATE_LIST_TEST_CASE("ops::argmax returns the lowest index of the row maximum (NaN as a sequential scan)",
                        "[ops][argmax]", nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::element_types>([&](auto zero) {
    using T = decltype(zero);
    struct shape {
      std::size_t rows, cols;
    };
    const shape shapes[] = {{1, 1}, {3, 5}, {17, 33}, {300, 9}, {4, 1000}, {2000, 40}, {33, 3}};
    std::uint64_t seed = 2100;
    for (const auto& s : shapes)
      for (bool strided : {false, true}) {
        ++seed;
        std::ostringstream name;
        name << "argmax " << type_name<T>() << " " << describe_shape(s.rows, s.cols) << " strided=" << strided;
        INFO(name.str());
        host_matrix<T> x(s.rows, s.cols, s.cols + (strided ? 4 : 0));
        x.fill_random(seed, -4.0f, 4.0f);
        // Plant the maximum in every row; in odd rows twice, so ties must resolve to the lower index.
        std::mt19937 gen(static_cast<std::uint32_t>(seed));
        std::vector<std::int32_t> planted(s.rows);
        for (std::size_t r = 0; r < s.rows; ++r) {
          std::uniform_int_distribution<std::size_t> col(0, s.cols - 1);
          std::size_t c1 = col(gen), c2 = col(gen);
          x(r, c1) = from_float<T>(10.0f + static_cast<float>(r % 3));
          if (r % 2 == 1) x(r, c2) = x(r, c1);
          planted[r] = static_cast<std::int32_t>(r % 2 == 1 ? std::min(c1, c2) : c1);
        }
        std::vector<std::size_t> nan_rows;
        for (std::size_t r = 0; r < s.rows; ++r) {
          if (r % 7 == 2 && s.cols >= 3) {  // NaN past column 0 is skipped
            x(r, std::size_t(gen() % (s.cols - 1) + 1)) = from_float<T>(poison());
            nan_rows.push_back(r);
          }
          if (r % 11 == 3) {  // NaN in column 0 wins: every later comparison with it is false
            x(r, 0) = from_float<T>(poison());
            nan_rows.push_back(r);
          }
        }
        // The pad columns hold the sentinel, and a larger value in the padding must never be picked.
        if (strided) x.v[x.cols] = from_float<T>(1e30f);
        std::vector<std::int32_t> poisoned(s.rows, -1);
        auto dx = to_device(p, x.v);
        auto dout = to_device(p, poisoned);
        ops::argmax(p, device_view<const T>(dx, x), dout.data());
        const auto got = to_host<std::int32_t>(p, dout);
        std::vector<std::int32_t> want(s.rows, -1);
        ops::reference::argmax(x.cview(), want.data());
        for (std::size_t r = 0; r < s.rows; ++r)
          if (std::find(nan_rows.begin(), nan_rows.end(), r) == nan_rows.end()) {
            INFO("row " << r);
            CHECK(want[r] == planted[r]);  // the reference itself
          }
        CHECK(got == want);
      }
  });
}

TEMPLATE_LIST_TEST_CASE("ops::attention matches the reference on ragged packed sequences", "[ops][attention]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::element_types>([&](auto zero) {
    using T = decltype(zero);
    std::uint64_t seed = 3000;
    for (const auto& ac : attention_cases()) run_attention_case<T>(p, ac, ++seed);
  });
}

// ---------------------------------------------------------------------------------------------
// Argument checks: the op front ends reject the same calls on every policy, with the values in the message
// ---------------------------------------------------------------------------------------------
namespace nerpipe::ops_test {
/// Requires `f` to throw config_error (config_invalid) whose message holds every one of `parts`.
template <class F>
void require_rejected(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    FAIL("no error");
  } catch (const config_error& e) {
    CHECK(e.code() == errc::config_invalid);
    for (const char* part : parts) CHECK_THAT(e.what(), Catch::Contains(part));
  }
}
}  // namespace nerpipe::ops_test

TEMPLATE_LIST_TEST_CASE("op front ends reject bad shapes, null pointers and short strides on every policy",
                        "[ops][api_errors]", nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  auto buf = p.upload(std::span<const float>(random_floats(64 * 64, 1)));
  auto ids = p.upload(std::span<const std::int32_t>(std::vector<std::int32_t>(64, 0)));
  float* d = buf.data();

  // gemm: inner dimensions, the transposed layout, a missing bias, a null pointer, a short stride.
  gemm_args<float, float, float> g{{d, 4, 8}, {d, 5, 8}, {d, 4, 5}, true, nullptr, epilogue::none};
  require_rejected([&] { ops::gemm(p, gemm_args<float, float, float>{{d, 4, 8}, {d, 5, 7}, {d, 4, 5}}); },
                   {"gemm", "shapes do not match", "[4, 8]", "[5, 7]", "[4, 5]"});
  require_rejected([&] { ops::gemm(p, gemm_args<float, float, float>{{d, 4, 8}, {d, 5, 8}, {d, 4, 5}, false}); },
                   {"gemm", "[8, 5]"});
  g.ep = epilogue::bias;
  require_rejected([&] { ops::gemm(p, g); }, {"gemm", "bias", "5 floats"});
  g.ep = epilogue::none;
  g.a.data = nullptr;
  require_rejected([&] { ops::gemm(p, g); }, {"gemm", "a [4, 8]", "null"});
  g.a = {d, 4, 8, 6};
  require_rejected([&] { ops::gemm(p, g); }, {"gemm", "ld 6", "8 columns"});

  // layer_norm, softmax, gelu
  require_rejected(
      [&] { ops::layer_norm(p, matrix_view<float>(d, 4, 8), matrix_view<const float>(d, 3, 8), d, d, 1e-5f); },
      {"layer_norm", "residual [3, 8]", "x [4, 8]"});
  require_rejected([&] { ops::layer_norm(p, matrix_view<float>(d, 4, 8), {}, nullptr, d, 1e-5f); },
                   {"layer_norm", "gamma", "8 elements"});
  require_rejected([&] { ops::softmax(p, matrix_view<float>(d, 4, 8, 7)); }, {"softmax", "ld 7"});
  require_rejected([&] { ops::gelu(p, static_cast<float*>(nullptr), 10, gelu_form::erf); }, {"gelu", "x", "10 elements"});

  // gather, argmax
  require_rejected(
      [&] { ops::gather(p, matrix_view<const float>(d, 10, 4), ids.data(), matrix_view<float>(d, 3, 6)); },
      {"gather", "table [10, 4]", "out [3, 6]"});
  require_rejected([&] { ops::gather(p, matrix_view<const float>(d, 10, 4), nullptr, matrix_view<float>(d, 3, 4)); },
                   {"gather", "ids", "3 elements"});
  require_rejected([&] { ops::argmax(p, matrix_view<const float>(d, 3, 0), ids.data()); }, {"argmax", "no columns"});
  require_rejected([&] { ops::argmax(p, matrix_view<const float>(d, 3, 4), nullptr); }, {"argmax", "out", "3 elements"});

  // attention: too few columns for heads * head_dim, rows that disagree, a null offsets pointer.
  const std::vector<std::int32_t> offs{0, 4};
  auto doffs = p.upload(std::span<const std::int32_t>(offs));
  attention_args<float> a{{d, 4, 16, 48}, {d + 16, 4, 16, 48}, {d + 32, 4, 16, 48}, {d, 4, 16}, doffs.data(), offs.data(),
                          1, 2, 8, 4, 0.0f};
  a.heads = 3;
  require_rejected([&] { ops::attention(p, a); }, {"attention", "3 * 8 = 24", "q [4, 16] (ld 48)"});
  a.heads = 2;
  a.k.rows = 3;
  require_rejected([&] { ops::attention(p, a); }, {"attention", "one row per token", "k [3, 16]"});
  a.k.rows = 4;
  a.seq_offsets = nullptr;
  require_rejected([&] { ops::attention(p, a); }, {"attention", "seq_offsets", "2 offsets"});
}

TEMPLATE_LIST_TEST_CASE("ops::disentangled_attention matches the reference (c2p, p2c, ragged sequences)",
                        "[ops][attention]", nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  for_each_type<typename TestType::element_types>([&](auto zero) {
    using T = decltype(zero);
    std::uint64_t seed = 5000;
    for (const auto& ac : disentangled_attention_cases()) run_disentangled_attention_case<T>(p, ac, seed += 7);
  });
}

TEMPLATE_LIST_TEST_CASE("ops::disentangled_attention rejects missing tables and sequences beyond them", "[ops][api_errors]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  if (!available<TestType>()) return;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  auto buf = p.upload(std::span<const float>(random_floats(64 * 64, 2)));
  float* d = buf.data();
  const std::vector<std::int32_t> offs{0, 4};
  auto doffs = p.upload(std::span<const std::int32_t>(offs));
  auto didx = p.upload(std::span<const std::int32_t>(std::vector<std::int32_t>(5, 0)));
  disentangled_attention_args<float> a;
  a.q = {d, 4, 16, 48};
  a.k = {d + 16, 4, 16, 48};
  a.v = {d + 32, 4, 16, 48};
  a.out = {d, 4, 16};
  a.seq_offsets = doffs.data();
  a.seq_offsets_host = offs.data();
  a.num_seqs = 1;
  a.heads = 2;
  a.head_dim = 8;
  a.max_seq_len = 4;
  a.pos_key = {d, 6, 16};
  require_rejected([&] { ops::disentangled_attention(p, a); }, {"disentangled_attention", "rel_index is null"});
  a.rel_index = didx.data();
  a.max_distance = 3;
  require_rejected([&] { ops::disentangled_attention(p, a); }, {"disentangled_attention", "4 tokens", "max_distance 3"});
  a.max_distance = 4;
  a.pos_query = {d, 6, 8};
  require_rejected([&] { ops::disentangled_attention(p, a); }, {"disentangled_attention", "pos_query [6, 8]", "16 columns"});
}
