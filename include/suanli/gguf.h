// GGUF files: a validating, memory-mapped reader and a writer.
//
// Reader contract: GgufFile::open / GgufFile::parse check every byte before
// anything trusts it (see docs/gguf.md for the full list of rules): header,
// counts against the bytes left, string and array lengths, key uniqueness,
// value types, alignment, tensor shapes, types, block multiples, element and
// byte counts without overflow, tensor data aligned, ordered, inside the
// file, non-overlapping, names unique. Any violation is a kCorruptData (or
// kUnsupported for a valid but unsupported version) Status whose message names
// the byte offset. No count read from the file drives an allocation before it
// is checked against the file size.
//
// A GgufFile is immutable after parsing and safe to read from many threads.
// Tensor data pointers stay valid while the GgufFile lives (moves included).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "suanli/dtype.h"
#include "suanli/status.h"

namespace suanli {

// Numbering as in the GGUF specification.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view gguf_type_name(GgufType type);
// Bytes of one scalar of `type` (0 for strings and arrays).
size_t gguf_scalar_size(GgufType type);

// An array value. Elements are stored by kind: numbers and bools as their
// little-endian bytes in `raw` (elem_size bytes each), strings in `strings`,
// nested arrays in `arrays`. Memory therefore stays proportional to the
// file's own bytes.
struct GgufArray {
  GgufType elem_type = GgufType::kUint8;
  std::vector<uint8_t> raw;
  std::vector<std::string> strings;
  std::vector<GgufArray> arrays;

  size_t size() const;
  // Element i of a numeric array widened (SUANLI_CHECKed in range and kind).
  int64_t int_at(size_t i) const;
  double float_at(size_t i) const;

  bool operator==(const GgufArray&) const = default;
};

// One metadata value. The variant's alternative index equals its GgufType.
class GgufValue {
 public:
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, GgufArray, uint64_t, int64_t, double>;

  GgufValue() = default;
  template <class T>
    requires(!std::is_same_v<std::decay_t<T>, GgufValue> && std::is_constructible_v<Storage, T>)
  GgufValue(T v) : v_(std::move(v)) {}  // NOLINT: any of the Storage types
  GgufValue(const char* s) : v_(std::string(s)) {}  // NOLINT

  GgufType type() const { return static_cast<GgufType>(v_.index()); }
  const Storage& storage() const { return v_; }

  bool is_integer() const;
  bool is_float() const;
  // Widened views; nullopt when the kind does not match or the value does not fit.
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_float() const;  // floats and integers
  const std::string* as_string() const { return std::get_if<std::string>(&v_); }
  const GgufArray* as_array() const { return std::get_if<GgufArray>(&v_); }
  std::optional<bool> as_bool() const;

  // Short human-readable rendering; long arrays and strings are summarized.
  std::string to_display_string(size_t max_items = 8) const;

  bool operator==(const GgufValue&) const = default;

 private:
  Storage v_;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> shape;  // ne[0..n_dims): innermost (contiguous) first
  uint64_t offset = 0;         // relative to the start of the data section
  int64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the file's bytes
  uint64_t info_offset = 0;       // where this tensor's info starts in the file
};

class GgufFile {
 public:
  // Maps and validates a file.
  static Expected<GgufFile> open(const std::string& path);
  // Validates bytes the caller keeps alive for the GgufFile's lifetime
  // (fuzzing, in-memory tests).
  static Expected<GgufFile> parse(std::span<const uint8_t> bytes);

  GgufFile();
  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  // Start of the tensor data section (tensor i's bytes are at + offset).
  const uint8_t* data_section() const { return bytes_.data() + data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& path() const { return path_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;

  // Typed accessors: NotFound when absent, InvalidArgument when of another kind.
  Expected<std::string> get_string(std::string_view key) const;
  Expected<int64_t> get_int(std::string_view key) const;   // any integer type
  Expected<uint64_t> get_uint(std::string_view key) const; // any non-negative integer
  Expected<double> get_float(std::string_view key) const;  // float or integer
  Expected<bool> get_bool(std::string_view key) const;
  Expected<const GgufArray*> get_array(std::string_view key) const;
  Expected<std::vector<std::string>> get_string_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  class Parser;
  struct Mapping;

  std::unique_ptr<Mapping> mapping_;  // owns the bytes when opened from a path
  std::span<const uint8_t> bytes_;
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF file: metadata, then tensors laid out at `general.alignment`
// (32 unless the metadata sets it). Version 3.
class GgufWriter {
 public:
  // Later values for the same key replace earlier ones (keeps file order).
  void set(std::string key, GgufValue value);
  // Copies `data` (row_bytes(type, ne0) * rows bytes). Validation of shape,
  // type and size is done here, so a writer never emits an unreadable file.
  Status add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape,
                    std::span<const uint8_t> data);
  // As add_tensor, but the bytes are produced later by `fill` while writing
  // (for tensors too large to hold twice in memory). fill(dst) writes n_bytes.
  Status add_tensor_lazy(std::string name, GgmlType type, std::vector<int64_t> shape,
                         std::function<Status(uint8_t* dst, uint64_t n_bytes)> fill);

  Expected<std::vector<uint8_t>> to_bytes() const;
  // Writes to path + ".tmp" and renames: never a partial file under `path`.
  Status write(const std::string& path) const;

 private:
  struct PendingTensor;
  uint32_t alignment() const;
  Status check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                      uint64_t* n_bytes) const;

  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<std::shared_ptr<PendingTensor>> tensors_;
};

}  // namespace suanli
