#include "model_args.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "model/pull.h"

namespace suanli::cli {

void add_model_args(CLI::App* sub, ModelArgs& a) {
  sub->add_option("-m,--model", a.model, "GGUF model (default: the cached default model)");
  sub->add_option("-t,--threads", a.threads, "CPU threads (default: all cores)");
  sub->add_option("-c,--ctx", a.ctx, "Context length to reserve KV cache for");
  sub->add_option("-b,--batch", a.batch, "Max tokens per forward step (prefill chunk)");
  sub->add_option("--kv-type", a.kv_type, "KV cache type: f16 or f32");
  sub->add_option("--device", a.device, "Device: cpu, cuda, cuda:N, or an index in `suanli devices` (default: cpu)");
  sub->add_option("--device-map", a.device_map,
                  "Layers per device, e.g. cuda:0-23,cpu:24-31 (DEVICE:FIRST-LAST, inclusive, every layer once)");
  sub->add_option("--gpu-layers,--ngl", a.gpu_layers,
                  "Run the last N layers (and the output head) on --device, the rest on the CPU");
}

Expected<std::vector<Device*>> parse_device_map(const std::vector<std::unique_ptr<Device>>& devices,
                                               const std::string& spec, int64_t n_layer) {
  std::vector<Device*> map(static_cast<size_t>(n_layer), nullptr);
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(start, comma - start);
    const size_t colon = item.rfind(':');
    const size_t dash = colon == std::string::npos ? std::string::npos : item.find('-', colon);
    if (colon == std::string::npos || dash == std::string::npos) {
      return InvalidArgument("bad --device-map entry '" + item + "' (want DEVICE:FIRST-LAST)");
    }
    int64_t first = -1, last = -1;
    try {
      size_t used = 0;
      first = std::stoll(item.substr(colon + 1, dash - colon - 1), &used);
      if (used != dash - colon - 1) first = -1;
      last = std::stoll(item.substr(dash + 1), &used);
      if (used != item.size() - dash - 1) last = -1;
    } catch (...) {
      first = last = -1;
    }
    if (first < 0 || last < first || last >= n_layer) {
      return InvalidArgument("bad layer range in --device-map entry '" + item + "' (the model has " +
                             std::to_string(n_layer) + " layers, 0-" + std::to_string(n_layer - 1) + ")");
    }
    SUANLI_ASSIGN_OR_RETURN(Device * d, pick_device(devices, item.substr(0, colon)));
    for (int64_t l = first; l <= last; ++l) {
      if (map[l]) return InvalidArgument("--device-map names layer " + std::to_string(l) + " twice");
      map[l] = d;
    }
    start = comma + 1;
  }
  for (int64_t l = 0; l < n_layer; ++l) {
    if (!map[l]) return InvalidArgument("--device-map leaves layer " + std::to_string(l) + " without a device");
  }
  return map;
}

Expected<Device*> pick_device(const std::vector<std::unique_ptr<Device>>& devices, const std::string& spec) {
  std::string available;
  for (size_t i = 0; i < devices.size(); ++i) available += "\n  " + std::to_string(i) + ": " + devices[i]->name();
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  if (kind == "cpu" || kind == "cuda" || kind == "gpu" || kind == "hip") {
    int want = 0;
    if (colon != std::string::npos) {
      try {
        want = std::stoi(spec.substr(colon + 1));
      } catch (...) {
        return InvalidArgument("bad --device '" + spec + "'");
      }
    }
    const DeviceKind k = kind == "cpu" ? DeviceKind::kCpu : DeviceKind::kCuda;
    for (const auto& d : devices) {
      if (d->kind() == k && want-- == 0) return d.get();
    }
  } else if (!spec.empty() && spec.find_first_not_of("0123456789") == std::string::npos) {
    const size_t i = std::stoul(spec);
    if (i < devices.size()) return devices[i].get();
  }
  return NotFound("no device '" + spec + "'; found:" + available);
}

void add_speculative_args(CLI::App* sub, EngineConfig::Speculative& s) {
  sub->add_option("--spec-ngram", s.num_tokens,
                  "Speculative decoding by prompt lookup: up to N drafted tokens per sequence and step, taken "
                  "from what followed an earlier occurrence of the sequence's last tokens; the output is "
                  "unchanged (0: off)");
  sub->add_option("--spec-ngram-min", s.ngram_min, "Shortest suffix looked up (default 2)");
  sub->add_option("--spec-ngram-max", s.ngram_max, "Longest suffix looked up (default 4)");
  sub->add_option("--spec-max-step-tokens", s.max_step_tokens,
                  "Draft only while a step carries at most this many tokens (default 8)");
}

void add_sampling_args(CLI::App* sub, SamplingArgs& a) {
  SamplingParams& p = a.params;
  sub->add_option("--temp", p.temperature, "Temperature (0: greedy)");
  sub->add_option("--top-k", p.top_k, "Top-k (0: off)");
  sub->add_option("--top-p", p.top_p, "Top-p (1: off)");
  sub->add_option("--min-p", p.min_p, "Min-p (0: off)");
  sub->add_option("--repeat-penalty", p.repetition_penalty, "Repetition penalty (1: off)");
  sub->add_option("--frequency-penalty", p.frequency_penalty, "Frequency penalty");
  sub->add_option("--presence-penalty", p.presence_penalty, "Presence penalty");
  sub->add_option("--seed", a.seed, "Random seed (default: random)");
}

