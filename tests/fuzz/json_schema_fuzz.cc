// libFuzzer target: an untrusted JSON Schema (from a request's
// response_format) through the compiler, then untrusted bytes through the
// automaton it gives (and through the plain json_object automaton). Input:
// the schema text, a NUL byte, then the bytes. Refused bytes are skipped;
// the accepted ones must always form a prefix of JSON, and whenever the
// automaton says complete, nlohmann::json must read them as one object.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/json_constraint.h"
#include "engine/json_schema.h"

namespace {

void check_complete(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view schema_text = in.substr(0, nul);
  const std::string_view bytes = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  std::shared_ptr<const suanli::JsonSchema> schema = suanli::JsonSchema::any_object();
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(schema_text, nullptr, false);
  if (!j.is_discarded()) {
    auto compiled = suanli::JsonSchema::compile(j);
    if (compiled) schema = *compiled;
  }
  suanli::SchemaAutomaton a(schema.get());
  suanli::JsonAutomaton plain;
  std::string accepted, plain_accepted;
  for (const char c : bytes) {
    if (a.push(static_cast<uint8_t>(c))) {
      accepted += c;
      if (a.complete()) check_complete(accepted);
    }
    if (plain.push(static_cast<uint8_t>(c))) {
      plain_accepted += c;
      if (plain.complete()) check_complete(plain_accepted);
    }
  }
  return 0;
}
