// The engine loop: admission, one scheduled step per iteration, sampling,
// streaming, finishing. See include/suanli/engine.h for the contract and
// src/engine/scheduler.h for the scheduling policy.
#include "suanli/engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <unordered_map>

#include "core/json_depth.h"
#include "engine/json_constraint.h"
#include "engine/json_schema.h"
#include "engine/scheduler.h"
#include "engine/speculative.h"
#include "engine/stop_matcher.h"
#include "suanli/block_manager.h"
#include "suanli/kv_cache.h"

namespace suanli {

std::string_view scenario_name(ScenarioClass c) {
  switch (c) {
    case ScenarioClass::kRealtime: return "realtime";
    case ScenarioClass::kInteractive: return "interactive";
    case ScenarioClass::kBatch: return "batch";
  }
  return "interactive";
}

std::optional<ScenarioClass> parse_scenario(std::string_view name) {
  for (int i = 0; i < kNumScenarios; ++i) {
    if (scenario_name(static_cast<ScenarioClass>(i)) == name) return static_cast<ScenarioClass>(i);
  }
  return std::nullopt;
}

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
  }
  return "stop";
}

namespace {

constexpr int32_t kMaxChoices = 128;
constexpr int32_t kMaxTopLogprobs = 20;

struct RequestState;

// One choice of a request: a sequence with its own sampler, detokenizer and
// stop-string matcher.
struct Choice : SchedSeq {
  RequestState* req = nullptr;
  int32_t index = 0;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamDecoder> decoder;
  std::unique_ptr<StopMatcher> stop;
  std::unique_ptr<JsonConstraint> json;  // response_format json_object
  int32_t generated = 0;
  bool finished = false;
  // Speculative decoding: this choice's draft length cap (0: not yet set;
  // next_draft_length() adapts it).
  int32_t spec_len = 0;
};

// One token to draw after a step: the choice, its logits row, and what the
// draw produced.
struct Draw {
  Choice* c = nullptr;
  float* row = nullptr;
  bool shared_row = false;  // other choices (n > 1) draw from the same row
  int32_t token = -1;
  bool non_finite = false;             // the row holds NaN or infinities: nothing drawn
  std::vector<TokenLogprob> logprobs;  // the token's, then the top ones
};

struct RequestState {
  uint64_t id = 0;
  Request req;
  EventCallback cb;
  double submitted_at = 0;
  double first_scheduled_at = -1;
  double first_token_at = -1;
  std::vector<std::unique_ptr<Choice>> choices;
  int32_t n_finished = 0;
  bool forked = false;
  int64_t cached_prompt_tokens = -1;
  std::shared_ptr<const JsonSchema> schema;  // response_format json_schema
};

}  // namespace

struct Engine::Impl {
  Impl(Model& m, KvCache& k, std::shared_ptr<const Tokenizer> t, const EngineConfig& c)
      : model(m),
        kv(k),
        tok(std::move(t)),
        config(c),
        blocks(BlockManagerOptions{k.n_blocks(), k.block_size(), nullptr}),
        sched(c, blocks, clock) {}

  Model& model;
  KvCache& kv;
  std::shared_ptr<const Tokenizer> tok;
  EngineConfig config;
  SteadyClock clock;
  BlockManager blocks;
  Scheduler sched;

  std::thread loop_thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<RequestState>> incoming;
  std::vector<uint64_t> cancels;
  bool stopping = false;
  bool draining = false;
  bool abort_requested = false;
  std::atomic<uint64_t> next_id{1};
  std::array<int32_t, kNumScenarios> incoming_by_class{};
  std::array<int64_t, kNumScenarios> queued_prefill{};  // prompt tokens waiting at or above each class
  double prefill_tokens_per_s = 0;                       // copy of prefill_ema, for the TTFT estimate

