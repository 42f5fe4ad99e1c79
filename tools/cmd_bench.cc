// suanli bench -m MODEL [-p 512] [-n 128] [-d DEPTH] [-t THREADS] [-r REPS]
// [--json]: llama-bench-style prefill (ppP) and generation (tgN) throughput,
// each with its fraction of the device's measured roofline:
//   tg: tokens/s x bytes read per token (weights, plus the KV cache of the
//       context at --depth) / measured memory bandwidth
//   pp: arithmetic per second (2 ops per weight MAC + attention) / measured
//       peak (int8 for integer weight formats, fp32 for float ones)
// On a CPU (without --depth), each tg result also says what a pure read of the same weights
// gets: the matrices one decode step reads, in its order, each split over
// the same number of threads in 16-row groups with a barrier after each (as
// the CPU device splits a matmul), no arithmetic; measured right before and
// after every repetition. Decode cannot beat it, and on a shared host the
// bandwidth probe (one long stream per thread, measured once) can read far
// above what this access pattern gets at the same moment.
// --depth N (llama-bench's -d) first fills the context with N tokens,
// untimed, so pp and tg are measured with N tokens already in the cache
// ("pp512 @ d4096"): long-context speed, where attention dominates.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "bench_serve.h"
#include "commands.h"
#include "core/thread_pool.h"
#include "devices/cpu/roofline.h"
#include "model_args.h"
#include "suanli/session.h"

namespace suanli::cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  int64_t prompt = 512;
  int64_t gen = 128;
  int64_t depth = 0;
  int reps = 5;
  bool json = false;
};

struct Result {
  std::string test;
  double mean = 0, stddev = 0, roofline = 0;
  double achieved = 0;  // GB/s (tg) or GOPS (pp)
  double read_gbs = 0;  // tg on a CPU: the pure read of the weights (see above); 0 when not measured
};

using Clock = std::chrono::steady_clock;

void mean_std(const std::vector<double>& v, double* mean, double* sd) {
  double s = 0;
  for (double x : v) s += x;
  *mean = s / v.size();
  double q = 0;
  for (double x : v) q += (x - *mean) * (x - *mean);
  *sd = v.size() > 1 ? std::sqrt(q / (v.size() - 1)) : 0;
}

bool integer_weights(const Model& m) {
  for (const GgufTensorInfo& t : m.file().tensors()) {
    if (t.name.find("attn_q.weight") != std::string::npos) {
      return !(t.type == GgmlType::kF32 || t.type == GgmlType::kF16 || t.type == GgmlType::kBF16 ||
               t.type == GgmlType::kMXFP8_E4M3);  // float activations (devices/cpu/matmul.cc)
    }
  }
  return true;
}

}  // namespace

