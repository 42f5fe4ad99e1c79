// The GGUF reader and writer. Malformed files are built byte by byte with a
// builder that is independent of GgufWriter, one file per validation rule.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>

#include "suanli/gguf.h"

namespace suanli {
namespace {

// Raw little-endian GGUF bytes, written field by field.
class Bytes {
 public:
  Bytes& u8(uint8_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& f32(float v) { return put(v); }
  Bytes& str(std::string_view s) {
    u64(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  Bytes& kv_str(std::string_view key, std::string_view v) { return str(key).u32(8).str(v); }
  // Tensor info: name, dims, type, offset.
  Bytes& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad(size_t alignment = 32) {
    while (b_.size() % alignment) b_.push_back(0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
  }
  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  template <class T>
  Bytes& put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof v);
    b_.insert(b_.end(), tmp, tmp + sizeof v);
    return *this;
  }
  std::vector<uint8_t> b_;
};

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4_0 = 2;
constexpr uint32_t kF64 = 28;

// Parses and expects rejection whose message contains every fragment.
void expect_rejected(const Bytes& b, std::vector<std::string> fragments,
                     StatusCode code = StatusCode::kCorruptData) {
  Expected<GgufFile> f = GgufFile::parse(b.bytes());
  ASSERT_FALSE(f.has_value()) << "accepted a malformed file; expected: " << fragments[0];
  EXPECT_EQ(f.status().code(), code) << f.status().to_string();
  for (const std::string& frag : fragments) {
    EXPECT_NE(f.status().message().find(frag), std::string::npos)
        << "message '" << f.status().message() << "' lacks '" << frag << "'";
  }
}

// A minimal valid file: one kv, one F32 tensor of 8 elements.
Bytes valid_file() {
  Bytes b;
  b.header(3, 1, 1).kv_str("general.architecture", "llama").tensor("w", {8}, kF32, 0).pad().zeros(32);
  return b;
}

TEST(GgufReader, accepts_a_minimal_valid_file) {
  Bytes b = valid_file();
  Expected<GgufFile> f = GgufFile::parse(b.bytes());
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->tensors()[0].n_bytes, 32u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
}

TEST(GgufReader, accepts_version_2) {
  Bytes b;
  b.header(2, 0, 1).kv_u32("a.b", 7);
  Expected<GgufFile> f = GgufFile::parse(b.bytes());
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  EXPECT_EQ(*f->get_int("a.b"), 7);
}

TEST(GgufReader, rejects_bad_magic) {
  Bytes b;
  b.u32(0x46554748).u32(3).u64(0).u64(0);
  expect_rejected(b, {"at byte 0", "not a GGUF file"});
}

TEST(GgufReader, rejects_version_1_as_unsupported) {
  Bytes b;
  b.header(1, 0, 0);
  expect_rejected(b, {"at byte 4", "version 1"}, StatusCode::kUnsupported);
}

TEST(GgufReader, rejects_unknown_version) {
  Bytes b;
  b.header(4, 0, 0);
  expect_rejected(b, {"at byte 4", "unknown GGUF version 4"});
}

TEST(GgufReader, rejects_big_endian_files_clearly) {
  Bytes b;
  b.header(0x03000000, 0, 0);
  expect_rejected(b, {"big-endian"}, StatusCode::kUnsupported);
}

TEST(GgufReader, rejects_metadata_count_beyond_file_size) {
  Bytes b;
  b.header(3, 0, 1'000'000'000'000ull);
  expect_rejected(b, {"at byte 16", "metadata count 1000000000000 cannot fit"});
}

TEST(GgufReader, rejects_tensor_count_beyond_file_size) {
  Bytes b;
  b.header(3, std::numeric_limits<uint64_t>::max(), 0);
  expect_rejected(b, {"at byte 8", "tensor count"});
}

TEST(GgufReader, rejects_string_length_past_end_of_file) {
  Bytes b;
  b.header(3, 0, 1).u64(1ull << 40).zeros(8);
  expect_rejected(b, {"at byte 24", "metadata key has length 1099511627776"});
}

TEST(GgufReader, rejects_string_value_past_end_of_file) {
  Bytes b;
  b.header(3, 0, 1).str("k").u32(8).u64(100).zeros(10);
  expect_rejected(b, {"string value has length 100", "metadata 'k'"});
}

TEST(GgufReader, rejects_empty_key) {
  Bytes b;
  b.header(3, 0, 1).kv_u32("", 1);
  expect_rejected(b, {"at byte 24", "empty key"});
}

TEST(GgufReader, rejects_duplicate_key) {
  Bytes b;
  b.header(3, 0, 2).kv_u32("a", 1);
  size_t second = b.size();
  b.kv_u32("a", 2);
  expect_rejected(b, {"at byte " + std::to_string(second), "duplicate metadata key 'a'"});
}

TEST(GgufReader, rejects_unknown_value_type) {
  Bytes b;
  b.header(3, 0, 1).str("k").u32(13).u32(0);
  expect_rejected(b, {"at byte 33", "unknown metadata value type 13"});
}

TEST(GgufReader, rejects_bool_that_is_not_0_or_1) {
  Bytes b;
  b.header(3, 0, 1).str("k").u32(7).u8(2).zeros(4);
  expect_rejected(b, {"bool value 2"});
}

TEST(GgufReader, rejects_array_length_past_end_of_file) {
  Bytes b;
  b.header(3, 0, 1).str("k").u32(9).u32(4).u64(1ull << 60).zeros(16);
  expect_rejected(b, {"array of 1152921504606846976 uint32 values cannot fit"});
}

TEST(GgufReader, rejects_string_array_whose_count_exceeds_bytes) {
  Bytes b;
  // 100 strings need at least 800 bytes of lengths; only a few are there.
  b.header(3, 0, 1).str("k").u32(9).u32(8).u64(100).zeros(40);
  expect_rejected(b, {"array of 100 string values cannot fit"});
}

TEST(GgufReader, rejects_unknown_array_element_type) {
  Bytes b;
  b.header(3, 0, 1).str("k").u32(9).u32(99).u64(0);
  expect_rejected(b, {"unknown metadata value type 99"});
}

TEST(GgufReader, rejects_arrays_nested_too_deep) {
  Bytes b;
  b.header(3, 0, 1).str("k").u32(9);
  for (int i = 0; i < 20; ++i) b.u32(9).u64(1);
  b.u32(4).u64(0);
  expect_rejected(b, {"nested deeper"});
}

TEST(GgufReader, rejects_alignment_not_a_power_of_two) {
  Bytes b;
  b.header(3, 0, 1).kv_u32("general.alignment", 48);
  expect_rejected(b, {"general.alignment 48 is not a power of two"});
}

TEST(GgufReader, rejects_zero_alignment) {
  Bytes b;
  b.header(3, 0, 1).kv_u32("general.alignment", 0);
  expect_rejected(b, {"general.alignment 0"});
}

TEST(GgufReader, rejects_alignment_of_the_wrong_type) {
  Bytes b;
  b.header(3, 0, 1).str("general.alignment").u32(10).u64(32);
  expect_rejected(b, {"general.alignment must be a uint32, got uint64"});
}

TEST(GgufReader, rejects_zero_and_too_many_dimensions) {
  for (uint32_t n_dims : {0u, 5u}) {
    Bytes b;
    b.header(3, 1, 0).str("t").u32(n_dims);
    for (uint32_t i = 0; i < n_dims; ++i) b.u64(1);
    b.u32(kF32).u64(0).pad().zeros(32);
    expect_rejected(b, {"tensor #0 't' has " + std::to_string(n_dims) + " dimensions"});
  }
}

TEST(GgufReader, rejects_zero_dimension) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {4, 0}, kF32, 0).pad().zeros(32);
  expect_rejected(b, {"dimension 1 is 0"});
}

TEST(GgufReader, rejects_element_count_overflow) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {1ull << 40, 1ull << 40}, kF32, 0).pad().zeros(32);
  expect_rejected(b, {"element count overflows"});
}