Expected<SamplingParams> resolve_sampling(const SamplingArgs& a) {
  SamplingParams p = a.params;
  p.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();
  SUANLI_RETURN_IF_ERROR(p.validate());
  return p;
}

Expected<uint64_t> parse_bytes(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    return InvalidArgument("bad size '" + s + "'");
  }
  std::string unit = s.substr(pos);
  double mult = 1;
  if (unit == "KiB" || unit == "K") mult = 1024.0;
  else if (unit == "MiB" || unit == "M") mult = 1024.0 * 1024;
  else if (unit == "GiB" || unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (!unit.empty() && unit != "B") return InvalidArgument("bad size unit in '" + s + "'");
  if (!(v > 0) || v * mult > 1e15) return InvalidArgument("size out of range: '" + s + "'");
  return static_cast<uint64_t>(v * mult);
}

Expected<uint64_t> parse_kv_memory(const std::string& s, const Device& device) {
  if (!s.empty() && s.back() == '%') {
    double pct = 0;
    size_t pos = 0;
    try {
      pct = std::stod(s.substr(0, s.size() - 1), &pos);
    } catch (...) {
      return InvalidArgument("bad KV memory share '" + s + "'");
    }
    if (pos != s.size() - 1 || !(pct > 0 && pct <= 95)) {
      return InvalidArgument("KV memory share must be in (0, 95]%, got '" + s + "'");
    }
    const uint64_t free_bytes = device.memory().free_bytes;
    const uint64_t bytes = static_cast<uint64_t>(static_cast<double>(free_bytes) * pct / 100.0);
    if (bytes == 0) return InvalidArgument("cannot tell the device's free memory for '" + s + "'");
    return bytes;
  }
  return parse_bytes(s);
}

Expected<LoadedModel> load_model(const ModelArgs& a) {
  if (a.ctx < 1 || a.ctx > (1 << 24)) return InvalidArgument("--ctx must be 1 to 16777216");
  if (a.batch < 1 || a.batch > 65536) return InvalidArgument("--batch must be 1 to 65536");
  if (a.threads < 0 || a.threads > 1024) return InvalidArgument("--threads must be 0 to 1024");
  std::optional<GgmlType> kv_type = parse_ggml_type(a.kv_type);
  if (!kv_type) return InvalidArgument("unknown --kv-type '" + a.kv_type + "'");
  std::string path = a.model;
  if (path.empty()) {
    SUANLI_ASSIGN_OR_RETURN(std::string home, models_home());
    path = home + "/" + std::string(kDefaultModelFile);
  }
  LoadedModel lm;
  std::vector<std::string> messages;
  DeviceOptions dopt;
  dopt.cpu_threads = a.threads;
  lm.devices = discover_devices(dopt, &messages);
  for (const std::string& m : messages) std::fprintf(stderr, "suanli: %s\n", m.c_str());
  SUANLI_ASSIGN_OR_RETURN(lm.device, pick_device(lm.devices, a.device));
  Device& dev = *lm.device;
  ModelOptions mopt;
  mopt.max_batch_tokens = a.batch;
  if (!a.device_map.empty() || a.gpu_layers >= 0) {
    if (!a.device_map.empty() && a.gpu_layers >= 0) return InvalidArgument("give --device-map or --gpu-layers, not both");
    // The layer count, from the file's metadata.
    SUANLI_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
    Expected<ModelInfo> info = ModelInfo::from_gguf(f);
    if (!info) return info.status().with_context(path);
    const int64_t n_layer = info->n_layer;
    if (!a.device_map.empty()) {
      SUANLI_ASSIGN_OR_RETURN(mopt.layer_devices, parse_device_map(lm.devices, a.device_map, n_layer));
    } else {
      SUANLI_ASSIGN_OR_RETURN(Device * cpu, pick_device(lm.devices, "cpu"));
      const int64_t on_dev = std::min(a.gpu_layers, n_layer);
      for (int64_t l = 0; l < n_layer; ++l) mopt.layer_devices.push_back(l >= n_layer - on_dev ? &dev : cpu);
    }
  }
  SUANLI_ASSIGN_OR_RETURN(lm.model, Model::load(path, dev, mopt));
  const ModelInfo& info = lm.model->info();
  KvCacheOptions kopt;
  kopt.type = *kv_type;
  kopt.commit = a.commit_kv;
  const uint64_t elem = *kv_type == GgmlType::kF16 ? 2 : 4;
  const uint64_t per_token = 2ull * info.n_layer * info.n_head_kv * info.head_dim * elem;
  const int64_t ctx = info.n_ctx_train > 0 ? std::min<int64_t>(a.ctx, info.n_ctx_train) : a.ctx;
  kopt.memory_bytes = per_token * static_cast<uint64_t>((ctx + kopt.block_size - 1) / kopt.block_size) *
                      kopt.block_size;
  SUANLI_ASSIGN_OR_RETURN(lm.kv, KvCache::create(dev, info, kopt, lm.model->layer_devices()));
  Expected<std::shared_ptr<const Tokenizer>> tok = Tokenizer::from_gguf(lm.model->file());
  if (!tok) return tok.status().with_context(path);
  lm.tokenizer = *tok;
  return lm;
}

int64_t LoadedModel::context() const {
  int64_t ctx = static_cast<int64_t>(kv->n_blocks()) * kv->block_size();
  if (model->info().n_ctx_train > 0) ctx = std::min(ctx, model->info().n_ctx_train);
  return ctx;
}

}  // namespace suanli::cli
