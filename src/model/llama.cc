// The Llama family forward pass (llama, qwen2, qwen3) over the op set.
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "suanli/kv_cache.h"
#include "suanli/model.h"

namespace suanli {

void Batch::clear() {
  tokens.clear();
  positions.clear();
  slots.clear();
  seqs.clear();
  logits_for.clear();
}

struct Model::Layer {
  const float* attn_norm = nullptr;  // [n_embd]
  WeightView wq, wk, wv, wo;         // [q_dim][n_embd], [kv_dim][n_embd] x2, [n_embd][q_dim]
  const float* bq = nullptr;         // [q_dim]   (qwen2)
  const float* bk = nullptr;         // [kv_dim]  (qwen2)
  const float* bv = nullptr;         // [kv_dim]  (qwen2)
  const float* q_norm = nullptr;     // [head_dim] (qwen3)
  const float* k_norm = nullptr;     // [head_dim] (qwen3)
  const float* ffn_norm = nullptr;   // [n_embd]
  WeightView gate, up, down;         // [n_ff][n_embd] x2, [n_embd][n_ff]
  // Set by prepare_weights when the device stacked q/k/v (gate/up): one
  // matmul writes q, k, v ([T][q_dim], [T][kv_dim] x2) one after another.
  bool fused_qkv = false, fused_gate_up = false;
  WeightView wqkv, gate_up;
  const float* bqkv = nullptr;  // [q_dim + 2 kv_dim] (qwen2)
  const float* rope_freqs = nullptr;  // [rope_dim / 2] on this layer's device, or null
  int dev = 0;                  // index into Workspace::per_dev: the device it runs on
};

// Activation buffers on each device the layers run on, sized for
// max_batch_tokens.
struct Model::DevWs {
  Device* dev = nullptr;
  std::unique_ptr<Buffer> x, h, qkv, attn, ffn, ids, positions, slots, block_tables, logits_in, logits;
  std::vector<SeqSlice> seqs;
  int64_t max_logits_rows = 0;
};
struct Model::Workspace {
  std::vector<DevWs> per_dev;
  std::vector<int32_t> host_tables;
  std::vector<float> host_x;  // the hidden state crossing from one device to the next
};

namespace {

int64_t q_dim(const ModelInfo& m) { return m.n_head * m.head_dim; }
int64_t kv_dim(const ModelInfo& m) { return m.n_head_kv * m.head_dim; }

}  // namespace

Model::Model(GgufFile file, Device& device) : file_(std::move(file)), device_(device) {}
Model::~Model() = default;

Expected<std::unique_ptr<Model>> Model::load(const std::string& path, Device& device, const ModelOptions& options) {
  SUANLI_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(path));
  std::unique_ptr<Model> m(new Model(std::move(file), device));
  Expected<ModelInfo> info = ModelInfo::from_gguf(m->file_);
  if (!info) return info.status().with_context(path);
  m->info_ = *info;
  const std::string& arch = m->info_.architecture;
  if (arch == "llama") {
    m->neox_rope_ = false;
  } else if (arch == "qwen2") {
    m->neox_rope_ = true;
    m->qkv_bias_ = true;
  } else if (arch == "qwen3") {
    m->neox_rope_ = true;
    m->qk_norm_ = true;
  } else {
    return Unsupported(path + ": architecture '" + arch + "' is not supported (llama, qwen2, qwen3)");
  }
  if (m->info_.n_vocab <= 0) return CorruptData(path + ": the model has no vocabulary");
  // Scaling types other than linear change every position's rotation
  // (YaRN also the attention's scale): running without them would be
  // silently wrong. (Llama 3's scaling comes as rope_freqs.weight.)
  if (const std::string& st = m->info_.rope_scaling_type; !st.empty() && st != "none" && st != "linear") {
    return Unsupported(path + ": rope scaling type '" + st + "' is not supported (none, linear)");
  }
  if (options.max_batch_tokens < 1 || options.max_batch_tokens > (1 << 20)) {
    return InvalidArgument("max_batch_tokens must be 1 to 1048576");
  }
  if (!options.layer_devices.empty()) {
    if (static_cast<int64_t>(options.layer_devices.size()) != m->info_.n_layer) {
      return InvalidArgument("the device map names " + std::to_string(options.layer_devices.size()) +
                             " layers; the model has " + std::to_string(m->info_.n_layer));
    }
    m->layer_dev_ = options.layer_devices;
    for (Device*& d : m->layer_dev_) {
      if (!d) d = &device;
    }
  } else {
    m->layer_dev_.assign(static_cast<size_t>(std::max<int64_t>(m->info_.n_layer, 0)), &device);
  }
  Status s = m->bind_weights();
  if (s.ok() && options.prepare_weights) s = m->prepare_weights();
  if (!s.ok()) return s.with_context(path);
  SUANLI_RETURN_IF_ERROR(m->allocate(options.max_batch_tokens));
  return m;
}

