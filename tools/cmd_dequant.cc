// suanli dequant: expose the scalar reference quantizers to outside checkers.
//
//   suanli dequant FILE --out-dir DIR [--tensor NAME]...
//     writes DIR/<name>.f32 (raw little-endian float32, innermost dimension
//     fastest) for every tensor, or the named ones, and DIR/index.json:
//     [{"name", "file", "type", "shape"}] with shape innermost first.
//   suanli dequant --quantize TYPE --in X.f32 --out Y.bin
//     quantizes raw float32 into blocks of TYPE.
// The outputs are what tests/py/test_quant_vs_gguf.py compares with gguf-py.
#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "commands.h"
#include "core/quant/quant.h"
#include "suanli/gguf.h"

namespace suanli::cli {
namespace {

static_assert(std::endian::native == std::endian::little, "raw .f32 files are little-endian");

struct DequantArgs {
  std::string file;
  std::string out_dir;
  std::vector<std::string> tensors;
  std::string quantize_type;
  std::string in;
  std::string out;
};

int fail(const Status& s) {
  std::fprintf(stderr, "suanli dequant: %s\n", s.to_string().c_str());
  return 1;
}

Status write_file(const std::filesystem::path& path, const void* data, size_t n) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!f) return IoError("cannot write " + path.string());
  return Status::Ok();
}

Expected<std::vector<char>> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return IoError("cannot open " + path);
  const std::streamsize size = f.tellg();
  std::vector<char> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (!f.read(bytes.data(), size)) return IoError("cannot read " + path);
  return bytes;
}

// Tensor names carry dots and sometimes slashes; keep a portable file name.
std::string file_stem(const std::string& name) {
  std::string s = name;
  for (char& c : s) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
    if (!keep) c = '_';
  }
  if (s.empty() || s[0] == '.') s = "_" + s;
  return s;
}

Status run_dequantize_file(const DequantArgs& a) {
  SUANLI_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(a.file));
  std::vector<const GgufTensorInfo*> selected;
  if (a.tensors.empty()) {
    for (const GgufTensorInfo& t : file.tensors()) selected.push_back(&t);
  } else {
    for (const std::string& name : a.tensors) {
      const GgufTensorInfo* t = file.find_tensor(name);
      if (t == nullptr) return NotFound("no tensor named '" + name + "' in " + a.file);
      selected.push_back(t);
    }
  }
  for (const GgufTensorInfo* t : selected) {
    if (!quant::can_dequantize(t->type)) {
      return Unsupported("tensor '" + t->name + "' has type " + std::string(ggml_type_name(t->type)) +
                         ", which suanli cannot dequantize");
    }
  }

  std::error_code ec;
  std::filesystem::create_directories(a.out_dir, ec);
  if (ec) return IoError("cannot create " + a.out_dir + ": " + ec.message());
  nlohmann::json index = nlohmann::json::array();
  std::set<std::string> used;
  std::vector<float> values;
  for (const GgufTensorInfo* t : selected) {
    std::string stem = file_stem(t->name);
    for (int k = 1; used.count(stem); ++k) stem = file_stem(t->name) + "-" + std::to_string(k);
    used.insert(stem);
    const std::string name = stem + ".f32";
    values.resize(static_cast<size_t>(t->n_elements));
    SUANLI_RETURN_IF_ERROR(quant::dequantize(t->type, t->data, values.data(), t->n_elements)
                               .with_context("tensor '" + t->name + "'"));
    SUANLI_RETURN_IF_ERROR(
        write_file(std::filesystem::path(a.out_dir) / name, values.data(), values.size() * sizeof(float)));
    index.push_back({{"name", t->name}, {"file", name}, {"type", ggml_type_name(t->type)}, {"shape", t->shape}});
  }
  const std::string text = index.dump(1) + "\n";
  return write_file(std::filesystem::path(a.out_dir) / "index.json", text.data(), text.size());
}

Status run_quantize(const DequantArgs& a) {
  const std::optional<GgmlType> type = parse_ggml_type(a.quantize_type);
  if (!type) return InvalidArgument("unknown type '" + a.quantize_type + "'");
  if (!quant::can_quantize(*type)) {
    return Unsupported("suanli has no quantizer for " + std::string(ggml_type_name(*type)));
  }
  SUANLI_ASSIGN_OR_RETURN(std::vector<char> bytes, read_file(a.in));
  if (bytes.size() % sizeof(float) != 0) {
    return InvalidArgument(a.in + " holds " + std::to_string(bytes.size()) + " bytes, not a whole number of float32");
  }
  const int64_t n = static_cast<int64_t>(bytes.size() / sizeof(float));
  std::vector<float> x(static_cast<size_t>(n));
  if (n > 0) std::memcpy(x.data(), bytes.data(), bytes.size());
  if (n % traits(*type).block_size != 0) {
    return InvalidArgument(a.in + " holds " + std::to_string(n) + " floats, not a multiple of the " +
                           std::string(ggml_type_name(*type)) + " block size " +
                           std::to_string(traits(*type).block_size));
  }
  std::vector<uint8_t> out(static_cast<size_t>(row_bytes(*type, n)));
  SUANLI_RETURN_IF_ERROR(quant::quantize(*type, x.data(), out.data(), n));
  return write_file(a.out, out.data(), out.size());
}

}  // namespace

Runner add_dequant(CLI::App& app) {
  auto a = std::make_shared<DequantArgs>();
  CLI::App* sub = app.add_subcommand(
      "dequant", "Dequantize GGUF tensors to raw float32, or quantize raw float32 (reference code)");
  sub->add_option("file", a->file, "GGUF file to dequantize");
  sub->add_option("--out-dir", a->out_dir, "Directory for <tensor>.f32 files and index.json");
  sub->add_option("--tensor", a->tensors, "Only this tensor (repeatable)");
  sub->add_option("--quantize", a->quantize_type, "Quantize --in into this type (q8_0, q4_k, ...)");
  sub->add_option("--in", a->in, "Raw little-endian float32 input for --quantize");
  sub->add_option("--out", a->out, "Output file for --quantize");
  return [a] {
    if (!a->quantize_type.empty()) {
      if (!a->file.empty() || !a->out_dir.empty() || !a->tensors.empty()) {
        return fail(InvalidArgument("--quantize takes --in and --out, not a GGUF file, --out-dir or --tensor"));
      }
      if (a->in.empty() || a->out.empty()) return fail(InvalidArgument("--quantize needs --in and --out"));
      Status s = run_quantize(*a);
      return s.ok() ? 0 : fail(s);
    }
    if (a->file.empty() || a->out_dir.empty()) return fail(InvalidArgument("usage: suanli dequant FILE --out-dir DIR"));
    if (!a->in.empty() || !a->out.empty()) return fail(InvalidArgument("--in and --out go with --quantize"));
    Status s = run_dequantize_file(*a);
    return s.ok() ? 0 : fail(s);
  };
}

}  // namespace suanli::cli
