// The validating GGUF reader. Every read goes through Parser::need(), which
// checks the bytes are there before touching them; every count read from the
// file is checked against the bytes left (times the smallest possible
// encoding of one element) before it sizes anything.
#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <limits>
#include <set>

#include "core/mapped_file.h"
#include "suanli/gguf.h"

namespace suanli {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kMaxKeyBytes = 65535;  // the spec's limit on key length

// Smallest encodings, for bounding counts against the bytes left.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;              // key len, 1-byte key, type, u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, 1 dim, type, offset

uint64_t min_encoded_size(GgufType t) {
  if (t == GgufType::kString) return 8;
  if (t == GgufType::kArray) return 4 + 8;
  return gguf_scalar_size(t);
}

bool is_power_of_two(uint64_t x) { return x && !(x & (x - 1)); }

}  // namespace

struct GgufFile::Mapping {
  MappedFile file;
};

class GgufFile::Parser {
 public:
  Parser(GgufFile& out) : f_(out), b_(out.bytes_) {}

  Status run() {
    SUANLI_RETURN_IF_ERROR(parse_header());
    SUANLI_RETURN_IF_ERROR(parse_metadata());
    SUANLI_RETURN_IF_ERROR(parse_tensor_infos());
    return place_tensors();
  }

 private:
  Status error(uint64_t at, const std::string& what) const {
    return CorruptData("at byte " + std::to_string(at) + ": " + what);
  }

  uint64_t left() const { return b_.size() - pos_; }

  Status need(uint64_t n, const char* what) const {
    if (n > left()) {
      return error(pos_, std::string("file truncated: ") + what + " needs " + std::to_string(n) +
                             " bytes, " + std::to_string(left()) + " left");
    }
    return Status::Ok();
  }

