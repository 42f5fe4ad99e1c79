// suanli inspect FILE [--json] [--full]: what a GGUF file holds.
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "suanli/gguf.h"
#include "suanli/model_info.h"

namespace suanli::cli {
namespace {

using nlohmann::json;

constexpr size_t kSummarizeAfter = 16;  // array elements shown before summarizing

struct InspectOptions {
  std::string path;
  bool json = false;
  bool full = false;
};

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%" PRIu64 " B", b);
  return buf;
}

json array_item_json(const GgufArray& a, size_t i, size_t limit);

json array_json(const GgufArray& a, size_t limit) {
  json items = json::array();
  size_t n = std::min(a.size(), limit);
  for (size_t i = 0; i < n; ++i) items.push_back(array_item_json(a, i, limit));
  if (n == a.size()) return items;
  return json{{"array_of", gguf_type_name(a.elem_type)}, {"length", a.size()}, {"first", items}};
}

json array_item_json(const GgufArray& a, size_t i, size_t limit) {
  switch (a.elem_type) {
    case GgufType::kString: return a.strings[i];
    case GgufType::kArray: return array_json(a.arrays[i], limit);
    case GgufType::kFloat32: case GgufType::kFloat64: return a.float_at(i);
    case GgufType::kBool: return a.int_at(i) != 0;
    case GgufType::kUint64: return static_cast<uint64_t>(a.int_at(i));
    default: return a.int_at(i);
  }
}

json value_json(const GgufValue& v, size_t limit) {
  if (const std::string* s = v.as_string()) return *s;
  if (const GgufArray* a = v.as_array()) return array_json(*a, limit);
  if (std::optional<bool> b = v.as_bool()) return *b;
  if (v.is_float()) return *v.as_float();
  if (v.type() == GgufType::kUint64) return *v.as_uint();
  return *v.as_int();
}

struct TypeTotal {
  int64_t tensors = 0;
  int64_t elements = 0;
  uint64_t bytes = 0;
};

std::map<std::string, TypeTotal> totals_by_type(const GgufFile& f) {
  std::map<std::string, TypeTotal> totals;
  for (const GgufTensorInfo& t : f.tensors()) {
    TypeTotal& tt = totals[std::string(ggml_type_name(t.type))];
    tt.tensors += 1;
    tt.elements += t.n_elements;
    tt.bytes += t.n_bytes;
  }
  return totals;
}

json info_json(const ModelInfo& m) {
  return json{{"architecture", m.architecture},
              {"name", m.name},
              {"layers", m.n_layer},
              {"heads", m.n_head},
              {"kv_heads", m.n_head_kv},
              {"head_dim", m.head_dim},
              {"embedding_length", m.n_embd},
              {"feed_forward_length", m.n_ff},
              {"context_length", m.n_ctx_train},
              {"rope_freq_base", m.rope_freq_base},
              {"rope_dimension_count", m.rope_dim},
              {"rope_scaling_type", m.rope_scaling_type},
              {"rope_scaling_factor", m.rope_scaling_factor},
              {"rms_norm_eps", m.rms_norm_eps},
              {"vocab_size", m.n_vocab},
              {"tokenizer_model", m.tokenizer_model},
              {"tokenizer_pre", m.tokenizer_pre},
              {"tied_embeddings", m.tied_embeddings},
              {"rope_freqs", m.has_rope_freqs},
              {"parameters", m.n_params},
              {"tensor_bytes", m.n_bytes}};
}

int print_json(const GgufFile& f, const Expected<ModelInfo>& info, size_t limit) {
  json out;
  out["file"] = f.path();
  out["file_size"] = f.file_size();
  out["version"] = f.version();
  out["alignment"] = f.alignment();
  out["data_offset"] = f.data_offset();
  json meta = json::object();
  for (const auto& [k, v] : f.metadata()) meta[k] = json{{"type", gguf_type_name(v.type())}, {"value", value_json(v, limit)}};
  out["metadata"] = meta;
  json tensors = json::array();
  for (const GgufTensorInfo& t : f.tensors()) {
    tensors.push_back(json{{"name", t.name},
                           {"type", ggml_type_name(t.type)},
                           {"shape", t.shape},
                           {"elements", t.n_elements},
                           {"bytes", t.n_bytes},
                           {"offset", t.offset}});
  }
  out["tensors"] = tensors;
  json totals = json::object();
  for (const auto& [name, tt] : totals_by_type(f)) {
    totals[name] = json{{"tensors", tt.tensors}, {"elements", tt.elements}, {"bytes", tt.bytes}};
  }
  out["totals_by_type"] = totals;
  if (info) out["architecture"] = info_json(*info);
  else out["architecture_error"] = info.status().to_string();
  std::puts(out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  return 0;
}

int print_text(const GgufFile& f, const Expected<ModelInfo>& info, size_t limit) {
  std::printf("file:        %s\n", f.path().c_str());
  std::printf("format:      GGUF v%u, %" PRIu64 " bytes (%s), alignment %u, tensor data at byte %" PRIu64 "\n",
              f.version(), f.file_size(), human_bytes(f.file_size()).c_str(), f.alignment(), f.data_offset());
  std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
  for (const auto& [k, v] : f.metadata()) {
    std::string type(gguf_type_name(v.type()));
    std::printf("  %-44s %-8s %s\n", k.c_str(), type.c_str(), v.to_display_string(limit).c_str());
  }
  std::printf("\ntensors (%zu):\n", f.tensors().size());
  std::printf("  %-36s %-7s %-22s %12s %12s\n", "name", "type", "shape", "bytes", "offset");
  for (const GgufTensorInfo& t : f.tensors()) {
    std::string type(ggml_type_name(t.type));
    std::printf("  %-36s %-7s %-22s %12" PRIu64 " %12" PRIu64 "\n", t.name.c_str(), type.c_str(),
                shape_string(t.shape).c_str(), t.n_bytes, t.offset);
  }
  std::printf("\ntotals by type:\n");
  for (const auto& [name, tt] : totals_by_type(f)) {
    std::printf("  %-7s %5" PRId64 " tensors %14" PRId64 " elements %12s\n", name.c_str(), tt.tensors, tt.elements,
                human_bytes(tt.bytes).c_str());
  }
  std::printf("\narchitecture:\n");
  if (!info) {
    std::printf("  (no summary: %s)\n", info.status().to_string().c_str());
    return 0;
  }
  const ModelInfo& m = *info;
  std::printf("  %-22s %s\n", "architecture", m.architecture.c_str());
  if (!m.name.empty()) std::printf("  %-22s %s\n", "name", m.name.c_str());
  std::printf("  %-22s %" PRId64 "\n", "layers", m.n_layer);
  std::printf("  %-22s %" PRId64 "\n", "attention heads", m.n_head);
  std::printf("  %-22s %" PRId64 " (group size %" PRId64 ")\n", "kv heads", m.n_head_kv, m.n_head / m.n_head_kv);
  std::printf("  %-22s %" PRId64 "\n", "head size", m.head_dim);
  std::printf("  %-22s %" PRId64 "\n", "embedding size", m.n_embd);
  std::printf("  %-22s %" PRId64 "\n", "feed-forward size", m.n_ff);
  std::printf("  %-22s %" PRId64 "\n", "context length", m.n_ctx_train);
  std::printf("  %-22s freq_base %g, %" PRId64 " dims%s%s\n", "rope", m.rope_freq_base, m.rope_dim,
              m.rope_scaling_type.empty() ? "" : ", scaling ", m.rope_scaling_type.c_str());
  if (m.has_rope_freqs) std::printf("  %-22s per-pair frequency factors (rope_freqs.weight)\n", "rope scaling");
  if (!m.rope_scaling_type.empty()) {
    std::printf("  %-22s factor %g, original context %" PRId64 "\n", "rope scaling", m.rope_scaling_factor,
                m.rope_original_context);
  }
  std::printf("  %-22s %g\n", "rms norm epsilon", m.rms_norm_eps);
  std::printf("  %-22s %" PRId64 "\n", "vocabulary size", m.n_vocab);
  std::printf("  %-22s %s%s%s\n", "tokenizer", m.tokenizer_model.c_str(), m.tokenizer_pre.empty() ? "" : ", pre ",
              m.tokenizer_pre.c_str());
  std::printf("  %-22s %s\n", "tied embeddings", m.tied_embeddings ? "yes" : "no");
  std::printf("  %-22s %.2f M (%s)\n", "parameters", m.n_params / 1e6, human_bytes(m.n_bytes).c_str());
  return 0;
}

}  // namespace

Runner add_inspect(CLI::App& app) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* sub = app.add_subcommand("inspect", "Describe a GGUF file: metadata, tensors, architecture");
  sub->add_option("file", opt->path, "GGUF file")->required();
  sub->add_flag("--json", opt->json, "Print one JSON object");
  sub->add_flag("--full", opt->full, "Print every array element instead of a summary");
  return [opt] {
    Expected<GgufFile> f = GgufFile::open(opt->path);
    if (!f) {
      std::fprintf(stderr, "suanli inspect: %s\n", f.status().to_string().c_str());
      return 1;
    }
    Expected<ModelInfo> info = ModelInfo::from_gguf(*f);
    size_t limit = opt->full ? SIZE_MAX : (opt->json ? kSummarizeAfter : kSummarizeAfter / 2);
    return opt->json ? print_json(*f, info, limit) : print_text(*f, info, limit);
  };
}

}  // namespace suanli::cli
