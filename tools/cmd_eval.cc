// suanli eval -m MODEL --ids "1 2 3" [--out FILE] [--greedy N]: the raw
// numeric interface used by the reference tests. Runs the token ids as one
// prompt and writes the logits of every position (float32 [T][n_vocab]),
// then optionally extends greedily by N tokens (one decode step each) and
// prints the generated ids.
#include <charconv>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "model_args.h"
#include "suanli/kv_cache.h"
#include "suanli/model.h"
#include "suanli/sampler.h"

namespace suanli::cli {
namespace {

struct EvalArgs {
  std::string model;
  std::string ids;
  std::string out;
  int greedy = 0;
  int threads = 0;
  int64_t chunk = 0;  // prefill chunk size (0: the whole prompt at once)
  std::string kv_type = "f16";
  std::string device = "cpu";
};

int fail(const std::string& m) {
  std::fprintf(stderr, "suanli eval: %s\n", m.c_str());
  return 1;
}

int32_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

}  // namespace

Runner add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* sub = app.add_subcommand("eval", "Logits of a token sequence (for numeric checks)");
  sub->add_option("-m,--model", a->model, "GGUF model")->required();
  sub->add_option("--ids", a->ids, "Token ids, space or comma separated")->required();
  sub->add_option("--out", a->out, "Write float32 logits [T][n_vocab] here");
  sub->add_option("--greedy", a->greedy, "Then generate N tokens greedily and print their ids");
  sub->add_option("-t,--threads", a->threads, "CPU threads (default: all)");
  sub->add_option("--chunk", a->chunk, "Prefill in chunks of this many tokens");
  sub->add_option("--kv-type", a->kv_type, "KV cache type: f16 or f32");
  sub->add_option("--device", a->device, "Device: cpu, cuda, cuda:N, or an index in `suanli devices`");
  return [a] {
    std::vector<int32_t> ids;
    {
      std::string s = a->ids;
      for (char& c : s) {
        if (c == ',') c = ' ';
      }
      std::istringstream in(s);
      std::string word;
      while (in >> word) {
        int32_t v = 0;
        const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
        if (ec == std::errc::result_out_of_range) return fail("token id " + word + " is out of range");
        if (ec != std::errc() || end != word.data() + word.size()) return fail("--ids must be integers, not '" + word + "'");
        ids.push_back(v);
      }
    }
    if (ids.empty()) return fail("no token ids");
    if (a->greedy < 0 || a->greedy > 1 << 20) return fail("--greedy out of range");
    std::vector<std::string> messages;
    DeviceOptions dopt;
    dopt.cpu_threads = a->threads;
    auto devices = discover_devices(dopt, &messages);
    for (const std::string& m : messages) std::fprintf(stderr, "suanli eval: %s\n", m.c_str());
    Expected<Device*> picked = pick_device(devices, a->device);
    if (!picked) return fail(picked.status().message());
    Device& dev = **picked;
    const int64_t total = static_cast<int64_t>(ids.size()) + a->greedy;
    const int64_t chunk = a->chunk > 0 ? a->chunk : static_cast<int64_t>(ids.size());
    ModelOptions mopt;
    mopt.max_batch_tokens = std::max<int64_t>(chunk, 1);
    auto model = Model::load(a->model, dev, mopt);
    if (!model) return fail(model.status().to_string());
    Model& m = **model;
    if (m.info().n_ctx_train > 0 && total > m.info().n_ctx_train) {
      // Allowed (a raw interface, as llama.cpp allows a context over the
      // trained one), but said: positions past it are extrapolation.
      std::fprintf(stderr, "suanli eval: warning: %lld tokens exceed the model's trained context of %lld\n",
                   static_cast<long long>(total), static_cast<long long>(m.info().n_ctx_train));
    }
    KvCacheOptions kopt;
    auto kv_type = parse_ggml_type(a->kv_type);
    if (!kv_type) return fail("unknown --kv-type");
    kopt.type = *kv_type;
    kopt.memory_bytes = 0;
    {
      // Exactly enough blocks for the whole sequence.
      const uint64_t per_token = 2ull * m.info().n_layer * m.info().n_head_kv * m.info().head_dim *
                                 (kopt.type == GgmlType::kF16 ? 2 : 4);
      kopt.memory_bytes = per_token * static_cast<uint64_t>((total + kopt.block_size) / kopt.block_size + 1) *
                          kopt.block_size;
    }
    auto kv = KvCache::create(dev, m.info(), kopt);
    if (!kv) return fail(kv.status().to_string());
    std::vector<int32_t> table;
    if (Status s = (*kv)->reserve(table, total); !s.ok()) return fail(s.to_string());

    const int64_t V = m.n_vocab();
    std::vector<float> all_logits;
    std::vector<float> logits;
    Batch b;
    auto run = [&](const int32_t* toks, int64_t n, int64_t n_past, bool all_rows) -> Status {
      b.clear();
      b.tokens.assign(toks, toks + n);
      for (int64_t j = 0; j < n; ++j) {
        b.positions.push_back(static_cast<int32_t>(n_past + j));
        b.slots.push_back((*kv)->slot(table, n_past + j));
      }
      Batch::Seq s;
      s.first_token = 0;
      s.n_tokens = static_cast<int32_t>(n);
      s.n_past = static_cast<int32_t>(n_past);
      s.block_table = table;
      b.seqs.push_back(std::move(s));
      if (all_rows) {
        for (int64_t j = 0; j < n; ++j) b.logits_for.push_back(static_cast<int32_t>(j));
      } else {
        b.logits_for.push_back(static_cast<int32_t>(n - 1));
      }
      logits.resize(b.logits_for.size() * V);
      return m.forward(b, **kv, logits.data());
    };
    const int64_t P = static_cast<int64_t>(ids.size());
    for (int64_t start = 0; start < P; start += chunk) {
      const int64_t n = std::min(chunk, P - start);
      if (Status s = run(ids.data() + start, n, start, true); !s.ok()) return fail(s.to_string());
      all_logits.insert(all_logits.end(), logits.begin(), logits.end());
    }
    if (!a->out.empty()) {
      std::ofstream out(a->out, std::ios::binary);
      out.write(reinterpret_cast<const char*>(all_logits.data()),
                static_cast<std::streamsize>(all_logits.size() * sizeof(float)));
      if (!out) return fail("cannot write " + a->out);
    }
    // The logits were written as computed; greedy steps refuse to draw
    // from a row that is not all finite (a broken model).
    auto finite = [&](const float* row) { return Sampler::all_finite(row, static_cast<int32_t>(V)); };
    const char* kNonFinite = Sampler::kNonFiniteLogits;
    if (a->greedy > 0) {
      if (!finite(all_logits.data() + (P - 1) * V)) return fail(kNonFinite);
      int32_t next = argmax(all_logits.data() + (P - 1) * V, V);
      std::string line = std::to_string(next);
      for (int i = 1; i < a->greedy; ++i) {
        if (Status s = run(&next, 1, P + i - 1, false); !s.ok()) return fail(s.to_string());
        if (!finite(logits.data())) return fail(kNonFinite);
        next = argmax(logits.data(), V);
        line += " " + std::to_string(next);
      }
      std::printf("%s\n", line.c_str());
    }
    return 0;
  };
}

}  // namespace suanli::cli
