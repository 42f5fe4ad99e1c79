// Status and Expected<T>: how every fallible boundary in suanli reports errors.
//
// Contract: a Status is either ok or carries a code and a human-readable
// message that says what is wrong and where (byte offset, key, parameter).
// Expected<T> holds a T or a non-ok Status. Both are plain values: copyable,
// no thread affinity. Invariant violations (programmer errors) use
// SUANLI_CHECK instead, which aborts with file:line.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace suanli {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong (request, flag, config)
  kNotFound,         // a file, key or tensor that is not there
  kCorruptData,      // bytes that do not follow their format (model files)
  kUnsupported,      // well-formed, but not something we implement
  kIoError,          // the OS or network failed
  kOutOfRange,       // a number outside its allowed range
  kResourceExhausted,
  kUnavailable,
  kCancelled,
  kInternal,
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt data: at byte 24: ..." — for logs and CLI errors.
  std::string to_string() const;

  // Prefixes context to the message ("loading x.gguf: " + message).
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status CorruptData(std::string m) { return {StatusCode::kCorruptData, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// A value or the Status explaining why there is none. std::expected is C++23;
// this is the small subset we need on top of std::variant.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Expected built from an ok Status");
  }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Ok when a value is held.
  Status status() const { return has_value() ? Status() : std::get<Status>(v_); }

  T value_or(T fallback) const { return has_value() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] void check_failed(const char* file, int line, const char* expr);

}  // namespace suanli

// Invariants only: a failed check is a bug in suanli, never bad input.
#define SUANLI_CHECK(cond) \
  do { \
    if (!(cond)) ::suanli::check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

#define SUANLI_CONCAT_INNER(a, b) a##b
#define SUANLI_CONCAT(a, b) SUANLI_CONCAT_INNER(a, b)

#define SUANLI_RETURN_IF_ERROR(expr) \
  do { \
    ::suanli::Status suanli_status_ = (expr); \
    if (!suanli_status_.ok()) return suanli_status_; \
  } while (0)

#define SUANLI_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr); \
  if (!tmp.has_value()) return tmp.status(); \
  lhs = std::move(tmp).value()

// SUANLI_ASSIGN_OR_RETURN(auto x, f()); — x is the value, or the enclosing
// function returns f()'s Status.
#define SUANLI_ASSIGN_OR_RETURN(lhs, expr) \
  SUANLI_ASSIGN_OR_RETURN_IMPL(SUANLI_CONCAT(suanli_expected_, __LINE__), lhs, expr)
