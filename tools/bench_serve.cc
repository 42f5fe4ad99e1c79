// suanli bench serve: a load generator for the serving engine, in-process,
// or with --url against a running `suanli serve` over HTTP (the same
// requests as streaming /v1/completions with token-id prompts).
// Fixed concurrency (each of C clients sends its next request when the last
// one ends) or Poisson arrivals (--rate), with random prompts of P tokens and
// exactly O output tokens (EOS ignored). Prints a block like vLLM's serving
// benchmark per concurrency level; --json prints a list of objects.
#include "bench_serve.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "bench_http.h"
#include "model_args.h"
#include "suanli/engine.h"

namespace suanli::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct ServeArgs {
  ModelArgs model;
  std::string concurrency = "1,4,16,64";
  int64_t prompt_tokens = 128;
  int64_t output_tokens = 128;
  int64_t requests = 0;  // per level; 0: 4 x concurrency (at least 8)
  double rate = 0;       // requests/s (Poisson); 0: as fast as the concurrency allows
  std::string scenario_mix = "interactive:1";
  int64_t shared_prefix = 0;  // tokens every prompt starts with (prefix cache)
  std::string kv_memory = "1GiB";
  int64_t max_seqs = 64;
  uint64_t seed = 1;
  double temperature = 0;
  bool json = false;
  std::string url;  // a running server instead of an in-process engine
  EngineConfig::Speculative speculative;
};

struct RequestTrace {
  double submit = 0, first = -1, last = 0, end = 0;
  std::vector<double> itl;
  int64_t tokens = 0;
  int64_t cached = 0;
  ScenarioClass cls = ScenarioClass::kInteractive;
  bool ok = false;
};

struct Percentiles {
  double mean = 0, median = 0, p99 = 0;
};

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  double s = 0;
  for (double x : v) s += x;
  p.mean = s / v.size();
  p.median = v[v.size() / 2];
  p.p99 = v[std::min(v.size() - 1, static_cast<size_t>(std::ceil(0.99 * v.size())) - 1)];
  return p;
}

Expected<std::vector<std::pair<ScenarioClass, double>>> parse_mix(const std::string& s) {
  std::vector<std::pair<ScenarioClass, double>> mix;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t colon = item.find(':');
    std::optional<ScenarioClass> c = parse_scenario(item.substr(0, colon));
    if (!c) return InvalidArgument("unknown scenario in --scenario-mix: '" + item + "'");
    double w = 1;
    if (colon != std::string::npos) {
      try {
        w = std::stod(item.substr(colon + 1));
      } catch (...) {
        return InvalidArgument("bad weight in --scenario-mix: '" + item + "'");
      }
    }
    if (!(w >= 0)) return InvalidArgument("negative weight in --scenario-mix");
    mix.emplace_back(*c, w);
  }
  if (mix.empty()) return InvalidArgument("empty --scenario-mix");
  return mix;
}

}  // namespace

