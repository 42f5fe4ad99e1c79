// GgufValue / GgufArray: metadata values, their widening views and display.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "suanli/gguf.h"

namespace suanli {

size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    default: return 0;
  }
}

namespace {

size_t scalar_size(GgufType t) { return gguf_scalar_size(t); }

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string quote(const std::string& s, size_t max_chars) {
  std::string out = "\"";
  size_t n = 0;
  for (unsigned char c : s) {
    if (n++ >= max_chars) {
      out += "...";
      break;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

std::string format_double(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", d);
  return buf;
}

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kUint8: return "uint8";
    case GgufType::kInt8: return "int8";
    case GgufType::kUint16: return "uint16";
    case GgufType::kInt16: return "int16";
    case GgufType::kUint32: return "uint32";
    case GgufType::kInt32: return "int32";
    case GgufType::kFloat32: return "float32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "uint64";
    case GgufType::kInt64: return "int64";
    case GgufType::kFloat64: return "float64";
  }
  return "unknown";
}

size_t GgufArray::size() const {
  if (elem_type == GgufType::kString) return strings.size();
  if (elem_type == GgufType::kArray) return arrays.size();
  size_t es = scalar_size(elem_type);
  return es ? raw.size() / es : 0;
}

int64_t GgufArray::int_at(size_t i) const {
  SUANLI_CHECK(i < size());
  const uint8_t* p = raw.data() + i * scalar_size(elem_type);
  switch (elem_type) {
    case GgufType::kUint8: return load<uint8_t>(p);
    case GgufType::kInt8: return load<int8_t>(p);
    case GgufType::kUint16: return load<uint16_t>(p);
    case GgufType::kInt16: return load<int16_t>(p);
    case GgufType::kUint32: return load<uint32_t>(p);
    case GgufType::kInt32: return load<int32_t>(p);
    case GgufType::kUint64: return static_cast<int64_t>(load<uint64_t>(p));
    case GgufType::kInt64: return load<int64_t>(p);
    case GgufType::kBool: return load<uint8_t>(p);
    default: SUANLI_CHECK(false && "int_at on a non-integer array");
  }
  return 0;
}

double GgufArray::float_at(size_t i) const {
  SUANLI_CHECK(i < size());
  const uint8_t* p = raw.data() + i * scalar_size(elem_type);
  if (elem_type == GgufType::kFloat32) return load<float>(p);
  if (elem_type == GgufType::kFloat64) return load<double>(p);
  if (elem_type == GgufType::kUint64) return static_cast<double>(load<uint64_t>(p));
  return static_cast<double>(int_at(i));
}

bool GgufValue::is_integer() const {
  switch (type()) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default: return false;
  }
}

bool GgufValue::is_float() const {
  return type() == GgufType::kFloat32 || type() == GgufType::kFloat64;
}

std::optional<int64_t> GgufValue::as_int() const {
  if (!is_integer()) return std::nullopt;
  if (const uint64_t* u = std::get_if<uint64_t>(&v_)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  return std::visit(
      [](const auto& x) -> int64_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          return static_cast<int64_t>(x);
        } else {
          return 0;
        }
      },
      v_);
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (const uint64_t* u = std::get_if<uint64_t>(&v_)) return *u;
  std::optional<int64_t> i = as_int();
  if (!i || *i < 0) return std::nullopt;
  return static_cast<uint64_t>(*i);
}

std::optional<double> GgufValue::as_float() const {
  if (const float* f = std::get_if<float>(&v_)) return *f;
  if (const double* d = std::get_if<double>(&v_)) return *d;
  if (const uint64_t* u = std::get_if<uint64_t>(&v_)) return static_cast<double>(*u);
  if (std::optional<int64_t> i = as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (const bool* b = std::get_if<bool>(&v_)) return *b;
  return std::nullopt;
}

namespace {

std::string array_item_display(const GgufArray& a, size_t i, size_t max_items) {
  switch (a.elem_type) {
    case GgufType::kString: return quote(a.strings[i], 40);
    case GgufType::kArray: return GgufValue(a.arrays[i]).to_display_string(max_items);
    case GgufType::kFloat32: case GgufType::kFloat64: return format_double(a.float_at(i));
    case GgufType::kBool: return a.int_at(i) ? "true" : "false";
    case GgufType::kUint64: {
      uint64_t v;
      std::memcpy(&v, a.raw.data() + i * 8, 8);
      return std::to_string(v);
    }
    default: return std::to_string(a.int_at(i));
  }
}

}  // namespace

std::string GgufValue::to_display_string(size_t max_items) const {
  switch (type()) {
    case GgufType::kString: return quote(*as_string(), 200);
    case GgufType::kBool: return std::get<bool>(v_) ? "true" : "false";
    case GgufType::kFloat32: case GgufType::kFloat64: return format_double(*as_float());
    case GgufType::kUint64: return std::to_string(std::get<uint64_t>(v_));
    case GgufType::kArray: {
      const GgufArray& a = *as_array();
      std::string out = "[";
      out += gguf_type_name(a.elem_type);
      out += " x ";
      out += std::to_string(a.size());
      out += "]";
      size_t n = std::min(a.size(), max_items);
      for (size_t i = 0; i < n; ++i) {
        out += i ? ", " : " ";
        out += array_item_display(a, i, max_items);
      }
      if (n < a.size()) out += ", ...";
      return out;
    }
    default: return std::to_string(*as_int());
  }
}

}  // namespace suanli
