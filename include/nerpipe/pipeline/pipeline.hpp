// SPDX-License-Identifier: Apache-2.0
//! @file `pipeline<Policy, Stages...>`: stages composed at compile time over one batch contract.
//!
//!     template <class P>
//!     using bert_ner = nerpipe::pipeline<P, stages::hf_tokenizer, stages::bert_embedding, stages::transformer_encoder,
//!                                        stages::token_classifier, stages::hf_decoder, stages::merge_entities>;
//!
//! Each stage names the batch fields it reads and writes (pipeline/stage.hpp). The composition is checked when
//! the type is formed: a stage that reads a field no earlier stage writes is a static_assert naming the field,
//! with the stage and the one before it in the instantiation below it; a stage that does not fit its kind's
//! concept, or host stages between device stages, are static_asserts too.
//!
//! Running a batch has three phases, so that an executor can overlap them across batches (pipeline/overlap.hpp):
//!   prepare  the host stages before the device group (tokenizing)
//!   compute  the device group, once per forward pass: sequences ordered (longest first where the embedding
//!            asks for it) and cut into passes of at most `pass_rows()` rows
//!   finish   the host stages after the device group (decoding, rules, merge_entities)
//! A document a stage cannot process gets its status and message; the others go on.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/device_policy.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// The stage before the first: the pipeline itself, which provides the text.
struct pipeline_input {
  static constexpr field_set writes = field::text;
};

