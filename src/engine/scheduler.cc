#include "engine/scheduler.h"

#include <algorithm>
#include <cmath>

namespace suanli {

Scheduler::Scheduler(const EngineConfig& config, BlockManager& blocks, const Clock& clock)
    : config_(config), blocks_(blocks), clock_(clock) {}

double Scheduler::priority(const SchedSeq* s, double now) const {
  // Class, improved by one level per aging_s waited (so batch work is never
  // starved), then arrival order within a level.
  const double waited = std::max(0.0, now - s->arrival);
  const double level = std::max(0.0, static_cast<double>(s->cls) - std::floor(waited / config_.aging_s));
  return level * 1e12 + s->arrival;
}

void Scheduler::add(SchedSeq* s) {
  s->running = false;
  waiting_.push_back(s);
}

void Scheduler::adopt_running(SchedSeq* s) {
  s->running = true;
  running_.push_back(s);
}

void Scheduler::remove(SchedSeq* s) {
  if (s->running) {
    running_.erase(std::remove(running_.begin(), running_.end(), s), running_.end());
  } else {
    waiting_.remove(s);
  }
  blocks_.release_all(s->blocks);
  s->running = false;
}

int32_t Scheduler::n_waiting(ScenarioClass c) const {
  int32_t n = 0;
  for (const SchedSeq* s : waiting_) n += s->cls == c;
  return n;
}

int64_t Scheduler::queued_prefill_tokens(ScenarioClass c) const {
  int64_t n = 0;
  for (const SchedSeq* s : waiting_) {
    if (s->cls <= c) n += s->pending();
  }
  for (const SchedSeq* s : running_) {
    if (s->cls <= c && s->pending() > 1) n += s->pending();
  }
  return n;
}

bool Scheduler::ensure_blocks(SchedSeq* s, int64_t n, StepPlan& plan) {
  const int64_t bs = blocks_.block_size();
  // A partially filled last block shared with a fork must be copied first.
  if (s->n_computed % bs != 0 && s->n_computed / bs < static_cast<int64_t>(s->blocks.blocks.size())) {
    const BlockId cur = s->blocks.blocks[s->n_computed / bs];
    if (blocks_.ref_count(cur) > 1 || blocks_.is_registered(cur)) {
      Expected<WritableBlock> w = blocks_.prepare_write(s->blocks, s->n_computed);
      if (!w) return false;
      if (w->copy_from_old) plan.block_copies.emplace_back(w->old, w->id);
    }
  }
  return blocks_.ensure_capacity(s->blocks, s->n_computed + n).ok();
}

SchedSeq* Scheduler::lowest_running(const StepPlan& plan, bool include_planned) const {
  SchedSeq* worst = nullptr;
  for (SchedSeq* s : running_) {
    bool planned = false;
    for (const StepChunk& c : plan.chunks) planned |= c.seq == s;
    if (planned && !include_planned) continue;
    // Lowest class first, then the latest arrival (its work is cheapest to redo).
    if (!worst || s->cls > worst->cls || (s->cls == worst->cls && s->arrival > worst->arrival)) worst = s;
  }
  return worst;
}

int64_t Scheduler::preempt(SchedSeq* s, StepPlan& plan) {
  int64_t refund = 0;
  for (auto it = plan.chunks.begin(); it != plan.chunks.end();) {
    if (it->seq == s) {
      refund += it->n_tokens;
      it = plan.chunks.erase(it);
    } else {
      ++it;
    }
  }
  running_.erase(std::remove(running_.begin(), running_.end(), s), running_.end());
  blocks_.release_all(s->blocks);
  s->blocks = BlockTable();
  s->n_computed = 0;
  s->running = false;
  s->draft.clear();
  s->preemptions++;
  preemptions_++;
  waiting_.push_front(s);
  plan.preempted.push_back(s);
  return refund;
}

StepPlan Scheduler::schedule() {
  StepPlan plan;
  const double now = clock_.now();
  int64_t budget = config_.max_batch_tokens;
  auto by_priority = [&](const SchedSeq* a, const SchedSeq* b) { return priority(a, now) < priority(b, now); };

  // 1. One token for every running sequence that has exactly one to compute
  //    (decodes), most urgent first; preempt the least urgent when blocks run out.
  std::vector<SchedSeq*> order = running_;
  std::stable_sort(order.begin(), order.end(), by_priority);
  for (SchedSeq* s : order) {
    if (!s->running || s->pending() != 1 || budget <= 0) continue;
    while (!ensure_blocks(s, 1, plan)) {
      SchedSeq* victim = lowest_running(plan, /*include_planned=*/false);
      if (!victim) break;
      preempt(victim, plan);
      if (victim == s) break;
    }
    if (!s->running) continue;
    if (s->blocks.blocks.size() * blocks_.block_size() < static_cast<size_t>(s->n_computed + 1)) continue;
    plan.chunks.push_back({s, 1});
    budget -= 1;
  }

  // 2. Running prompts continue in chunks.
  for (SchedSeq* s : order) {
    if (!s->running || s->pending() <= 1 || budget <= 0) continue;
    const int64_t n = std::min(budget, s->pending());
    if (!ensure_blocks(s, n, plan)) continue;
    plan.chunks.push_back({s, n});
    budget -= n;
  }

  // 3. Admit waiting requests by priority.
  std::vector<SchedSeq*> queue(waiting_.begin(), waiting_.end());
  std::stable_sort(queue.begin(), queue.end(), by_priority);
  for (SchedSeq* s : queue) {
    if (budget <= 0) break;
    // A sequence slot: take one from a strictly less urgent running sequence if needed.
    if (static_cast<int32_t>(running_.size()) >= config_.max_seqs) {
      SchedSeq* victim = lowest_running(plan, /*include_planned=*/true);
      if (!victim || victim->cls <= s->cls) break;
      budget += preempt(victim, plan);
    }
    if (s->n_computed == 0 && config_.prefix_cache) {
      s->blocks = blocks_.start_sequence(s->tokens);
      s->n_computed = s->blocks.n_tokens;
      if (!s->ever_scheduled) s->n_cached = s->n_computed;
    }
    const int64_t n = std::min(budget, s->pending());
    bool ok = ensure_blocks(s, n, plan);
    while (!ok) {
      SchedSeq* victim = lowest_running(plan, /*include_planned=*/true);
      if (!victim || victim->cls <= s->cls) break;
      budget += preempt(victim, plan);
      ok = ensure_blocks(s, n, plan);
    }
    if (!ok) {
      // Head of line: wait for blocks rather than let smaller requests
      // starve this one. Keep nothing while waiting.
      blocks_.release_all(s->blocks);
      s->blocks = BlockTable();
      s->n_computed = 0;
      break;
    }
    waiting_.remove(s);
    s->running = true;
    s->ever_scheduled = true;
    running_.push_back(s);
    plan.admitted.push_back(s);
    plan.chunks.push_back({s, n});
    budget -= n;
  }
  // 4. Drafts (speculative decoding) last, from what is left: within the
  //    budget, only while the whole step stays at most max_step_tokens, in
  //    the decodes' priority order, cut to the room in the sequence's own
  //    blocks and the free ones (grant_draft: no eviction, no preemption,
  //    never a block shared with a fork or in the prefix cache).
  int64_t planned = 0;
  for (const StepChunk& c : plan.chunks) planned += c.n_tokens;
  int64_t room = std::min(budget, config_.speculative.max_step_tokens - planned);
  for (StepChunk& c : plan.chunks) {
    if (room <= 0) break;
    SchedSeq* s = c.seq;
    if (c.n_tokens != 1 || s->pending() != 1 || s->draft.empty()) continue;
    const int64_t k = grant_draft(s, std::min<int64_t>(static_cast<int64_t>(s->draft.size()), room));
    if (k == 0) continue;
    c.n_tokens += k;
    c.n_draft = k;
    room -= k;
  }
  for (const StepChunk& c : plan.chunks) plan.n_tokens += c.n_tokens;
  return plan;
}

int64_t Scheduler::grant_draft(SchedSeq* s, int64_t k) {
  const int64_t bs = blocks_.block_size();
  const int64_t first = s->n_computed + 1;  // the drafts write positions first .. first + k - 1
  const int64_t have = static_cast<int64_t>(s->blocks.blocks.size());
  // Positions in blocks the sequence already holds, up to the first one it
  // shares or that is registered (never written), then in free blocks.
  int64_t end = first;  // one past the last position that may be written
  for (int64_t b = first / bs; b < have && end < first + k; ++b) {
    const BlockId id = s->blocks.blocks[b];
    if (blocks_.ref_count(id) != 1 || blocks_.is_registered(id)) break;
    end = (b + 1) * bs;
  }
  if (end >= have * bs) end = std::max(end, (have + blocks_.stats().free) * bs);
  k = std::min(k, end - first);
  if (k <= 0) return 0;
  return blocks_.ensure_capacity(s->blocks, first + k).ok() ? k : 0;
}

void Scheduler::completed(const StepPlan& plan) {
  for (const StepChunk& c : plan.chunks) {
    SchedSeq* s = c.seq;
    s->n_computed += c.n_tokens - c.n_draft;
    s->blocks.n_tokens = s->n_computed;
    if (config_.prefix_cache) {
      blocks_.commit_full_blocks(s->blocks, std::span<const int32_t>(s->tokens.data(), s->n_computed));
    }
  }
}

void Scheduler::accept_draft(SchedSeq* s, int64_t n) {
  s->n_computed += n;
  s->blocks.n_tokens = s->n_computed;
  if (config_.prefix_cache) {
    blocks_.commit_full_blocks(s->blocks, std::span<const int32_t>(s->tokens.data(), s->n_computed));
  }
  // Blocks that held only rejected drafts go back (they were never offered
  // to the prefix cache: only blocks full of computed tokens are).
  blocks_.truncate(s->blocks, s->n_computed);
}

}  // namespace suanli
