// SPDX-License-Identifier: Apache-2.0
// The spaCy family on cuda_policy: every spaCy op against its cpu_policy twin on seeded random data, and
// spacy_ner (en_core_web_sm / md) on all EWT documents against the cpu_policy oracle.
#ifndef SIMDJSON_IMPLEMENTATION_ICELAKE
#  define SIMDJSON_IMPLEMENTATION_ICELAKE 0
#endif
#ifndef SIMDJSON_IMPLEMENTATION_HASWELL
#  define SIMDJSON_IMPLEMENTATION_HASWELL 0
#endif
#ifndef SIMDJSON_IMPLEMENTATION_WESTMERE
#  define SIMDJSON_IMPLEMENTATION_WESTMERE 0
#endif
#include <catch2/catch.hpp>

#include <nerpipe/cuda.cuh>

#include <simdjson.h>

#include "support/data.hpp"
#include "support/prerequisite.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {
namespace fs = std::filesystem;
using namespace nerpipe;

template <class T>
std::vector<T> to_host(const cuda_policy& p, const cuda_buffer<T>& b) {
  std::vector<T> out(b.size());
  p.download(std::span<const T>(b.data(), b.size()), std::span<T>(out));
  return out;
}

std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

/// Number of positions where a and b differ bitwise (NaN-free data).
std::size_t mismatches(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += !(a[i] == b[i]);
  return n;
}

bool have_device() { return test::require_devices(1); }

std::optional<fs::path> spacy_model_dir(const std::string& which) {
  const char* env = std::getenv(which == "sm" ? "NERPIPE_SPACY_MODEL" : "NERPIPE_SPACY_MD_MODEL");
  const fs::path p = env != nullptr && *env != '\0' ? fs::path(env)
                                                    : test::models_dir() / ("en_core_web_" + which + "-3.8.0");
  if (!test::require_path(p / "config.cfg", "en_core_web_" + which + " 3.8.0 (scripts/get-model.sh models " + which + ")"))
    return std::nullopt;
  return p;
}

using test::load_ewt;

}  // namespace

