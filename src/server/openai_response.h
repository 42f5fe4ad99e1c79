// OpenAI response shapes: whole chat.completion / text_completion bodies,
// their streaming chunks as SSE events, and error bodies. Pure formatting:
// no I/O, no engine calls.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "server/openai_request.h"
#include "suanli/engine.h"
#include "suanli/tokenizer.h"

namespace suanli::server {

// {"error": {"message", "type", "param", "code"}} as text.
std::string error_body(const ApiError& e);
// "chatcmpl-<24 hex>" / "cmpl-<24 hex>".
std::string make_response_id(Endpoint endpoint);
// JSON text; invalid UTF-8 (a token's raw bytes can be half a character)
// becomes U+FFFD instead of an exception.
std::string dump_json(const nlohmann::ordered_json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Builds one completion response, streamed or whole. Choice indices are
// global over the request (prompt p's choice i is p * n + i).
class ResponseBuilder {
 public:
  ResponseBuilder(Endpoint endpoint, std::string id, int64_t created, std::string model,
                  std::shared_ptr<const Tokenizer> tokenizer, int32_t n_choices, bool logprobs,
                  bool include_usage);

  // Streaming: each returns one SSE event ("data: {...}\n\n"), or "" when
  // there is nothing to say (an empty delta without logprobs).
  std::string role_chunk(int32_t index) const;
  std::string delta_chunk(int32_t index, const Event& e) const;
  std::string finish_chunk(int32_t index, std::string_view finish_reason) const;
  std::string usage_chunk(const Usage& usage) const;

  // Whole response: accumulate, then body().
  void prepend_text(int32_t index, const std::string& text);  // echo
  void add(int32_t index, const Event& e);
  void set_finish(int32_t index, std::string_view finish_reason);
  std::string body(const Usage& usage) const;

 private:
  struct ChoiceState {
    std::string text;
    std::string finish_reason;
    nlohmann::ordered_json logprobs;  // chat: list of content entries; completions: the four lists
    int64_t text_offset = 0;
  };
  nlohmann::ordered_json chunk_head() const;
  nlohmann::ordered_json usage_json(const Usage& usage) const;
  nlohmann::ordered_json token_logprobs_chat(const Event& e) const;
  void token_logprobs_completion(const Event& e, int64_t* offset, nlohmann::ordered_json* into) const;

  Endpoint endpoint_;
  std::string id_;
  int64_t created_;
  std::string model_;
  std::shared_ptr<const Tokenizer> tok_;
  bool logprobs_;
  bool include_usage_;
  std::vector<ChoiceState> choices_;
};

}  // namespace suanli::server