Status Model::bind_weights() {
  const ModelInfo& mi = info_;
  const GgufFile& f = file_;
  // Devices: the token embedding sits with layer 0, the output head with
  // the last layer (with no layers, both on the load device).
  Device& first = layer_dev_.empty() ? device_ : *layer_dev_.front();
  Device& last = layer_dev_.empty() ? device_ : *layer_dev_.back();
  // Each tensor is mapped on the device that uses it: zero-copy on the
  // CPU, one upload elsewhere (a tensor two devices use is on both).
  std::map<std::pair<Device*, const GgufTensorInfo*>, const uint8_t*> mapped;
  auto map_on = [&](Device& d, const GgufTensorInfo* t) -> Expected<const uint8_t*> {
    auto it = mapped.find({&d, t});
    if (it != mapped.end()) return it->second;
    SUANLI_ASSIGN_OR_RETURN(std::unique_ptr<Buffer> b, d.map_host(f.data_section() + t->offset, t->n_bytes));
    const uint8_t* p = static_cast<const uint8_t*>(b->data());
    weights_.push_back(std::move(b));
    mapped[{&d, t}] = p;
    return p;
  };

  auto find = [&](const std::string& name, std::vector<int64_t> shape) -> Expected<const GgufTensorInfo*> {
    const GgufTensorInfo* t = f.find_tensor(name);
    if (!t) return CorruptData("missing tensor '" + name + "'");
    if (t->shape != shape) {
      std::string want, got;
      for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
      for (int64_t d : t->shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      return CorruptData("tensor '" + name + "' has shape [" + got + "], the metadata implies [" + want + "]");
    }
    return t;
  };
  auto matrix = [&](Device& dev, const std::string& name, int64_t n_cols, int64_t n_rows) -> Expected<WeightView> {
    SUANLI_ASSIGN_OR_RETURN(const GgufTensorInfo* t, find(name, {n_cols, n_rows}));
    if (!dev.caps().supports(t->type)) {
      return Unsupported("tensor '" + name + "' is " + std::string(ggml_type_name(t->type)) + ", which " +
                         dev.name() + " cannot multiply");
    }
    WeightView w;
    SUANLI_ASSIGN_OR_RETURN(w.data, map_on(dev, t));
    w.type = t->type;
    w.n_rows = n_rows;
    w.n_cols = n_cols;
    w.row_stride = static_cast<size_t>(row_bytes(t->type, n_cols));
    return w;
  };
  auto vec = [&](Device& dev, const std::string& name, int64_t n) -> Expected<const float*> {
    SUANLI_ASSIGN_OR_RETURN(const GgufTensorInfo* t, find(name, {n}));
    if (t->type != GgmlType::kF32) {
      return Unsupported("tensor '" + name + "' is " + std::string(ggml_type_name(t->type)) + "; vectors must be F32");
    }
    SUANLI_ASSIGN_OR_RETURN(const uint8_t* p, map_on(dev, t));
    return reinterpret_cast<const float*>(p);
  };

  const int64_t E = mi.n_embd, Q = q_dim(mi), KV = kv_dim(mi), F = mi.n_ff;
  SUANLI_ASSIGN_OR_RETURN(token_embd_, matrix(first, "token_embd.weight", E, mi.n_vocab));
  const bool tied = !f.find_tensor("output.weight");
  SUANLI_ASSIGN_OR_RETURN(output_, matrix(last, tied ? "token_embd.weight" : "output.weight", E, mi.n_vocab));
  SUANLI_ASSIGN_OR_RETURN(output_norm_, vec(last, "output_norm.weight", E));
  if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    SUANLI_RETURN_IF_ERROR(find("rope_freqs.weight", {mi.rope_dim / 2}).status());
    if (rf->type != GgmlType::kF32) return Unsupported("rope_freqs.weight must be F32");
    // Checked on the file's bytes (device pointers may not be readable here).
    for (int64_t i = 0; i < mi.rope_dim / 2; ++i) {
      float v;
      std::memcpy(&v, f.data_section() + rf->offset + i * sizeof(float), sizeof v);
      if (!(v > 0) || !std::isfinite(v)) {
        return CorruptData("rope_freqs.weight holds a non-positive or non-finite factor");
      }
    }
  }
  layers_.resize(mi.n_layer);
  for (int64_t l = 0; l < mi.n_layer; ++l) {
    Layer& L = layers_[l];
    Device& dev = *layer_dev_[l];
    if (f.find_tensor("rope_freqs.weight")) {
      // On each layer's device (mapped once per device).
      SUANLI_ASSIGN_OR_RETURN(const float* rf, vec(dev, "rope_freqs.weight", mi.rope_dim / 2));
      L.rope_freqs = rf;
    }
    const std::string p = "blk." + std::to_string(l) + ".";
    SUANLI_ASSIGN_OR_RETURN(L.attn_norm, vec(dev, p + "attn_norm.weight", E));
    SUANLI_ASSIGN_OR_RETURN(L.wq, matrix(dev, p + "attn_q.weight", E, Q));
    SUANLI_ASSIGN_OR_RETURN(L.wk, matrix(dev, p + "attn_k.weight", E, KV));
    SUANLI_ASSIGN_OR_RETURN(L.wv, matrix(dev, p + "attn_v.weight", E, KV));
    SUANLI_ASSIGN_OR_RETURN(L.wo, matrix(dev, p + "attn_output.weight", Q, E));
    if (qkv_bias_) {
      SUANLI_ASSIGN_OR_RETURN(L.bq, vec(dev, p + "attn_q.bias", Q));
      SUANLI_ASSIGN_OR_RETURN(L.bk, vec(dev, p + "attn_k.bias", KV));
      SUANLI_ASSIGN_OR_RETURN(L.bv, vec(dev, p + "attn_v.bias", KV));
    }
    if (qk_norm_) {
      SUANLI_ASSIGN_OR_RETURN(L.q_norm, vec(dev, p + "attn_q_norm.weight", mi.head_dim));
      SUANLI_ASSIGN_OR_RETURN(L.k_norm, vec(dev, p + "attn_k_norm.weight", mi.head_dim));
    }
    SUANLI_ASSIGN_OR_RETURN(L.ffn_norm, vec(dev, p + "ffn_norm.weight", E));
    SUANLI_ASSIGN_OR_RETURN(L.gate, matrix(dev, p + "ffn_gate.weight", E, F));
    SUANLI_ASSIGN_OR_RETURN(L.up, matrix(dev, p + "ffn_up.weight", E, F));
    SUANLI_ASSIGN_OR_RETURN(L.down, matrix(dev, p + "ffn_down.weight", F, E));
  }
  return Status::Ok();
}

