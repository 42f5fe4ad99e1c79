// Iteration-level scheduling: which sequences compute how many tokens in the
// next forward step, within a token budget, a sequence limit and the free KV
// blocks. Small policy pieces, testable against a BlockManager (metadata
// only, no device) and a fake clock:
//
//   priority     effective class = class - floor(waited / aging_s), then arrival
//   decode       every running sequence that has a token to compute gets one,
//                higher priority first; when blocks run out, the lowest class
//                and latest arrival is preempted (blocks freed, recomputed later)
//   prefill      running prompts continue in chunks, then waiting requests are
//                admitted by priority (prefix-cache hits first cost nothing);
//                a higher-class request may preempt a lower-class running one
//                to get a sequence slot or blocks
//   drafts       last: decodes' speculative drafts from what is left (the
//                budget, EngineConfig::speculative.max_step_tokens, free
//                blocks only; never a shared or registered block)
//
// Thread safety: one thread (the engine loop).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <vector>

#include "suanli/block_manager.h"
#include "suanli/engine.h"

namespace suanli {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual double now() const = 0;  // seconds, monotonic
};

class SteadyClock final : public Clock {
 public:
  double now() const override;
};

// What the scheduler knows of a sequence. The engine owns these.
struct SchedSeq {
  uint64_t id = 0;
  ScenarioClass cls = ScenarioClass::kInteractive;
  double arrival = 0;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int64_t n_computed = 0;       // tokens whose K/V are in the cache
  int64_t n_cached = 0;         // of those, taken from the prefix cache at admission
  BlockTable blocks;            // blocks.n_tokens == n_computed between steps
  // Drafted next tokens (speculative decoding, set by the engine before
  // schedule()): a decoding sequence computes them in its step after its
  // pending token, when the budget and free blocks allow (never by
  // preempting another sequence). Not part of `tokens` until verified.
  std::vector<int32_t> draft;
  bool running = false;
  bool ever_scheduled = false;
  int64_t preemptions = 0;

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - n_computed; }
};

struct StepChunk {
  SchedSeq* seq;
  int64_t n_tokens;  // tokens[n_computed, n_computed + n_tokens) run this step
  // Of n_tokens, the last n_draft are seq->draft[0, n_draft) (a decode with
  // drafts: n_tokens = 1 + n_draft). completed() counts only the first
  // token; accept_draft() the drafts that were verified.
  int64_t n_draft = 0;
};

struct StepPlan {
  std::vector<StepChunk> chunks;
  std::vector<std::pair<BlockId, BlockId>> block_copies;  // copy-on-write: (from, to) before the step
  std::vector<SchedSeq*> preempted;  // moved back to waiting this step
  std::vector<SchedSeq*> admitted;   // moved from waiting to running this step
  int64_t n_tokens = 0;
};

class Scheduler {
 public:
  Scheduler(const EngineConfig& config, BlockManager& blocks, const Clock& clock);

  void add(SchedSeq* seq);     // waiting
  void adopt_running(SchedSeq* seq);  // a fork that already holds its blocks
  void remove(SchedSeq* seq);  // finished or cancelled: frees its blocks
  // After the step ran: tokens computed, full blocks registered for reuse.
  void completed(const StepPlan& plan);
  // After completed(): the first n drafted tokens of s's step were verified
  // (they are now the end of s->tokens) and their K/V, written in the step,
  // counts as computed; blocks past the computed tokens are released.
  void accept_draft(SchedSeq* s, int64_t n);
  StepPlan schedule();

  int32_t n_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t n_waiting(ScenarioClass c) const;
  int32_t n_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int64_t preemptions() const { return preemptions_; }
  // Prompt tokens waiting to be computed in classes at or above c (for the
  // TTFT admission estimate).
  int64_t queued_prefill_tokens(ScenarioClass c) const;
  const std::vector<SchedSeq*>& running() const { return running_; }

 private:
  // Lower is more urgent.
  double priority(const SchedSeq* s, double now) const;
  // Blocks for tokens [n_computed, n_computed + n), including copy-on-write
  // of a shared partial block; all or nothing.
  bool ensure_blocks(SchedSeq* s, int64_t n, StepPlan& plan);
  // Moves a running sequence back to waiting (blocks freed, recomputed
  // later); drops its chunks from the plan and returns their tokens.
  int64_t preempt(SchedSeq* s, StepPlan& plan);
  // Blocks for up to k drafted tokens after s's pending one: as many as fit
  // in blocks s holds alone (unregistered) and then in free blocks (never
  // evicting a cached one). Returns how many were granted (0: nothing
  // changed).
  int64_t grant_draft(SchedSeq* s, int64_t k);
  // The least urgent running sequence: lowest class, then latest arrival.
  SchedSeq* lowest_running(const StepPlan& plan, bool include_planned) const;

  EngineConfig config_;
  BlockManager& blocks_;
  const Clock& clock_;
  std::vector<SchedSeq*> running_;
  std::list<SchedSeq*> waiting_;
  int64_t preemptions_ = 0;
};

}  // namespace suanli
