// Parsing and validation of OpenAI-style request bodies: every known field
// is type- and range-checked before anything is sent back; unknown fields are
// ignored. The result is engine Requests (one per prompt) plus what the
// response formatter needs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "suanli/engine.h"
#include "suanli/tokenizer.h"

namespace suanli {
class GgufFile;
}

namespace suanli::server {

// An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};

ApiError bad_request(std::string message, std::string param = {});

enum class Endpoint { kChat, kCompletion };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;                       // as the client sent it (echoed back)
  std::vector<std::vector<int32_t>> prompts;  // tokenized; one engine request each
  Request base;                            // everything but the prompt
  bool max_tokens_given = false;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;  // chat: logprobs=true; completions: logprobs given
  int32_t top_logprobs = 0;
  bool echo = false;      // completions: prepend the prompt text
};

struct ParseContext {
  const Tokenizer* tokenizer = nullptr;
  const GgufFile* model_file = nullptr;  // chat template source
  int64_t max_context = 0;
  std::string_view scenario_header;  // X-Suanli-Scenario
  std::string_view raw_body;         // the request's bytes (a json_schema keeps its key order)
};

// False (with the error) when the body is not valid UTF-8 or not a JSON object.
bool parse_json_object(std::string_view body, nlohmann::json* out, ApiError* err);

std::optional<ApiError> parse_completion_request(Endpoint endpoint, const nlohmann::json& body,
                                                 const ParseContext& ctx, CompletionRequest* out);

// POST /tokenize: {"prompt": string} or {"messages": [...]} (chat template
// applied), optional add_special (default true) → token ids.
std::optional<ApiError> parse_tokenize_request(const nlohmann::json& body, const ParseContext& ctx,
                                               std::vector<int32_t>* out);
// POST /detokenize: {"tokens": [int]} → ids, each checked against the vocabulary.
std::optional<ApiError> parse_detokenize_request(const nlohmann::json& body, const ParseContext& ctx,
                                                 std::vector<int32_t>* out);

bool valid_utf8(std::string_view s);

}  // namespace suanli::server