  // Loop-thread state.
  std::unordered_map<uint64_t, std::unique_ptr<RequestState>> active;
  Batch batch;
  std::vector<float> logits;
  std::vector<Draw> draws;  // this step's; grown, never shrunk (their buffers are reused)
  std::vector<std::pair<Choice*, int32_t>> logit_rows;  // choice, row in logits (a draft's: its first)
  std::unordered_map<Choice*, int64_t> drafted;         // this step's choices with drafts: n_draft
  Draw spec_draw;                                       // a drafted position's draw (loop thread)
  int64_t spec_draft_total = 0;
  int64_t spec_accepted_total = 0;
  double prefill_ema = 0;  // loop-local EMA of prefill tokens/s

  // Shared with stats().
  EngineStats snapshot;
  int64_t prompt_tokens_total = 0;
  int64_t generated_total = 0;
  int64_t steps = 0;

  void loop();
  void admit(std::unique_ptr<RequestState> rs);
  void cancel_now(uint64_t id);
  void emit(RequestState& rs, const Event& e) {
    if (rs.cb) rs.cb(e);
  }
  void finish(Choice& c, FinishReason reason, bool flush_text);
  // Draws d's token: touches only d and its choice's sampler, so the
  // step's draws run in parallel (Device::host_parallel_for).
  void draw(Draw& d);
  // Built on the first JSON request (loop thread), then shared.
  std::shared_ptr<const TokenTable> token_table() {
    if (!token_table_) token_table_ = std::make_shared<const TokenTable>(*tok);
    return token_table_;
  }
  std::shared_ptr<const TokenTable> token_table_;
  // Then, one at a time in batch order: events, stop strings, finishing.
  void deliver(Choice& c, const Draw& d);
  // Requests with a non-finite logits row this step (deliver()).
  std::vector<uint64_t> broken;
  void fork(Choice& parent);
  // Drafts for the decoding sequences (EngineConfig::speculative), before
  // schedule().
  void propose_drafts();
  // After c's first drawn token was delivered: draws the drafted positions
  // in order while each drawn token equals the draft, then tells the
  // scheduler how many drafts were kept.
  void verify_draft(Choice& c, const Draw& first, float* first_row, int64_t n_draft);
  void update_snapshot();
  Status run_step(StepPlan& plan);
};

double SteadyClock::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Expected<std::unique_ptr<Engine>> Engine::create(Model& model, KvCache& kv, std::shared_ptr<const Tokenizer> tokenizer,
                                                 const EngineConfig& config) {
  EngineConfig c = config;
  if (c.max_batch_tokens < 1 || c.max_batch_tokens > model.max_batch_tokens()) {
    return InvalidArgument("max_batch_tokens must be 1 to the model's " + std::to_string(model.max_batch_tokens()));
  }
  if (c.max_seqs < 1 || c.max_seqs > 4096) return InvalidArgument("max_seqs must be 1 to 4096");
  if (!(c.aging_s > 0)) return InvalidArgument("aging_s must be positive");
  const EngineConfig::Speculative& sp = c.speculative;
  if (sp.num_tokens < 0 || sp.num_tokens > 16) return InvalidArgument("speculative num_tokens must be 0 to 16");
  if (sp.ngram_min < 1 || sp.ngram_max < sp.ngram_min || sp.ngram_max > 16) {
    return InvalidArgument("speculative n-grams need 1 <= ngram_min <= ngram_max <= 16");
  }
  if (sp.num_tokens > 0 && (sp.max_step_tokens < 2 || sp.max_step_tokens > c.max_batch_tokens)) {
    return InvalidArgument("speculative max_step_tokens must be 2 to max_batch_tokens");
  }
  const int64_t train_ctx = model.info().n_ctx_train > 0 ? model.info().n_ctx_train : (int64_t{1} << 20);
  if (c.max_context <= 0 || c.max_context > train_ctx) c.max_context = train_ctx;
  if (!tokenizer) return InvalidArgument("an engine needs the model's tokenizer");
  if (tokenizer->n_vocab() > model.n_vocab()) return InvalidArgument("tokenizer is larger than the model's vocabulary");
  auto impl = std::make_unique<Impl>(model, kv, std::move(tokenizer), c);
  Impl* p = impl.get();
  std::unique_ptr<Engine> e(new Engine(std::move(impl)));
  p->update_snapshot();
  p->loop_thread = std::thread([p] { p->loop(); });
  return e;
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->abort_requested = true;
  }
  impl_->cv.notify_all();
  if (impl_->loop_thread.joinable()) impl_->loop_thread.join();
}