TEST(GgufReader, rejects_byte_count_overflow) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {1ull << 31, 1ull << 31}, kF64, 0).pad().zeros(32);
  expect_rejected(b, {"byte size overflows"});
}

TEST(GgufReader, rejects_unknown_tensor_type) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {32}, 31, 0).pad().zeros(32);
  expect_rejected(b, {"unknown tensor type 31"});
}

TEST(GgufReader, rejects_first_dimension_not_a_block_multiple) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {33, 2}, kQ4_0, 0).pad().zeros(64);
  expect_rejected(b, {"first dimension 33, not a multiple of the block size 32"});
}

TEST(GgufReader, rejects_unaligned_tensor_offset) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {8}, kF32, 4).pad().zeros(64);
  expect_rejected(b, {"data offset 4 is not a multiple of the alignment 32"});
}

TEST(GgufReader, rejects_overlapping_tensors) {
  Bytes b;
  b.header(3, 2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 32).pad().zeros(128);
  expect_rejected(b, {"tensor 'b' data at offset 32 overlaps or precedes tensor 'a'"});
}

TEST(GgufReader, rejects_tensors_out_of_order) {
  Bytes b;
  b.header(3, 2, 0).tensor("a", {8}, kF32, 64).tensor("b", {8}, kF32, 0).pad().zeros(128);
  expect_rejected(b, {"tensor 'b'", "ordered and non-overlapping"});
}

