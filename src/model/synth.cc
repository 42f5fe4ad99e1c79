#include "model/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/quant/quant.h"
#include "suanli/gguf.h"

namespace suanli {
namespace {

// Published configurations of each model family (their config.json values).
const std::vector<SynthShape> kShapes = {
    {"smollm2-135m", "llama", 30, 576, 1536, 9, 3, 64, 49152, 8192, 100000.0, true},
    {"qwen2.5-0.5b", "qwen2", 24, 896, 4864, 14, 2, 64, 151936, 32768, 1000000.0, true},
    {"qwen3-0.6b", "qwen3", 28, 1024, 3072, 16, 8, 128, 151936, 40960, 1000000.0, true},
    {"llama3.2-1b", "llama", 16, 2048, 8192, 32, 8, 64, 128256, 131072, 500000.0, true, 32.0, 1.0, 4.0, 8192},
    {"llama3-8b", "llama", 32, 4096, 14336, 32, 8, 128, 128256, 8192, 500000.0, false},
};

// splitmix64: a small, fast, well-mixed generator; each chunk of each tensor
// has its own stream, so output does not depend on the thread count.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Approximately standard normal: Irwin-Hall sum of 4 uniforms, rescaled.
  // Bounded tails (|x| < 3.47) keep quantized blocks well-behaved.
  float normal() {
    uint64_t r = next();
    float sum = 0;
    for (int i = 0; i < 4; ++i) sum += static_cast<float>((r >> (16 * i)) & 0xffff) * (1.0f / 65536.0f);
    return (sum - 2.0f) * 1.7320508f;
  }
};

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

enum class Init { kWeight, kNorm, kBias };

struct TensorPlan {
  std::string name;
  std::vector<int64_t> shape;
  GgmlType type;
  Init init;
  std::vector<float> fixed;  // exact values (rope_freqs), else random
};

GgmlType fit_type(GgmlType want, int64_t ne0) {
  if (ne0 % traits(want).block_size == 0) return want;
  if (ne0 % traits(GgmlType::kQ8_0).block_size == 0) return GgmlType::kQ8_0;
  return GgmlType::kF16;
}

Status encode_row(GgmlType type, const float* src, uint8_t* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return Status::Ok();
    default:
      return quant::quantize(type, src, dst, n);
  }
}

