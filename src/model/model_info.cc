#include "suanli/model_info.h"

#include <charconv>
#include <cmath>

namespace suanli {
namespace {

// Bounds that no real model exceeds; past them the metadata is hostile or broken.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxHeads = 1 << 14;

Status bad(const std::string& what) { return CorruptData("inconsistent model metadata: " + what); }

Expected<int64_t> positive(const GgufFile& f, const std::string& key, int64_t max) {
  SUANLI_ASSIGN_OR_RETURN(int64_t v, f.get_int(key));
  if (v <= 0 || v > max) return bad(key + " is " + std::to_string(v) + " (must be 1 to " + std::to_string(max) + ")");
  return v;
}

Expected<int64_t> positive_or(const GgufFile& f, const std::string& key, int64_t max, int64_t fallback) {
  if (!f.find(key)) return fallback;
  return positive(f, key, max);
}

}  // namespace

Expected<ModelInfo> ModelInfo::from_gguf(const GgufFile& f) {
  ModelInfo m;
  SUANLI_ASSIGN_OR_RETURN(m.architecture, f.get_string("general.architecture"));
  if (m.architecture.empty()) return bad("general.architecture is empty");
  m.name = f.get_string("general.name").value_or("");
  const std::string a = m.architecture + ".";

  SUANLI_ASSIGN_OR_RETURN(m.n_layer, positive(f, a + "block_count", kMaxLayers));
  SUANLI_ASSIGN_OR_RETURN(m.n_embd, positive(f, a + "embedding_length", kMaxDim));
  SUANLI_ASSIGN_OR_RETURN(m.n_ff, positive(f, a + "feed_forward_length", 16 * kMaxDim));
  SUANLI_ASSIGN_OR_RETURN(m.n_head, positive(f, a + "attention.head_count", kMaxHeads));
  SUANLI_ASSIGN_OR_RETURN(m.n_head_kv, positive_or(f, a + "attention.head_count_kv", kMaxHeads, m.n_head));
  if (m.n_head % m.n_head_kv != 0) {
    return bad("head_count " + std::to_string(m.n_head) + " is not a multiple of head_count_kv " +
               std::to_string(m.n_head_kv));
  }
  if (!f.find(a + "attention.key_length") && m.n_embd % m.n_head != 0) {
    return bad("embedding_length " + std::to_string(m.n_embd) + " is not a multiple of head_count " +
               std::to_string(m.n_head));
  }
  SUANLI_ASSIGN_OR_RETURN(m.head_dim, positive_or(f, a + "attention.key_length", kMaxDim, m.n_embd / m.n_head));
  if (const GgufValue* v = f.find(a + "attention.value_length")) {
    // Every architecture here has equal key and value head sizes.
    if (v->as_int() != std::optional<int64_t>(m.head_dim)) {
      return bad("attention.value_length must equal the key head size " + std::to_string(m.head_dim));
    }
  }
  SUANLI_ASSIGN_OR_RETURN(m.n_ctx_train, positive_or(f, a + "context_length", int64_t{1} << 32, 0));
  SUANLI_ASSIGN_OR_RETURN(m.rope_dim, positive_or(f, a + "rope.dimension_count", kMaxDim, m.head_dim));
  if (m.rope_dim > m.head_dim || m.rope_dim % 2) {
    return bad("rope.dimension_count " + std::to_string(m.rope_dim) + " must be even and at most the head size " +
               std::to_string(m.head_dim));
  }
  if (const GgufValue* v = f.find(a + "attention.layer_norm_rms_epsilon")) {
    std::optional<double> eps = v->as_float();
    if (!eps || !(*eps > 0 && *eps < 1)) return bad("attention.layer_norm_rms_epsilon must be in (0, 1)");
    m.rms_norm_eps = *eps;
  }
  if (const GgufValue* v = f.find(a + "rope.freq_base")) {
    std::optional<double> base = v->as_float();
    if (!base || !(*base > 1) || !std::isfinite(*base)) return bad("rope.freq_base must be a finite number > 1");
    m.rope_freq_base = *base;
  }
  m.rope_scaling_type = f.get_string(a + "rope.scaling.type").value_or("");
  if (const GgufValue* v = f.find(a + "rope.scaling.factor")) {
    // (1 / factor scales positions: 1e-45 made them infinite, inf made them 0.)
    std::optional<double> factor = v->as_float();
    if (!factor || !(*factor >= 1e-6 && *factor <= 1e6)) return bad("rope.scaling.factor must be a number in [1e-6, 1e6]");
    m.rope_scaling_factor = *factor;
  }
  m.rope_original_context = f.get_int(a + "rope.scaling.original_context_length").value_or(0);

  m.tokenizer_model = f.get_string("tokenizer.ggml.model").value_or("");
  m.tokenizer_pre = f.get_string("tokenizer.ggml.pre").value_or("");
  if (Expected<const GgufArray*> tokens = f.get_array("tokenizer.ggml.tokens")) {
    m.n_vocab = static_cast<int64_t>((*tokens)->size());
    if (const GgufValue* v = f.find(a + "vocab_size"); v && v->as_int() != std::optional<int64_t>(m.n_vocab)) {
      return bad("vocab_size differs from the " + std::to_string(m.n_vocab) + " tokens of tokenizer.ggml.tokens");
    }
  } else {
    m.n_vocab = f.get_int(a + "vocab_size").value_or(0);
  }

  for (const GgufTensorInfo& t : f.tensors()) {
    m.n_params += t.n_elements;
    m.n_bytes += t.n_bytes;
    // A layer's tensors past block_count would be silently ignored (as
    // llama.cpp refuses a wrong tensor count, so do we).
    if (t.name.rfind("blk.", 0) == 0) {
      int64_t layer = 0;
      const char* p = t.name.c_str() + 4;
      const auto [end, ec] = std::from_chars(p, t.name.c_str() + t.name.size(), layer);
      if (ec == std::errc() && *end == '.' && layer >= m.n_layer) {
        return bad("tensor " + t.name + " is for a layer past block_count " + std::to_string(m.n_layer));
      }
    }
  }
  if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    if (rf->shape.size() != 1 || rf->shape[0] * 2 != m.rope_dim) {
      return bad("rope_freqs.weight must hold rope.dimension_count / 2 = " + std::to_string(m.rope_dim / 2) +
                 " factors");
    }
    m.has_rope_freqs = true;
  }
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (embd) {
    if (embd->shape.size() != 2 || embd->shape[0] != m.n_embd) {
      return bad("token_embd.weight's first dimension must be embedding_length " + std::to_string(m.n_embd));
    }
    if (m.n_vocab && embd->shape[1] != m.n_vocab) {
      return bad("token_embd.weight has " + std::to_string(embd->shape[1]) + " rows but the vocabulary has " +
                 std::to_string(m.n_vocab) + " tokens");
    }
    m.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  }
  return m;
}

}  // namespace suanli