const EngineConfig& Engine::config() const { return impl_->config; }

Expected<uint64_t> Engine::submit(Request request, EventCallback on_event) {
  Impl& s = *impl_;
  if (request.prompt.empty()) return InvalidArgument("the prompt is empty");
  const int64_t vocab = s.model.n_vocab();
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= vocab) {
      return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(vocab) + ")");
    }
  }
  if (request.max_tokens < 1) return InvalidArgument("max_tokens must be at least 1");
  if (request.n < 1 || request.n > kMaxChoices) return InvalidArgument("n must be 1 to " + std::to_string(kMaxChoices));
  if (request.logprobs > kMaxTopLogprobs) {
    return InvalidArgument("top_logprobs must be 0 to " + std::to_string(kMaxTopLogprobs));
  }
  SUANLI_RETURN_IF_ERROR(request.sampling.validate());
  std::shared_ptr<const JsonSchema> schema;
  if (request.response_format != ResponseFormat::kText && request.ignore_eos) {
    return InvalidArgument("a JSON response ends with the object; ignore_eos cannot be combined with it");
  }
  if (request.response_format == ResponseFormat::kJsonSchema) {
    // (Depth first: see core/json_depth.h; the compiler allows 32 levels.)
    if (json_nesting_depth(request.json_schema, 128) > 128) return InvalidArgument("json_schema is nested too deeply");
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(request.json_schema, nullptr, false);
    if (j.is_discarded()) return InvalidArgument("json_schema is not valid JSON");
    SUANLI_ASSIGN_OR_RETURN(schema, JsonSchema::compile(j));
  }
  for (const auto& [id, bias] : request.sampling.logit_bias) {
    if (id >= vocab) {
      return InvalidArgument("logit_bias token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(vocab) + ")");
    }
  }
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  const int64_t need = prompt + request.max_tokens;
  if (need > s.config.max_context) {
    return InvalidArgument("this request (" + std::to_string(prompt) + " prompt tokens + " +
                           std::to_string(request.max_tokens) + " max_tokens = " + std::to_string(need) +
                           " tokens) exceeds the context length of " + std::to_string(s.config.max_context) +
                           " tokens");
  }
  const int64_t blocks_needed = (need + s.kv.block_size() - 1) / s.kv.block_size();
  if (blocks_needed > s.kv.n_blocks()) {
    return InvalidArgument("this request needs " + std::to_string(need) + " tokens of KV cache; the cache holds " +
                           std::to_string(int64_t{s.kv.n_blocks()} * s.kv.block_size()));
  }
  const int c = static_cast<int>(request.scenario);
  if (c < 0 || c >= kNumScenarios) return InvalidArgument("unknown scenario class");
  const ScenarioConfig& sc = s.config.scenarios[c];
  auto rs = std::make_unique<RequestState>();
  rs->req = std::move(request);
  rs->schema = std::move(schema);
  rs->cb = std::move(on_event);
  rs->submitted_at = s.clock.now();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.draining || s.stopping) return Status(StatusCode::kUnavailable, "the engine is shutting down");
    const int32_t queued = s.snapshot.waiting[c] + s.incoming_by_class[c];
    if (queued >= sc.max_queue) {
      return ResourceExhausted("the " + std::string(scenario_name(rs->req.scenario)) + " queue is full (" +
                               std::to_string(sc.max_queue) + " waiting)");
    }
    if (sc.reject_unmeetable && s.prefill_tokens_per_s > 0) {
      // Prompt tokens queued ahead of this one (its class and above) plus its
      // own, at the measured prefill rate.
      const double est = static_cast<double>(s.queued_prefill[c] + prompt) / s.prefill_tokens_per_s;
      if (est > sc.ttft_slo_s) {
        return Status(StatusCode::kUnavailable,
                      "the " + std::string(scenario_name(rs->req.scenario)) + " time-to-first-token target of " +
                          std::to_string(sc.ttft_slo_s) + " s cannot be met under the current load (about " +
                          std::to_string(est) + " s)");
      }
    }
    rs->id = s.next_id++;
    s.incoming_by_class[c]++;
    const uint64_t id = rs->id;
    s.incoming.push_back(std::move(rs));
    s.cv.notify_all();
    return id;
  }
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->cancels.push_back(id);
  }
  impl_->cv.notify_all();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  EngineStats st = impl_->snapshot;
  for (int c = 0; c < kNumScenarios; ++c) st.waiting[c] += impl_->incoming_by_class[c];
  return st;
}

