// Scheduler policies against a BlockManager (metadata only) and a fake clock.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include "engine/speculative.h"

#include <memory>

namespace suanli {
namespace {

class FakeClock final : public Clock {
 public:
  double now() const override { return t; }
  double t = 100.0;
};

struct Fixture {
  explicit Fixture(int32_t n_blocks = 64, int64_t budget = 64, int32_t max_seqs = 8, int32_t block_size = 4)
      : blocks(BlockManagerOptions{n_blocks, block_size, nullptr}) {
    config.max_batch_tokens = budget;
    config.max_seqs = max_seqs;
    config.aging_s = 10.0;
    sched = std::make_unique<Scheduler>(config, blocks, clock);
  }

  SchedSeq* add(ScenarioClass cls, int64_t prompt_len, int first_token = 0) {
    auto s = std::make_unique<SchedSeq>();
    s->id = seqs.size() + 1;
    s->cls = cls;
    s->arrival = clock.t;
    for (int64_t i = 0; i < prompt_len; ++i) s->tokens.push_back(first_token + static_cast<int32_t>(i));
    sched->add(s.get());
    seqs.push_back(std::move(s));
    clock.t += 0.001;
    return seqs.back().get();
  }

  // Runs a step: computes what was planned and "samples" one token for every
  // sequence whose pending tokens were all computed.
  StepPlan step() {
    StepPlan plan = sched->schedule();
    sched->completed(plan);
    for (const StepChunk& c : plan.chunks) {
      if (c.seq->pending() == 0) c.seq->tokens.push_back(7);
    }
    EXPECT_TRUE(blocks.validate().ok()) << blocks.validate().to_string();
    return plan;
  }

  static int64_t tokens_for(const StepPlan& p, const SchedSeq* s) {
    int64_t n = 0;
    for (const StepChunk& c : p.chunks) n += c.seq == s ? c.n_tokens : 0;
    return n;
  }

