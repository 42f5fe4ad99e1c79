// The serving engine on the default model: batch invariance, the prefix
// cache, preemption, cancellation, n > 1, stop strings and JSON responses. Skips (with a
// message) when the default model is not cached; `make test` fetches it
// before running the tests.
#include "suanli/engine.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "engine/json_constraint.h"
#include "suanli/kv_cache.h"
#include "suanli/model.h"
#include "suanli/tokenizer.h"
#include "unit/default_model.h"

namespace suanli {
namespace {

using testing::default_model_path;

struct Loaded {
  std::vector<std::unique_ptr<Device>> devices;
  std::unique_ptr<Model> model;
  std::shared_ptr<const Tokenizer> tok;
};

Loaded* shared_model() {
  static Loaded* loaded = [] {
    const std::string path = default_model_path();
    if (!std::filesystem::exists(path)) return static_cast<Loaded*>(nullptr);
    auto* l = new Loaded();
    std::vector<std::string> msgs;
    l->devices = discover_devices({}, &msgs);
    ModelOptions mo;
    mo.max_batch_tokens = 256;
    auto m = Model::load(path, *l->devices[0], mo);
    if (!m) return static_cast<Loaded*>(nullptr);
    l->model = std::move(*m);
    l->tok = *Tokenizer::from_gguf(l->model->file());
    return l;
  }();
  return loaded;
}

struct Outcome {
  std::vector<int32_t> ids;                  // choice 0's
  std::vector<std::vector<int32_t>> all_ids;  // every choice's, by index
  std::vector<TokenLogprob> logprobs;        // choice 0's, every token's list in order
  std::string text;
  FinishReason finish = FinishReason::kStop;
  Usage usage;
  bool done = false;
};

// An engine over a fresh KV cache of `kv_bytes`.
struct Harness {
  explicit Harness(uint64_t kv_bytes, int32_t max_seqs = 64, int64_t max_batch_tokens = 256,
                   EngineConfig::Speculative spec = {}) {
    Loaded* l = shared_model();
    KvCacheOptions ko;
    ko.memory_bytes = kv_bytes;
    kv = std::move(KvCache::create(*l->devices[0], l->model->info(), ko).value());
    EngineConfig cfg;
    cfg.max_seqs = max_seqs;
    cfg.max_batch_tokens = max_batch_tokens;
    cfg.speculative = spec;
    engine = std::move(Engine::create(*l->model, *kv, l->tok, cfg).value());
  }

  // Submits and waits for every request; outcome per request (choice 0).
  std::vector<Outcome> run_all(std::vector<Request> reqs) {
    std::vector<EventStream> streams(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      Expected<uint64_t> id = engine->submit(reqs[i], streams[i].callback());
      EXPECT_TRUE(id.has_value()) << id.status().to_string();
    }
    std::vector<Outcome> out(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      Event e;
      while (streams[i].next(&e)) {
        if (e.kind == Event::Kind::kToken) {
          if (out[i].all_ids.size() <= static_cast<size_t>(e.index)) out[i].all_ids.resize(e.index + 1);
          out[i].all_ids[e.index].insert(out[i].all_ids[e.index].end(), e.ids.begin(), e.ids.end());
        }
        if (e.kind == Event::Kind::kToken && e.index == 0) {
          out[i].ids.insert(out[i].ids.end(), e.ids.begin(), e.ids.end());
          out[i].logprobs.insert(out[i].logprobs.end(), e.top_logprobs.begin(), e.top_logprobs.end());
          out[i].text += e.text;
        } else if (e.kind == Event::Kind::kFinish && e.index == 0) {
          out[i].finish = e.finish;
        } else if (e.kind == Event::Kind::kDone) {
          out[i].usage = e.usage;
          out[i].done = true;
        }
      }
    }
    return out;
  }

