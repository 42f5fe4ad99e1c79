// The architecture summary of a GGUF model: hyperparameters read from
// `{arch}.*` metadata and checked for consistency (positive sizes, heads that
// divide the embedding, grouped-query ratio, tensor shapes that agree).
// Thread safety: a plain value.
#pragma once

#include <cstdint>
#include <string>

#include "suanli/gguf.h"
#include "suanli/status.h"

namespace suanli {

struct ModelInfo {
  std::string architecture;  // general.architecture: "llama", "qwen2", ...
  std::string name;          // general.name, may be empty
  int64_t n_layer = 0;       // {arch}.block_count
  int64_t n_embd = 0;        // {arch}.embedding_length
  int64_t n_ff = 0;          // {arch}.feed_forward_length
  int64_t n_head = 0;        // {arch}.attention.head_count
  int64_t n_head_kv = 0;     // {arch}.attention.head_count_kv (defaults to n_head)
  int64_t head_dim = 0;      // {arch}.attention.key_length (defaults to n_embd / n_head)
  int64_t n_ctx_train = 0;   // {arch}.context_length
  int64_t n_vocab = 0;       // tokenizer.ggml.tokens length (or {arch}.vocab_size)
  double rms_norm_eps = 1e-5;
  double rope_freq_base = 10000.0;
  int64_t rope_dim = 0;                 // {arch}.rope.dimension_count (defaults to head_dim)
  std::string rope_scaling_type;        // "", "linear", "yarn", "llama3"
  double rope_scaling_factor = 1.0;
  int64_t rope_original_context = 0;
  std::string tokenizer_model;          // tokenizer.ggml.model: "gpt2", "llama", ...
  std::string tokenizer_pre;            // tokenizer.ggml.pre
  bool tied_embeddings = false;         // no output.weight: the embedding is reused
  bool has_rope_freqs = false;          // rope_freqs.weight: per-pair frequency divisors (llama3 scaling)
  int64_t n_params = 0;                 // elements over all tensors
  uint64_t n_bytes = 0;                 // tensor bytes over all tensors

  // Reads and validates the summary. kCorruptData for metadata that
  // contradicts itself or the tensors, NotFound for missing required keys.
  static Expected<ModelInfo> from_gguf(const GgufFile& file);
};

}  // namespace suanli