namespace detail::composition {

template <class...>
inline constexpr bool always_false = false;

/// Fails to compile when `Missing` (fields `Stage` reads that no stage before it writes) is not empty. One
/// static_assert per field, so the message says which; the compiler names Stage and Previous in the
/// instantiation of this template.
template <std::uint32_t Missing, class Stage, class Previous>
struct reads_only_written_fields {
  static constexpr bool has(field f) { return (Missing & static_cast<std::uint32_t>(f)) != 0; }
  static_assert(!has(field::text), "nerpipe::pipeline: a stage reads `text`, but no stage before it writes it (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::words), "nerpipe::pipeline: a stage reads `words` (word-level tokens), but no stage before it writes them: put a tokenizer that splits words (spacy_tokenizer, hf_tokenizer) first (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::word_features), "nerpipe::pipeline: a stage reads `word_features` (lexical attributes for a hashed embedding), but no stage before it writes them: spacy_tokenizer does (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::sentence_starts), "nerpipe::pipeline: a stage reads `sentence_starts`, but no stage before it writes them: a parser or senter stage does (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::pieces), "nerpipe::pipeline: a stage reads `pieces` (sub-word ids), but no stage before it writes them: a sub-word tokenizer (hf_tokenizer) does (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::windows), "nerpipe::pipeline: a stage reads `windows` (model sequences of pieces), but no stage before it writes them: hf_tokenizer does (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::sequences), "nerpipe::pipeline: a stage reads `sequences` (what a forward pass runs over), but no stage before it writes them: every tokenizer stage must (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::hidden), "nerpipe::pipeline: a stage reads `hidden` (activations), but no stage before it writes them: put an embedding stage before it (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::logits), "nerpipe::pipeline: a stage reads `logits`, but no stage before it writes them: put a classification head (token_classifier) before it (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::entities), "nerpipe::pipeline: a stage reads `entities`, but no stage before it writes them: put a head or decoder before it (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::merged), "nerpipe::pipeline: a stage reads `merged`, but no stage before it writes it: put merge_entities before it (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static_assert(!has(field::tokens), "nerpipe::pipeline: a stage reads `tokens`, but no stage before it writes them (reads_only_written_fields<missing, Stage, Previous> in the message names the stage and the one before it)");
  static constexpr bool value = Missing == 0;
};

/// A stage must satisfy its kind's concept (pipeline/stage.hpp); the compiler names it below.
template <class Stage, class Policy>
struct is_well_formed {
  static_assert(pipeline_stage<Stage, Policy>,
                "nerpipe::pipeline: a stage lacks a member every stage has (kind, reads, writes, name, run(batch&), "
                "workspace_bytes(batch_shape)); the instantiation of is_well_formed<Stage, Policy> names it; see pipeline/stage.hpp");
  static_assert(is_stage_of_its_kind<Stage, Policy>,
                "nerpipe::pipeline: a stage does not read or write what its kind must (e.g. a tokenizer writes "
                "`sequences`, an embedding writes `hidden`); the instantiation of is_well_formed<Stage, Policy> names it; see the concepts in pipeline/stage.hpp");
  static constexpr bool value = true;
};

/// Walks the stages in order, carrying the fields written so far.
template <class Policy, std::uint32_t Have, class Previous, template <class> class... Rest>
struct walk {
  static constexpr bool value = true;
};
template <class Policy, std::uint32_t Have, class Previous, template <class> class Stage, template <class> class... Rest>
struct walk<Policy, Have, Previous, Stage, Rest...> {
  using stage = Stage<Policy>;
  static constexpr bool value = is_well_formed<stage, Policy>::value &&
                                reads_only_written_fields<(stage::reads.bits & ~Have), stage, Previous>::value &&
                                walk<Policy, (Have | stage::writes.bits), stage, Rest...>::value;
};

/// Device stages form one contiguous group; returns false otherwise.
template <std::size_t N>
constexpr bool device_stages_contiguous(const std::array<stage_kind, N>& kinds) {
  std::size_t groups = 0;
  bool in = false;
  for (const auto k : kinds) {
    const bool d = is_device_kind(k);
    if (d && !in) ++groups;
    in = d;
  }
  return groups <= 1;
}

/// One stage object, constructed in place from (policy, model, options): stages need not be movable.
template <std::size_t I, class Stage>
struct slot {
  Stage stage;
  template <class Policy, class Model>
  slot(const Policy& p, const Model& m, const pipeline_options& o) : stage(p, m, o) {}
};
template <class Indices, class... Stages>
struct slots;
template <std::size_t... I, class... Stages>
struct slots<std::index_sequence<I...>, Stages...> : slot<I, Stages>... {
  template <class Policy, class Model>
  slots(const Policy& p, const Model& m, const pipeline_options& o) : slot<I, Stages>(p, m, o)... {}
};

/// Index of the stage made from template T in the list; N when none is.
template <template <class> class T, template <class> class... S>
struct index_of;
template <template <class> class T>
struct index_of<T> {
  static constexpr std::size_t value = 0;
};
template <template <class> class T, template <class> class First, template <class> class... Rest>
struct index_of<T, First, Rest...> {
  template <template <class> class A, template <class> class B>
  struct same : std::false_type {};
  template <template <class> class A>
  struct same<A, A> : std::true_type {};
  static constexpr std::size_t value = same<T, First>::value ? 0 : 1 + index_of<T, Rest...>::value;
};

}  // namespace detail::composition

template <device_policy Policy, template <class> class... Stages>
class pipeline {
  static_assert(sizeof...(Stages) > 0, "nerpipe::pipeline: a pipeline needs at least one stage");
  static_assert(detail::composition::walk<Policy, field_set(field::text).bits, pipeline_input, Stages...>::value);

 public:
  using policy_type = Policy;
  using batch_type = batch<Policy>;
  static constexpr std::size_t stage_count = sizeof...(Stages);
  static constexpr std::array<stage_kind, stage_count> kinds{Stages<Policy>::kind...};
  static constexpr std::array<std::string_view, stage_count> names{Stages<Policy>::name...};
  static_assert(detail::composition::device_stages_contiguous(kinds),
                "nerpipe::pipeline: host stages between device stages (embedding, encoder, head must be consecutive)");