std::function<int()> add_bench_serve(CLI::App* bench) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = bench->add_subcommand("serve", "Serving throughput and latency under concurrent load");
  add_model_args(sub, a->model);
  sub->add_option("--concurrency", a->concurrency, "Comma-separated concurrency levels");
  sub->add_option("--prompt-tokens", a->prompt_tokens, "Prompt tokens per request");
  sub->add_option("--output-tokens", a->output_tokens, "Output tokens per request");
  sub->add_option("--requests", a->requests, "Requests per level (default 4 x concurrency, at least 8)");
  sub->add_option("--rate", a->rate, "Poisson arrival rate in requests/s (default: closed loop)");
  sub->add_option("--scenario-mix", a->scenario_mix, "e.g. realtime:0.2,interactive:0.5,batch:0.3");
  sub->add_option("--shared-prefix", a->shared_prefix, "Tokens of a prefix shared by every prompt");
  sub->add_option("--kv-memory", a->kv_memory, "KV cache memory, e.g. 512MiB, 2GiB, or 30% of free memory");
  sub->add_option("--max-seqs", a->max_seqs, "Max running sequences");
  sub->add_option("--seed", a->seed, "Seed for prompts and sampling");
  sub->add_option("--temp", a->temperature, "Sampling temperature (default greedy)");
  sub->add_flag("--json", a->json, "Print a JSON list, one object per level");
  add_speculative_args(sub, a->speculative);
  sub->add_option("--url", a->url,
                  "Benchmark a running `suanli serve` at this URL (e.g. http://127.0.0.1:8080) over HTTP "
                  "(streaming /v1/completions) instead of an in-process engine");
  return [a, sub]() -> int {
    if (!sub->parsed()) return -1;
    auto fail = [](const std::string& m) {
      std::fprintf(stderr, "suanli bench serve: %s\n", m.c_str());
      return 1;
    };
    std::vector<int64_t> levels;
    {
      std::stringstream in(a->concurrency);
      std::string item;
      while (std::getline(in, item, ',')) {
        try {
          const int64_t c = std::stoll(item);
          if (c < 1 || c > 4096) return fail("concurrency must be 1 to 4096");
          levels.push_back(c);
        } catch (...) {
          return fail("bad --concurrency '" + a->concurrency + "'");
        }
      }
    }
    if (levels.empty()) return fail("no concurrency levels");
    if (a->prompt_tokens < 1 || a->output_tokens < 1) return fail("--prompt-tokens and --output-tokens must be >= 1");
    if (a->shared_prefix < 0 || a->shared_prefix >= a->prompt_tokens) return fail("--shared-prefix must be below --prompt-tokens");
    if (!a->url.empty() && a->speculative.num_tokens > 0) {
      return fail("--spec-ngram configures the in-process engine; with --url, start the server with --spec-ngram");
    }
    auto mix = parse_mix(a->scenario_mix);
    if (!mix) return fail(mix.status().to_string());

    // In-process: the model, a KV cache sized for serving and an engine.
    // With --url: a running `suanli serve`, over HTTP.
    LoadedModel lm;
    std::unique_ptr<KvCache> kv;
    std::unique_ptr<Engine> engine;
    EngineConfig ecfg;
    int32_t V = 0;
    std::optional<HttpTarget> target;
    if (a->url.empty()) {
      ModelArgs margs = a->model;
      Expected<LoadedModel> loaded = load_model(margs);
      if (!loaded) return fail(loaded.status().to_string());
      lm = std::move(*loaded);
      lm.kv.reset();
      Expected<uint64_t> kv_bytes = parse_kv_memory(a->kv_memory, *lm.device);
      if (!kv_bytes) return fail(kv_bytes.status().to_string());
      KvCacheOptions kopt;
      kopt.memory_bytes = *kv_bytes;
      kopt.commit = true;  // page faults at start, not in serving steps (KvCacheOptions)
      auto kv_or = KvCache::create(*lm.device, lm.model->info(), kopt, lm.model->layer_devices());
      if (!kv_or) return fail(kv_or.status().to_string());
      kv = std::move(*kv_or);
      ecfg.max_batch_tokens = lm.model->max_batch_tokens();
      ecfg.max_seqs = static_cast<int32_t>(a->max_seqs);
      ecfg.speculative = a->speculative;
      for (auto& sc : ecfg.scenarios) {
        sc.max_queue = 1 << 20;
        sc.reject_unmeetable = false;
      }
      auto engine_or = Engine::create(*lm.model, *kv, lm.tokenizer, ecfg);
      if (!engine_or) return fail(engine_or.status().to_string());
      engine = std::move(*engine_or);
      V = static_cast<int32_t>(lm.model->n_vocab());
    } else {
      Expected<HttpTarget> t = parse_http_url(a->url);
      if (!t) return fail(t.status().to_string());
      target = *t;
      Expected<int64_t> vocab = server_vocab_size(*target);
      if (!vocab) return fail(vocab.status().to_string());
      V = static_cast<int32_t>(*vocab);
    }

    std::mt19937_64 rng(a->seed);
    std::uniform_int_distribution<int32_t> any_token(0, V - 1);
    std::vector<int32_t> prefix(a->shared_prefix);
    for (int32_t& t : prefix) t = any_token(rng);
    std::vector<double> weights;
    for (auto& [c, w] : *mix) weights.push_back(w);
    std::discrete_distribution<int> pick_class(weights.begin(), weights.end());

    nlohmann::json results = nlohmann::json::array();
    for (int64_t conc : levels) {
      const int64_t n_req = a->requests > 0 ? a->requests : std::max<int64_t>(8, 4 * conc);
      std::vector<RequestTrace> traces(n_req);
      std::mutex mu;
      std::condition_variable cv;
      int64_t in_flight = 0, done = 0, next = 0;
      const auto t0 = Clock::now();
      auto now_s = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
      std::exponential_distribution<double> gap(a->rate > 0 ? a->rate : 1.0);
      double next_arrival = 0;
      std::vector<std::string> errors;
      std::vector<std::thread> http_threads;
      const EngineStats stats0 = engine ? engine->stats() : EngineStats{};
      while (true) {
        std::unique_lock<std::mutex> lock(mu);
        if (next >= n_req) {
          cv.wait(lock, [&] { return done == n_req; });
          break;
        }
        cv.wait(lock, [&] { return in_flight < conc; });
        if (a->rate > 0) {
          lock.unlock();
          const double wait = next_arrival - now_s();
          if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
          next_arrival += gap(rng);
          lock.lock();
        }
        const int64_t i = next++;
        in_flight++;
        lock.unlock();
        Request r;
        r.prompt = prefix;
        while (static_cast<int64_t>(r.prompt.size()) < a->prompt_tokens) r.prompt.push_back(any_token(rng));
        r.max_tokens = static_cast<int32_t>(a->output_tokens);
        r.ignore_eos = true;
        r.sampling = SamplingParams::greedy();
        r.sampling.temperature = static_cast<float>(a->temperature);
        r.sampling.seed = a->seed + i;
        r.scenario = (*mix)[pick_class(rng)].first;
        RequestTrace& tr = traces[i];
        tr.cls = r.scenario;
        tr.submit = now_s();
        auto cb = [&, i](const Event& e) {
          RequestTrace& t = traces[i];
          const double now = now_s();
          if (e.kind == Event::Kind::kToken && !e.ids.empty()) {
            if (t.first < 0) {
              t.first = now;
            } else {
              t.itl.push_back(now - t.last);
            }
            t.last = now;
            t.tokens += static_cast<int64_t>(e.ids.size());
          } else if (e.kind == Event::Kind::kDone || e.kind == Event::Kind::kError) {
            std::lock_guard<std::mutex> g(mu);
            t.end = now;
            t.ok = e.kind == Event::Kind::kDone;
            t.cached = e.usage.cached_prompt_tokens;
            if (e.usage.completion_tokens > 0) t.tokens = e.usage.completion_tokens;
            if (!t.ok) errors.push_back(e.error);
            in_flight--;
            done++;
            cv.notify_all();
          }
        };
        if (target) {
          http_threads.emplace_back([&target, r = std::move(r), cb] { stream_completion(*target, r, cb); });
          continue;
        }
        Expected<uint64_t> id = engine->submit(std::move(r), cb);
        if (!id) {
          std::lock_guard<std::mutex> g(mu);
          errors.push_back(id.status().to_string());
          in_flight--;
          done++;
        }
      }
      const double duration = now_s();
      for (std::thread& t : http_threads) t.join();
      // Speculative decoding (in-process): drafted and kept tokens, steps.
      const EngineStats stats1 = engine ? engine->stats() : EngineStats{};
      const int64_t drafted = stats1.spec_draft_tokens - stats0.spec_draft_tokens;
      const int64_t kept = stats1.spec_accepted_tokens - stats0.spec_accepted_tokens;
      const int64_t steps = stats1.steps - stats0.steps;
      std::vector<double> ttft, tpot, itl, e2e;
      int64_t out_tokens = 0, ok = 0, good = 0, cached = 0;
      for (const RequestTrace& t : traces) {
        if (!t.ok) continue;
        ok++;
        out_tokens += t.tokens;
        cached += t.cached;
        const double tt = t.first - t.submit;
        ttft.push_back(tt);
        const double tp = t.tokens > 1 ? (t.end - t.first) / (t.tokens - 1) : 0;
        tpot.push_back(tp);
        e2e.push_back(t.end - t.submit);
        itl.insert(itl.end(), t.itl.begin(), t.itl.end());
        const ScenarioConfig& slo = ecfg.scenarios[static_cast<int>(t.cls)];
        good += tt <= slo.ttft_slo_s && tp <= slo.tpot_slo_s;
      }
      const Percentiles pt = percentiles(ttft), pp = percentiles(tpot), pi = percentiles(itl), pe = percentiles(e2e);
      const double out_tps = out_tokens / duration;
      const double in_tokens = static_cast<double>(ok) * a->prompt_tokens;
      if (a->json) {
        results.push_back({{"concurrency", conc},
                           {"requests", n_req},
                           {"successful", ok},
                           {"duration_s", duration},
                           {"prompt_tokens", a->prompt_tokens},
                           {"output_tokens", a->output_tokens},
                           {"request_throughput", ok / duration},
                           {"output_tokens_per_s", out_tps},
                           {"total_tokens_per_s", (in_tokens + out_tokens) / duration},
                           {"cached_prompt_tokens", cached},
                           {"ttft_ms", {{"mean", pt.mean * 1e3}, {"median", pt.median * 1e3}, {"p99", pt.p99 * 1e3}}},
                           {"tpot_ms", {{"mean", pp.mean * 1e3}, {"median", pp.median * 1e3}, {"p99", pp.p99 * 1e3}}},
                           {"itl_ms", {{"mean", pi.mean * 1e3}, {"median", pi.median * 1e3}, {"p99", pi.p99 * 1e3}}},
                           {"e2e_ms", {{"mean", pe.mean * 1e3}, {"median", pe.median * 1e3}, {"p99", pe.p99 * 1e3}}},
                           {"goodput_rps", good / duration},
                           {"steps", engine ? nlohmann::json(steps) : nlohmann::json(nullptr)},
                           {"spec_draft_tokens", drafted},
                           {"spec_accepted_tokens", kept},
                           {"errors", errors.size()}});
      } else {
        std::printf("============ Serving Benchmark Result (concurrency %lld) ============\n",
                    static_cast<long long>(conc));
        std::printf("%-44s %lld\n", "Successful requests:", static_cast<long long>(ok));
        if (!errors.empty()) std::printf("%-44s %zu (first: %s)\n", "Failed requests:", errors.size(), errors[0].c_str());
        std::printf("%-44s %.2f\n", "Benchmark duration (s):", duration);
        std::printf("%-44s %.0f\n", "Total input tokens:", in_tokens);
        std::printf("%-44s %lld\n", "  of which from the prefix cache:", static_cast<long long>(cached));
        std::printf("%-44s %lld\n", "Total generated tokens:", static_cast<long long>(out_tokens));
        std::printf("%-44s %.2f\n", "Request throughput (req/s):", ok / duration);
        std::printf("%-44s %.2f\n", "Output token throughput (tok/s):", out_tps);
        std::printf("%-44s %.2f\n", "Total token throughput (tok/s):", (in_tokens + out_tokens) / duration);
        std::printf("%-44s %.2f\n", "Goodput under the scenario SLOs (req/s):", good / duration);
        if (a->speculative.num_tokens > 0 && engine) {
          std::printf("%-44s %lld of %lld (%.1f%%)\n", "Speculative drafts kept:", static_cast<long long>(kept),
                      static_cast<long long>(drafted), drafted ? 100.0 * kept / drafted : 0.0);
          std::printf("%-44s %.2f\n", "Generated tokens per engine step:",
                      steps > 0 ? static_cast<double>(out_tokens) / steps : 0.0);
        }
        auto block = [](const char* title, const char* name, const Percentiles& p) {
          std::printf("%s\n", title);
          std::printf("Mean %-39s %.2f\n", (std::string(name) + " (ms):").c_str(), p.mean * 1e3);
          std::printf("Median %-37s %.2f\n", (std::string(name) + " (ms):").c_str(), p.median * 1e3);
          std::printf("P99 %-40s %.2f\n", (std::string(name) + " (ms):").c_str(), p.p99 * 1e3);
        };
        block("---------------Time to First Token----------------", "TTFT", pt);
        block("-----Time per Output Token (excl. 1st token)------", "TPOT", pp);
        block("---------------Inter-token Latency----------------", "ITL", pi);
        block("----------------End-to-end Latency----------------", "E2EL", pe);
        std::printf("==================================================\n\n");
      }
    }
    if (a->json) std::printf("%s\n", results.dump(2).c_str());
    return 0;
  };
}

}  // namespace suanli::cli
