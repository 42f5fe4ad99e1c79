// Flags shared by the subcommands that load a model (run, chat, bench, eval):
// which model, threads, context and KV cache size, and sampling.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "suanli/device.h"
#include "suanli/engine.h"
#include "suanli/kv_cache.h"
#include "suanli/model.h"
#include "suanli/sampler.h"
#include "suanli/tokenizer.h"

namespace suanli::cli {

struct ModelArgs {
  std::string model;          // empty: the default model from the cache
  int threads = 0;            // 0: all cores
  int64_t ctx = 4096;         // tokens of KV cache for one sequence
  int64_t batch = 512;        // max tokens per forward step (prefill chunk)
  std::string kv_type = "f16";
  std::string device = "cpu";  // cpu, cuda, cuda:N, or an index into `suanli devices`
  std::string device_map;      // DEVICE:FIRST-LAST,... (layers, inclusive)
  int64_t gpu_layers = -1;     // the last N layers on --device, the rest on the CPU
  bool commit_kv = false;      // KvCacheOptions::commit (bench: yes; run, chat: no)
};

void add_model_args(CLI::App* sub, ModelArgs& a);

struct SamplingArgs {
  SamplingParams params;
  int64_t seed = -1;  // -1: random
};

void add_sampling_args(CLI::App* sub, SamplingArgs& a);
// Params with the seed resolved (random when not given) and validated.
Expected<SamplingParams> resolve_sampling(const SamplingArgs& a);

// Speculative decoding by prompt lookup (serve, bench serve): --spec-ngram
// and its limits; the engine checks the ranges.
void add_speculative_args(CLI::App* sub, EngineConfig::Speculative& s);

// The device `spec` names among `devices` (see ModelArgs::device).
Expected<Device*> pick_device(const std::vector<std::unique_ptr<Device>>& devices, const std::string& spec);

// One device per layer from a --device-map spec ("cuda:0:0-23,cpu:24-31":
// each DEVICE as pick_device takes it, then a layer range, inclusive; every
// layer exactly once).
Expected<std::vector<Device*>> parse_device_map(const std::vector<std::unique_ptr<Device>>& devices,
                                               const std::string& spec, int64_t n_layer);

// A model on the chosen device, with a KV cache of args.ctx tokens and its
// tokenizer.
struct LoadedModel {
  std::vector<std::unique_ptr<Device>> devices;
  Device* device = nullptr;  // the one the model runs on, one of devices
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> kv;
  std::shared_ptr<const Tokenizer> tokenizer;

  // Tokens a sequence may reach: the KV cache's whole blocks, capped by the
  // model's trained context (as the server caps it).
  int64_t context() const;
};

Expected<LoadedModel> load_model(const ModelArgs& a);

// A size with an optional unit: 512MiB, 2GiB, 1.5G, 4096 (bytes).
Expected<uint64_t> parse_bytes(const std::string& s);
// A KV cache budget: a size as parse_bytes takes it ("2GiB"), or a share of
// the device's free memory ("50%").
Expected<uint64_t> parse_kv_memory(const std::string& s, const Device& device);

}  // namespace suanli::cli