void Engine::drain() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->draining = true;
}

void Engine::abort_all() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->abort_requested = true;
  }
  impl_->cv.notify_all();
  while (!idle()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

bool Engine::idle() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->incoming.empty() && impl_->snapshot.running == 0 && impl_->snapshot.waiting[0] == 0 &&
         impl_->snapshot.waiting[1] == 0 && impl_->snapshot.waiting[2] == 0;
}

void Engine::Impl::admit(std::unique_ptr<RequestState> rs) {
  auto c = std::make_unique<Choice>();
  c->req = rs.get();
  c->index = 0;
  c->id = rs->id;
  c->cls = rs->req.scenario;
  c->arrival = rs->submitted_at;
  c->tokens = rs->req.prompt;
  SamplingParams sp = rs->req.sampling;
  c->sampler = std::make_unique<Sampler>(sp, static_cast<int32_t>(model.n_vocab()));
  for (int32_t t : rs->req.prompt) c->sampler->accept(t);
  c->decoder = std::make_unique<StreamDecoder>(tok);
  c->stop = std::make_unique<StopMatcher>(rs->req.stop);
  if (rs->req.response_format != ResponseFormat::kText) {
    c->json = std::make_unique<JsonConstraint>(token_table(), rs->schema);
  }
  sched.add(c.get());
  rs->choices.push_back(std::move(c));
  const uint64_t id = rs->id;
  active.emplace(id, std::move(rs));
}

void Engine::Impl::finish(Choice& c, FinishReason reason, bool flush_text) {
  if (c.finished) return;
  RequestState& rs = *c.req;
  c.finished = true;
  if (flush_text) {
    std::string tail = c.decoder->flush();
    bool stopped = false;
    std::string out = c.stop->push(tail, &stopped);
    if (!stopped) out += c.stop->flush();
    if (!out.empty()) {
      Event e;
      e.kind = Event::Kind::kToken;
      e.index = c.index;
      e.text = std::move(out);
      emit(rs, e);
    }
    if (stopped) reason = FinishReason::kStop;
  }
  Event f;
  f.kind = Event::Kind::kFinish;
  f.index = c.index;
  f.finish = reason;
  emit(rs, f);
  sched.remove(&c);
  if (++rs.n_finished == rs.req.n) {
    Event d;
    d.kind = Event::Kind::kDone;
    d.usage.prompt_tokens = static_cast<int64_t>(rs.req.prompt.size());
    for (const auto& ch : rs.choices) d.usage.completion_tokens += ch->generated;
    d.usage.cached_prompt_tokens = std::max<int64_t>(0, rs.cached_prompt_tokens);
    d.queue_time_s = rs.first_scheduled_at >= 0 ? rs.first_scheduled_at - rs.submitted_at : 0;
    d.ttft_s = rs.first_token_at >= 0 ? rs.first_token_at - rs.submitted_at : 0;
    emit(rs, d);
  }
}

void Engine::Impl::cancel_now(uint64_t id) {
  auto it = active.find(id);
  if (it == active.end()) return;
  RequestState& rs = *it->second;
  // Choices not created yet (n > 1 before the fork) count as aborted too.
  if (!rs.forked) rs.req.n = static_cast<int32_t>(rs.choices.size());
  for (auto& c : rs.choices) finish(*c, FinishReason::kAbort, false);
  active.erase(it);
}