  template <class T>
  Status read(T* out, const char* what) {
    SUANLI_RETURN_IF_ERROR(need(sizeof(T), what));
    std::memcpy(out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status read_string(std::string* out, const char* what) {
    uint64_t at = pos_;
    uint64_t len = 0;
    SUANLI_RETURN_IF_ERROR(read(&len, what));
    if (len > left()) {
      return error(at, std::string(what) + " has length " + std::to_string(len) + " but only " +
                           std::to_string(left()) + " bytes are left in the file");
    }
    out->assign(reinterpret_cast<const char*>(b_.data() + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status parse_header() {
    uint32_t magic = 0;
    SUANLI_RETURN_IF_ERROR(read(&magic, "the magic number"));
    if (magic != kMagic) {
      return error(0, "not a GGUF file (magic is not \"GGUF\")");
    }
    uint32_t version = 0;
    SUANLI_RETURN_IF_ERROR(read(&version, "the version"));
    if (version == 1) return Unsupported("at byte 4: GGUF version 1 is not supported (only 2 and 3)");
    if (version != 2 && version != 3) {
      uint32_t swapped = __builtin_bswap32(version);
      if (swapped == 2 || swapped == 3) {
        return Unsupported("at byte 4: big-endian GGUF files are not supported");
      }
      return error(4, "unknown GGUF version " + std::to_string(version) + " (expected 2 or 3)");
    }
    f_.version_ = version;
    SUANLI_RETURN_IF_ERROR(read(&n_tensors_, "the tensor count"));
    SUANLI_RETURN_IF_ERROR(read(&n_kv_, "the metadata count"));
    // Each entry needs at least a few bytes; bound both counts by the file.
    if (n_kv_ > left() / kMinKvBytes) {
      return error(16, "metadata count " + std::to_string(n_kv_) + " cannot fit in the " +
                           std::to_string(left()) + " bytes left");
    }
    if (n_tensors_ > left() / kMinTensorInfoBytes) {
      return error(8, "tensor count " + std::to_string(n_tensors_) + " cannot fit in the " +
                          std::to_string(left()) + " bytes left");
    }
    return Status::Ok();
  }

  Status parse_value_type(GgufType* out, const char* what) {
    uint64_t at = pos_;
    uint32_t t = 0;
    SUANLI_RETURN_IF_ERROR(read(&t, what));
    if (t > static_cast<uint32_t>(GgufType::kFloat64)) {
      return error(at, "unknown metadata value type " + std::to_string(t));
    }
    *out = static_cast<GgufType>(t);
    return Status::Ok();
  }

  Status check_bool(uint64_t at, uint8_t v) const {
    if (v > 1) return error(at, "bool value " + std::to_string(v) + " is neither 0 nor 1");
    return Status::Ok();
  }

  Status parse_array(GgufArray* out, int depth) {
    if (depth > kMaxArrayDepth) {
      return error(pos_, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    }
    SUANLI_RETURN_IF_ERROR(parse_value_type(&out->elem_type, "an array element type"));
    uint64_t at = pos_;
    uint64_t count = 0;
    SUANLI_RETURN_IF_ERROR(read(&count, "an array length"));
    uint64_t min = min_encoded_size(out->elem_type);
    if (count > left() / min) {
      return error(at, "array of " + std::to_string(count) + " " +
                           std::string(gguf_type_name(out->elem_type)) + " values cannot fit in the " +
                           std::to_string(left()) + " bytes left");
    }
    if (out->elem_type == GgufType::kString) {
      out->strings.resize(count);
      for (uint64_t i = 0; i < count; ++i) {
        SUANLI_RETURN_IF_ERROR(read_string(&out->strings[i], "an array string"));
      }
    } else if (out->elem_type == GgufType::kArray) {
      out->arrays.resize(count);
      for (uint64_t i = 0; i < count; ++i) {
        SUANLI_RETURN_IF_ERROR(parse_array(&out->arrays[i], depth + 1));
      }
    } else {
      uint64_t n = count * min;
      out->raw.assign(b_.data() + pos_, b_.data() + pos_ + n);
      if (out->elem_type == GgufType::kBool) {
        for (uint64_t i = 0; i < count; ++i) SUANLI_RETURN_IF_ERROR(check_bool(pos_ + i, out->raw[i]));
      }
      pos_ += n;
    }
    return Status::Ok();
  }

  template <class T>
  Status read_scalar(GgufValue* out) {
    T v{};
    SUANLI_RETURN_IF_ERROR(read(&v, "a metadata value"));
    *out = GgufValue(v);
    return Status::Ok();
  }

  Status parse_value(GgufType type, GgufValue* out) {
    switch (type) {
      case GgufType::kUint8: return read_scalar<uint8_t>(out);
      case GgufType::kInt8: return read_scalar<int8_t>(out);
      case GgufType::kUint16: return read_scalar<uint16_t>(out);
      case GgufType::kInt16: return read_scalar<int16_t>(out);
      case GgufType::kUint32: return read_scalar<uint32_t>(out);
      case GgufType::kInt32: return read_scalar<int32_t>(out);
      case GgufType::kFloat32: return read_scalar<float>(out);
      case GgufType::kUint64: return read_scalar<uint64_t>(out);
      case GgufType::kInt64: return read_scalar<int64_t>(out);
      case GgufType::kFloat64: return read_scalar<double>(out);
      case GgufType::kBool: {
        uint64_t at = pos_;
        uint8_t v = 0;
        SUANLI_RETURN_IF_ERROR(read(&v, "a bool value"));
        SUANLI_RETURN_IF_ERROR(check_bool(at, v));
        *out = GgufValue(v != 0);
        return Status::Ok();
      }
      case GgufType::kString: {
        std::string s;
        SUANLI_RETURN_IF_ERROR(read_string(&s, "a string value"));
        *out = GgufValue(std::move(s));
        return Status::Ok();
      }
      case GgufType::kArray: {
        GgufArray a;
        SUANLI_RETURN_IF_ERROR(parse_array(&a, 1));
        *out = GgufValue(std::move(a));
        return Status::Ok();
      }
    }
    return Internal("unhandled value type");
  }

  Status parse_metadata() {
    f_.kv_.reserve(n_kv_);
    for (uint64_t i = 0; i < n_kv_; ++i) {
      uint64_t at = pos_;
      std::string key;
      SUANLI_RETURN_IF_ERROR(read_string(&key, "a metadata key"));
      if (key.empty()) return error(at, "metadata entry #" + std::to_string(i) + " has an empty key");
      if (key.size() > kMaxKeyBytes) {
        return error(at, "metadata key of " + std::to_string(key.size()) + " bytes exceeds 65535");
      }
      if (f_.kv_index_.count(key)) return error(at, "duplicate metadata key '" + key + "'");
      GgufType type;
      SUANLI_RETURN_IF_ERROR(parse_value_type(&type, "a metadata value type"));
      uint64_t value_at = pos_;
      GgufValue value;
      Status s = parse_value(type, &value);
      if (!s.ok()) return s.with_context("metadata '" + key + "'");
      if (key == "general.alignment") {
        const uint32_t* a = std::get_if<uint32_t>(&value.storage());
        if (!a) {
          return error(value_at, "general.alignment must be a uint32, got " +
                                     std::string(gguf_type_name(type)));
        }
        if (!is_power_of_two(*a)) {
          return error(value_at, "general.alignment " + std::to_string(*a) + " is not a power of two");
        }
        f_.alignment_ = *a;
      }
      f_.kv_index_.emplace(key, f_.kv_.size());
      f_.kv_.emplace_back(std::move(key), std::move(value));
    }
    return Status::Ok();
  }

  Status parse_tensor_infos() {
    f_.tensors_.reserve(n_tensors_);
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      GgufTensorInfo t;
      t.info_offset = pos_;
      SUANLI_RETURN_IF_ERROR(read_string(&t.name, "a tensor name"));
      std::string who = "tensor #" + std::to_string(i) + " '" + t.name + "'";
      if (t.name.empty()) return error(t.info_offset, "tensor #" + std::to_string(i) + " has an empty name");
      if (f_.tensor_index_.count(t.name)) return error(t.info_offset, "duplicate tensor name '" + t.name + "'");

      uint64_t at = pos_;
      uint32_t n_dims = 0;
      SUANLI_RETURN_IF_ERROR(read(&n_dims, "a tensor's dimension count"));
      if (n_dims < 1 || n_dims > kMaxDims) {
        return error(at, who + " has " + std::to_string(n_dims) + " dimensions (must be 1 to 4)");
      }
      int64_t n_elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        at = pos_;
        uint64_t ne = 0;
        SUANLI_RETURN_IF_ERROR(read(&ne, "a tensor dimension"));
        if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return error(at, who + " dimension " + std::to_string(d) + " is " + std::to_string(ne) +
                               " (must be 1 to 2^63-1)");
        }
        if (__builtin_mul_overflow(n_elements, static_cast<int64_t>(ne), &n_elements)) {
          return error(at, who + " element count overflows 64 bits");
        }
        t.shape.push_back(static_cast<int64_t>(ne));
      }

      at = pos_;
      uint32_t type_id = 0;
      SUANLI_RETURN_IF_ERROR(read(&type_id, "a tensor type"));
      std::optional<GgmlTypeTraits> tt = ggml_type_traits(type_id);
      if (!tt) return error(at, who + " has unknown tensor type " + std::to_string(type_id));
      t.type = static_cast<GgmlType>(type_id);
      if (t.shape[0] % tt->block_size != 0) {
        return error(at, who + " of type " + std::string(tt->name) + " has first dimension " +
                             std::to_string(t.shape[0]) + ", not a multiple of the block size " +
                             std::to_string(tt->block_size));
      }
      t.n_elements = n_elements;
      uint64_t blocks = static_cast<uint64_t>(n_elements / tt->block_size);
      if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(tt->type_size), &t.n_bytes)) {
        return error(at, who + " byte size overflows 64 bits");
      }

      at = pos_;
      SUANLI_RETURN_IF_ERROR(read(&t.offset, "a tensor data offset"));
      if (t.offset % f_.alignment_ != 0) {
        return error(at, who + " data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                             std::to_string(f_.alignment_));
      }
      f_.tensor_index_.emplace(t.name, f_.tensors_.size());
      f_.tensors_.push_back(std::move(t));
    }
    return Status::Ok();
  }

  Status place_tensors() {
    uint64_t a = f_.alignment_;
    uint64_t data_offset = pos_;
    if (pos_ % a) data_offset = pos_ + (a - pos_ % a);
    f_.data_offset_ = data_offset;
    if (f_.tensors_.empty()) return Status::Ok();
    if (data_offset > b_.size()) {
      return error(pos_, "file truncated before the tensor data section (which starts at byte " +
                             std::to_string(data_offset) + ")");
    }
    uint64_t data_size = b_.size() - data_offset;
    uint64_t prev_end = 0;
    std::string prev_name;
    for (GgufTensorInfo& t : f_.tensors_) {
      uint64_t at = t.info_offset;
      if (t.offset < prev_end) {
        return error(at, "tensor '" + t.name + "' data at offset " + std::to_string(t.offset) +
                             (prev_name.empty() ? "" : " overlaps or precedes tensor '" + prev_name + "'") +
                             " (tensor data must be ordered and non-overlapping)");
      }
      if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
        return error(at, "tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", +" +
                             std::to_string(t.n_bytes) + ") extends past the end of the file (data section holds " +
                             std::to_string(data_size) + " bytes)");
      }
      prev_end = t.offset + t.n_bytes;
      prev_name = t.name;
      t.data = b_.data() + data_offset + t.offset;
    }
    return Status::Ok();
  }

  GgufFile& f_;
  std::span<const uint8_t> b_;
  uint64_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
};

GgufFile::GgufFile() = default;
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

Expected<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes) {
  GgufFile f;
  f.bytes_ = bytes;
  f.alignment_ = kDefaultAlignment;
  Parser p(f);
  SUANLI_RETURN_IF_ERROR(p.run());
  return f;
}