// Fills one tensor: rows split into fixed chunks across threads.
Status fill_tensor(const TensorPlan& t, uint64_t seed, int threads, uint8_t* dst, uint64_t n_bytes) {
  const int64_t ne0 = t.shape[0];
  int64_t rows = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) rows *= t.shape[i];
  const int64_t row_size = row_bytes(t.type, ne0);
  SUANLI_CHECK(static_cast<uint64_t>(row_size * rows) == n_bytes);
  if (!t.fixed.empty()) return encode_row(t.type, t.fixed.data(), dst, ne0 * rows);

  constexpr int64_t kChunkRows = 64;
  const int64_t n_chunks = (rows + kChunkRows - 1) / kChunkRows;
  const float scale = t.init == Init::kWeight ? 0.02f : (t.init == Init::kBias ? 0.02f : 0.1f);
  std::vector<Status> errors(threads);
  auto work = [&](int tid) {
    std::vector<float> buf(ne0);
    for (int64_t c = tid; c < n_chunks; c += threads) {
      Rng rng{seed ^ hash_name(t.name) ^ (static_cast<uint64_t>(c) * 0x2545f4914f6cdd1dull)};
      for (int64_t r = c * kChunkRows; r < std::min(rows, (c + 1) * kChunkRows); ++r) {
        for (int64_t i = 0; i < ne0; ++i) {
          float x = rng.normal() * scale;
          buf[i] = t.init == Init::kNorm ? 1.0f + x : x;
        }
        Status s = encode_row(t.type, buf.data(), dst + r * row_size, ne0);
        if (!s.ok()) {
          errors[tid] = s;
          return;
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(work, i);
  work(0);
  for (std::thread& th : pool) th.join();
  for (const Status& s : errors) SUANLI_RETURN_IF_ERROR(s);
  return Status::Ok();
}

std::vector<TensorPlan> plan_tensors(const SynthShape& s, int64_t n_layer, int64_t n_vocab, GgmlType type) {
  std::vector<TensorPlan> plan;
  auto matrix = [&](std::string name, int64_t ne0, int64_t ne1) {
    plan.push_back({std::move(name), {ne0, ne1}, fit_type(type, ne0), Init::kWeight, {}});
  };
  auto vec = [&](std::string name, int64_t n, Init init) {
    plan.push_back({std::move(name), {n}, GgmlType::kF32, init, {}});
  };
  const int64_t q_dim = s.n_head * s.head_dim;
  const int64_t kv_dim = s.n_head_kv * s.head_dim;
  matrix("token_embd.weight", s.n_embd, n_vocab);
  if (s.rope_llama3_factor > 0) {
    plan.push_back({"rope_freqs.weight", {s.head_dim / 2}, GgmlType::kF32, Init::kNorm, llama3_rope_factors(s)});
  }
  for (int64_t l = 0; l < n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", s.n_embd, Init::kNorm);
    matrix(b + "attn_q.weight", s.n_embd, q_dim);
    matrix(b + "attn_k.weight", s.n_embd, kv_dim);
    matrix(b + "attn_v.weight", s.n_embd, kv_dim);
    if (s.architecture == "qwen2") {
      vec(b + "attn_q.bias", q_dim, Init::kBias);
      vec(b + "attn_k.bias", kv_dim, Init::kBias);
      vec(b + "attn_v.bias", kv_dim, Init::kBias);
    }
    if (s.architecture == "qwen3") {
      vec(b + "attn_q_norm.weight", s.head_dim, Init::kNorm);
      vec(b + "attn_k_norm.weight", s.head_dim, Init::kNorm);
    }
    matrix(b + "attn_output.weight", q_dim, s.n_embd);
    vec(b + "ffn_norm.weight", s.n_embd, Init::kNorm);
    matrix(b + "ffn_gate.weight", s.n_embd, s.n_ff);
    matrix(b + "ffn_up.weight", s.n_embd, s.n_ff);
    matrix(b + "ffn_down.weight", s.n_ff, s.n_embd);
  }
  vec("output_norm.weight", s.n_embd, Init::kNorm);
  if (!s.tied_embeddings) matrix("output.weight", s.n_embd, n_vocab);
  return plan;
}

// Copies tokenizer.* metadata, padding the vocabulary to n_vocab with unused
// tokens. Returns the resulting vocabulary size.
Expected<int64_t> copy_tokenizer(const GgufFile& src, int64_t n_vocab, GgufWriter& w) {
  SUANLI_ASSIGN_OR_RETURN(const GgufArray* tokens, src.get_array("tokenizer.ggml.tokens"));
  if (tokens->elem_type != GgufType::kString || tokens->size() == 0) {
    return InvalidArgument("tokenizer.ggml.tokens is not a non-empty string array");
  }
  const int64_t have = static_cast<int64_t>(tokens->size());
  const int64_t want = std::max(have, n_vocab);
  for (const auto& [key, value] : src.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    const GgufArray* a = value.as_array();
    bool per_token = a && static_cast<int64_t>(a->size()) == have &&
                     (key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.token_type" ||
                      key == "tokenizer.ggml.scores");
    if (!per_token || want == have) {
      w.set(key, value);
      continue;
    }
    GgufArray padded = *a;
    for (int64_t i = have; i < want; ++i) {
      if (key == "tokenizer.ggml.tokens") {
        padded.strings.push_back("<|synth_pad_" + std::to_string(i) + "|>");
      } else if (key == "tokenizer.ggml.token_type") {
        int32_t unused = 5;  // llama.cpp's LLAMA_TOKEN_TYPE_UNUSED
        const uint8_t* p = reinterpret_cast<const uint8_t*>(&unused);
        padded.raw.insert(padded.raw.end(), p, p + 4);
      } else {
        float zero = 0.0f;
        const uint8_t* p = reinterpret_cast<const uint8_t*>(&zero);
        padded.raw.insert(padded.raw.end(), p, p + 4);
      }
    }
    w.set(key, GgufValue(std::move(padded)));
  }
  return want;
}

}  // namespace

const std::vector<SynthShape>& synth_shapes() { return kShapes; }

const SynthShape* find_synth_shape(const std::string& name) {
  for (const SynthShape& s : kShapes) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::vector<float> llama3_rope_factors(const SynthShape& s) {
  // Llama 3.1's published rule: keep high frequencies, divide low ones by
  // the factor, interpolate smoothly in between.
  const double low_wavelen = s.rope_llama3_original_ctx / s.rope_llama3_low;
  const double high_wavelen = s.rope_llama3_original_ctx / s.rope_llama3_high;
  std::vector<float> out;
  for (int64_t i = 0; i < s.head_dim / 2; ++i) {
    double freq = 1.0 / std::pow(s.rope_freq_base, 2.0 * i / s.head_dim);
    double wavelen = 2 * M_PI / freq;
    double factor;
    if (wavelen < high_wavelen) {
      factor = 1.0;
    } else if (wavelen > low_wavelen) {
      factor = s.rope_llama3_factor;
    } else {
      double smooth = (s.rope_llama3_original_ctx / wavelen - s.rope_llama3_low) /
                      (s.rope_llama3_high - s.rope_llama3_low);
      factor = 1.0 / ((1 - smooth) / s.rope_llama3_factor + smooth);
    }
    out.push_back(static_cast<float>(factor));
  }
  return out;
}

Status synth_model(const SynthOptions& opt) {
  const SynthShape* shape = find_synth_shape(opt.shape);
  if (!shape) {
    std::string names;
    for (const SynthShape& s : kShapes) names += (names.empty() ? "" : ", ") + s.name;
    return InvalidArgument("unknown shape '" + opt.shape + "' (known: " + names + ")");
  }
  const GgmlType t = opt.type;
  if (t != GgmlType::kF32 && !quant::can_quantize(t)) {
    return InvalidArgument("cannot write weights of type " + std::string(ggml_type_name(t)));
  }
  if (opt.layers && (*opt.layers < 1 || *opt.layers > 1024)) return InvalidArgument("--layers must be 1 to 1024");
  const int64_t n_layer = opt.layers.value_or(shape->n_layer);
  if (opt.tokenizer_from.empty()) return InvalidArgument("a tokenizer source GGUF is required");
  SUANLI_ASSIGN_OR_RETURN(GgufFile tok, GgufFile::open(opt.tokenizer_from));

  GgufWriter w;
  const std::string& arch = shape->architecture;
  w.set("general.architecture", arch);
  w.set("general.name", "synth " + shape->name);
  w.set("general.description", std::string("random weights from suanli synth (seed ") + std::to_string(opt.seed) + ")");
  w.set("general.quantization_version", uint32_t{2});
  if (std::optional<uint32_t> ft = gguf_file_type(t)) w.set("general.file_type", *ft);
  w.set(arch + ".block_count", static_cast<uint32_t>(n_layer));
  w.set(arch + ".context_length", static_cast<uint32_t>(shape->n_ctx));
  w.set(arch + ".embedding_length", static_cast<uint32_t>(shape->n_embd));
  w.set(arch + ".feed_forward_length", static_cast<uint32_t>(shape->n_ff));
  w.set(arch + ".attention.head_count", static_cast<uint32_t>(shape->n_head));
  w.set(arch + ".attention.head_count_kv", static_cast<uint32_t>(shape->n_head_kv));
  if (shape->head_dim * shape->n_head != shape->n_embd) {
    w.set(arch + ".attention.key_length", static_cast<uint32_t>(shape->head_dim));
    w.set(arch + ".attention.value_length", static_cast<uint32_t>(shape->head_dim));
  }
  w.set(arch + ".rope.freq_base", static_cast<float>(shape->rope_freq_base));
  w.set(arch + ".rope.dimension_count", static_cast<uint32_t>(shape->head_dim));
  w.set(arch + ".attention.layer_norm_rms_epsilon", arch == "llama" ? 1e-5f : 1e-6f);
  SUANLI_ASSIGN_OR_RETURN(int64_t n_vocab, copy_tokenizer(tok, shape->n_vocab, w));
  w.set(arch + ".vocab_size", static_cast<uint32_t>(n_vocab));

  const int threads = opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<TensorPlan> plan = plan_tensors(*shape, n_layer, n_vocab, t);
  size_t done = 0;
  const size_t total = plan.size();
  for (TensorPlan& p : plan) {
    auto shared = std::make_shared<TensorPlan>(std::move(p));
    Status s = w.add_tensor_lazy(shared->name, shared->type, shared->shape,
                                 [shared, &opt, threads, &done, total](uint8_t* dst, uint64_t n) {
                                   Status st = fill_tensor(*shared, opt.seed, threads, dst, n);
                                   if (opt.progress) std::fprintf(stderr, "\rsynth: %zu/%zu tensors", ++done, total);
                                   return st;
                                 });
    SUANLI_RETURN_IF_ERROR(s);
  }
  Status st = w.write(opt.out_path);
  if (opt.progress) std::fprintf(stderr, "\n");
  return st;
}

}  // namespace suanli