void Engine::Impl::fork(Choice& parent) {
  RequestState& rs = *parent.req;
  rs.forked = true;
  for (int32_t i = 1; i < rs.req.n; ++i) {
    auto c = std::make_unique<Choice>();
    c->req = &rs;
    c->index = i;
    c->id = parent.id;
    c->cls = parent.cls;
    c->arrival = parent.arrival;
    c->tokens = parent.tokens;
    c->n_computed = parent.n_computed;
    c->n_cached = parent.n_cached;
    c->blocks = blocks.fork(parent.blocks);
    blocks.truncate(c->blocks, c->n_computed);  // nothing past the computed tokens is shared
    c->ever_scheduled = true;
    SamplingParams sp = rs.req.sampling;
    sp.seed = rs.req.sampling.seed + static_cast<uint64_t>(i);
    c->sampler = std::make_unique<Sampler>(sp, static_cast<int32_t>(model.n_vocab()));
    for (int32_t t : rs.req.prompt) c->sampler->accept(t);
    c->decoder = std::make_unique<StreamDecoder>(tok);
    c->stop = std::make_unique<StopMatcher>(rs.req.stop);
    if (rs.req.response_format != ResponseFormat::kText) {
      c->json = std::make_unique<JsonConstraint>(token_table(), rs.schema);
    }
    sched.adopt_running(c.get());
    rs.choices.push_back(std::move(c));
  }
}

void Engine::Impl::draw(Draw& d) {
  const int32_t V = static_cast<int32_t>(model.n_vocab());
  const int32_t n_logprobs = d.c->req->req.logprobs;
  // The sampler rewrites the row it is given only to apply penalties. Then,
  // if other choices draw from the same row or logprobs (of the model's
  // distribution) are asked, it works on a copy in this thread's scratch
  // (one row per pool thread, not one per draw: a step can draw for 64
  // requests x 128 choices).
  // A JSON choice always draws from a copy: a token the constraint refuses
  // is drawn again from the pristine row with every refused token masked.
  d.non_finite = !Sampler::all_finite(d.row, V);
  if (d.non_finite) {
    d.token = -1;
    d.logprobs.clear();
    return;
  }
  float* l = d.row;
  JsonConstraint* json = d.c->json.get();
  thread_local std::vector<float> scratch;
  if (d.c->sampler->rewrites_logits() && (d.shared_row || n_logprobs >= 0 || json)) {
    scratch.assign(d.row, d.row + V);
    l = scratch.data();
  }
  d.token = d.c->sampler->sample(l);
  if (json && !json->allows(d.token)) {
    scratch.assign(d.row, d.row + V);
    // Nothing allowed cannot happen with a vocabulary that spells JSON's
    // bytes; should it, the choice ends (deliver() takes -1 as the end).
    d.token = json->mask(scratch.data(), V) > 0 ? d.c->sampler->sample(scratch.data()) : -1;
  }
  d.logprobs.clear();
  if (n_logprobs >= 0 && d.token >= 0) {
    d.logprobs.push_back({d.token, Sampler::logprob_of(d.row, V, d.token)});
    for (const TokenLogprob& lp : Sampler::top_logprobs(d.row, V, n_logprobs)) d.logprobs.push_back(lp);
  }
}

void Engine::Impl::deliver(Choice& c, const Draw& d) {
  RequestState& rs = *c.req;
  const double now = clock.now();
  if (rs.first_token_at < 0) rs.first_token_at = now;
  Event e;
  e.kind = Event::Kind::kToken;
  e.index = c.index;
  const int32_t token = d.token;
  if (d.non_finite) {  // the request fails after the step's deliveries (run_step)
    if (std::find(broken.begin(), broken.end(), rs.id) == broken.end()) broken.push_back(rs.id);
    return;
  }
  if (token < 0) {  // no token could be drawn (draw())
    finish(c, FinishReason::kStop, true);
    return;
  }
  c.generated++;
  generated_total++;
  if (rs.req.logprobs >= 0) e.top_logprobs = d.logprobs;
  if (!rs.req.ignore_eos && tok->is_end_of_generation(token)) {
    finish(c, FinishReason::kStop, true);
    return;
  }
  c.sampler->accept(token);
  if (c.json) c.json->accept(token);
  e.ids.push_back(token);
  bool stopped = false;
  e.text = c.stop->push(c.decoder->push(token), &stopped);
  emit(rs, e);
  if (stopped) {
    finish(c, FinishReason::kStop, false);
  } else if (c.json && c.json->complete()) {
    // The object is closed: only an end-of-generation token could follow,
    // so the choice ends here without drawing it.
    finish(c, FinishReason::kStop, true);
  } else if (c.generated >= rs.req.max_tokens ||
             static_cast<int64_t>(c.tokens.size()) + 1 >= config.max_context) {
    finish(c, FinishReason::kLength, true);
  } else {
    c.tokens.push_back(token);
  }
}