Status Model::prepare_weights() {
  Device* dp = &device_;
  // One matrix in the device's layout; unchanged when it has none.
  // Once a matrix has a rewritten copy, its bytes in the mapped file are not
  // read again (the token embedding excepted: embed reads it): give those
  // pages back so the process does not hold the weights twice. Only for
  // views into the file mapping itself (host devices map it zero-copy); a
  // later read would fault the pages back in, so this is never unsafe.
  const uint8_t* file_begin = file_.data_section();
  const uint8_t* file_end = file_begin + (file_.file_size() - file_.data_offset());
  const uint8_t* embd = static_cast<const uint8_t*>(token_embd_.data);
  auto release = [&](const WeightView& w) {
    const uint8_t* b = static_cast<const uint8_t*>(w.data);
    const size_t n = w.row_stride * static_cast<size_t>(w.n_rows);
    if (b < file_begin || b + n > file_end || b == embd) return;
    const uintptr_t page = 4096;
    const uintptr_t lo = (reinterpret_cast<uintptr_t>(b) + page - 1) / page * page;
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(b) + n) / page * page;
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  };
  auto single = [&](WeightView& w) -> Status {
    Device& d = *dp;
    Expected<PreparedWeight> p = d.prepare_weights({w});
    if (!p) return p.status().code() == StatusCode::kUnsupported ? Status::Ok() : p.status();
    if (p->storage) {
      release(w);
      prepared_.push_back(std::move(p->storage));
    }
    w = p->view;
    return Status::Ok();
  };
  // Stacked matrices; false when the device cannot stack these.
  auto stacked = [&](const std::vector<WeightView>& parts, WeightView& out) -> Expected<bool> {
    Expected<PreparedWeight> p = dp->prepare_weights(parts);
    if (!p) {
      if (p.status().code() == StatusCode::kUnsupported) return false;
      return p.status();
    }
    out = p->view;
    if (p->storage) {
      for (const WeightView& w : parts) release(w);
      prepared_.push_back(std::move(p->storage));
    }
    return true;
  };
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& L = layers_[l];
    dp = layer_dev_[l];
    Device& d = *dp;
    SUANLI_ASSIGN_OR_RETURN(L.fused_qkv, stacked({L.wq, L.wk, L.wv}, L.wqkv));
    if (L.fused_qkv && qkv_bias_) {
      const int64_t Q = L.wq.n_rows, KV = L.wk.n_rows;
      std::vector<float> b(static_cast<size_t>(Q + 2 * KV));
      SUANLI_RETURN_IF_ERROR(d.download(b.data(), L.bq, Q * sizeof(float)));
      SUANLI_RETURN_IF_ERROR(d.download(b.data() + Q, L.bk, KV * sizeof(float)));
      SUANLI_RETURN_IF_ERROR(d.download(b.data() + Q + KV, L.bv, KV * sizeof(float)));
      SUANLI_ASSIGN_OR_RETURN(std::unique_ptr<Buffer> buf, d.alloc(b.size() * sizeof(float)));
      SUANLI_RETURN_IF_ERROR(d.upload(buf->data(), b.data(), b.size() * sizeof(float)));
      L.bqkv = static_cast<const float*>(buf->data());
      prepared_.push_back(std::move(buf));
    }
    if (!L.fused_qkv) {
      for (WeightView* w : {&L.wq, &L.wk, &L.wv}) SUANLI_RETURN_IF_ERROR(single(*w));
    }
    SUANLI_ASSIGN_OR_RETURN(L.fused_gate_up, stacked({L.gate, L.up}, L.gate_up));
    if (!L.fused_gate_up) {
      SUANLI_RETURN_IF_ERROR(single(L.gate));
      SUANLI_RETURN_IF_ERROR(single(L.up));
    }
    SUANLI_RETURN_IF_ERROR(single(L.wo));
    SUANLI_RETURN_IF_ERROR(single(L.down));
  }
  // token_embd_ keeps the file's layout for embed; output_ may be the same
  // bytes (tied embeddings), prepared as its own copy.
  dp = layer_dev_.empty() ? &device_ : layer_dev_.back();
  return single(output_);
}

