// Server metrics: counters and latency histograms per scenario class, a ring
// of generated tokens per second (the web page's tokens/s view), rendered as
// Prometheus text with the "suanli:" prefix. Engine gauges (running, waiting,
// KV usage, prefix hits, preemptions) are read from EngineStats at scrape time.
// Thread safety: every method may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "suanli/engine.h"

namespace suanli::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Lines of one series: _bucket{le=...}, _sum, _count; labels like `scenario="batch"`.
  void render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative)
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct RequestRecord {
  ScenarioClass scenario = ScenarioClass::kInteractive;
  std::string finish_reason;  // stop, length, abort, error
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  double queue_time_s = -1;  // < 0: unknown (not recorded)
  double ttft_s = -1;
  double tpot_s = -1;
  double e2e_s = -1;
};

class Metrics {
 public:
  Metrics();
  void record(const RequestRecord& r);
  void rejected(ScenarioClass c, int http_status);
  void add_generated_tokens(int64_t n);  // into the per-second ring
  // Generated tokens in each of the last `seconds` whole seconds, oldest first.
  std::vector<int64_t> tokens_per_second(int seconds) const;
  std::string render(const EngineStats* stats) const;  // stats null: the model is not loaded

 private:
  static constexpr int kRingSeconds = 600;
  mutable std::mutex mu_;
  struct PerScenario {
    Histogram ttft, tpot, e2e, queue;
    int64_t prompt_tokens = 0, generation_tokens = 0;
    std::map<std::string, int64_t> finished;  // by finish_reason
    std::map<int, int64_t> rejected;          // by HTTP status
    PerScenario();
  };
  std::array<PerScenario, kNumScenarios> per_;
  std::array<int64_t, kRingSeconds> ring_{};
  std::array<int64_t, kRingSeconds> ring_sec_{};  // which second each slot holds
};

int64_t now_unix_seconds();

}  // namespace suanli::server