  /// The index of the first device stage (stage_count when there is none) and one past the last.
  static constexpr std::size_t device_begin = [] {
    for (std::size_t i = 0; i < stage_count; ++i)
      if (is_device_kind(kinds[i])) return i;
    return stage_count;
  }();
  static constexpr std::size_t device_end = [] {
    std::size_t e = device_begin;
    while (e < stage_count && is_device_kind(kinds[e])) ++e;
    return e;
  }();

  /// Builds every stage for `model` on `policy` (weights are uploaded once, here).
  template <class Model>
  pipeline(Policy policy, const Model& model, pipeline_options options = {})
      : policy_(std::move(policy)), options_(std::move(options)), slots_(policy_, model, options_), batch_(policy_) {
    group_bytes_ = find_group_bytes();
  }

  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }
  [[nodiscard]] const pipeline_options& options() const noexcept { return options_; }

  /// The stage at position I.
  template <std::size_t I>
  [[nodiscard]] auto& stage() noexcept {
    return static_cast<detail::composition::slot<I, std::tuple_element_t<I, std::tuple<Stages<Policy>...>>>&>(slots_).stage;
  }
  /// The stage made from template S (the first one, if there are several).
  template <template <class> class S>
  [[nodiscard]] auto& stage() noexcept {
    constexpr std::size_t i = detail::composition::index_of<S, Stages...>::value;
    static_assert(i < stage_count, "nerpipe::pipeline::stage<S>(): this pipeline has no such stage");
    return stage<i>();
  }

  /// A batch for this pipeline, for callers that run the phases themselves (several batches in flight).
  [[nodiscard]] std::unique_ptr<batch_type> make_batch() const { return std::make_unique<batch_type>(policy_); }

  /// Annotates `docs` in place: entities (and tokens / merged tokens when asked) of every document whose status
  /// is ok; a document that cannot be processed gets its status and message.
  void annotate(std::span<document> docs) { annotate(batch_, docs); }
  void annotate(batch_type& b, std::span<document> docs) {
    b.reset(docs, group_bytes());
    prepare(b);
    compute(b);
    finish(b);
    const std::size_t tokens = b.model_tokens;
    b.model_tokens = tokens + annotate_long(b, docs);  // annotate_long reuses the batch, group by group
  }

  /// Documents longer than this many bytes run window group by window group (annotate_long); SIZE_MAX when the
  /// pipeline does not (its tokenizer and decoder cannot, or a later stage needs the whole document's words:
  /// tokens, merged output, an entity_ruler).
  [[nodiscard]] std::size_t group_bytes() const noexcept { return group_bytes_; }

 private:
  std::size_t find_group_bytes() noexcept {
    constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
    if (options_.want_tokens || options_.want_merged || options_.entity_ruler) return none;
    if constexpr (device_begin > 0) {
      auto& t = stage<0>();
      if constexpr (requires { t.align_groups(pass_rows_); }) t.align_groups(pass_rows_);
      if constexpr (requires { t.group_bytes(); }) return std::max<std::size_t>(t.group_bytes(), 1);
    }
    return none;
  }

 public:
  /// Runs the documents of `docs` longer than group_bytes() one at a time, a group of windows at a time through
  /// every stage (batch::reset_group): the tokenizer goes on where the last group ended, the decoder appends the
  /// entities that became final. Memory stays that of a group however long the document. Returns model tokens.
  std::size_t annotate_long(batch_type& b, std::span<document> docs) {
    const std::size_t longest = group_bytes();
    std::size_t tokens = 0;
    for (document& d : docs) {
      if (!d.ok() || d.text.size() <= longest) continue;
      try {
        for (bool first = true;; first = false) {
          b.reset_group(d, first);
          prepare(b);
          compute(b);
          finish(b);
          tokens += b.model_tokens;
          if (b.group.last || !d.ok()) break;
        }
      } catch (...) {  // no partial results: the executor gives the document its error record
        d.entities.clear();
        d.packed.clear();
        b.group = {};
        throw;
      }
    }
    b.group = {};
    return tokens;
  }