Status Model::allocate(int64_t T) {
  max_batch_tokens_ = T;
  ws_ = std::make_unique<Workspace>();
  const ModelInfo& mi = info_;
  // One workspace per distinct device, in layer order (the load device
  // when there are no layers).
  std::vector<Device*> order;
  for (Device* d : layer_dev_) {
    if (std::find(order.begin(), order.end(), d) == order.end()) order.push_back(d);
  }
  if (order.empty()) order.push_back(&device_);
  for (size_t l = 0; l < layers_.size(); ++l) {
    layers_[l].dev = static_cast<int>(std::find(order.begin(), order.end(), layer_dev_[l]) - order.begin());
  }
  const int64_t wide = std::max({mi.n_embd, q_dim(mi)});
  for (Device* d : order) {
    DevWs& w = ws_->per_dev.emplace_back();
    w.dev = d;
    auto floats = [&](std::unique_ptr<Buffer>& b, int64_t n) -> Status {
      SUANLI_ASSIGN_OR_RETURN(b, d->alloc(static_cast<size_t>(n) * sizeof(float)));
      return Status::Ok();
    };
    SUANLI_RETURN_IF_ERROR(floats(w.x, T * mi.n_embd));
    SUANLI_RETURN_IF_ERROR(floats(w.h, T * wide));
    SUANLI_RETURN_IF_ERROR(floats(w.qkv, T * (q_dim(mi) + 2 * kv_dim(mi))));
    SUANLI_RETURN_IF_ERROR(floats(w.attn, T * q_dim(mi)));
    SUANLI_RETURN_IF_ERROR(floats(w.ffn, 2 * T * mi.n_ff));
    SUANLI_RETURN_IF_ERROR(floats(w.ids, T));
    SUANLI_RETURN_IF_ERROR(floats(w.positions, T));
    SUANLI_RETURN_IF_ERROR(floats(w.slots, T));
    SUANLI_RETURN_IF_ERROR(floats(w.logits_in, T * mi.n_embd));
    // Logits for every token of a full batch would be T x n_vocab floats;
    // grow on demand instead (most steps want one row per sequence).
  }
  return Status::Ok();
}

