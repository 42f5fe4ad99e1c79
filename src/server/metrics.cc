#include "server/metrics.h"

#include <chrono>
#include <cstdio>

namespace suanli::server {
namespace {

// Buckets as in vLLM's: sub-10 ms up to minutes for the long ones.
std::vector<double> ttft_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> tpot_buckets() {
  return {0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};
}
std::vector<double> e2e_buckets() {
  return {0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0};
}

std::string fmt(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

std::string scenario_label(int c) {
  return "scenario=\"" + std::string(scenario_name(static_cast<ScenarioClass>(c))) + "\"";
}

void header(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

int64_t now_unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i]++;
  sum_ += v;
  count_++;
}

void Histogram::render(const std::string& name, const std::string& labels, std::string* out) const {
  uint64_t cum = 0;
  const std::string sep = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    *out += name + "_bucket{" + sep + "le=\"" + fmt(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  *out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(cum) + "\n";
  const std::string l = labels.empty() ? "" : "{" + labels + "}";
  *out += name + "_sum" + l + " " + fmt(sum_) + "\n";
  *out += name + "_count" + l + " " + std::to_string(count_) + "\n";
}

Metrics::PerScenario::PerScenario()
    : ttft(ttft_buckets()), tpot(tpot_buckets()), e2e(e2e_buckets()), queue(e2e_buckets()) {}

Metrics::Metrics() { ring_sec_.fill(-1); }

void Metrics::record(const RequestRecord& r) {
  std::lock_guard<std::mutex> lock(mu_);
  PerScenario& p = per_[static_cast<int>(r.scenario)];
  p.finished[r.finish_reason]++;
  p.prompt_tokens += r.prompt_tokens;
  p.generation_tokens += r.generation_tokens;
  if (r.ttft_s >= 0) p.ttft.observe(r.ttft_s);
  if (r.tpot_s >= 0) p.tpot.observe(r.tpot_s);
  if (r.e2e_s >= 0) p.e2e.observe(r.e2e_s);
  if (r.queue_time_s >= 0) p.queue.observe(r.queue_time_s);
}

void Metrics::rejected(ScenarioClass c, int http_status) {
  std::lock_guard<std::mutex> lock(mu_);
  per_[static_cast<int>(c)].rejected[http_status]++;
}

static int64_t steady_second() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Metrics::add_generated_tokens(int64_t n) {
  const int64_t s = steady_second();
  std::lock_guard<std::mutex> lock(mu_);
  const int slot = static_cast<int>(s % kRingSeconds);
  if (ring_sec_[slot] != s) {
    ring_sec_[slot] = s;
    ring_[slot] = 0;
  }
  ring_[slot] += n;
}

std::vector<int64_t> Metrics::tokens_per_second(int seconds) const {
  if (seconds > kRingSeconds - 1) seconds = kRingSeconds - 1;
  const int64_t now = steady_second();
  std::vector<int64_t> out;
  std::lock_guard<std::mutex> lock(mu_);
  // Whole seconds only: the current one is still filling.
  for (int64_t s = now - seconds; s < now; ++s) {
    const int slot = static_cast<int>(s % kRingSeconds);
    out.push_back(ring_sec_[slot] == s ? ring_[slot] : 0);
  }
  return out;
}

std::string Metrics::render(const EngineStats* st) const {
  std::string out;
  out.reserve(16384);
  if (st) {
    header(&out, "suanli:requests_running", "gauge", "Requests being generated, per scenario class.");
    for (int c = 0; c < kNumScenarios; ++c) {
      out += "suanli:requests_running{" + scenario_label(c) + "} " + std::to_string(st->running_by_class[c]) + "\n";
    }
    header(&out, "suanli:requests_waiting", "gauge", "Requests queued for admission, per scenario class.");
    for (int c = 0; c < kNumScenarios; ++c) {
      out += "suanli:requests_waiting{" + scenario_label(c) + "} " + std::to_string(st->waiting[c]) + "\n";
    }
    header(&out, "suanli:kv_cache_usage_ratio", "gauge", "Used KV cache blocks / all blocks (0 to 1).");
    out += "suanli:kv_cache_usage_ratio " + fmt(st->kv_usage) + "\n";
    header(&out, "suanli:kv_cache_blocks_used", "gauge", "KV cache blocks in use.");
    out += "suanli:kv_cache_blocks_used " + std::to_string(st->kv_blocks_used) + "\n";
    header(&out, "suanli:prefix_cache_hit_ratio", "gauge",
           "Prompt tokens served from the prefix cache / prompt tokens looked up.");
    out += "suanli:prefix_cache_hit_ratio " + fmt(st->prefix_hit_rate) + "\n";
    header(&out, "suanli:preemptions_total", "counter", "Sequences preempted (recomputed later) for KV space.");
    out += "suanli:preemptions_total " + std::to_string(st->preemptions) + "\n";
    header(&out, "suanli:spec_decode_draft_tokens_total", "counter",
           "Tokens drafted by speculative decoding (prompt lookup) and computed.");
    out += "suanli:spec_decode_draft_tokens_total " + std::to_string(st->spec_draft_tokens) + "\n";
    header(&out, "suanli:spec_decode_accepted_tokens_total", "counter",
           "Drafted tokens kept (equal to the drawn token).");
    out += "suanli:spec_decode_accepted_tokens_total " + std::to_string(st->spec_accepted_tokens) + "\n";
  }
  std::lock_guard<std::mutex> lock(mu_);
  header(&out, "suanli:prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  for (int c = 0; c < kNumScenarios; ++c) {
    out += "suanli:prompt_tokens_total{" + scenario_label(c) + "} " + std::to_string(per_[c].prompt_tokens) + "\n";
  }
  header(&out, "suanli:generation_tokens_total", "counter", "Generated tokens of finished requests.");
  for (int c = 0; c < kNumScenarios; ++c) {
    out += "suanli:generation_tokens_total{" + scenario_label(c) + "} " + std::to_string(per_[c].generation_tokens) +
           "\n";
  }
  header(&out, "suanli:requests_total", "counter", "Finished requests by finish reason (stop, length, abort, error).");
  for (int c = 0; c < kNumScenarios; ++c) {
    for (const char* reason : {"stop", "length", "abort"}) {
      auto it = per_[c].finished.find(reason);
      out += "suanli:requests_total{" + scenario_label(c) + ",finish_reason=\"" + reason + "\"} " +
             std::to_string(it == per_[c].finished.end() ? 0 : it->second) + "\n";
    }
    for (const auto& [reason, n] : per_[c].finished) {
      if (reason == "stop" || reason == "length" || reason == "abort") continue;
      out += "suanli:requests_total{" + scenario_label(c) + ",finish_reason=\"" + reason + "\"} " +
             std::to_string(n) + "\n";
    }
  }
  header(&out, "suanli:requests_rejected_total", "counter", "Requests refused at admission (429 / 503), by status.");
  for (int c = 0; c < kNumScenarios; ++c) {
    for (int code : {429, 503}) {
      auto it = per_[c].rejected.find(code);
      out += "suanli:requests_rejected_total{" + scenario_label(c) + ",status=\"" + std::to_string(code) + "\"} " +
             std::to_string(it == per_[c].rejected.end() ? 0 : it->second) + "\n";
    }
  }
  struct H {
    const char* name;
    const char* help;
    const Histogram PerScenario::*h;
  };
  const H hs[] = {
      {"suanli:time_to_first_token_seconds", "Admission to first token.", &PerScenario::ttft},
      {"suanli:time_per_output_token_seconds", "Mean time per output token after the first, per request.",
       &PerScenario::tpot},
      {"suanli:e2e_request_latency_seconds", "Request received to last token.", &PerScenario::e2e},
      {"suanli:queue_time_seconds", "Admission to first scheduled step.", &PerScenario::queue},
  };
  for (const H& h : hs) {
    header(&out, h.name, "histogram", h.help);
    for (int c = 0; c < kNumScenarios; ++c) (per_[c].*(h.h)).render(h.name, scenario_label(c), &out);
  }
  return out;
}

}  // namespace suanli::server
