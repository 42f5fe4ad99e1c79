// suanli quantize IN OUT --type T: rewrites a model's weight matrices in
// another format with suanli's quantizers (norms, biases and other vectors
// stay as they are). Matrices whose rows do not split into whole blocks of T
// fall back to Q8_0, then F16, as llama.cpp's quantizer does.
#include <cstdio>
#include <cstring>
#include <memory>

#include "commands.h"
#include "core/quant/quant.h"
#include "suanli/gguf.h"

namespace suanli::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, type;
  bool keep_embedding = false;
};

GgmlType fit(GgmlType want, int64_t ne0) {
  if (ne0 % traits(want).block_size == 0) return want;
  if (ne0 % traits(GgmlType::kQ8_0).block_size == 0) return GgmlType::kQ8_0;
  return GgmlType::kF16;
}

}  // namespace

Runner add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* sub = app.add_subcommand("quantize", "Rewrite a model's weight matrices in another format");
  sub->add_option("input", a->in, "Input GGUF")->required();
  sub->add_option("output", a->out, "Output GGUF")->required();
  sub->add_option("--type", a->type, "Target format (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k)")->required();
  sub->add_flag("--keep-embedding", a->keep_embedding, "Leave token_embd.weight in its format");
  return [a] {
    auto fail = [](const std::string& m) {
      std::fprintf(stderr, "suanli quantize: %s\n", m.c_str());
      return 1;
    };
    std::optional<GgmlType> type = parse_ggml_type(a->type);
    if (!type || (*type != GgmlType::kF32 && !quant::can_quantize(*type))) {
      return fail("cannot quantize to '" + a->type + "'");
    }
    Expected<GgufFile> in = GgufFile::open(a->in);
    if (!in) return fail(in.status().to_string());
    GgufWriter w;
    // general.file_type says what the file now mostly holds (other tools
    // name the model by it); dropped where llama.cpp defines no value.
    for (const auto& [k, v] : in->metadata()) {
      if (k != "general.file_type") w.set(k, v);
    }
    if (std::optional<uint32_t> ft = gguf_file_type(*type)) w.set("general.file_type", *ft);
    for (const GgufTensorInfo& t : in->tensors()) {
      const bool matrix = t.shape.size() == 2 && !(a->keep_embedding && t.name == "token_embd.weight");
      if (!matrix || !quant::can_dequantize(t.type)) {
        if (Status s = w.add_tensor(t.name, t.type, t.shape, {t.data, t.n_bytes}); !s.ok()) return fail(s.to_string());
        continue;
      }
      const GgmlType to = fit(*type, t.shape[0]);
      const GgufTensorInfo* src = &t;
      Status s = w.add_tensor_lazy(t.name, to, t.shape, [src, to](uint8_t* dst, uint64_t) -> Status {
        const int64_t ne0 = src->shape[0], rows = src->shape[1];
        const int64_t in_row = row_bytes(src->type, ne0), out_row = row_bytes(to, ne0);
        std::vector<float> buf(ne0);
        for (int64_t r = 0; r < rows; ++r) {
          SUANLI_RETURN_IF_ERROR(quant::dequantize(src->type, src->data + r * in_row, buf.data(), ne0));
          if (to == GgmlType::kF32) {
            std::memcpy(dst + r * out_row, buf.data(), ne0 * sizeof(float));
          } else {
            SUANLI_RETURN_IF_ERROR(quant::quantize(to, buf.data(), dst + r * out_row, ne0));
          }
        }
        return Status::Ok();
      });
      if (!s.ok()) return fail(s.to_string());
    }
    if (Status s = w.write(a->out); !s.ok()) return fail(s.to_string());
    std::fprintf(stderr, "suanli quantize: wrote %s\n", a->out.c_str());
    return 0;
  };
}

}  // namespace suanli::cli
