// Random-weight GGUF models of real architecture shapes, for benchmarks and
// tests at sizes that cannot be downloaded. Weights are random but valid
// (finite, unit-scale norms); the tokenizer is copied from another GGUF and
// padded with unused tokens up to the shape's vocabulary size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "suanli/dtype.h"
#include "suanli/status.h"

namespace suanli {

struct SynthShape {
  std::string name;          // "llama3-8b"
  std::string architecture;  // "llama", "qwen2", "qwen3"
  int64_t n_layer;
  int64_t n_embd;
  int64_t n_ff;
  int64_t n_head;
  int64_t n_head_kv;
  int64_t head_dim;
  int64_t n_vocab;
  int64_t n_ctx;
  double rope_freq_base;
  bool tied_embeddings;
  // llama3-style rope frequency scaling (factor 0 = none), written as the
  // rope_freqs.weight tensor as real Llama 3.1/3.2 GGUF files carry it.
  double rope_llama3_factor = 0;
  double rope_llama3_low = 1;
  double rope_llama3_high = 4;
  int64_t rope_llama3_original_ctx = 8192;
};

const std::vector<SynthShape>& synth_shapes();
const SynthShape* find_synth_shape(const std::string& name);

struct SynthOptions {
  std::string shape;
  std::string out_path;
  std::string tokenizer_from;  // GGUF whose tokenizer.* metadata is copied
  GgmlType type = GgmlType::kQ4_0;
  uint64_t seed = 0;
  std::optional<int64_t> layers;  // override block_count (small test models)
  int threads = 0;                // 0: hardware concurrency
  bool progress = false;
};

// Writes the model atomically to out_path. Matrices whose rows do not split
// into whole blocks of `type` fall back to Q8_0, then F16 (as llama.cpp's
// quantizer does); norms and biases are F32.
Status synth_model(const SynthOptions& opt);

// The llama3 rope frequency factors (one per rotary pair).
std::vector<float> llama3_rope_factors(const SynthShape& s);

}  // namespace suanli