Expected<GgufFile> GgufFile::open(const std::string& path) {
  SUANLI_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(path));
  auto mapping = std::make_unique<Mapping>(Mapping{std::move(mapped)});
  Expected<GgufFile> f = parse(mapping->file.bytes());
  if (!f) return f.status().with_context(path);
  f->mapping_ = std::move(mapping);
  f->path_ = path;
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Status missing(std::string_view key) { return NotFound("metadata key '" + std::string(key) + "' not found"); }

Status wrong_kind(std::string_view key, const GgufValue& v, const char* want) {
  return InvalidArgument("metadata key '" + std::string(key) + "' is a " + std::string(gguf_type_name(v.type())) +
                         ", expected " + want);
}

}  // namespace

Expected<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (!v->as_string()) return wrong_kind(key, *v, "a string");
  return *v->as_string();
}

Expected<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  std::optional<int64_t> i = v->as_int();
  if (!i) return wrong_kind(key, *v, "an integer that fits int64");
  return *i;
}

Expected<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  std::optional<uint64_t> u = v->as_uint();
  if (!u) return wrong_kind(key, *v, "a non-negative integer");
  return *u;
}

Expected<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  std::optional<double> d = v->as_float();
  if (!d) return wrong_kind(key, *v, "a number");
  return *d;
}

Expected<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  std::optional<bool> b = v->as_bool();
  if (!b) return wrong_kind(key, *v, "a bool");
  return *b;
}

Expected<const GgufArray*> GgufFile::get_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (!v->as_array()) return wrong_kind(key, *v, "an array");
  return v->as_array();
}

Expected<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  SUANLI_ASSIGN_OR_RETURN(const GgufArray* a, get_array(key));
  if (a->elem_type != GgufType::kString) {
    return InvalidArgument("metadata key '" + std::string(key) + "' is an array of " +
                           std::string(gguf_type_name(a->elem_type)) + ", expected strings");
  }
  return a->strings;
}

}  // namespace suanli