Status Engine::Impl::run_step(StepPlan& plan) {
  for (const auto& [from, to] : plan.block_copies) kv.copy_block(from, to);
  batch.clear();
  logit_rows.clear();
  drafted.clear();
  for (const StepChunk& ch : plan.chunks) {
    Choice& c = *static_cast<Choice*>(ch.seq);
    Batch::Seq s;
    s.first_token = static_cast<int32_t>(batch.tokens.size());
    s.n_tokens = static_cast<int32_t>(ch.n_tokens);
    s.n_past = static_cast<int32_t>(c.n_computed);
    s.block_table = c.blocks.blocks;
    for (int64_t j = 0; j < ch.n_tokens; ++j) {
      const int64_t pos = c.n_computed + j;
      const int64_t undrafted = ch.n_tokens - ch.n_draft;
      batch.tokens.push_back(j < undrafted ? c.tokens[pos] : c.draft[j - undrafted]);
      batch.positions.push_back(static_cast<int32_t>(pos));
      batch.slots.push_back(kv.slot(c.blocks.blocks, pos));
    }
    if (ch.n_draft > 0) {
      // Logits for the pending token and every drafted position.
      logit_rows.emplace_back(&c, static_cast<int32_t>(batch.logits_for.size()));
      for (int64_t j = 0; j <= ch.n_draft; ++j) {
        batch.logits_for.push_back(static_cast<int32_t>(batch.tokens.size() - 1 - ch.n_draft + j));
      }
      drafted[&c] = ch.n_draft;
    } else if (c.n_computed + ch.n_tokens == static_cast<int64_t>(c.tokens.size())) {
      logit_rows.emplace_back(&c, static_cast<int32_t>(batch.logits_for.size()));
      batch.logits_for.push_back(static_cast<int32_t>(batch.tokens.size() - 1));
    }
    batch.seqs.push_back(std::move(s));
    if (c.req->first_scheduled_at < 0) c.req->first_scheduled_at = clock.now();
  }
  logits.resize(batch.logits_for.size() * model.n_vocab());
  const double t0 = clock.now();
  SUANLI_RETURN_IF_ERROR(model.forward(batch, kv, logits.data()));
  const double dt = clock.now() - t0;
  int64_t prefill = 0;
  for (const StepChunk& ch : plan.chunks) {
    if (ch.n_tokens > 1 && ch.n_draft == 0) prefill += ch.n_tokens;
  }
  if (prefill > 0 && dt > 0) {
    const double rate = prefill / dt;
    prefill_ema = prefill_ema > 0 ? 0.8 * prefill_ema + 0.2 * rate : rate;
  }
  sched.completed(plan);
  steps++;
  for (const StepChunk& ch : plan.chunks) spec_draft_total += ch.n_draft;
  // Sampling costs from ~25 us (greedy) to ~0.3 ms (full-vocabulary
  // top_p) per sequence: spread over the host threads, it would otherwise
  // leave all but one idle for milliseconds per batched step.
  size_t n_draws = 0;
  auto add_draw = [&](Choice* c, float* row, bool shared) {
    if (n_draws == draws.size()) draws.emplace_back();
    Draw& d = draws[n_draws++];
    d.c = c;
    d.row = row;
    d.shared_row = shared;
  };
  for (auto& [c, row] : logit_rows) {
    RequestState& rs = *c->req;
    if (c->index == 0 && rs.cached_prompt_tokens < 0) rs.cached_prompt_tokens = c->n_cached;
    float* r = logits.data() + static_cast<int64_t>(row) * model.n_vocab();
    if (rs.req.n > 1 && !rs.forked) {
      fork(*c);
      for (auto& ch : rs.choices) add_draw(ch.get(), r, true);
    } else {
      add_draw(c, r, false);
    }
  }
  model.device().host_parallel_for(static_cast<int64_t>(n_draws), [&](int64_t i) { draw(draws[i]); });
  for (size_t i = 0; i < n_draws; ++i) {
    Choice& c = *draws[i].c;
    deliver(c, draws[i]);
    if (auto it = drafted.find(&c); it != drafted.end()) verify_draft(c, draws[i], draws[i].row, it->second);
  }
  for (const StepChunk& ch : plan.chunks) ch.seq->draft.clear();
  // Requests whose logits were not all finite end with an error: the model
  // (weights, metadata) is broken for their input, and drawing from the
  // finite rest would hand out garbage as if it were text.
  for (uint64_t id : broken) {
    auto it = active.find(id);
    if (it == active.end()) continue;
    RequestState& rs = *it->second;
    Event e;
    e.kind = Event::Kind::kError;
    e.error = Sampler::kNonFiniteLogits;
    emit(rs, e);
    rs.cb = nullptr;
    cancel_now(id);
  }
  broken.clear();
  return Status::Ok();
}