  // Stats once the loop has gone idle (they are refreshed after each step).
  EngineStats settled_stats() {
    for (int i = 0; i < 1000 && !engine->idle(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return engine->stats();
  }

  std::unique_ptr<KvCache> kv;
  std::unique_ptr<Engine> engine;
};

// Bytes of one 16-token F16 KV block of the default model (all layers).
uint64_t kv_block_bytes() {
  const ModelInfo& mi = shared_model()->model->info();
  return 16ull * 2 * mi.n_layer * mi.n_head_kv * mi.head_dim * 2;
}

std::vector<int32_t> random_prompt(std::mt19937& rng, int n) {
  // Ordinary text tokens (ids past the first special tokens).
  std::uniform_int_distribution<int32_t> d(200, 40000);
  std::vector<int32_t> p(n);
  for (int32_t& t : p) t = d(rng);
  return p;
}

Request greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling = SamplingParams::greedy();
  r.ignore_eos = true;
  return r;
}

#define REQUIRE_MODEL()                                                                     \
  if (!shared_model()) GTEST_SKIP() << "default model not cached at " << default_model_path() \
                                    << " (run `suanli pull default`)"

TEST(Engine, concurrent_greedy_requests_match_each_run_alone) {
  REQUIRE_MODEL();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<Request> reqs;
  for (int i = 0; i < 64; ++i) reqs.push_back(greedy(random_prompt(rng, 4 + i % 13), 10));
  std::vector<Outcome> together;
  {
    Harness h(64u << 20);
    together = h.run_all(reqs);
  }
  Harness alone(64u << 20, /*max_seqs=*/1);
  for (size_t i = 0; i < reqs.size(); ++i) {
    std::vector<Outcome> one = alone.run_all({reqs[i]});
    ASSERT_TRUE(one[0].done && together[i].done);
    EXPECT_EQ(one[0].ids, together[i].ids) << "request " << i << " differs when batched";
    EXPECT_EQ(together[i].ids.size(), 10u);
    EXPECT_EQ(together[i].finish, FinishReason::kLength);
  }
}

// Seeded sampling is batch invariant too: the step's draws run in parallel
// (Device::host_parallel_for), and each must still use only its own
// sequence's row and sampler. Mixed parameters, penalties, logprobs and a
// request with n = 3 (choices drawing from one shared row).
TEST(Engine, concurrent_seeded_sampling_matches_each_run_alone) {
  REQUIRE_MODEL();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<Request> reqs;
  for (int i = 0; i < 24; ++i) {
    Request r = greedy(random_prompt(rng, 4 + i % 9), 12);
    r.sampling = SamplingParams{};
    r.sampling.seed = rng();
    switch (i % 4) {
      case 0: r.sampling.temperature = 1.0f, r.sampling.top_k = 0, r.sampling.top_p = 1.0f, r.sampling.min_p = 0; break;
      case 1: r.sampling.frequency_penalty = 0.5f, r.sampling.presence_penalty = 0.3f; break;
      case 2: r.sampling.repetition_penalty = 1.2f, r.logprobs = 3; break;
      default: r.sampling.temperature = 1.3f, r.sampling.top_p = 0.8f; break;
    }
    if (i == 5) r.n = 3;
    reqs.push_back(r);
  }
  std::vector<Outcome> together;
  {
    Harness h(64u << 20);
    together = h.run_all(reqs);
  }
  Harness alone(64u << 20, /*max_seqs=*/3);
  for (size_t i = 0; i < reqs.size(); ++i) {
    std::vector<Outcome> one = alone.run_all({reqs[i]});
    ASSERT_TRUE(one[0].done && together[i].done);
    EXPECT_EQ(one[0].all_ids, together[i].all_ids) << "request " << i << " differs when batched";
    EXPECT_EQ(together[i].all_ids.size(), static_cast<size_t>(reqs[i].n));
    ASSERT_EQ(one[0].logprobs.size(), together[i].logprobs.size()) << "request " << i;
    for (size_t j = 0; j < one[0].logprobs.size(); ++j) {
      EXPECT_EQ(one[0].logprobs[j].token, together[i].logprobs[j].token);
      EXPECT_EQ(one[0].logprobs[j].logprob, together[i].logprobs[j].logprob);
    }
    if (reqs[i].logprobs >= 0) {  // the chosen token first, then the top 3, per token
      EXPECT_EQ(together[i].logprobs.size(), 4 * together[i].ids.size()) << "request " << i;
    }
  }
}

// Speculative decoding (prompt lookup) changes how many positions a step
// computes, never the tokens: greedy and seeded sampling (penalties,
// logprobs, stop strings, a JSON response) give exactly the tokens of plain
// decoding, alone or batched, while a good share of drafts is kept. Blocks
// written with drafts that were not kept never reach the prefix cache:
// a prompt that continues a speculated output, served from that cache,
// gives the output of an engine that never speculated.
TEST(Engine, speculative_decoding_gives_the_tokens_of_plain_decoding) {
  REQUIRE_MODEL();
  const Loaded* l = shared_model();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // Text that repeats itself, so drafts are found and often right.
  const std::vector<std::string> texts = {
      "Copy the list exactly.\napple, banana, cherry, grape, lemon, mango, orange, peach\n"
      "apple, banana, cherry, grape, lemon, mango, orange, peach\napple, banana,",
      "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n",
      "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,",
      "The cat sat on the mat. The dog sat on the log. The cat sat on the",
  };
  std::vector<Request> reqs;
  for (size_t i = 0; i < 8; ++i) {
    Request r = greedy(l->tok->encode(texts[i % texts.size()], true, false), 48);
    if (i >= 4) {
      r.sampling = SamplingParams{};
      r.sampling.seed = rng();
      r.sampling.temperature = i == 4 ? 1.0f : 0.6f;
      if (i == 5) r.sampling.repetition_penalty = 1.1f, r.logprobs = 2;
      if (i == 6) r.sampling.frequency_penalty = 0.4f;
    }
    if (i == 3) r.stop = {"log. The dog"};
    reqs.push_back(r);
  }
  Request js = greedy(l->tok->encode("A JSON object with keys a, b, c, all 1: {\"a\": 1, \"b\": 1, \"c\": 1}\n", true,
                                     false),
                      40);
  js.ignore_eos = false;
  js.response_format = ResponseFormat::kJsonObject;
  reqs.push_back(js);

  std::vector<Outcome> plain(reqs.size());
  {
    Harness h(64u << 20, /*max_seqs=*/1);
    for (size_t i = 0; i < reqs.size(); ++i) plain[i] = h.run_all({reqs[i]})[0];
  }
  EngineConfig::Speculative spec;
  spec.num_tokens = 6;
  spec.max_step_tokens = 64;  // drafts for every sequence, batched too
  for (int32_t max_seqs : {1, 64}) {
    SCOPED_TRACE("max_seqs " + std::to_string(max_seqs));
    Harness h(64u << 20, max_seqs, 256, spec);
    std::vector<Outcome> fast = h.run_all(reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      ASSERT_TRUE(fast[i].done && plain[i].done);
      EXPECT_EQ(fast[i].ids, plain[i].ids) << "request " << i;
      EXPECT_EQ(fast[i].text, plain[i].text) << "request " << i;
      EXPECT_EQ(fast[i].finish, plain[i].finish) << "request " << i;
      ASSERT_EQ(fast[i].logprobs.size(), plain[i].logprobs.size()) << "request " << i;
      for (size_t j = 0; j < fast[i].logprobs.size(); ++j) {
        EXPECT_EQ(fast[i].logprobs[j].token, plain[i].logprobs[j].token);
        EXPECT_EQ(fast[i].logprobs[j].logprob, plain[i].logprobs[j].logprob);
      }
    }
    const EngineStats st = h.settled_stats();
    EXPECT_GT(st.spec_draft_tokens, 0);
    // The repeated lists and code are followed closely: far more than
    // chance keeps drafts (a wrong draft costs a position, no token).
    EXPECT_GT(st.spec_accepted_tokens, st.spec_draft_tokens / 4);
    EXPECT_LT(st.steps, 8 * 48) << "drafts kept should save steps";
    EXPECT_EQ(st.kv_blocks_used, 0);

    // Continue request 0's speculated output: its full blocks come from the
    // prefix cache and must hold exactly those tokens' K/V.
    std::vector<int32_t> cont = reqs[0].prompt;
    cont.insert(cont.end(), fast[0].ids.begin(), fast[0].ids.end());
    const Outcome cached = h.run_all({greedy(cont, 16)})[0];
    EXPECT_GE(cached.usage.cached_prompt_tokens, static_cast<int64_t>(cont.size()) - 16);
    Harness fresh(64u << 20);
    EXPECT_EQ(cached.ids, fresh.run_all({greedy(cont, 16)})[0].ids);
  }
}

// Drafts with forks (n = 3 choices share the prompt's blocks, copy-on-write
// of the shared partial block) and under a KV budget that forces
// preemption: still the tokens of plain decoding, and no block leaks.
TEST(Engine, speculative_decoding_with_forks_and_preemption) {
  REQUIRE_MODEL();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<Request> reqs;
  for (int i = 0; i < 10; ++i) {
    // Random text repeated, so the lookup finds drafts from the first step.
    std::vector<int32_t> p = random_prompt(rng, 20);
    p.insert(p.end(), p.begin(), p.end());
    Request r = greedy(p, 40);
    if (i % 3 == 1) {
      r.sampling = SamplingParams{};
      r.sampling.seed = rng();
      r.n = 3;
    }
    reqs.push_back(r);
  }
  std::vector<Outcome> plain = Harness(64u << 20).run_all(reqs);
  const uint64_t per_block = kv_block_bytes();
  EngineConfig::Speculative spec;
  spec.num_tokens = 5;
  spec.max_step_tokens = 256;
  Harness tight(per_block * 24, 64, 256, spec);
  std::vector<Outcome> fast = tight.run_all(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(fast[i].done);
    EXPECT_EQ(fast[i].all_ids, plain[i].all_ids) << "request " << i;
  }
  const EngineStats st = tight.settled_stats();
  EXPECT_GT(st.preemptions, 0);
  EXPECT_GT(st.spec_accepted_tokens, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);

  // A prompt one token longer than the step budget: its last token is a
  // one-token step like a decode, the step where n = 3 choices fork. No
  // choice may write into blocks its siblings share.
  std::vector<Request> edge;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> p = random_prompt(rng, 24);
    p.insert(p.end(), p.begin(), p.end());  // 48 tokens, 3 whole blocks
    Request r = greedy(p, 30);
    r.sampling = SamplingParams{};
    r.sampling.seed = rng();
    r.n = 3;
    edge.push_back(r);
  }
  std::vector<Outcome> edge_plain = Harness(64u << 20, 64, 47).run_all(edge);
  spec.max_step_tokens = 47;
  // One request at a time, so the last prompt token's step is its own.
  std::vector<Outcome> edge_fast = Harness(64u << 20, 1, 47, spec).run_all(edge);
  for (size_t i = 0; i < edge.size(); ++i) {
    EXPECT_EQ(edge_fast[i].all_ids, edge_plain[i].all_ids) << "request " << i;
  }
}

TEST(Engine, repeated_long_system_prompt_is_served_from_the_prefix_cache) {
  REQUIRE_MODEL();
  std::mt19937 rng(std::random_device{}());
  std::vector<int32_t> system = random_prompt(rng, 1000);
  std::vector<int32_t> question = random_prompt(rng, 12);
  std::vector<int32_t> prompt = system;
  prompt.insert(prompt.end(), question.begin(), question.end());
  Harness h(64u << 20);
  Outcome first = h.run_all({greedy(prompt, 8)})[0];
  Outcome second = h.run_all({greedy(prompt, 8)})[0];
  EXPECT_EQ(first.usage.cached_prompt_tokens, 0);
  EXPECT_GE(second.usage.cached_prompt_tokens, 992);  // whole 16-token blocks of the 1,012
  EXPECT_EQ(second.usage.prompt_tokens, 1012);
  EXPECT_EQ(first.ids, second.ids);
  EXPECT_GT(h.engine->stats().prefix_hit_rate, 0.4);
}

TEST(Engine, preemption_under_a_small_kv_budget_gives_identical_output) {
  REQUIRE_MODEL();
  std::mt19937 rng(std::random_device{}());
  std::vector<Request> reqs;
  for (int i = 0; i < 12; ++i) reqs.push_back(greedy(random_prompt(rng, 40), 24));
  std::vector<Outcome> roomy = Harness(64u << 20).run_all(reqs);
  // 64 tokens per sequence x 12 needs ~48 blocks; give ~16 blocks of 16 tokens.
  const uint64_t per_block = kv_block_bytes();
  Harness tight(per_block * 16);
  std::vector<Outcome> squeezed = tight.run_all(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(squeezed[i].done);
    EXPECT_EQ(squeezed[i].ids, roomy[i].ids) << "request " << i;
  }
  const EngineStats st = tight.settled_stats();
  EXPECT_GT(st.preemptions, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
}

TEST(Engine, cancelling_frees_the_requests_blocks) {
  REQUIRE_MODEL();
  std::mt19937 rng(std::random_device{}());
  Harness h(64u << 20);
  EventStream stream;
  Request r = greedy(random_prompt(rng, 64), 2000);
  Expected<uint64_t> id = h.engine->submit(r, stream.callback());
  ASSERT_TRUE(id.has_value());
  Event e;
  ASSERT_TRUE(stream.next(&e));  // first token: the request is running
  for (int i = 0; i < 100 && h.engine->stats().kv_blocks_used == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GT(h.engine->stats().kv_blocks_used, 0);
  h.engine->cancel(*id);
  FinishReason reason = FinishReason::kStop;
  while (stream.next(&e)) {
    if (e.kind == Event::Kind::kFinish) reason = e.finish;
  }
  EXPECT_EQ(reason, FinishReason::kAbort);
  const EngineStats st = h.settled_stats();
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.running, 0);
}

TEST(Engine, n_choices_share_the_prompt_and_greedy_choices_agree) {
  REQUIRE_MODEL();
  std::mt19937 rng(std::random_device{}());
  Harness h(64u << 20);
  Request r = greedy(random_prompt(rng, 21), 6);
  r.n = 3;
  EventStream stream;
  ASSERT_TRUE(h.engine->submit(r, stream.callback()).has_value());
  std::vector<std::vector<int32_t>> ids(3);
  Event e;
  Usage usage;
  while (stream.next(&e)) {
    if (e.kind == Event::Kind::kToken) ids.at(e.index).insert(ids[e.index].end(), e.ids.begin(), e.ids.end());
    if (e.kind == Event::Kind::kDone) usage = e.usage;
  }
  EXPECT_EQ(ids[0].size(), 6u) << ids[1].size() << " " << ids[2].size() << " usage " << usage.completion_tokens;
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(ids[0], ids[2]);
  EXPECT_EQ(usage.completion_tokens, 18);
  EXPECT_EQ(usage.prompt_tokens, 21);
  EXPECT_EQ(h.settled_stats().kv_blocks_used, 0);
}

TEST(Engine, stop_strings_end_generation_without_being_emitted) {
  REQUIRE_MODEL();
  std::mt19937 rng(std::random_device{}());
  Harness h(64u << 20);
  Request r = greedy(random_prompt(rng, 9), 24);
  Outcome full = h.run_all({r})[0];
  ASSERT_GE(full.text.size(), 4u);
  // Stop at a piece of text the model is known to produce.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  r.stop = {stop};
  Outcome cut = h.run_all({r})[0];
  EXPECT_EQ(cut.finish, FinishReason::kStop);
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(cut.text.find(stop), std::string::npos);
}

TEST(Engine, json_requests_give_json_objects_batched_as_alone) {
  // response_format json_object / json_schema: whatever the prompt, each choice's text is
  // a prefix of one JSON object (nlohmann::json, an independent parser, reads
  // it whole when the choice ends with `stop`), and the draws stay batch
  // invariant (a constrained redraw depends only on the choice's own row).
  REQUIRE_MODEL();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  Loaded* l = shared_model();
  Harness h(256u << 20);
  std::vector<Request> reqs;
  const std::vector<int32_t> ask = l->tok->encode("A JSON object describing a dog:\n", true, false);
  for (int i = 0; i < 8; ++i) {
    Request r;
    r.prompt = i % 2 || i == 0 ? ask : random_prompt(rng, 12);
    r.max_tokens = 80;
    r.sampling = i == 0 ? SamplingParams::greedy() : SamplingParams{};
    r.sampling.temperature = i == 0 ? 0.0f : 1.0f;
    r.sampling.seed = rng();
    r.response_format = ResponseFormat::kJsonObject;
    if (i == 0) {  // a schema that leaves little to say: it must close within 80 tokens
      r.response_format = ResponseFormat::kJsonSchema;
      r.json_schema = R"({"type":"object","properties":{"ok":{"type":"boolean"},"n":{"enum":[1,2]}},"required":["ok","n"]})";
    }
    if (i % 3 == 2) {  // forks, logprobs, penalties and a bias next to the constraint
      r.n = 2;
      r.logprobs = 2;
      r.sampling.repetition_penalty = 1.2f;
      r.sampling.presence_penalty = 0.5f;
      r.sampling.logit_bias = {{static_cast<int32_t>(rng() % 40000 + 200), 8.0f}, {ask.back(), -3.0f}};
    }
    reqs.push_back(r);
  }
  const std::vector<Outcome> together = h.run_all(reqs);
  int complete = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Outcome& o = together[i];
    SCOPED_TRACE("request " + std::to_string(i) + ": " + o.text);
    ASSERT_TRUE(o.done);
    if (o.finish == FinishReason::kStop) {
      const nlohmann::json j = nlohmann::json::parse(o.text, nullptr, false);
      EXPECT_TRUE(!j.is_discarded() && j.is_object());
      ++complete;
    } else {
      JsonAutomaton a;
      EXPECT_TRUE(a.push(o.text)) << "not a prefix of a JSON object";
    }
    ASSERT_EQ(o.all_ids.size(), static_cast<size_t>(reqs[i].n));
    for (const std::vector<int32_t>& ids : o.all_ids) {  // every choice, as token bytes
      std::string text;
      for (int32_t id : ids) text += l->tok->token_bytes(id);
      JsonAutomaton a;
      EXPECT_TRUE(a.push(text)) << text;
    }
    if (reqs[i].logprobs >= 0) {
      EXPECT_EQ(o.logprobs.size(), o.ids.size() * 3);
    }
    EXPECT_EQ(h.run_all({reqs[i]})[0].ids, o.ids) << "batched and alone differ";
  }
  EXPECT_EQ(together[0].finish, FinishReason::kStop) << together[0].text;
  const nlohmann::json first = nlohmann::json::parse(together[0].text, nullptr, false);
  EXPECT_TRUE(first.is_object() && first.size() == 2 && first["ok"].is_boolean() &&
              (first["n"] == 1 || first["n"] == 2))
      << together[0].text;
  EXPECT_GT(complete, 0);
  Request bad = reqs[0];
  bad.ignore_eos = true;
  EXPECT_EQ(h.engine->submit(bad, nullptr).status().code(), StatusCode::kInvalidArgument);
}

TEST(Engine, rejects_invalid_requests_with_clear_errors) {
  REQUIRE_MODEL();
  Harness h(64u << 20);
  Request r = greedy({1, 2, 3}, 4);
  r.prompt = {};
  EXPECT_EQ(h.engine->submit(r, nullptr).status().code(), StatusCode::kInvalidArgument);
  r.prompt = {1, 999999};
  EXPECT_NE(h.engine->submit(r, nullptr).status().message().find("outside the vocabulary"), std::string::npos);
  r.prompt = {1, 2};
  r.max_tokens = 1 << 30;
  EXPECT_NE(h.engine->submit(r, nullptr).status().message().find("exceeds the context length"), std::string::npos);
  r.max_tokens = 4;
  r.sampling.top_p = 2;
  EXPECT_EQ(h.engine->submit(r, nullptr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace suanli