  FakeClock clock;
  EngineConfig config;
  BlockManager blocks;
  std::unique_ptr<Scheduler> sched;
  std::vector<std::unique_ptr<SchedSeq>> seqs;
};

TEST(Scheduler, respects_the_token_budget_and_chunks_long_prompts) {
  Fixture f(/*n_blocks=*/64, /*budget=*/16);
  SchedSeq* s = f.add(ScenarioClass::kInteractive, 40);
  StepPlan p = f.step();
  EXPECT_EQ(p.n_tokens, 16);
  EXPECT_EQ(Fixture::tokens_for(p, s), 16);
  f.step();
  p = f.step();
  EXPECT_EQ(Fixture::tokens_for(p, s), 8);  // the last chunk
  EXPECT_EQ(s->pending(), 1);               // then decoding
}

TEST(Scheduler, running_decodes_keep_flowing_while_a_long_prompt_prefills) {
  Fixture f(64, 16);
  SchedSeq* a = f.add(ScenarioClass::kInteractive, 4);
  f.step();  // a prefilled, has one token to decode
  SchedSeq* b = f.add(ScenarioClass::kInteractive, 100);
  for (int i = 0; i < 5; ++i) {
    StepPlan p = f.step();
    EXPECT_EQ(Fixture::tokens_for(p, a), 1) << "step " << i;
    EXPECT_EQ(Fixture::tokens_for(p, b), 15) << "step " << i;
  }
}

TEST(Scheduler, realtime_requests_overtake_batch_ones) {
  Fixture f(64, 8, 8);
  SchedSeq* batch = f.add(ScenarioClass::kBatch, 8);
  SchedSeq* rt = f.add(ScenarioClass::kRealtime, 8);
  StepPlan p = f.step();
  EXPECT_EQ(Fixture::tokens_for(p, rt), 8);
  EXPECT_EQ(Fixture::tokens_for(p, batch), 0);
}

TEST(Scheduler, batch_work_still_progresses_under_constant_realtime_load) {
  Fixture f(256, 8, 4);
  SchedSeq* batch = f.add(ScenarioClass::kBatch, 8);
  bool batch_ran = false;
  for (int i = 0; i < 60 && !batch_ran; ++i) {
    f.add(ScenarioClass::kRealtime, 8, 1000 * (i + 1));  // fresh realtime work every step
    StepPlan p = f.step();
    batch_ran = Fixture::tokens_for(p, batch) > 0;
    f.clock.t += 1.0;  // one second per step: aging lifts the batch request
    for (auto& s : f.seqs) {
      if (s.get() != batch && s->running && s->tokens.size() > 10) f.sched->remove(s.get());
    }
  }
  EXPECT_TRUE(batch_ran) << "aging never let the batch request run";
}

TEST(Scheduler, higher_class_preempts_lower_class_for_a_sequence_slot) {
  Fixture f(64, 32, /*max_seqs=*/1);
  SchedSeq* batch = f.add(ScenarioClass::kBatch, 4);
  f.step();
  ASSERT_TRUE(batch->running);
  SchedSeq* rt = f.add(ScenarioClass::kRealtime, 4);
  StepPlan p = f.step();
  EXPECT_EQ(Fixture::tokens_for(p, rt), 4);
  EXPECT_FALSE(batch->running);
  ASSERT_EQ(p.preempted.size(), 1u);
  EXPECT_EQ(p.preempted[0], batch);
  EXPECT_EQ(batch->n_computed, 0);  // recomputed later
}

TEST(Scheduler, out_of_blocks_preempts_the_lowest_class_latest_arrival) {
  // 6 blocks of 4 tokens. Three sequences of 8 tokens take 2 blocks each;
  // when they grow, someone must give blocks back.
  Fixture f(/*n_blocks=*/6, /*budget=*/64, /*max_seqs=*/8);
  SchedSeq* i1 = f.add(ScenarioClass::kInteractive, 7);
  SchedSeq* b1 = f.add(ScenarioClass::kBatch, 7);
  SchedSeq* b2 = f.add(ScenarioClass::kBatch, 7);
  StepPlan p = f.step();
  ASSERT_TRUE(i1->running && b1->running && b2->running);
  // Each grows by a token per step; at 9 tokens each needs a third block.
  for (int i = 0; i < 4 && p.preempted.empty(); ++i) p = f.step();
  ASSERT_FALSE(p.preempted.empty());
  EXPECT_EQ(p.preempted[0], b2);  // batch before interactive, latest arrival first
  EXPECT_TRUE(i1->running);
}

TEST(Scheduler, preempted_sequences_finish_after_recompute) {
  Fixture f(6, 64, 8);
  std::vector<SchedSeq*> s = {f.add(ScenarioClass::kInteractive, 7), f.add(ScenarioClass::kBatch, 7),
                              f.add(ScenarioClass::kBatch, 7)};
  for (int i = 0; i < 200; ++i) {
    f.step();
    for (SchedSeq* x : s) {
      if (x->running && x->tokens.size() >= 14) f.sched->remove(x);
    }
    bool all_done = true;
    for (SchedSeq* x : s) all_done &= x->tokens.size() >= 14;
    if (all_done) break;
  }
  for (SchedSeq* x : s) EXPECT_GE(x->tokens.size(), 14u);
  EXPECT_GT(f.sched->preemptions(), 0);
  EXPECT_EQ(f.blocks.stats().in_use, 0);
}

TEST(Scheduler, repeated_prefix_is_served_from_the_prefix_cache) {
  Fixture f(64, 64, 8);
  SchedSeq* a = f.add(ScenarioClass::kInteractive, 17);
  f.step();
  f.sched->remove(a);  // finished: its full blocks stay cached
  SchedSeq* b = f.add(ScenarioClass::kInteractive, 17);
  StepPlan p = f.step();
  EXPECT_EQ(b->n_cached, 16);
  EXPECT_EQ(Fixture::tokens_for(p, b), 1);
}

TEST(Scheduler, removing_a_sequence_frees_its_blocks) {
  Fixture f(64, 64, 8);
  SchedSeq* a = f.add(ScenarioClass::kInteractive, 10);
  f.step();
  EXPECT_GT(f.blocks.stats().in_use, 0);
  f.sched->remove(a);
  EXPECT_EQ(f.blocks.stats().in_use, 0);
}

TEST(Scheduler, respects_the_sequence_limit) {
  Fixture f(64, 64, /*max_seqs=*/2);
  for (int i = 0; i < 4; ++i) f.add(ScenarioClass::kInteractive, 4, 100 * i);
  f.step();
  EXPECT_EQ(f.sched->n_running(), 2);
  EXPECT_EQ(f.sched->n_waiting(), 2);
}

// Drafts (speculative decoding) ride along with a decode within the budget
// and free blocks, never preempt, and blocks they alone used go back.
TEST(Scheduler, drafts_fit_the_budget_and_free_blocks_and_never_preempt) {
  Fixture f(/*n_blocks=*/4, /*budget=*/6, 8, /*block_size=*/4);
  SchedSeq* a = f.add(ScenarioClass::kInteractive, 3);
  f.step();  // 3 prompt tokens computed, 1 sampled: pending 1, 1 block
  ASSERT_EQ(a->pending(), 1);
  a->draft = {11, 12, 13, 14, 15, 16, 17};
  StepPlan p = f.sched->schedule();
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].n_tokens, 6);  // the budget: 1 + 5 drafts
  EXPECT_EQ(p.chunks[0].n_draft, 5);
  EXPECT_EQ(a->blocks.blocks.size(), 3u);  // positions 3..8
  f.sched->completed(p);
  EXPECT_EQ(a->n_computed, 4);  // drafts are not computed tokens until kept
  a->tokens.insert(a->tokens.end(), {11, 12, 99});  // two drafts kept, then a drawn token
  f.sched->accept_draft(a, 2);
  EXPECT_EQ(a->n_computed, 6);
  EXPECT_EQ(a->pending(), 1);
  EXPECT_EQ(a->blocks.blocks.size(), 2u);  // the third block held only rejected drafts
  EXPECT_EQ(f.blocks.stats().in_use, 2);
  EXPECT_TRUE(f.blocks.validate().ok());

