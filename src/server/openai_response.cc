#include "server/openai_response.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

namespace suanli::server {

using ojson = nlohmann::ordered_json;

std::string dump_json(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string error_body(const ApiError& e) {
  ojson err = ojson::object();
  err["message"] = e.message;
  err["type"] = e.type;
  err["param"] = e.param.empty() ? ojson(nullptr) : ojson(e.param);
  err["code"] = e.code.empty() ? ojson(nullptr) : ojson(e.code);
  ojson body = ojson::object();
  body["error"] = std::move(err);
  return dump_json(body);
}

std::string make_response_id(Endpoint endpoint) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}() ^ counter.fetch_add(1));
  char hex[32];
  std::snprintf(hex, sizeof hex, "%016llx%08llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng() & 0xffffffffu));
  return std::string(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + hex;
}

ResponseBuilder::ResponseBuilder(Endpoint endpoint, std::string id, int64_t created, std::string model,
                                 std::shared_ptr<const Tokenizer> tokenizer, int32_t n_choices, bool logprobs,
                                 bool include_usage)
    : endpoint_(endpoint),
      id_(std::move(id)),
      created_(created),
      model_(std::move(model)),
      tok_(std::move(tokenizer)),
      logprobs_(logprobs),
      include_usage_(include_usage),
      choices_(n_choices) {
  for (ChoiceState& c : choices_) {
    if (endpoint_ == Endpoint::kChat) {
      c.logprobs = ojson::array();
    } else {
      c.logprobs = ojson{{"tokens", ojson::array()},
                         {"token_logprobs", ojson::array()},
                         {"top_logprobs", ojson::array()},
                         {"text_offset", ojson::array()}};
    }
  }
}

ojson ResponseBuilder::chunk_head() const {
  ojson j = ojson::object();
  j["id"] = id_;
  j["object"] = endpoint_ == Endpoint::kChat ? "chat.completion.chunk" : "text_completion";
  j["created"] = created_;
  j["model"] = model_;
  j["system_fingerprint"] = nullptr;
  return j;
}

ojson ResponseBuilder::usage_json(const Usage& u) const {
  ojson j = ojson::object();
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  j["total_tokens"] = u.prompt_tokens + u.completion_tokens;
  j["prompt_tokens_details"] = ojson{{"cached_tokens", u.cached_prompt_tokens}};
  return j;
}

static ojson bytes_of(const std::string& s) {
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

ojson ResponseBuilder::token_logprobs_chat(const Event& e) const {
  ojson list = ojson::array();
  if (e.top_logprobs.empty()) return list;
  const TokenLogprob& chosen = e.top_logprobs[0];
  const std::string text = tok_->token_bytes(chosen.token);
  ojson entry = ojson::object();
  entry["token"] = text;
  entry["logprob"] = chosen.logprob;
  entry["bytes"] = bytes_of(text);
  ojson tops = ojson::array();
  for (size_t i = 1; i < e.top_logprobs.size(); ++i) {
    const std::string t = tok_->token_bytes(e.top_logprobs[i].token);
    tops.push_back(ojson{{"token", t}, {"logprob", e.top_logprobs[i].logprob}, {"bytes", bytes_of(t)}});
  }
  entry["top_logprobs"] = std::move(tops);
  list.push_back(std::move(entry));
  return list;
}

void ResponseBuilder::token_logprobs_completion(const Event& e, int64_t* offset, ojson* into) const {
  if (e.top_logprobs.empty()) return;
  const TokenLogprob& chosen = e.top_logprobs[0];
  const std::string text = tok_->token_bytes(chosen.token);
  (*into)["tokens"].push_back(text);
  (*into)["token_logprobs"].push_back(chosen.logprob);
  ojson tops = ojson::object();
  for (size_t i = 1; i < e.top_logprobs.size(); ++i) {
    tops[tok_->token_bytes(e.top_logprobs[i].token)] = e.top_logprobs[i].logprob;
  }
  (*into)["top_logprobs"].push_back(std::move(tops));
  (*into)["text_offset"].push_back(*offset);
  *offset += static_cast<int64_t>(text.size());
}

static std::string sse(const ojson& j) { return "data: " + dump_json(j) + "\n\n"; }

std::string ResponseBuilder::role_chunk(int32_t index) const {
  if (endpoint_ != Endpoint::kChat) return {};
  ojson j = chunk_head();
  ojson c = ojson::object();
  c["index"] = index;
  c["delta"] = ojson{{"role", "assistant"}, {"content", ""}};
  c["logprobs"] = nullptr;
  c["finish_reason"] = nullptr;
  j["choices"] = ojson::array({std::move(c)});
  if (include_usage_) j["usage"] = nullptr;
  return sse(j);
}

std::string ResponseBuilder::delta_chunk(int32_t index, const Event& e) const {
  const bool with_lp = logprobs_ && !e.top_logprobs.empty();
  if (e.text.empty() && !with_lp) return {};
  ojson j = chunk_head();
  ojson c = ojson::object();
  c["index"] = index;
  if (endpoint_ == Endpoint::kChat) {
    c["delta"] = ojson{{"content", e.text}};
    c["logprobs"] = with_lp ? ojson{{"content", token_logprobs_chat(e)}} : ojson(nullptr);
  } else {
    c["text"] = e.text;
    if (with_lp) {
      ojson lp{{"tokens", ojson::array()},
               {"token_logprobs", ojson::array()},
               {"top_logprobs", ojson::array()},
               {"text_offset", ojson::array()}};
      int64_t off = choices_[index].text_offset;
      token_logprobs_completion(e, &off, &lp);
      c["logprobs"] = std::move(lp);
    } else {
      c["logprobs"] = nullptr;
    }
  }
  c["finish_reason"] = nullptr;
  j["choices"] = ojson::array({std::move(c)});
  if (include_usage_) j["usage"] = nullptr;
  return sse(j);
}

std::string ResponseBuilder::finish_chunk(int32_t index, std::string_view finish_reason) const {
  ojson j = chunk_head();
  ojson c = ojson::object();
  c["index"] = index;
  if (endpoint_ == Endpoint::kChat) {
    c["delta"] = ojson::object();
  } else {
    c["text"] = "";
  }
  c["logprobs"] = nullptr;
  c["finish_reason"] = finish_reason;
  j["choices"] = ojson::array({std::move(c)});
  if (include_usage_) j["usage"] = nullptr;
  return sse(j);
}

std::string ResponseBuilder::usage_chunk(const Usage& usage) const {
  ojson j = chunk_head();
  j["choices"] = ojson::array();
  j["usage"] = usage_json(usage);
  return sse(j);
}

void ResponseBuilder::prepend_text(int32_t index, const std::string& text) {
  ChoiceState& c = choices_[index];
  c.text = text + c.text;
  c.text_offset += static_cast<int64_t>(text.size());
}

void ResponseBuilder::add(int32_t index, const Event& e) {
  if (index < 0 || index >= static_cast<int32_t>(choices_.size())) return;
  ChoiceState& c = choices_[index];
  c.text += e.text;
  if (!logprobs_) return;
  if (endpoint_ == Endpoint::kChat) {
    for (ojson& x : token_logprobs_chat(e)) c.logprobs.push_back(std::move(x));
  } else {
    token_logprobs_completion(e, &c.text_offset, &c.logprobs);
  }
}

void ResponseBuilder::set_finish(int32_t index, std::string_view finish_reason) {
  if (index < 0 || index >= static_cast<int32_t>(choices_.size())) return;
  choices_[index].finish_reason = std::string(finish_reason);
}

std::string ResponseBuilder::body(const Usage& usage) const {
  ojson j = ojson::object();
  j["id"] = id_;
  j["object"] = endpoint_ == Endpoint::kChat ? "chat.completion" : "text_completion";
  j["created"] = created_;
  j["model"] = model_;
  j["system_fingerprint"] = nullptr;
  ojson choices = ojson::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceState& s = choices_[i];
    ojson c = ojson::object();
    c["index"] = i;
    if (endpoint_ == Endpoint::kChat) {
      c["message"] = ojson{{"role", "assistant"}, {"content", s.text}};
      c["logprobs"] = logprobs_ ? ojson{{"content", s.logprobs}} : ojson(nullptr);
    } else {
      c["text"] = s.text;
      c["logprobs"] = logprobs_ ? s.logprobs : ojson(nullptr);
    }
    c["finish_reason"] = s.finish_reason.empty() ? ojson("abort") : ojson(s.finish_reason);
    choices.push_back(std::move(c));
  }
  j["choices"] = std::move(choices);
  j["usage"] = usage_json(usage);
  return dump_json(j);
}

}  // namespace suanli::server