TEST_CASE("spacy ops on cuda_policy equal their cpu_policy twins bit for bit", "[gpu][spacy]") {
  if (!have_device()) return;
  const cuda_policy gpu{0};
  const cpu_policy cpu{1};
  std::mt19937 rng(20261122);

  SECTION("hash_embed") {
    const std::size_t n = 1037, na = 4, rows = 5003, W = 97, ld = 101, out_ld = na * W + 3;
    std::vector<std::uint64_t> feats(n * na);
    std::uniform_int_distribution<std::uint64_t> ud;
    for (auto& f : feats) f = ud(rng);
    const auto table = random_floats(rng, rows * ld);
    std::vector<float> cpu_out(n * out_ld, 7.0f);
    const auto g_feats = gpu.upload(std::span<const std::uint64_t>(feats));
    const auto g_table = gpu.upload(std::span<const float>(table));
    auto g_out = gpu.upload(std::span<const float>(cpu_out));
    for (std::size_t a = 0; a < na; ++a) {
      const std::uint32_t seed = 7 + static_cast<std::uint32_t>(a);
      ops::hash_embed(cpu, feats.data(), na, a, seed, matrix_view<const float>(table.data(), rows, W, ld),
                      matrix_view<float>(cpu_out.data() + a * W, n, W, out_ld));
      ops::hash_embed(gpu, g_feats.data(), na, a, seed, matrix_view<const float>(g_table.data(), rows, W, ld),
                      matrix_view<float>(g_out.data() + a * W, n, W, out_ld));
    }
    CHECK(mismatches(cpu_out, to_host(gpu, g_out)) == 0);
  }
  SECTION("bias_maxout") {
    for (const std::size_t nP : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
      const std::size_t rows = 211, nO = 53, out_ld = 61;
      auto y = random_floats(rng, rows * nO * nP);
      // equal pieces in places, so the first-maximum rule is exercised
      for (std::size_t i = 0; i + nO < y.size(); i += 17) y[i + (nP > 1 ? nO : 0)] = y[i];
      const auto b = random_floats(rng, nO * nP);
      std::vector<float> cpu_out(rows * out_ld, 3.0f);
      const auto gy = gpu.upload(std::span<const float>(y));
      const auto gb = gpu.upload(std::span<const float>(b));
      auto g_out = gpu.upload(std::span<const float>(cpu_out));
      ops::bias_maxout(cpu, y.data(), b.data(), nO, nP, matrix_view<float>(cpu_out.data(), rows, nO, out_ld));
      ops::bias_maxout(gpu, gy.data(), gb.data(), nO, nP, matrix_view<float>(g_out.data(), rows, nO, out_ld));
      INFO("nP = " << nP);
      CHECK(mismatches(cpu_out, to_host(gpu, g_out)) == 0);
    }
  }
  SECTION("fill, add, zero_rows, scatter_rows") {
    const std::size_t rows = 123, cols = 37, n = rows * cols;
    auto x = random_floats(rng, n);
    const auto s = random_floats(rng, n);
    auto gx = gpu.upload(std::span<const float>(x));
    const auto gs = gpu.upload(std::span<const float>(s));
    ops::add(cpu, x.data(), s.data(), n);
    ops::add(gpu, gx.data(), gs.data(), n);
    CHECK(mismatches(x, to_host(gpu, gx)) == 0);
    const std::vector<std::int32_t> zr{0, 5, 122, 64, 17};
    const auto gzr = gpu.upload(std::span<const std::int32_t>(zr));
    ops::zero_rows(cpu, matrix_view<float>(x.data(), rows, cols), zr.data(), zr.size());
    ops::zero_rows(gpu, matrix_view<float>(gx.data(), rows, cols), gzr.data(), zr.size());
    const auto hx = to_host(gpu, gx);
    CHECK(mismatches(x, hx) == 0);
    CHECK(hx[122 * cols + 36] == 0.0f);
    // scatter 71 rows of width 29 (stride 31) into a 200 x 33 matrix
    const std::size_t sr = 71, sc = 29, sld = 31, dr = 200, dld = 33;
    const auto src = random_floats(rng, sr * sld);
    std::vector<std::int32_t> ids(dr);
    for (std::size_t i = 0; i < dr; ++i) ids[i] = static_cast<std::int32_t>(i);
    std::shuffle(ids.begin(), ids.end(), rng);
    ids.resize(sr);
    std::vector<float> dst(dr * dld);
    ops::fill(cpu, dst.data(), dst.size(), 2.5f);
    auto gdst = gpu.upload(std::span<const float>(random_floats(rng, dr * dld)));
    ops::fill(gpu, gdst.data(), dr * dld, 2.5f);
    CHECK(mismatches(dst, to_host(gpu, gdst)) == 0);
    const auto gsrc = gpu.upload(std::span<const float>(src));
    const auto gids = gpu.upload(std::span<const std::int32_t>(ids));
    ops::scatter_rows(cpu, matrix_view<const float>(src.data(), sr, sc, sld), ids.data(), matrix_view<float>(dst.data(), dr, sc, dld));
    ops::scatter_rows(gpu, matrix_view<const float>(gsrc.data(), sr, sc, sld), gids.data(), matrix_view<float>(gdst.data(), dr, sc, dld));
    CHECK(mismatches(dst, to_host(gpu, gdst)) == 0);
  }
  SECTION("seq2col and add_seq2col") {
    for (const std::size_t nw : {std::size_t{1}, std::size_t{2}}) {
      const std::size_t R = 97, W = 19, K = W * (2 * nw + 1);
      auto z = random_floats(rng, R * W);
      const auto m = random_floats(rng, R * W);
      std::vector<float> c(R * K, 9.0f);
      auto gz = gpu.upload(std::span<const float>(z));
      const auto gm = gpu.upload(std::span<const float>(m));
      auto gc = gpu.upload(std::span<const float>(c));
      ops::seq2col(cpu, z.data(), R, W, nw, c.data());
      ops::seq2col(gpu, gz.data(), R, W, nw, gc.data());
      INFO("nw = " << nw);
      CHECK(mismatches(c, to_host(gpu, gc)) == 0);
      ops::add_seq2col(cpu, z.data(), m.data(), R, W, nw, c.data());
      ops::add_seq2col(gpu, gz.data(), gm.data(), R, W, nw, gc.data());
      CHECK(mismatches(z, to_host(gpu, gz)) == 0);
      CHECK(mismatches(c, to_host(gpu, gc)) == 0);
    }
  }
  SECTION("ner_decode") {
    // 50 labels: classes O, B-x50, I-x50, L-x50, U-x50 (201, padded to 208), so a closed state has 101
    // valid classes (more than 3 per lane: the kernel's one-at-a-time path runs too); hidden 19 (odd), 2 pieces.
    const std::size_t nF = 3, nH = 19, nP = 2, nl = 50, HP = nH * nP, FHP = nF * HP;
    std::vector<ner_class> classes{{ner_move::out, 0}};
    for (auto mv : {ner_move::begin, ner_move::in, ner_move::last, ner_move::unit})
      for (std::uint32_t l = 1; l <= nl; ++l) classes.push_back({mv, l});
    const std::size_t A = classes.size(), Ap = (A + 15) / 16 * 16;
    auto valid = [](const ner_class& a, bool open, std::uint32_t ol, bool last, bool space) {
      switch (a.mv) {
        case ner_move::begin: return !open && !last && a.label != 0 && !space;
        case ner_move::in: return open && !last && a.label == ol;
        case ner_move::last: return open && a.label == ol;
        case ner_move::unit: return !open && !space;
        case ner_move::out: return !open;
        default: return false;
      }
    };
    const std::size_t keys = ner_valid_key(true, nl, true, true) + 1;
    std::vector<std::uint32_t> voff{0}, vlist;
    for (std::size_t k = 0; k < keys; ++k) {
      const bool open = k >= 4, last = (k & 2) != 0, space = (k & 1) != 0;
      const auto ol = static_cast<std::uint32_t>(open ? k / 4 - 1 : 0);
      for (std::size_t c = 0; c < A; ++c)
        if (valid(classes[c], open, ol, last, space)) vlist.push_back(static_cast<std::uint32_t>(c));
      voff.push_back(static_cast<std::uint32_t>(vlist.size()));
    }
    std::vector<std::int32_t> offsets{0};
    for (int d = 0; d < 301; ++d) offsets.push_back(offsets.back() + static_cast<std::int32_t>(rng() % 41));  // some empty docs
    const std::size_t docs = offsets.size() - 1, N = static_cast<std::size_t>(offsets.back());
    auto cached = random_floats(rng, N * FHP, -2.0f, 2.0f);
    const auto lower_b = random_floats(rng, HP), lower_pad = random_floats(rng, FHP);
    auto upper_wt = random_floats(rng, nH * Ap), upper_b = random_floats(rng, Ap, -0.5f, 0.5f);
    for (std::size_t o = 0; o < nH; ++o)
      for (std::size_t c = A; c < Ap; ++c) upper_wt[o * Ap + c] = 0.0f;
    std::vector<std::uint8_t> space(N);
    for (auto& s : space) s = rng() % 13 == 0;
    const auto g_off = gpu.upload(std::span<const std::int32_t>(offsets));
    const auto g_sp = gpu.upload(std::span<const std::uint8_t>(space));
    const auto g_lb = gpu.upload(std::span<const float>(lower_b)), g_lp = gpu.upload(std::span<const float>(lower_pad));
    const auto g_cl = gpu.upload(std::span<const ner_class>(classes));
    const auto g_vo = gpu.upload(std::span<const std::uint32_t>(voff)), g_vl = gpu.upload(std::span<const std::uint32_t>(vlist));

    // The CPU's and the GPU's decisions on the current tables; valid_count 0 keeps the GPU's validity table in
    // global memory, else it joins the upper layer in shared memory. Returns the CPU's entity count.
    auto decode_both = [&](const std::string& what, std::size_t valid_count) {
      INFO(what << ", valid_count " << valid_count);
      auto fill_args = [&](ner_decode_args& a) {
        a.valid_keys = keys;
        a.valid_count = valid_count;
        a.doc_offsets_host = offsets.data();
        a.docs = docs;
        a.nF = nF;
        a.nH = nH;
        a.nP = nP;
        a.classes_n = A;
        a.classes_pad = Ap;
      };
      std::vector<std::int32_t> c_ents(N * 3, -1), c_counts(docs, -1);
      ner_decode_args ca;
      fill_args(ca);
      ca.cached = cached.data();
      ca.lower_b = lower_b.data();
      ca.lower_pad = lower_pad.data();
      ca.upper_wt = upper_wt.data();
      ca.upper_b = upper_b.data();
      ca.classes = classes.data();
      ca.valid_offsets = voff.data();
      ca.valid_list = vlist.data();
      ca.doc_offsets = offsets.data();
      ca.is_space = space.data();
      ca.ents = c_ents.data();
      ca.counts = c_counts.data();
      ops::ner_decode(cpu, ca);

      const auto g_cached = gpu.upload(std::span<const float>(cached));
      const auto g_uw = gpu.upload(std::span<const float>(upper_wt)), g_ub = gpu.upload(std::span<const float>(upper_b));
      auto g_ents = gpu.upload(std::span<const std::int32_t>(std::vector<std::int32_t>(N * 3, -1)));
      auto g_counts = gpu.upload(std::span<const std::int32_t>(std::vector<std::int32_t>(docs, -1)));
      ner_decode_args ga;
      fill_args(ga);
      ga.cached = g_cached.data();
      ga.lower_b = g_lb.data();
      ga.lower_pad = g_lp.data();
      ga.upper_wt = g_uw.data();
      ga.upper_b = g_ub.data();
      ga.classes = g_cl.data();
      ga.valid_offsets = g_vo.data();
      ga.valid_list = g_vl.data();
      ga.doc_offsets = g_off.data();
      ga.is_space = g_sp.data();
      ga.ents = g_ents.data();
      ga.counts = g_counts.data();
      ops::ner_decode(gpu, ga);
      const auto g_counts_h = to_host(gpu, g_counts);
      const auto g_ents_h = to_host(gpu, g_ents);
      std::size_t total = 0, diff_docs = 0;
      for (std::size_t d = 0; d < docs; ++d) {
        total += static_cast<std::size_t>(std::max(0, c_counts[d]));
        bool same = c_counts[d] == g_counts_h[d];
        for (std::int32_t k = 0; same && k < c_counts[d] * 3; ++k)
          same = c_ents[static_cast<std::size_t>(offsets[d]) * 3 + static_cast<std::size_t>(k)] ==
                 g_ents_h[static_cast<std::size_t>(offsets[d]) * 3 + static_cast<std::size_t>(k)];
        diff_docs += !same;
      }
      INFO(docs << " random docs, " << N << " tokens, " << total << " entities on the CPU");
      CHECK(diff_docs == 0);
      return total;
    };
    CHECK(decode_both("random tables", vlist.size()) > 0);
    CHECK(decode_both("random tables", 0) > 0);
    // Exact ties between classes valid in the same state: U-20 (170) gets B-7's (7) weights and bias (closed
    // states), L-10 (110) gets I-10's (60) (open on label 10): equal scores, the lower class must win on both.
    for (auto [dst, src] : {std::pair<std::size_t, std::size_t>{170, 7}, {110, 60}}) {
      for (std::size_t o = 0; o < nH; ++o) upper_wt[o * Ap + dst] = upper_wt[o * Ap + src];
      upper_b[dst] = upper_b[src];
    }
    CHECK(decode_both("tied classes", vlist.size()) > 0);
    // NaN scores: one class always NaN (never chosen unless it is the state's first valid class), and every
    // 37th token's features NaN (all scores NaN there: the first valid class stays, as in the sequential scan).
    for (std::size_t o = 0; o < nH; ++o) upper_wt[o * Ap + 77] = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t t = 0; t < N; t += 37) cached[t * FHP + 5] = std::numeric_limits<float>::quiet_NaN();
    decode_both("NaN scores", vlist.size());
    decode_both("NaN scores", 0);
    // The first valid class of a closed state (O, class 0) NaN: it is kept wherever the state is closed.
    for (std::size_t o = 0; o < nH; ++o) upper_wt[o * Ap + 0] = std::numeric_limits<float>::quiet_NaN();
    decode_both("NaN first valid class", vlist.size());
  }
}