TEST(GgufReader, rejects_tensor_data_past_end_of_file) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {64}, kF32, 0).pad().zeros(100);
  expect_rejected(b, {"tensor 't' data [0, +256) extends past the end of the file"});
}

TEST(GgufReader, rejects_duplicate_tensor_names) {
  Bytes b;
  b.header(3, 2, 0).tensor("t", {8}, kF32, 0).tensor("t", {8}, kF32, 32).pad().zeros(64);
  expect_rejected(b, {"duplicate tensor name 't'"});
}

TEST(GgufReader, rejects_empty_tensor_name) {
  Bytes b;
  b.header(3, 1, 0).tensor("", {8}, kF32, 0).pad().zeros(32);
  expect_rejected(b, {"tensor #0 has an empty name"});
}

TEST(GgufReader, rejects_missing_data_section) {
  Bytes b;
  b.header(3, 1, 0).tensor("t", {8}, kF32, 0);
  expect_rejected(b, {"before the tensor data section"});
}

// Every metadata value type, nested arrays, custom alignment, several tensors.
GgufWriter rich_writer(std::mt19937_64& rng) {
  GgufWriter w;
  w.set("general.alignment", uint32_t{64});
  w.set("u8", uint8_t{200});
  w.set("i8", int8_t{-100});
  w.set("u16", uint16_t{60000});
  w.set("i16", int16_t{-30000});
  w.set("u32", uint32_t{4000000000u});
  w.set("i32", int32_t{-2000000000});
  w.set("f32", 1.5f);
  w.set("bool", true);
  w.set("str", std::string("héllo \"world\"\n"));
  w.set("u64", uint64_t{18000000000000000000ull});
  w.set("i64", int64_t{-9000000000000000000ll});
  w.set("f64", 2.25);
  GgufArray strs{GgufType::kString, {}, {"a", "", "ü"}, {}};
  w.set("arr.str", strs);
  GgufArray ints{GgufType::kInt32, {}, {}, {}};
  for (int32_t v : {1, -2, 3}) {
    uint8_t tmp[4];
    std::memcpy(tmp, &v, 4);
    ints.raw.insert(ints.raw.end(), tmp, tmp + 4);
  }
  w.set("arr.i32", ints);
  GgufArray nested{GgufType::kArray, {}, {}, {ints, strs}};
  w.set("arr.nested", nested);
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> data(18 * 2 * (i + 1));
    for (uint8_t& x : data) x = static_cast<uint8_t>(rng());
    Status s = w.add_tensor("t" + std::to_string(i), GgmlType::kQ4_0, {32, i + 1, 2}, data);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  return w;
}

