// The serving engine: one model replica on one device, its paged KV cache,
// a scheduler and the loop thread that runs them.
//
// submit() queues a request under its scenario class and returns at once;
// the loop thread builds one batch per iteration (decode tokens of running
// sequences first, then prefill chunks, higher classes first with aging),
// runs it, samples, and reports through the request's callback. cancel()
// ends a request at the next iteration and frees its blocks.
//
// Thread safety: submit, cancel and stats may be called from any thread.
// Callbacks run on the engine's loop thread: they must be quick and must not
// call back into the engine (post the event to your own queue instead; see
// EventStream for a ready-made blocking one).
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "suanli/model.h"
#include "suanli/sampler.h"
#include "suanli/status.h"
#include "suanli/tokenizer.h"

namespace suanli {

enum class ScenarioClass : int { kRealtime = 0, kInteractive = 1, kBatch = 2 };
inline constexpr int kNumScenarios = 3;
std::string_view scenario_name(ScenarioClass c);
std::optional<ScenarioClass> parse_scenario(std::string_view name);

// Service-level objectives and admission limits of one scenario class.
struct ScenarioConfig {
  double ttft_slo_s = 2.0;         // time to first token
  double tpot_slo_s = 0.2;         // time per output token
  int32_t max_queue = 256;         // waiting requests beyond this are rejected (429/503)
  bool reject_unmeetable = false;  // reject at admission when the TTFT SLO cannot be met
};

struct EngineConfig {
  int64_t max_batch_tokens = 512;  // tokens per forward step (decodes + prefill chunks)
  int32_t max_seqs = 64;           // running sequences
  int64_t max_context = 0;         // per sequence; 0: the model's training context
  double aging_s = 2.0;            // a waiting request moves up one class per aging_s waited
  std::array<ScenarioConfig, kNumScenarios> scenarios = {{
      {0.5, 0.05, 64, true},     // realtime
      {2.0, 0.2, 256, false},    // interactive
      {60.0, 1.0, 4096, false},  // batch
  }};
  bool prefix_cache = true;
  // Speculative decoding by prompt lookup (engine/speculative.h): a decoding
  // sequence whose last tokens occurred earlier in its prompt or output gets
  // up to `num_tokens` drafted tokens computed in the same step, kept while
  // the drawn tokens equal them. The output is the same as without it.
  // 0: off (the default, as in vLLM and llama-server).
  struct Speculative {
    int32_t num_tokens = 0;  // drafted tokens per sequence and step, 0 to 16
    int32_t ngram_min = 2;   // the shortest suffix looked up
    int32_t ngram_max = 4;   // the longest suffix looked up
    // Draft only while a step carries at most this many tokens (decodes and
    // drafts): a step costs about the same up to the device's balance point
    // (weights read once for all its tokens), and drafts past it are paid
    // for in arithmetic. 8 suits a 2-core CPU (its int8 peak / memory
    // bandwidth over 4-bit weights); a GPU's point is far higher.
    int64_t max_step_tokens = 8;
  } speculative;
};

// What a choice's text must be: anything, one JSON object (OpenAI's
// response_format json_object; engine/json_constraint.h), or one object
// valid under a JSON Schema (json_schema; engine/json_schema.h).
enum class ResponseFormat { kText, kJsonObject, kJsonSchema };

struct Request {
  std::vector<int32_t> prompt;  // token ids (the server tokenizes)
  SamplingParams sampling;
  int32_t max_tokens = 16;
  std::vector<std::string> stop;  // stop strings: generation ends before them, never emitting them
  int32_t n = 1;                  // choices; they share the prompt's KV blocks
  int32_t logprobs = -1;          // -1: none; k >= 0: chosen token's logprob and top k alternatives
  ScenarioClass scenario = ScenarioClass::kInteractive;
  bool ignore_eos = false;
  // kJsonObject: every choice's text is a prefix of one JSON object and ends
  // (with `stop`) when the object is complete, unless a stop string cuts it
  // first; not with ignore_eos.
  ResponseFormat response_format = ResponseFormat::kText;
  // kJsonSchema: the schema (JSON text, its properties in generation order);
  // every choice's text is a prefix of one object valid under it. submit()
  // refuses schemas outside the supported subset (engine/json_schema.h).
  std::string json_schema;
};

enum class FinishReason { kStop, kLength, kAbort };
std::string_view finish_reason_name(FinishReason r);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_prompt_tokens = 0;
};

struct Event {
  enum class Kind {
    kToken,   // text delta of one choice (may be empty while held back for stop strings)
    kFinish,  // one choice ended
    kDone,    // every choice ended: the last event of a request, with usage
    kError,   // the request failed after admission (message in `error`); also last
  };
  Kind kind = Kind::kToken;
  int32_t index = 0;            // choice
  std::string text;             // kToken
  std::vector<int32_t> ids;     // kToken: the token(s) behind text
  std::vector<TokenLogprob> top_logprobs;  // kToken with logprobs >= 0: chosen first, then alternatives
  FinishReason finish = FinishReason::kStop;  // kFinish
  Usage usage;                  // kDone
  std::string error;            // kError
  double queue_time_s = 0;      // kDone: admission to first scheduled step
  double ttft_s = 0;            // kDone: admission to first token
};

using EventCallback = std::function<void(const Event&)>;

struct EngineStats {
  int32_t running = 0;
  std::array<int32_t, kNumScenarios> waiting{};
  std::array<int32_t, kNumScenarios> running_by_class{};
  double kv_usage = 0;            // used blocks / total
  double prefix_hit_rate = 0;     // prompt tokens served from the prefix cache / prompt tokens looked up
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0;      // computed + cached, over all requests
  int64_t generated_tokens = 0;
  int64_t steps = 0;
  int64_t evictions = 0;
  int64_t spec_draft_tokens = 0;     // drafted tokens computed (speculative decoding)
  int64_t spec_accepted_tokens = 0;  // of those, kept in the output
};

class Engine {
 public:
  // Takes ownership of nothing: model, KV cache and tokenizer must outlive it.
  static Expected<std::unique_ptr<Engine>> create(Model& model, KvCache& kv,
                                                  std::shared_ptr<const Tokenizer> tokenizer,
                                                  const EngineConfig& config);
  ~Engine();  // stops the loop; unfinished requests end with kAbort

  // Validates and queues. Errors (returned, no callback): InvalidArgument for
  // a bad request (empty prompt, ids out of range, prompt + max_tokens beyond
  // the context), ResourceExhausted when the class's queue is full,
  // Unavailable when its TTFT SLO cannot be met (reject_unmeetable) or the
  // engine is draining. On success returns the request id.
  Expected<uint64_t> submit(Request request, EventCallback on_event);
  // Ends the request with kAbort at the next iteration (no-op if finished).
  void cancel(uint64_t id);
  EngineStats stats() const;
  // Stop admitting; in-flight requests continue.
  void drain();
  // Abort everything still running (finish reason abort) and wait until idle.
  void abort_all();
  // True when no request is queued or running.
  bool idle() const;

  const EngineConfig& config() const;

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A blocking queue of one request's events, for callers that want to pull
// (CLI, benchmarks, tests). callback() is what to pass to submit().
class EventStream {
 public:
  EventCallback callback();
  // Waits for the next event; false after the last (kDone / kError) was taken.
  bool next(Event* out);

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Event> events;
    bool ended = false;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  bool finished_ = false;
};

}  // namespace suanli