uint64_t Model::weight_bytes_per_token() const {
  uint64_t bytes = 0;
  for (const WeightView& w : decode_weights()) bytes += static_cast<uint64_t>(w.row_stride) * w.n_rows;
  return bytes;
}

std::vector<WeightView> Model::decode_weights() const {
  std::vector<WeightView> out;
  for (const Layer& L : layers_) {
    if (L.fused_qkv) {
      out.push_back(L.wqkv);
    } else {
      out.insert(out.end(), {L.wq, L.wk, L.wv});
    }
    out.push_back(L.wo);
    if (L.fused_gate_up) {
      out.push_back(L.gate_up);
    } else {
      out.insert(out.end(), {L.gate, L.up});
    }
    out.push_back(L.down);
  }
  out.push_back(output_);
  return out;
}

Status Model::check_batch(const Batch& b, const KvCache& kv) const {
  const int64_t T = static_cast<int64_t>(b.tokens.size());
  if (T < 1) return InvalidArgument("empty batch");
  if (T > max_batch_tokens_) {
    return InvalidArgument("batch of " + std::to_string(T) + " tokens exceeds max_batch_tokens " +
                           std::to_string(max_batch_tokens_));
  }
  if (static_cast<int64_t>(b.positions.size()) != T || static_cast<int64_t>(b.slots.size()) != T) {
    return InvalidArgument("batch positions/slots do not match its tokens");
  }
  for (int32_t id : b.tokens) {
    if (id < 0 || id >= info_.n_vocab) {
      return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(info_.n_vocab) + ")");
    }
  }
  const int64_t n_slots = static_cast<int64_t>(kv.n_blocks()) * kv.block_size();
  for (int32_t s : b.slots) {
    if (s < 0 || s >= n_slots) return InvalidArgument("KV slot out of range");
  }
  int64_t covered = 0;
  for (const Batch::Seq& s : b.seqs) {
    if (s.first_token != covered || s.n_tokens < 1 || s.n_past < 0) {
      return InvalidArgument("batch sequences must cover the tokens contiguously");
    }
    covered += s.n_tokens;
    const int64_t keys = static_cast<int64_t>(s.n_past) + s.n_tokens;
    if (static_cast<int64_t>(s.block_table.size()) * kv.block_size() < keys) {
      return InvalidArgument("a sequence's block table does not cover its keys");
    }
    for (int32_t blk : s.block_table) {
      if (blk < 0 || blk >= kv.n_blocks()) return InvalidArgument("block id out of range");
    }
    for (int32_t j = 0; j < s.n_tokens; ++j) {
      if (b.positions[s.first_token + j] != s.n_past + j) return InvalidArgument("positions must follow n_past");
    }
  }
  if (covered != T) return InvalidArgument("batch sequences do not cover all tokens");
  for (int32_t i : b.logits_for) {
    if (i < 0 || i >= T) return InvalidArgument("logits requested for a token outside the batch");
  }
  return Status::Ok();
}