void Engine::Impl::verify_draft(Choice& c, const Draw& first, float* first_row, int64_t n_draft) {
  // Row j holds the logits after the pending token and drafts [0, j): valid
  // for the draw of position j only if drafts [0, j) were all drawn.
  const int64_t V = model.n_vocab();
  int64_t kept = 0;
  int32_t drawn = first.token;
  while (kept < n_draft && !c.finished && drawn == c.draft[kept]) {
    ++kept;
    Draw& d = spec_draw;
    d.c = &c;
    d.row = first_row + kept * V;
    d.shared_row = false;
    draw(d);
    deliver(c, d);
    drawn = d.token;
  }
  spec_accepted_total += kept;
  c.spec_len = next_draft_length(c.spec_len, n_draft, kept, config.speculative.num_tokens);
  // A finished choice already left the scheduler with its blocks.
  if (!c.finished) sched.accept_draft(&c, kept);
}

void Engine::Impl::propose_drafts() {
  const EngineConfig::Speculative& sp = config.speculative;
  if (sp.num_tokens <= 0) return;
  for (SchedSeq* s : sched.running()) s->draft.clear();
  int64_t n_decoding = 0;
  for (const SchedSeq* s : sched.running()) n_decoding += s->pending() == 1;
  if (n_decoding == 0) return;
  const int64_t per_seq = std::min<int64_t>(sp.num_tokens, (sp.max_step_tokens - n_decoding) / n_decoding);
  if (per_seq <= 0) return;
  for (SchedSeq* s : sched.running()) {
    if (s->pending() != 1) continue;
    Choice& c = *static_cast<Choice*>(s);
    // A request with n > 1 forks at its first drawn token: its prompt's
    // last step carries no drafts, so the forks share only computed blocks.
    if (c.req->req.n > 1 && !c.req->forked) continue;
    if (c.spec_len == 0) c.spec_len = sp.num_tokens;
    // At most one token per step is drawn beyond the drafts: never draft
    // past max_tokens or the context.
    const int64_t left = std::min<int64_t>(c.req->req.max_tokens - c.generated - 1,
                                           config.max_context - static_cast<int64_t>(s->tokens.size()) - 1);
    const int64_t k = std::min({per_seq, left, static_cast<int64_t>(c.spec_len)});
    if (k <= 0) continue;
    s->draft = propose_ngram_draft(s->tokens, static_cast<int32_t>(k), sp.ngram_min, sp.ngram_max);
  }
}