Runner add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand("bench", "Prefill and generation throughput against the roofline");
  add_model_args(sub, a->model);
  sub->add_option("-p,--n-prompt", a->prompt, "Prompt tokens for the pp test (0: skip)");
  sub->add_option("-n,--n-gen", a->gen, "Generated tokens for the tg test (0: skip)");
  sub->add_option("-d,--depth", a->depth, "Context tokens already in the cache when pp / tg are timed");
  sub->add_option("-r,--repetitions", a->reps, "Repetitions per test");
  sub->add_flag("--json", a->json, "Print a JSON list of results");
  std::function<int()> serve = add_bench_serve(sub);
  return [a, serve] {
    if (int rc = serve(); rc >= 0) return rc;
    auto fail = [](const std::string& m) {
      std::fprintf(stderr, "suanli bench: %s\n", m.c_str());
      return 1;
    };
    if (a->prompt < 0 || a->gen < 0 || a->prompt + a->gen == 0) return fail("nothing to run (-p and -n are 0)");
    if (a->reps < 1 || a->reps > 1000) return fail("-r must be 1 to 1000");
    if (a->depth < 0 || a->depth > (int64_t{1} << 24)) return fail("-d must be 0 to 16M tokens");
    ModelArgs margs = a->model;
    margs.batch = std::max<int64_t>(a->prompt, 1);
    if (a->depth > 0) margs.batch = std::max<int64_t>(margs.batch, std::min<int64_t>(a->depth, 512));
    margs.ctx = a->depth + a->prompt + a->gen + 16;
    // The pools' page faults at start, not in the timed passes, as a
    // server's (KvCacheOptions::commit).
    margs.commit_kv = true;
    Expected<LoadedModel> lm = load_model(margs);
    if (!lm) return fail(lm.status().to_string());
    Model& model = *lm->model;
    Device& dev = *lm->device;
    const ModelInfo& mi = model.info();
    if (mi.n_ctx_train > 0 && a->depth + a->prompt + a->gen > mi.n_ctx_train) {
      return fail("-d + -p + -n = " + std::to_string(a->depth + a->prompt + a->gen) +
                  " tokens exceeds the model's context length (" + std::to_string(mi.n_ctx_train) + ")");
    }
    std::fprintf(stderr, "suanli bench: measuring the roofline of %s...\n", dev.name().c_str());
    const Roofline roof = dev.measure_roofline();
    const int threads = margs.threads > 0 ? margs.threads : static_cast<int>(std::thread::hardware_concurrency());
    // Integer weights meet int8 activations on the CPU only; the GPU device
    // multiplies fp32 activations on its fp32 units (docs/cuda.md).
    bool all_layers_cpu = dev.kind() == DeviceKind::kCpu;
    for (Device* d : model.layer_devices()) all_layers_cpu = all_layers_cpu && d->kind() == DeviceKind::kCpu;
    const bool int8 = integer_weights(model) && all_layers_cpu;
    const double peak_gops = int8 ? roof.int8_gops : roof.fp32_gflops;

    // The pure-read reference (tg), where every layer runs on a CPU.
    // Only without --depth: with a long context the KV cache, which the
    // reference does not read, is much of what decode reads.
    bool all_cpu = dev.kind() == DeviceKind::kCpu && a->depth == 0;
    for (Device* d : model.layer_devices()) all_cpu = all_cpu && d->kind() == DeviceKind::kCpu;
    std::unique_ptr<ThreadPool> read_pool;
    const std::vector<WeightView> decode_weights = model.decode_weights();
    auto read_reference = [&]() -> double {
      if (!all_cpu) return 0;
      if (!read_pool) read_pool = std::make_unique<ThreadPool>(threads);
      // Idle pool workers spin for up to 2 ms before they sleep; the two
      // pools must not share the cores.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const double gbs = cpu::measure_read_gbs(*read_pool, decode_weights);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return gbs;
    };

    Session session(model, *lm->kv);
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> any_token(0, static_cast<int32_t>(mi.n_vocab - 1));
    std::vector<Result> results;
    // Weight MACs per token: every matrix once (the output matrix included).
    const double weight_macs = [&] {
      double macs = static_cast<double>(mi.n_vocab) * mi.n_embd;
      const double q = mi.n_head * mi.head_dim, kv = mi.n_head_kv * mi.head_dim;
      macs += mi.n_layer * (mi.n_embd * (q + 2 * kv) + q * mi.n_embd + 3.0 * mi.n_embd * mi.n_ff);
      return macs;
    }();

    auto run_test = [&](bool pp) -> Status {
      const int64_t n = pp ? a->prompt : a->gen;
      std::vector<double> tps, reads;
      // The context at --depth, prefilled once (untimed); each run keeps it
      // (set_prompt reuses the common prefix) and times what comes after.
      std::vector<int32_t> context(static_cast<size_t>(a->depth));
      for (int32_t& t : context) t = any_token(rng);
      for (int r = -1; r < a->reps; ++r) {  // r == -1: warm-up
        session.reset();
        if (!context.empty()) SUANLI_RETURN_IF_ERROR(session.set_prompt(context));
        std::vector<int32_t> toks = context;
        for (int64_t i = 0; i < (pp ? n : 1); ++i) toks.push_back(any_token(rng));
        double s;
        if (pp) {
          const auto t0 = Clock::now();
          SUANLI_RETURN_IF_ERROR(session.set_prompt(toks));
          s = std::chrono::duration<double>(Clock::now() - t0).count();
        } else {
          SUANLI_RETURN_IF_ERROR(session.set_prompt(toks));
          if (r >= 0 && all_cpu) reads.push_back(read_reference());
          const auto t0 = Clock::now();
          for (int64_t i = 0; i < n; ++i) SUANLI_RETURN_IF_ERROR(session.append(any_token(rng)));
          s = std::chrono::duration<double>(Clock::now() - t0).count();
          if (r >= 0 && all_cpu) reads.push_back(read_reference());
        }
        if (r >= 0) tps.push_back(n / s);
      }
      Result res;
      res.test = (pp ? "pp" : "tg") + std::to_string(n) + (a->depth ? " @ d" + std::to_string(a->depth) : "");
      mean_std(tps, &res.mean, &res.stddev);
      const double d = static_cast<double>(a->depth);
      if (pp) {
        // Attention: QK and PV, 2 MACs per (key, head dim) per head; causal
        // over the new tokens, all of the depth.
        const double attn_macs = 2.0 * mi.n_layer * mi.n_head * mi.head_dim * (d + (n + 1) / 2.0);
        const double ops_per_token = 2 * (weight_macs + attn_macs);
        res.achieved = res.mean * ops_per_token / 1e9;
        res.roofline = res.achieved / peak_gops;
      } else {
        // Weights, plus every cached K and V row of the context (on average
        // depth + n / 2 of them).
        const double kv_bytes = 2.0 * mi.n_layer * mi.n_head_kv * mi.head_dim *
                                static_cast<double>(row_bytes(lm->kv->type(), 1)) * (d + n / 2.0);
        res.achieved = res.mean * (static_cast<double>(model.weight_bytes_per_token()) + kv_bytes) / 1e9;
        res.roofline = res.achieved / roof.memory_gbs;
        if (!reads.empty()) {
          double sd = 0;
          mean_std(reads, &res.read_gbs, &sd);
        }
      }
      results.push_back(res);
      return Status::Ok();
    };
    if (a->prompt > 0) {
      if (Status s = run_test(true); !s.ok()) return fail(s.to_string());
    }
    if (a->gen > 0) {
      if (Status s = run_test(false); !s.ok()) return fail(s.to_string());
    }

    const std::string model_name = mi.name.empty() ? mi.architecture : mi.name;
    const double size_mib = mi.n_bytes / double(1 << 20);
    if (a->json) {
      nlohmann::json out = nlohmann::json::array();
      for (const Result& r : results) {
        out.push_back({{"model", model_name},
                       {"model_size_bytes", mi.n_bytes},
                       {"model_params", mi.n_params},
                       {"device", dev.name()},
                       {"threads", threads},
                       {"test", r.test},
                       {"depth", a->depth},
                       {"tokens_per_s", r.mean},
                       {"stddev", r.stddev},
                       {"repetitions", a->reps},
                       {"roofline_fraction", r.roofline},
                       {r.test.rfind("tg", 0) == 0 ? "achieved_gbs" : "achieved_gops", r.achieved},
                       {"weights_read_gbs", r.read_gbs > 0 ? nlohmann::json(r.read_gbs) : nlohmann::json(nullptr)},
                       {"roofline",
                        {{"memory_gbs", roof.memory_gbs}, {"int8_gops", roof.int8_gops}, {"fp32_gflops", roof.fp32_gflops}}}});
      }
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    // The device column: "cpu", "cuda:0", or each device of a --device-map.
    std::vector<std::string> used;
    for (Device* d : model.layer_devices()) {
      const std::string n = d->name().substr(0, d->name().find(' '));
      if (std::find(used.begin(), used.end(), n) == used.end()) used.push_back(n);
    }
    if (used.empty()) used.push_back(dev.name().substr(0, dev.name().find(' ')));
    std::string device_column;
    for (const std::string& n : used) device_column += (device_column.empty() ? "" : "+") + n;
    std::printf("roofline: %.1f GB/s memory, %.0f GOPS int8, %.0f GFLOPS fp32 (measured on %s, %d threads)\n\n",
                roof.memory_gbs, roof.int8_gops, roof.fp32_gflops, dev.name().c_str(), threads);
    std::printf("| %-32s | %10s | %8s | %-6s | %7s | %6s | %18s | %-28s |\n", "model", "size", "params", "device",
                "threads", "test", "t/s", "roofline");
    std::printf("| %.32s | %.10s | %.8s | %.6s | %.7s | %.14s | %.18s | %.28s |\n", "--------------------------------",
                "----------", "--------", "------", "-------", "--------------", "------------------",
                "----------------------------");
    for (const Result& r : results) {
      char ts[64], rf[64], sz[32], pr[32];
      std::snprintf(ts, sizeof ts, "%.2f ± %.2f", r.mean, r.stddev);
      if (r.test.rfind("tg", 0) == 0) {
        std::snprintf(rf, sizeof rf, "%.1f%% of %.1f GB/s", 100 * r.roofline, roof.memory_gbs);
      } else {
        std::snprintf(rf, sizeof rf, "%.1f%% of %.0f %s", 100 * r.roofline, peak_gops, int8 ? "GOPS int8" : "GFLOPS fp32");
      }
      std::snprintf(sz, sizeof sz, "%.2f MiB", size_mib);
      std::snprintf(pr, sizeof pr, "%.2f M", mi.n_params / 1e6);
      std::printf("| %-32s | %10s | %8s | %-6s | %7d | %6s | %18s | %-28s |\n", model_name.substr(0, 32).c_str(), sz, pr,
                  device_column.c_str(), threads, r.test.c_str(), ts, rf);
    }
    for (const Result& r : results) {
      if (r.read_gbs <= 0) continue;
      const double weights_gbs = r.mean * static_cast<double>(model.weight_bytes_per_token()) / 1e9;
      std::printf("\n%s: weights read at %.1f GB/s; a pure read of the same weights in decode's order (no arithmetic, "
                  "measured around each repetition) %.1f GB/s: %.0f%% of it\n",
                  r.test.c_str(), weights_gbs, r.read_gbs, 100 * weights_gbs / r.read_gbs);
    }
    return 0;
  };
}

}  // namespace suanli::cli