  /// The host stages before the device group. Call after batch::reset.
  void prepare(batch_type& b) { run_range<0, device_begin>(b); }

  /// The device group, pass by pass.
  void compute(batch_type& b) {
    if constexpr (device_begin < device_end) {
      plan(b);
      for (std::size_t first = 0; first < b.order.size();) {
        std::size_t last = first, rows = 0, longest = 0;
        while (last < b.order.size()) {
          const std::size_t n = b.sequence_rows.length(static_cast<std::size_t>(b.order[last]));
          if (last != first && rows + n > pass_rows_) break;
          rows += n;
          longest = std::max(longest, n);
          ++last;
        }
        if (rows != 0) {
          auto& pass = b.pass;
          pass.first = first;
          pass.last = last;
          pass.rows = rows;
          pass.longest = longest;
          pass.seq_offsets.assign(1, 0);
          for (std::size_t k = first; k < last; ++k)
            pass.seq_offsets.push_back(pass.seq_offsets.back() +
                                       static_cast<std::int32_t>(b.sequence_rows.length(static_cast<std::size_t>(b.order[k]))));
          pass.seq_offsets_device = policy_.upload(std::span<const std::int32_t>(pass.seq_offsets));
          run_range<device_begin, device_end>(b);
        }
        first = last;
      }
    }
  }

  /// The host stages after the device group.
  void finish(batch_type& b) { run_range<device_end, stage_count>(b); }

  /// Runs the pipeline on texts; one document per text, in order (index = position).
  [[nodiscard]] std::vector<document> operator()(std::span<const std::string_view> texts) {
    std::vector<document> docs(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      docs[i].index = i;
      docs[i].text = std::string(texts[i]);
    }
    annotate(docs);
    return docs;
  }
  [[nodiscard]] document operator()(std::string_view text) {
    auto docs = (*this)(std::span<const std::string_view>(&text, 1));
    return std::move(docs.front());
  }

  /// The batch of the last annotate call without an explicit batch.
  [[nodiscard]] const batch_type& last_batch() const noexcept { return batch_; }
  /// Model tokens of the last annotate call without an explicit batch.
  [[nodiscard]] std::size_t last_token_count() const noexcept { return batch_.model_tokens; }

  /// Seconds spent in each stage since the last reset (pipeline_options::time_stages; zeros otherwise).
  [[nodiscard]] const std::array<double, stage_count>& stage_seconds() const noexcept { return seconds_; }
  void reset_stage_seconds() noexcept { seconds_.fill(0.0); }
  /// Turns stage timing on or off for later batches (pipeline_options::time_stages).
  void time_stages(bool on) noexcept { options_.time_stages = on; }

