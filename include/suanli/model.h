// A loaded model of the Llama family (llama, qwen2, qwen3) on one device,
// and the batch it runs.
//
// Model::load validates the file's metadata and every tensor's presence,
// shape and type before anything runs: a bad file is an error at load, never
// a crash in the forward pass. Weights stay in the mapped file (zero-copy on
// host devices). forward() runs one Batch through the op set: every weight
// byte is read once per step for all the batch's tokens.
//
// Thread safety: a Model is driven by one thread at a time (its engine's
// loop); it owns activation workspaces sized for max_batch_tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "suanli/device.h"
#include "suanli/gguf.h"
#include "suanli/model_info.h"
#include "suanli/status.h"

namespace suanli {

class KvCache;

// One forward step: T tokens from one or more sequences, flattened. Tokens of
// a sequence are contiguous and in position order.
struct Batch {
  std::vector<int32_t> tokens;     // [T]
  std::vector<int32_t> positions;  // [T]
  std::vector<int32_t> slots;      // [T] KV cache slot each token's K/V is written to
  struct Seq {
    int32_t first_token = 0;
    int32_t n_tokens = 0;
    int32_t n_past = 0;                // tokens already in the cache before this step
    std::vector<int32_t> block_table;  // covers n_past + n_tokens keys
  };
  std::vector<Seq> seqs;
  std::vector<int32_t> logits_for;  // batch indices whose logits are wanted, in output order

  void clear();
};

struct ModelOptions {
  int64_t max_batch_tokens = 512;
  // Let the device rewrite the matrices once at load into the layout it
  // multiplies fastest, stacking q/k/v and gate/up where it can
  // (Device::prepare_weights). Costs a copy of those weights in memory.
  bool prepare_weights = true;
  // The device of each layer (one entry per layer; null entries and an
  // empty list mean the device passed to load). The token embedding runs on
  // layer 0's device, the output head on the last layer's; the hidden state
  // crosses between devices through host memory. Lets a model larger than a
  // GPU run its last layers there and the rest on the CPU. The KV cache must
  // be created with the same map (Model::layer_devices()).
  std::vector<Device*> layer_devices;
};

class Model {
 public:
  static Expected<std::unique_ptr<Model>> load(const std::string& path, Device& device,
                                               const ModelOptions& options = {});
  ~Model();

  const ModelInfo& info() const { return info_; }
  const GgufFile& file() const { return file_; }
  Device& device() { return device_; }
  // The device each layer runs on (see ModelOptions::layer_devices).
  const std::vector<Device*>& layer_devices() const { return layer_dev_; }
  int64_t max_batch_tokens() const { return max_batch_tokens_; }
  int64_t n_vocab() const { return info_.n_vocab; }

  // Runs the batch; writes logits [batch.logits_for.size()][n_vocab] to host
  // memory. InvalidArgument for a batch that breaks the contract (token ids
  // out of range, too many tokens, missing blocks) — checked before any op.
  Status forward(const Batch& batch, KvCache& kv, float* logits);

  // Weight bytes one decode step reads (for the memory roofline).
  uint64_t weight_bytes_per_token() const;
  // The matrices one decode step reads, in the order it reads them (as
  // prepared for their devices: stacked q/k/v and gate/up where the device
  // stacked them), the output matrix last.
  std::vector<WeightView> decode_weights() const;

 private:
  struct Layer;
  struct DevWs;
  struct Workspace;
  Model(GgufFile file, Device& device);
  Status bind_weights();
  Status prepare_weights();
  Status allocate(int64_t max_batch_tokens);
  Status check_batch(const Batch& batch, const KvCache& kv) const;

  GgufFile file_;
  Device& device_;
  ModelInfo info_;
  bool neox_rope_ = false;
  bool qkv_bias_ = false;
  bool qk_norm_ = false;
  int64_t max_batch_tokens_ = 0;
  std::vector<std::unique_ptr<Buffer>> weights_;  // tensors mapped on the devices that use them
  std::vector<Device*> layer_dev_;                 // the device of each layer
  std::vector<std::unique_ptr<Buffer>> prepared_;  // weights rewritten by prepare_weights()
  std::vector<Layer> layers_;
  WeightView token_embd_;
  WeightView output_;
  const float* output_norm_ = nullptr;
  std::unique_ptr<Workspace> ws_;
};

}  // namespace suanli