TEST(GgufRoundTrip, reader_of_writer_equals_input) {
  std::mt19937_64 rng(std::random_device{}());
  GgufWriter w = rich_writer(rng);
  Expected<std::vector<uint8_t>> bytes = w.to_bytes();
  ASSERT_TRUE(bytes.has_value());
  Expected<GgufFile> f = GgufFile::parse(*bytes);
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  ASSERT_EQ(f->metadata().size(), 16u);
  EXPECT_EQ(*f->find("u8"), GgufValue(uint8_t{200}));
  EXPECT_EQ(*f->find("i64"), GgufValue(int64_t{-9000000000000000000ll}));
  EXPECT_EQ(*f->find("u64"), GgufValue(uint64_t{18000000000000000000ull}));
  EXPECT_EQ(*f->find("f64"), GgufValue(2.25));
  EXPECT_EQ(*f->find("bool"), GgufValue(true));
  EXPECT_EQ(*f->get_string("str"), "héllo \"world\"\n");
  const GgufArray* nested = *f->get_array("arr.nested");
  ASSERT_EQ(nested->arrays.size(), 2u);
  EXPECT_EQ(nested->arrays[0].int_at(1), -2);
  EXPECT_EQ(nested->arrays[1].strings[2], "ü");
  ASSERT_EQ(f->tensors().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const GgufTensorInfo* t = f->find_tensor("t" + std::to_string(i));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{32, i + 1, 2}));
    EXPECT_EQ(t->offset % 64, 0u);
    EXPECT_EQ(t->n_bytes, 36u * (i + 1));
  }
  // Writing what we read gives the same bytes.
  GgufWriter w2;
  for (const auto& [k, v] : f->metadata()) w2.set(k, v);
  for (const GgufTensorInfo& t : f->tensors()) {
    ASSERT_TRUE(w2.add_tensor(t.name, t.type, t.shape, {t.data, t.n_bytes}).ok());
  }
  EXPECT_EQ(*w2.to_bytes(), *bytes);
}

TEST(GgufRoundTrip, every_truncation_is_rejected_cleanly) {
  std::mt19937_64 rng(std::random_device{}());
  std::vector<uint8_t> bytes = *rich_writer(rng).to_bytes();
  Expected<GgufFile> full = GgufFile::parse(bytes);
  ASSERT_TRUE(full.has_value());
  const GgufTensorInfo& last = full->tensors().back();
  size_t needed = full->data_offset() + last.offset + last.n_bytes;
  for (size_t n = 0; n < needed; ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    Expected<GgufFile> f = GgufFile::parse(cut);
    ASSERT_FALSE(f.has_value()) << "accepted a file truncated to " << n << " bytes";
    EXPECT_NE(f.status().message().find("at byte"), std::string::npos) << f.status().message();
  }
}

TEST(GgufAccessors, distinguish_missing_from_wrong_kind) {
  GgufWriter w;
  w.set("s", std::string("x"));
  w.set("n", uint32_t{3});
  w.set("neg", int32_t{-1});
  std::vector<uint8_t> bytes = *w.to_bytes();
  GgufFile f = std::move(GgufFile::parse(bytes).value());
  EXPECT_EQ(f.get_int("missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f.get_int("s").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*f.get_float("n"), 3.0);
  EXPECT_EQ(f.get_uint("neg").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.get_string_array("s").status().code(), StatusCode::kInvalidArgument);
}

TEST(GgufWriter, refuses_tensors_it_could_not_write_readably) {
  GgufWriter w;
  std::vector<uint8_t> data(18);
  EXPECT_FALSE(w.add_tensor("", GgmlType::kQ4_0, {32}, data).ok());
  EXPECT_FALSE(w.add_tensor("a", GgmlType::kQ4_0, {31}, data).ok());
  EXPECT_FALSE(w.add_tensor("a", GgmlType::kQ4_0, {32, 2}, data).ok());  // wrong byte count
  EXPECT_FALSE(w.add_tensor("a", GgmlType::kQ4_0, {32, 1, 1, 1, 1}, data).ok());
  EXPECT_TRUE(w.add_tensor("a", GgmlType::kQ4_0, {32}, data).ok());
  EXPECT_FALSE(w.add_tensor("a", GgmlType::kQ4_0, {32}, data).ok());  // duplicate
}

TEST(GgufFileOpen, reports_missing_files_and_maps_real_ones) {
  EXPECT_EQ(GgufFile::open("/nonexistent/x.gguf").status().code(), StatusCode::kNotFound);
  std::mt19937_64 rng(std::random_device{}());
  std::string path = ::testing::TempDir() + "/rt.gguf";
  ASSERT_TRUE(rich_writer(rng).write(path).ok());
  Expected<GgufFile> f = GgufFile::open(path);
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  GgufFile moved = std::move(*f);
  EXPECT_EQ(moved.tensors().size(), 3u);
  EXPECT_EQ(moved.path(), path);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace suanli