namespace {

using ent_tuple = std::tuple<std::size_t, std::size_t, std::string>;

/// Python's str.isspace for one UTF-8 token (spaCy's IS_SPACE): every code point is Unicode white space.
bool token_is_space(std::string_view t) {
  if (t.empty()) return false;
  for (std::size_t i = 0; i < t.size();) {
    const auto c0 = static_cast<unsigned char>(t[i]);
    std::uint32_t cp = c0;
    std::size_t len = 1;
    if (c0 >= 0xF0) cp = c0 & 0x07u, len = 4;
    else if (c0 >= 0xE0) cp = c0 & 0x0Fu, len = 3;
    else if (c0 >= 0xC0) cp = c0 & 0x1Fu, len = 2;
    for (std::size_t k = 1; k < len && i + k < t.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(t[i + k]) & 0x3Fu);
    i += len;
    const bool ws = (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
                    (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    if (!ws) return false;
  }
  return true;
}

/// The NER head replayed in double precision on the host along one trajectory (spaCy's math: projection, the
/// precomputed lower layer over 3 state features, maxout, upper layer, validity rules, greedy decisions), from two
/// sets of tokvecs of one document: the CPU's (which decide the trajectory) and the GPU's (scored in the same
/// states). Says how close the CPU's decisions came to a tie and how far the two sets of scores are apart.
struct decision_margins {
  double min_margin = INFINITY;  // smallest top-2 valid score margin of the CPU's scores over the doc's steps
  double max_diff = 0;           // largest |CPU score - GPU score| over the valid classes of every step
  long first_flip = -1;          // first step whose best valid class differs between the two score sets
  double flip_margin = 0;        // the CPU's margin between the two classes there
};

decision_margins replay_ner(const spacy_model& m, const float* cpu_vecs, const float* gpu_vecs, std::size_t n,
                            const std::vector<std::uint8_t>& space) {
  const auto& w = m.ner;
  const std::size_t W = w.width, H = w.nH, P = w.nP, F = w.nF, A = m.actions.size();
  auto precompute = [&](const float* vecs) {
    std::vector<double> hid(n * H), cached(n * F * H * P);
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t h = 0; h < H; ++h) {
        double acc = w.proj_b.data[h];
        for (std::size_t i = 0; i < W; ++i) acc += double(vecs[t * W + i]) * w.proj_W.data[h * W + i];
        hid[t * H + h] = acc;
      }
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t f = 0; f < F; ++f)
        for (std::size_t o = 0; o < H; ++o)
          for (std::size_t p = 0; p < P; ++p) {
            double acc = 0;
            const float* row = w.lower_W.data.data() + ((f * H + o) * P + p) * H;
            for (std::size_t i = 0; i < H; ++i) acc += hid[t * H + i] * row[i];
            cached[((t * F + f) * H + o) * P + p] = acc;
          }
    return cached;
  };
  const auto cc = precompute(cpu_vecs), cg = precompute(gpu_vecs);
  std::vector<std::uint32_t> label(A, 0);
  for (std::size_t c = 0; c < A; ++c)
    if (!m.actions[c].label.empty())
      label[c] = static_cast<std::uint32_t>(std::find(m.labels.begin(), m.labels.end(), m.actions[c].label) - m.labels.begin()) + 1;
  auto scores = [&](const std::vector<double>& cached, const long ids[3], std::vector<double>& out) {
    std::vector<double> h(H);
    for (std::size_t o = 0; o < H; ++o) {
      double best = -INFINITY;
      for (std::size_t p = 0; p < P; ++p) {
        double u = w.lower_b.data[o * P + p];
        for (std::size_t f = 0; f < F; ++f)
          u += ids[f] < 0 ? double(w.lower_pad.data[(f * H + o) * P + p]) : cached[((static_cast<std::size_t>(ids[f]) * F + f) * H + o) * P + p];
        best = std::max(best, u);
      }
      h[o] = best;
    }
    out.assign(A, 0);
    for (std::size_t c = 0; c < A; ++c) {
      double acc = w.upper_b.data[c];
      for (std::size_t o = 0; o < H; ++o) acc += h[o] * w.upper_W.data[c * H + o];
      out[c] = acc;
    }
  };
  decision_margins r;
  bool open = false;
  std::size_t ent_start = 0;
  std::uint32_t ent_label = 0;
  std::vector<double> sc, sg;
  for (std::size_t b0 = 0; b0 < n; ++b0) {
    const long ids[3] = {static_cast<long>(b0), open ? static_cast<long>(ent_start) : -1, open ? static_cast<long>(b0) - 1 : -1};
    scores(cc, ids, sc);
    scores(cg, ids, sg);
    const bool last = b0 + 1 >= n, sp = space[b0] != 0;
    long best_c = -1, second_c = -1, best_g = -1;
    for (std::size_t c = 0; c < A; ++c) {
      using mv = spacy::move;
      const mv a = m.actions[c].mv;
      const bool valid = a == mv::begin  ? !open && !last && label[c] != 0 && !sp
                         : a == mv::in   ? open && !last && label[c] != 0 && label[c] == ent_label
                         : a == mv::last ? open && label[c] != 0 && label[c] == ent_label
                         : a == mv::unit ? !open && label[c] != 0 && !sp
                         : a == mv::out  ? !open
                                         : false;
      if (!valid) continue;
      r.max_diff = std::max(r.max_diff, std::fabs(sc[c] - sg[c]));
      if (best_c < 0 || sc[c] > sc[static_cast<std::size_t>(best_c)]) {
        second_c = best_c;
        best_c = static_cast<long>(c);
      } else if (second_c < 0 || sc[c] > sc[static_cast<std::size_t>(second_c)]) {
        second_c = static_cast<long>(c);
      }
      if (best_g < 0 || sg[c] > sg[static_cast<std::size_t>(best_g)]) best_g = static_cast<long>(c);
    }
    if (best_c < 0) break;
    if (second_c >= 0) r.min_margin = std::min(r.min_margin, sc[static_cast<std::size_t>(best_c)] - sc[static_cast<std::size_t>(second_c)]);
    if (r.first_flip < 0 && best_g != best_c) {
      r.first_flip = static_cast<long>(b0);
      r.flip_margin = sc[static_cast<std::size_t>(best_c)] - sc[static_cast<std::size_t>(best_g)];
    }
    const auto a = m.actions[static_cast<std::size_t>(best_c)].mv;
    if (a == spacy::move::begin) {
      open = true;
      ent_start = b0;
      ent_label = label[static_cast<std::size_t>(best_c)];
    } else if (a == spacy::move::last) {
      open = false;
    }
  }
  return r;
}

std::vector<ent_tuple> tuples(const document& d) {
  std::vector<ent_tuple> out;
  for (const auto& e : d.entities) out.emplace_back(e.start, e.end, e.label);
  return out;
}

void check_model(const std::string& which) {
  const auto dir = spacy_model_dir(which);
  if (!dir) return;  // skipped (failed under CI): spacy_model_dir says what is missing
  const auto docs = load_ewt();
  REQUIRE(docs.size() == 858);
  std::vector<std::string_view> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  const auto spacy_pipeline = load_spacy_model(*dir);
  spacy_ner<cpu_policy> cpu_nlp(cpu_policy(std::max(1u, std::thread::hardware_concurrency())), spacy_pipeline);
  spacy_ner<cuda_policy> gpu_nlp(cuda_policy{0}, spacy_pipeline);
  std::vector<float> cpu_vecs, gpu_vecs;
  cpu_nlp.stage<stages::maxout_window_encoder>().capture(&cpu_vecs);
  gpu_nlp.stage<stages::maxout_window_encoder>().capture(&gpu_vecs);
  const auto t0 = std::chrono::steady_clock::now();
  const auto c = cpu_nlp(texts);
  const auto t1 = std::chrono::steady_clock::now();
  const auto g = gpu_nlp(texts);
  const auto t2 = std::chrono::steady_clock::now();
  REQUIRE(c.size() == docs.size());
  REQUIRE(g.size() == docs.size());
  std::size_t same = 0, c_ents = 0, g_ents = 0, tokens = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    REQUIRE(c[i].status == g[i].status);
    REQUIRE(c[i].tokens.size() == g[i].tokens.size());
    for (std::size_t t = 0; t < c[i].tokens.size(); ++t) {
      REQUIRE(c[i].tokens[t].start_byte == g[i].tokens[t].start_byte);
      REQUIRE(c[i].tokens[t].end_byte == g[i].tokens[t].end_byte);
    }
    tokens += c[i].tokens.size();
    c_ents += c[i].entities.size();
    g_ents += g[i].entities.size();
    if (tuples(c[i]) == tuples(g[i])) ++same;
  }
  double max_diff = 0;
  REQUIRE(cpu_vecs.size() == gpu_vecs.size());
  for (std::size_t i = 0; i < cpu_vecs.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(cpu_vecs[i] - gpu_vecs[i])));
  WARN("spaCy " << which << " on cuda_policy vs cpu_policy over " << docs.size() << " EWT docs (" << tokens << " tokens): " << same
                << "/" << docs.size() << " docs with identical entities; entities cpu " << c_ents << ", gpu " << g_ents
                << "; max |tokvec diff| " << max_diff << "; cpu " << std::chrono::duration<double>(t1 - t0).count() << " s, gpu (incl. warm-up) "
                << std::chrono::duration<double>(t2 - t1).count() << " s");
  CHECK(c_ents > 0);
  CHECK(max_diff < 1e-3);
  // Every document whose entities differ must hold a near tie: the tok2vec GEMMs round differently on the two
  // policies (cuBLAS vs the CPU's BLAS; the decode itself is bit-identical, see the ner_decode op test), and a
  // decision can only change where the CPU's top-2 valid scores are closer than twice the score difference that
  // rounding makes. Each such document is replayed on the host in double precision along the CPU's trajectory
  // from both policies' tokvecs of that document alone (run again one by one): its smallest CPU decision margin
  // must be below 2x its largest |CPU - GPU| valid score difference.
  std::ostringstream table;
  std::size_t explained = 0;
  if (same != docs.size()) {
    for (std::size_t i = 0; i < docs.size(); ++i) {
      if (tuples(c[i]) == tuples(g[i])) continue;
      std::vector<float> cv, gv;
      cpu_nlp.stage<stages::maxout_window_encoder>().capture(&cv);
      gpu_nlp.stage<stages::maxout_window_encoder>().capture(&gv);
      const std::string_view one[1] = {texts[i]};
      const auto c1 = cpu_nlp(std::span<const std::string_view>(one, 1));
      const auto g1 = gpu_nlp(std::span<const std::string_view>(one, 1));
      cpu_nlp.stage<stages::maxout_window_encoder>().capture(nullptr);
      gpu_nlp.stage<stages::maxout_window_encoder>().capture(nullptr);
      const std::size_t n = c1[0].tokens.size(), W = spacy_pipeline.ner.width;
      INFO("document " << docs[i].id << " (" << n << " tokens)");
      REQUIRE(cv.size() == n * W);
      REQUIRE(gv.size() == n * W);
      std::vector<std::uint8_t> space(n);
      for (std::size_t t = 0; t < n; ++t)
        space[t] = token_is_space(std::string_view(texts[i]).substr(c1[0].tokens[t].start_byte, c1[0].tokens[t].end_byte - c1[0].tokens[t].start_byte));
      const auto r = replay_ner(spacy_pipeline, cv.data(), gv.data(), n, space);
      const bool near_tie = r.min_margin < 2 * r.max_diff;
      explained += near_tie;
      CHECK(near_tie);
      table << "\n  " << docs[i].id << ": CPU min decision margin " << r.min_margin << ", max |score diff| " << r.max_diff
            << (r.first_flip >= 0 ? ", first flip at token " + std::to_string(r.first_flip) + " (margin " + std::to_string(r.flip_margin) + ")"
                                  : std::string(", no flip in the double replay (a tie below float rounding)"));
    }
    WARN("spaCy " << which << ": " << docs.size() - same << " documents differ, " << explained
                  << " with a near tie (CPU margin < 2 x |score diff|):" << table.str());
  }

  // The same through the type-erased annotator (make_annotator accepts cuda_policy for spaCy).
  const model m = load_model(*dir);
  auto ann = make_annotator(cuda_policy{0}, m);
  std::vector<document> batch(std::min<std::size_t>(64, docs.size()));
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].index = i;
    batch[i].text = docs[i].text;
  }
  ann->annotate(batch);
  std::size_t ann_same = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) ann_same += tuples(batch[i]) == tuples(g[i]);
  CHECK(ann_same == batch.size());
}

}  // namespace

TEST_CASE("spacy_ner (sm) on cuda_policy gives the cpu_policy entities on EWT", "[gpu][spacy][fidelity]") {
  if (!have_device()) return;
  check_model("sm");
}

TEST_CASE("spacy_ner (md, static vectors) on cuda_policy gives the cpu_policy entities on EWT", "[gpu][spacy][fidelity]") {
  if (!have_device()) return;
  check_model("md");
}