void Engine::Impl::update_snapshot() {
  std::lock_guard<std::mutex> lock(mu);
  EngineStats& st = snapshot;
  st.running = sched.n_running();
  st.running_by_class = {};
  for (const SchedSeq* s : sched.running()) st.running_by_class[static_cast<int>(s->cls)]++;
  for (int c = 0; c < kNumScenarios; ++c) {
    st.waiting[c] = sched.n_waiting(static_cast<ScenarioClass>(c));
    queued_prefill[c] = sched.queued_prefill_tokens(static_cast<ScenarioClass>(c));
  }
  const BlockManagerStats b = blocks.stats();
  st.kv_blocks_total = b.total;
  st.kv_blocks_used = b.in_use;
  st.kv_usage = b.total ? static_cast<double>(b.in_use) / b.total : 0;
  st.prefix_hit_rate = b.hit_rate();
  st.evictions = b.evictions;
  st.preemptions = sched.preemptions();
  st.prompt_tokens = prompt_tokens_total;
  st.generated_tokens = generated_total;
  st.steps = steps;
  st.spec_draft_tokens = spec_draft_total;
  st.spec_accepted_tokens = spec_accepted_total;
  prefill_tokens_per_s = prefill_ema;
}

void Engine::Impl::loop() {
  for (;;) {
    std::deque<std::unique_ptr<RequestState>> arrived;
    std::vector<uint64_t> cancelled;
    bool abort_everything = false;
    bool stop_now = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] {
        return stopping || abort_requested || !incoming.empty() || !cancels.empty() || !active.empty();
      });
      arrived.swap(incoming);
      incoming_by_class = {};
      cancelled.swap(cancels);
      abort_everything = abort_requested;
      abort_requested = false;
      stop_now = stopping;
    }
    for (auto& rs : arrived) {
      prompt_tokens_total += static_cast<int64_t>(rs->req.prompt.size());
      admit(std::move(rs));
    }
    for (uint64_t id : cancelled) cancel_now(id);
    if (abort_everything) {
      std::vector<uint64_t> ids;
      for (const auto& [id, rs] : active) ids.push_back(id);
      for (uint64_t id : ids) cancel_now(id);
    }
    // Requests whose every choice finished leave the active set.
    for (auto it = active.begin(); it != active.end();) {
      if (it->second->n_finished >= it->second->req.n) {
        it = active.erase(it);
      } else {
        ++it;
      }
    }
    if (stop_now) {
      update_snapshot();
      return;
    }
    if (active.empty()) {
      update_snapshot();
      continue;
    }
    propose_drafts();
    StepPlan plan = sched.schedule();
    if (plan.chunks.empty()) {
      // Nothing fits right now (blocks held by finished-but-cached data are
      // evictable, so this means every block is in use by running work that
      // is itself blocked): wait briefly for cancels.
      update_snapshot();
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(5));
      continue;
    }
    Status s = run_step(plan);
    if (!s.ok()) {
      // A failed step is an engine fault, not one request's: end every
      // request in the step with an error event and keep serving.
      for (const StepChunk& ch : plan.chunks) {
        Choice& c = *static_cast<Choice*>(ch.seq);
        RequestState& rs = *c.req;
        if (active.count(rs.id) == 0) continue;
        Event e;
        e.kind = Event::Kind::kError;
        e.error = s.to_string();
        emit(rs, e);
        rs.cb = nullptr;
        cancel_now(rs.id);
      }
    }
    for (auto it = active.begin(); it != active.end();) {
      if (it->second->n_finished >= it->second->req.n) {
        it = active.erase(it);
      } else {
        ++it;
      }
    }
    update_snapshot();
  }
}

EventCallback EventStream::callback() {
  std::shared_ptr<State> st = state_;
  return [st](const Event& e) {
    std::lock_guard<std::mutex> lock(st->mu);
    st->events.push_back(e);
    if (e.kind == Event::Kind::kDone || e.kind == Event::Kind::kError) st->ended = true;
    st->cv.notify_all();
  };
}

bool EventStream::next(Event* out) {
  if (finished_) return false;
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait(lock, [&] { return !state_->events.empty(); });
  *out = std::move(state_->events.front());
  state_->events.pop_front();
  if (out->kind == Event::Kind::kDone || out->kind == Event::Kind::kError) finished_ = true;
  return true;
}

}  // namespace suanli
