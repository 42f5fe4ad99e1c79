// GgufWriter: version-3 GGUF files. Layout: header, metadata, tensor infos,
// padding to the alignment, then each tensor's bytes at an aligned offset.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "suanli/gguf.h"

namespace suanli {
namespace {

constexpr uint32_t kMagic = 0x46554747;

// Appends little-endian encodings to a byte sink (a vector or a FILE).
class Sink {
 public:
  explicit Sink(std::vector<uint8_t>* v) : v_(v) {}
  explicit Sink(std::FILE* f) : f_(f) {}

  void bytes(const void* p, size_t n) {
    if (n == 0) return;
    if (v_) {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      v_->insert(v_->end(), b, b + n);
    } else if (ok_ && std::fwrite(p, 1, n, f_) != n) {
      ok_ = false;
    }
    pos_ += n;
  }
  template <class T>
  void put(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t kZeros[256] = {};
    while (pos_ % alignment) {
      uint64_t n = std::min<uint64_t>(alignment - pos_ % alignment, sizeof kZeros);
      bytes(kZeros, n);
    }
  }
  uint64_t pos() const { return pos_; }
  bool ok() const { return ok_; }

 private:
  std::vector<uint8_t>* v_ = nullptr;
  std::FILE* f_ = nullptr;
  uint64_t pos_ = 0;
  bool ok_ = true;
};

void put_array(Sink& s, const GgufArray& a) {
  s.put<uint32_t>(static_cast<uint32_t>(a.elem_type));
  s.put<uint64_t>(a.size());
  if (a.elem_type == GgufType::kString) {
    for (const std::string& x : a.strings) s.str(x);
  } else if (a.elem_type == GgufType::kArray) {
    for (const GgufArray& x : a.arrays) put_array(s, x);
  } else {
    s.bytes(a.raw.data(), a.raw.size());
  }
}

void put_value(Sink& s, const GgufValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          s.str(x);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          put_array(s, x);
        } else if constexpr (std::is_same_v<T, bool>) {
          s.put<uint8_t>(x ? 1 : 0);
        } else {
          s.put<T>(x);
        }
      },
      v.storage());
}

}  // namespace

struct GgufWriter::PendingTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> shape;
  uint64_t n_bytes = 0;
  std::vector<uint8_t> data;
  std::function<Status(uint8_t*, uint64_t)> fill;
};

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

uint32_t GgufWriter::alignment() const {
  for (const auto& kv : kv_) {
    if (kv.first == "general.alignment") {
      if (const uint32_t* a = std::get_if<uint32_t>(&kv.second.storage())) return *a;
    }
  }
  return 32;
}

Status GgufWriter::check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                                uint64_t* n_bytes) const {
  if (name.empty()) return InvalidArgument("tensor name is empty");
  for (const auto& t : tensors_) {
    if (t->name == name) return InvalidArgument("duplicate tensor name '" + name + "'");
  }
  if (shape.empty() || shape.size() > 4) return InvalidArgument("tensor '" + name + "' must have 1 to 4 dimensions");
  const GgmlTypeTraits& tt = traits(type);
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return InvalidArgument("tensor '" + name + "' has a non-positive dimension");
    if (__builtin_mul_overflow(n, d, &n)) return InvalidArgument("tensor '" + name + "' is too large");
  }
  if (shape[0] % tt.block_size) {
    return InvalidArgument("tensor '" + name + "' first dimension " + std::to_string(shape[0]) +
                           " is not a multiple of " + std::string(tt.name) + "'s block size " +
                           std::to_string(tt.block_size));
  }
  *n_bytes = static_cast<uint64_t>(n / tt.block_size) * static_cast<uint64_t>(tt.type_size);
  return Status::Ok();
}

Status GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape,
                              std::span<const uint8_t> data) {
  uint64_t n_bytes = 0;
  SUANLI_RETURN_IF_ERROR(check_tensor(name, type, shape, &n_bytes));
  if (data.size() != n_bytes) {
    return InvalidArgument("tensor '" + name + "' needs " + std::to_string(n_bytes) + " bytes, got " +
                           std::to_string(data.size()));
  }
  auto t = std::make_shared<PendingTensor>();
  t->name = std::move(name);
  t->type = type;
  t->shape = std::move(shape);
  t->n_bytes = n_bytes;
  t->data.assign(data.begin(), data.end());
  tensors_.push_back(std::move(t));
  return Status::Ok();
}

Status GgufWriter::add_tensor_lazy(std::string name, GgmlType type, std::vector<int64_t> shape,
                                   std::function<Status(uint8_t*, uint64_t)> fill) {
  uint64_t n_bytes = 0;
  SUANLI_RETURN_IF_ERROR(check_tensor(name, type, shape, &n_bytes));
  auto t = std::make_shared<PendingTensor>();
  t->name = std::move(name);
  t->type = type;
  t->shape = std::move(shape);
  t->n_bytes = n_bytes;
  t->fill = std::move(fill);
  tensors_.push_back(std::move(t));
  return Status::Ok();
}

namespace {

template <class Tensors>
Status emit(Sink& s, const std::vector<std::pair<std::string, GgufValue>>& kv, const Tensors& tensors,
            uint32_t alignment) {
  s.put<uint32_t>(kMagic);
  s.put<uint32_t>(3);
  s.put<uint64_t>(tensors.size());
  s.put<uint64_t>(kv.size());
  for (const auto& [key, value] : kv) {
    s.str(key);
    s.put<uint32_t>(static_cast<uint32_t>(value.type()));
    put_value(s, value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    s.str(t->name);
    s.put<uint32_t>(static_cast<uint32_t>(t->shape.size()));
    for (int64_t d : t->shape) s.put<uint64_t>(static_cast<uint64_t>(d));
    s.put<uint32_t>(static_cast<uint32_t>(t->type));
    s.put<uint64_t>(offset);
    offset += t->n_bytes;
    if (offset % alignment) offset += alignment - offset % alignment;
  }
  s.pad_to(alignment);
  std::vector<uint8_t> scratch;
  for (const auto& t : tensors) {
    if (t->fill) {
      scratch.resize(t->n_bytes);
      Status st = t->fill(scratch.data(), t->n_bytes);
      if (!st.ok()) return st.with_context("tensor '" + t->name + "'");
      s.bytes(scratch.data(), scratch.size());
    } else {
      s.bytes(t->data.data(), t->data.size());
    }
    s.pad_to(alignment);
  }
  return Status::Ok();
}

}  // namespace

Expected<std::vector<uint8_t>> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  Sink s(&out);
  SUANLI_RETURN_IF_ERROR(emit(s, kv_, tensors_, alignment()));
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return IoError(tmp + ": " + std::strerror(errno));
  Sink s(f);
  Status st = emit(s, kv_, tensors_, alignment());
  bool write_ok = s.ok();
  if (std::fclose(f) != 0) write_ok = false;
  if (st.ok() && !write_ok) st = IoError(tmp + ": write failed (disk full?)");
  if (!st.ok()) {
    std::remove(tmp.c_str());
    return st;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    Status e = IoError("rename " + tmp + " -> " + path + ": " + std::strerror(errno));
    std::remove(tmp.c_str());
    return e;
  }
  return Status::Ok();
}

}  // namespace suanli