  // A second sequence takes the remaining blocks; a's drafts then do not
  // fit, and a still decodes its one token without preempting anything.
  SchedSeq* b = f.add(ScenarioClass::kBatch, 8, 500);
  a->draft.clear();
  f.step();
  ASSERT_TRUE(b->running);
  a->draft = {1, 2, 3, 4};
  p = f.sched->schedule();
  EXPECT_EQ(Fixture::tokens_for(p, a), 1);
  for (const StepChunk& c : p.chunks) EXPECT_EQ(c.n_draft, 0);
  EXPECT_TRUE(p.preempted.empty());
  EXPECT_TRUE(b->running);
}

// Drafts come last: a lower-priority decode's block is not taken for a
// higher-priority sequence's drafts (which would preempt a third).
TEST(Scheduler, drafts_never_take_a_block_a_decode_needs) {
  Fixture f(/*n_blocks=*/5, /*budget=*/64, 8, /*block_size=*/4);
  SchedSeq* a = f.add(ScenarioClass::kInteractive, 3);
  SchedSeq* b = f.add(ScenarioClass::kInteractive, 4, 100);
  SchedSeq* c = f.add(ScenarioClass::kInteractive, 7, 200);
  f.step();  // all prefilled, one token each to decode; 4 blocks used, 1 free
  ASSERT_EQ(f.blocks.stats().free, 1);
  a->draft = {9, 9, 9};  // would need a new block (positions 4..6)
  StepPlan p = f.sched->schedule();
  EXPECT_TRUE(p.preempted.empty());
  EXPECT_EQ(Fixture::tokens_for(p, a), 1);
  EXPECT_EQ(Fixture::tokens_for(p, b), 1);  // b's position 4 got the free block
  EXPECT_EQ(Fixture::tokens_for(p, c), 1);
}

// With no free block (the prefix cache holds the rest), a draft is cut to
// what fits in the block the sequence holds, not refused, and no cached
// block is evicted for it.
TEST(Scheduler, drafts_are_cut_to_the_held_block_when_nothing_is_free) {
  Fixture f(/*n_blocks=*/4, /*budget=*/64, 8, /*block_size=*/4);
  SchedSeq* a = f.add(ScenarioClass::kInteractive, 9);  // positions 0..8: 3 blocks
  f.step();
  SchedSeq* b = f.add(ScenarioClass::kInteractive, 4, 100);  // 1 block, full
  f.step();
  f.sched->remove(b);  // its full block stays cached
  ASSERT_EQ(f.blocks.stats().free, 0);
  ASSERT_EQ(f.blocks.stats().cached, 1);
  ASSERT_EQ(a->n_computed, 10);  // a decoded position 9 beside b's prefill
  ASSERT_EQ(a->pending(), 1);     // position 10 pending; its block holds 8..11
  a->draft = {1, 2, 3, 4, 5, 6};
  StepPlan p = f.sched->schedule();
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].n_draft, 1);  // position 11 only
  EXPECT_EQ(f.blocks.stats().cached, 1);
  EXPECT_TRUE(p.preempted.empty());
}

TEST(NgramDraft, proposes_what_followed_the_longest_most_recent_match) {
  using V = std::vector<int32_t>;
  // Suffix [2 3] occurred twice; the most recent occurrence is followed by 9.
  EXPECT_EQ(propose_ngram_draft(V{1, 2, 3, 4, 5, 2, 3, 9, 8, 7, 2, 3}, 3, 1, 4), (V{9, 8, 7}));
  // The longest matching suffix wins over a more recent shorter one.
  EXPECT_EQ(propose_ngram_draft(V{5, 6, 7, 1, 9, 7, 2, 6, 7}, 2, 1, 3), (V{1, 9}));
  // Fewer tokens follow the match than asked: the period (3) repeats.
  EXPECT_EQ(propose_ngram_draft(V{4, 5, 6, 4, 5}, 5, 2, 2), (V{6, 4, 5, 6, 4}));
  // A run of one token (the match overlaps the suffix: period 1).
  EXPECT_EQ(propose_ngram_draft(V{7, 7, 7, 7}, 4, 2, 3), (V{7, 7, 7, 7}));
  EXPECT_EQ(propose_ngram_draft(V{1, 8, 9, 8, 9}, 5, 2, 4), (V{8, 9, 8, 9, 8}));
  // No match of at least ngram_min tokens, or nothing asked: nothing.
  EXPECT_TRUE(propose_ngram_draft(V{1, 2, 3, 4, 5}, 3, 1, 4).empty());
  EXPECT_TRUE(propose_ngram_draft(V{1, 2, 1, 3}, 3, 2, 4).empty());
  EXPECT_TRUE(propose_ngram_draft(V{1, 2, 1, 2}, 0, 1, 4).empty());
  EXPECT_TRUE(propose_ngram_draft(V{}, 3, 1, 4).empty());
  EXPECT_TRUE(propose_ngram_draft(V{5}, 3, 1, 4).empty());
}

}  // namespace
}  // namespace suanli