  /// Bytes of policy memory a pass of `shape` needs, summed over the stages (each stage's workspace_bytes).
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& shape) const {
    return workspace_range<0>(shape);
  }

  /// The most rows one forward pass takes (the embedding stage's pass_rows()).
  [[nodiscard]] std::size_t pass_rows() const noexcept { return pass_rows_; }

 private:
  template <std::size_t Begin, std::size_t End>
  void run_range(batch_type& b) {
    if constexpr (Begin < End) {
      run_one<Begin>(b);
      run_range<Begin + 1, End>(b);
    }
  }

  template <std::size_t I>
  [[nodiscard]] std::size_t workspace_range(const batch_shape& shape) const {
    if constexpr (I == stage_count) {
      return 0;
    } else {
      const auto& s = static_cast<const detail::composition::slot<I, std::tuple_element_t<I, std::tuple<Stages<Policy>...>>>&>(slots_).stage;
      return s.workspace_bytes(shape) + workspace_range<I + 1>(shape);
    }
  }

  template <std::size_t I>
  void run_one(batch_type& b) {
    if (!options_.time_stages) {
      stage<I>().run(b);
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    stage<I>().run(b);
    if constexpr (is_device_kind(kinds[I])) policy_.synchronize();
    seconds_[I] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  /// The order passes take the sequences in: longest first when the embedding asks for it (windows of similar
  /// lengths together), input order otherwise.
  void plan(batch_type& b) {
    b.order.resize(b.sequence_rows.size());
    std::iota(b.order.begin(), b.order.end(), 0);
    using embedding = std::tuple_element_t<device_begin, std::tuple<Stages<Policy>...>>;
    if constexpr (requires { embedding::sort_sequences; }) {
      if constexpr (embedding::sort_sequences)
        std::stable_sort(b.order.begin(), b.order.end(), [&](std::int32_t x, std::int32_t y) {
          return b.sequence_rows.length(static_cast<std::size_t>(x)) > b.sequence_rows.length(static_cast<std::size_t>(y));
        });
    }
  }

  static constexpr std::size_t default_pass_rows = 8192;
  std::size_t initial_pass_rows() {
    if constexpr (device_begin < device_end) {
      auto& e = stage<device_begin>();
      if constexpr (requires { e.pass_rows(); }) return std::max<std::size_t>(1, e.pass_rows());
    }
    return default_pass_rows;
  }

  Policy policy_;
  pipeline_options options_;
  detail::composition::slots<std::index_sequence_for<Stages<Policy>...>, Stages<Policy>...> slots_;
  batch_type batch_;
  std::size_t pass_rows_ = initial_pass_rows();
  std::size_t group_bytes_ = std::numeric_limits<std::size_t>::max();
  std::array<double, stage_count> seconds_{};
};

/// A pipeline behind the annotator interface (what executors run; make_pipeline erases the type here).
/// Holds the model alive as long as it lives. Documents' tokens are kept only when options.want_tokens.
template <class Pipeline>
class pipeline_annotator final : public annotator {
 public:
  template <class Model>
  pipeline_annotator(typename Pipeline::policy_type p, std::shared_ptr<const Model> model, const pipeline_options& o)
      : keep_(model), pipeline_(std::move(p), *model, o), want_tokens_(o.want_tokens) {}

  void annotate(std::span<document> docs) override {
    pipeline_.annotate(docs);
    if (!want_tokens_)
      for (document& d : docs) d.tokens.clear();
  }
  [[nodiscard]] std::size_t last_token_count() const noexcept override { return pipeline_.last_token_count(); }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& shape) const override { return pipeline_.workspace_bytes(shape); }
  [[nodiscard]] Pipeline& pipeline() noexcept { return pipeline_; }

  [[nodiscard]] bool runs_in_groups(const document& d) const noexcept override {
    return d.ok() && d.text.size() > pipeline_.group_bytes();
  }

  // The phases, each on its own batch object, so that several batches can be in flight. Long documents
  // (runs_in_groups) run at the end of finish(), every phase there.
  [[nodiscard]] std::unique_ptr<staged_batch> prepare(std::span<document> docs) override {
    auto s = std::make_unique<staged>(docs, pipeline_.policy());
    s->b.reset(docs, pipeline_.group_bytes());
    pipeline_.prepare(s->b);
    return s;
  }
  void compute(staged_batch& s) override { pipeline_.compute(static_cast<staged&>(s).b); }
  void finish(staged_batch& s) override {
    auto& st = static_cast<staged&>(s);
    pipeline_.finish(st.b);
    st.tokens = st.b.model_tokens;
    st.tokens += pipeline_.annotate_long(st.b, st.docs);
    if (!want_tokens_)
      for (document& d : st.docs) d.tokens.clear();
  }

 private:
  struct staged final : staged_batch {
    staged(std::span<document> d, const typename Pipeline::policy_type& p) : staged_batch(d), b(p) {}
    typename Pipeline::batch_type b;
  };

  std::shared_ptr<const void> keep_;
  Pipeline pipeline_;
  bool want_tokens_;
};

NERPIPE_NAMESPACE_END