Status Model::forward(const Batch& batch, KvCache& kv, float* logits) {
  SUANLI_RETURN_IF_ERROR(check_batch(batch, kv));
  const ModelInfo& mi = info_;
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  const int64_t E = mi.n_embd, F = mi.n_ff, D = mi.head_dim;
  Workspace& ws = *ws_;
  auto f32 = [](std::unique_ptr<Buffer>& b) { return static_cast<float*>(b->data()); };
  auto i32 = [](std::unique_ptr<Buffer>& b) { return static_cast<int32_t*>(b->data()); };
  for (int64_t l = 0; l < mi.n_layer; ++l) {
    if (kv.layer_device(l) != layer_dev_[l]) {
      return InvalidArgument("the KV cache of layer " + std::to_string(l) + " is not on the layer's device");
    }
  }

  // Batch metadata to every device: ids, positions, slots, block tables.
  ws.host_tables.clear();
  for (const Batch::Seq& s : batch.seqs) {
    ws.host_tables.insert(ws.host_tables.end(), s.block_table.begin(), s.block_table.end());
  }
  const size_t table_bytes = std::max<size_t>(1, ws.host_tables.size()) * sizeof(int32_t);
  for (DevWs& w : ws.per_dev) {
    Device& d = *w.dev;
    SUANLI_RETURN_IF_ERROR(d.upload(w.ids->data(), batch.tokens.data(), T * sizeof(int32_t)));
    SUANLI_RETURN_IF_ERROR(d.upload(w.positions->data(), batch.positions.data(), T * sizeof(int32_t)));
    SUANLI_RETURN_IF_ERROR(d.upload(w.slots->data(), batch.slots.data(), T * sizeof(int32_t)));
    if (!w.block_tables || w.block_tables->size() < table_bytes) {
      SUANLI_ASSIGN_OR_RETURN(w.block_tables, d.alloc(table_bytes * 2));
    }
    if (!ws.host_tables.empty()) {
      SUANLI_RETURN_IF_ERROR(
          d.upload(w.block_tables->data(), ws.host_tables.data(), ws.host_tables.size() * sizeof(int32_t)));
    }
    w.seqs.clear();
    size_t table_off = 0;
    for (const Batch::Seq& s : batch.seqs) {
      SeqSlice sl;
      sl.first_token = s.first_token;
      sl.n_tokens = s.n_tokens;
      sl.n_past = s.n_past;
      sl.block_table = i32(w.block_tables) + table_off;
      sl.n_blocks = static_cast<int32_t>(s.block_table.size());
      table_off += s.block_table.size();
      w.seqs.push_back(sl);
    }
  }

  RopeParams rope;
  rope.n_dims = static_cast<int32_t>(mi.rope_dim);
  rope.neox = neox_rope_;
  rope.freq_base = static_cast<float>(mi.rope_freq_base);
  rope.freq_scale = mi.rope_scaling_type == "linear" && mi.rope_scaling_factor > 0
                        ? static_cast<float>(1.0 / mi.rope_scaling_factor)
                        : 1.0f;
  const float eps = static_cast<float>(mi.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  // The hidden state x lives on the current device; it moves (through host
  // memory) where consecutive layers sit on different devices.
  DevWs* cur = &ws.per_dev[layers_.empty() ? 0 : layers_[0].dev];
  cur->dev->embed(token_embd_, i32(cur->ids), T, f32(cur->x));  // x: [T][E]
  for (int64_t l = 0; l < mi.n_layer; ++l) {
    const Layer& L = layers_[l];
    DevWs& w = ws.per_dev[L.dev];
    if (&w != cur) {
      ws.host_x.resize(static_cast<size_t>(T * E));
      SUANLI_RETURN_IF_ERROR(cur->dev->synchronize());
      SUANLI_RETURN_IF_ERROR(cur->dev->download(ws.host_x.data(), cur->x->data(), T * E * sizeof(float)));
      SUANLI_RETURN_IF_ERROR(w.dev->upload(w.x->data(), ws.host_x.data(), T * E * sizeof(float)));
      cur = &w;
    }
    Device& d = *w.dev;
    float* x = f32(w.x);
    float* h = f32(w.h);
    // q, k, v one after another (as a stacked q/k/v matmul writes them); so
    // are the gate and up projections.
    float* q = f32(w.qkv);
    float* k = q + T * q_dim(mi);
    float* v = k + T * kv_dim(mi);
    float* attn = f32(w.attn);
    float* fa = f32(w.ffn);
    float* fb = fa + T * F;
    rope.freq_factors = L.rope_freqs;
    const KvLayerView kvl = kv.layer(l);
    // Attention block.
    d.rms_norm(x, L.attn_norm, T, E, eps, h);
    if (L.fused_qkv) {
      d.matmul(h, T, L.wqkv, L.bqkv, q);  // q, k, v
    } else {
      d.matmul(h, T, L.wq, L.bq, q);  // q: [T][n_head][D]
      d.matmul(h, T, L.wk, L.bk, k);  // k: [T][n_head_kv][D]
      d.matmul(h, T, L.wv, L.bv, v);  // v: [T][n_head_kv][D]
    }
    if (qk_norm_) {
      d.rms_norm(q, L.q_norm, T * mi.n_head, D, eps, q);
      d.rms_norm(k, L.k_norm, T * mi.n_head_kv, D, eps, k);
    }
    d.rope(q, T, mi.n_head, D, i32(w.positions), rope);
    d.rope(k, T, mi.n_head_kv, D, i32(w.positions), rope);
    d.kv_write(kvl, k, v, T, i32(w.slots));
    d.attention(q, T, mi.n_head, kvl, w.seqs.data(), static_cast<int32_t>(w.seqs.size()), scale, attn);
    d.matmul(attn, T, L.wo, nullptr, h);  // h: [T][E]
    d.add(x, h, T * E, x);
    // Feed-forward block.
    d.rms_norm(x, L.ffn_norm, T, E, eps, h);
    if (L.fused_gate_up) {
      d.matmul(h, T, L.gate_up, nullptr, fa);  // fa, fb
    } else {
      d.matmul(h, T, L.gate, nullptr, fa);  // [T][F]
      d.matmul(h, T, L.up, nullptr, fb);    // [T][F]
    }
    d.swiglu(fa, fb, T * F, fa);
    d.matmul(fa, T, L.down, nullptr, h);  // [T][E]
    d.add(x, h, T * E, x);
  }

  // Logits only for the rows asked for, on the last layer's device.
  Device& d = *cur->dev;
  const int64_t R = static_cast<int64_t>(batch.logits_for.size());
  if (R == 0) return d.synchronize();
  float* x = f32(cur->x);
  float* rows = f32(cur->logits_in);
  for (int64_t r = 0; r < R; ++r) {
    d.convert(x + static_cast<int64_t>(batch.logits_for[r]) * E, GgmlType::kF32, rows + r * E, GgmlType::kF32, E);
  }
  d.rms_norm(rows, output_norm_, R, E, eps, rows);
  if (cur->max_logits_rows < R) {
    SUANLI_ASSIGN_OR_RETURN(cur->logits, d.alloc(static_cast<size_t>(R) * mi.n_vocab * sizeof(float)));
    cur->max_logits_rows = R;
  }
  d.matmul(rows, R, output_, nullptr, f32(cur->logits));
  SUANLI_RETURN_IF_ERROR(d.synchronize());
  return d.download(logits, cur->logits->data(), static_cast<size_t>(R) * mi.n_vocab * sizeof(float));
}

}  // namespace suanli
