#include "server/openai_request.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/json_depth.h"
#include "engine/json_schema.h"
#include "suanli/chat_template.h"
#include "suanli/gguf.h"

namespace suanli::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr int32_t kMaxChoices = 16;
constexpr int32_t kMaxTopLogprobs = 20;
constexpr size_t kMaxStops = 16;
constexpr size_t kMaxPrompts = 64;
// As hosted APIs cap it: each choice's sampler holds its own copy.
constexpr size_t kMaxLogitBias = 1024;
// Nesting of arrays and objects in a request body.
constexpr int kMaxBodyDepth = 128;

// A field that is absent or null counts as not given (OpenAI accepts null
// for every optional field).
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<ApiError> get_bool(const json& body, const char* name, bool* out) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return bad_request(std::string(name) + " must be a boolean", name);
  *out = v->get<bool>();
  return std::nullopt;
}

// Integers in [lo, hi]; JSON floats with an integral value are accepted
// (some clients send 16.0).
std::optional<ApiError> get_int(const json& body, const char* name, int64_t lo, int64_t hi, int64_t* out,
                                bool* given = nullptr) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  int64_t x = 0;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
      return bad_request(std::string(name) + " must be an integer in " + range, name);
    }
    x = v->get<int64_t>();
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
      return bad_request(std::string(name) + " must be an integer in " + range, name);
    }
    x = static_cast<int64_t>(d);
  } else {
    return bad_request(std::string(name) + " must be an integer", name);
  }
  if (x < lo || x > hi) return bad_request(std::string(name) + " must be an integer in " + range, name);
  *out = x;
  if (given) *given = true;
  return std::nullopt;
}

// Numbers in [lo, hi]; lo_open makes the lower bound exclusive.
std::optional<ApiError> get_float(const json& body, const char* name, double lo, double hi, bool lo_open,
                                  float* out) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) return bad_request(std::string(name) + " must be a number", name);
  const double d = v->get<double>();
  const bool ok = std::isfinite(d) && (lo_open ? d > lo : d >= lo) && d <= hi;
  if (!ok) {
    char range[96];
    std::snprintf(range, sizeof range, "%c%g, %g]", lo_open ? '(' : '[', lo, hi);
    return bad_request(std::string(name) + " must be in " + range, name);
  }
  *out = static_cast<float>(d);
  return std::nullopt;
}

std::optional<ApiError> check_token_ids(const json& arr, const char* param, const ParseContext& ctx,
                                        std::vector<int32_t>* out) {
  const int64_t vocab = ctx.tokenizer->n_vocab();
  for (const json& t : arr) {
    if (!t.is_number_integer()) return bad_request(std::string(param) + " must hold integer token ids", param);
    if (t.is_number_unsigned() ? t.get<uint64_t>() >= static_cast<uint64_t>(vocab)
                               : (t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab)) {
      return bad_request("token id " + t.dump() + " is outside the vocabulary [0, " + std::to_string(vocab) + ")",
                         param);
    }
    out->push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return std::nullopt;
}

// logit_bias: {"token id": bias in [-100, 100]}, as OpenAI takes it (keys
// are decimal token ids, since JSON keys are strings).
// A tool or a tool call, as OpenAI shapes both: {"type": "function",
// "function": {"name": ..., ...}} (templates read function.name; other
// members pass through as given).
std::optional<ApiError> check_function_object(const json& x, const std::string& p) {
  if (!x.is_object()) return bad_request(p + " must be an object", p);
  if (const json* type = field(x, "type"); type && (!type->is_string() || type->get<std::string>() != "function")) {
    return bad_request(p + ".type must be \"function\"", p + ".type");
  }
  const json* f = field(x, "function");
  if (!f || !f->is_object()) return bad_request(p + ".function must be an object", p + ".function");
  const json* name = field(*f, "name");
  if (!name || !name->is_string()) return bad_request(p + ".function.name must be a string", p + ".function.name");
  return std::nullopt;
}

std::optional<ApiError> parse_logit_bias(const json& body, const ParseContext& ctx,
                                         std::vector<std::pair<int32_t, float>>* out) {
  const json* lb = field(body, "logit_bias");
  if (!lb) return std::nullopt;
  if (!lb->is_object()) return bad_request("logit_bias must be an object of token id -> bias", "logit_bias");
  if (lb->size() > kMaxLogitBias) {
    return bad_request("logit_bias may hold at most " + std::to_string(kMaxLogitBias) + " tokens", "logit_bias");
  }
  const int64_t vocab = ctx.tokenizer->n_vocab();
  for (const auto& [key, value] : lb->items()) {
    int64_t id = 0;
    // Canonical decimal ids only ("07" would be a second entry for 7).
    bool ok = !key.empty() && key.size() <= 10 && (key.size() == 1 || key[0] != '0');
    for (const char c : key) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) id = id * 10 + (c - '0');
    }
    if (!ok || id >= vocab) {
      return bad_request("logit_bias key '" + key.substr(0, 24) + (key.size() > 24 ? "..." : "") +
                             "' is not a token id in [0, " + std::to_string(vocab) + ")",
                         "logit_bias");
    }
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < -100 ||
        value.get<double>() > 100) {
      return bad_request("logit_bias values must be numbers in [-100, 100]", "logit_bias");
    }
    out->emplace_back(static_cast<int32_t>(id), static_cast<float>(value.get<double>()));
  }
  return std::nullopt;
}

std::vector<int32_t> encode_prompt(const ParseContext& ctx, const std::string& text, bool parse_special) {
  std::vector<int32_t> ids = ctx.tokenizer->encode(text, /*add_special=*/true, parse_special);
  // The template may already start with the BOS text; do not double it.
  const int32_t bos = ctx.tokenizer->bos();
  if (ids.size() >= 2 && bos != Tokenizer::kNoToken && ids[0] == bos && ids[1] == bos) ids.erase(ids.begin());
  return ids;
}

// messages → the chat-templated prompt text.
std::optional<ApiError> render_messages(const json& body, const ParseContext& ctx, std::string* out) {
  const json* msgs = field(body, "messages");
  if (!msgs) return bad_request("messages is required", "messages");
  if (!msgs->is_array()) return bad_request("messages must be an array", "messages");
  if (msgs->empty()) return bad_request("messages must not be empty", "messages");
  ojson messages = ojson::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return bad_request(p + " must be an object", p);
    const json* role = field(m, "role");
    if (!role || !role->is_string()) return bad_request(p + ".role must be a string", p + ".role");
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "developer") {
      return bad_request(p + ".role '" + r + "' is not one of system, user, assistant, tool, developer",
                         p + ".role");
    }
    ojson om = ojson::object();
    // Templates know "system"; "developer" is OpenAI's newer name for it.
    om["role"] = r == "developer" ? "system" : r;
    const json* content = field(m, "content");
    const bool has_tool_calls = field(m, "tool_calls") != nullptr;
    if (!content) {
      // OpenAI clients send null for an assistant turn with tool_calls or a
      // (legacy) function_call, and some histories keep an empty assistant
      // turn as null. The template gets "": many templates concatenate
      // content as a string and fail on null.
      if (r != "assistant") return bad_request(p + ".content is required", p + ".content");
      om["content"] = "";
    } else if (content->is_string()) {
      om["content"] = content->get<std::string>();
    } else if (content->is_array()) {
      std::string text;
      for (size_t j = 0; j < content->size(); ++j) {
        const json& part = (*content)[j];
        const std::string pp = p + ".content[" + std::to_string(j) + "]";
        if (!part.is_object()) return bad_request(pp + " must be an object", pp);
        const json* type = field(part, "type");
        if (!type || !type->is_string() || type->get<std::string>() != "text") {
          return bad_request(pp + ".type must be \"text\" (this model reads text only)", pp + ".type");
        }
        const json* t = field(part, "text");
        if (!t || !t->is_string()) return bad_request(pp + ".text must be a string", pp + ".text");
        if (!text.empty()) text += "\n";
        text += t->get<std::string>();
      }
      om["content"] = text;
    } else {
      return bad_request(p + ".content must be a string or a list of text parts", p + ".content");
    }
    for (const char* k : {"name", "tool_call_id"}) {
      if (const json* v = field(m, k)) {
        if (!v->is_string()) return bad_request(p + "." + k + " must be a string", p + "." + k);
        om[k] = v->get<std::string>();
      }
    }
    if (has_tool_calls) {
      const json* tc = field(m, "tool_calls");
      if (!tc->is_array()) return bad_request(p + ".tool_calls must be an array", p + ".tool_calls");
      for (size_t c = 0; c < tc->size(); ++c) {
        if (auto e = check_function_object((*tc)[c], p + ".tool_calls[" + std::to_string(c) + "]")) return e;
      }
      om["tool_calls"] = ojson::parse(tc->dump());
    }
    messages.push_back(std::move(om));
  }
  ojson tools = nullptr;
  if (const json* t = field(body, "tools")) {
    if (!t->is_array()) return bad_request("tools must be an array", "tools");
    for (size_t i = 0; i < t->size(); ++i) {
      if (auto e = check_function_object((*t)[i], "tools[" + std::to_string(i) + "]")) return e;
    }
    tools = ojson::parse(t->dump());
  }
  Expected<std::string> text = apply_chat_template(*ctx.model_file, messages, tools, /*add_generation_prompt=*/true);
  if (!text) return bad_request("the chat template failed on these messages: " + text.status().message(), "messages");
  *out = std::move(*text);
  return std::nullopt;
}

std::optional<ApiError> parse_prompts(const json& body, const ParseContext& ctx,
                                      std::vector<std::vector<int32_t>>* out) {
  const json* p = field(body, "prompt");
  if (!p) return bad_request("prompt is required", "prompt");
  if (p->is_string()) {
    out->push_back(encode_prompt(ctx, p->get<std::string>(), /*parse_special=*/true));
  } else if (p->is_array()) {
    if (p->empty()) return bad_request("prompt must not be empty", "prompt");
    const json& first = (*p)[0];
    if (first.is_number()) {  // one prompt of token ids
      out->emplace_back();
      if (auto e = check_token_ids(*p, "prompt", ctx, &out->back())) return e;
    } else {
      if (p->size() > kMaxPrompts) {
        return bad_request("at most " + std::to_string(kMaxPrompts) + " prompts per request", "prompt");
      }
      for (const json& item : *p) {
        if (item.is_string()) {
          out->push_back(encode_prompt(ctx, item.get<std::string>(), true));
        } else if (item.is_array()) {
          out->emplace_back();
          if (auto e = check_token_ids(item, "prompt", ctx, &out->back())) return e;
        } else {
          return bad_request("prompt must be a string, a list of token ids, or a list of either", "prompt");
        }
      }
    }
  } else {
    return bad_request("prompt must be a string, a list of token ids, or a list of either", "prompt");
  }
  for (const auto& ids : *out) {
    if (ids.empty()) return bad_request("the prompt is empty", "prompt");
  }
  return std::nullopt;
}

}  // namespace

ApiError bad_request(std::string message, std::string param) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool parse_json_object(std::string_view body, json* out, ApiError* err) {
  if (!valid_utf8(body)) {
    *err = bad_request("the request body is not valid UTF-8");
    return false;
  }
  // Checked before parsing: see core/json_depth.h. No request needs more
  // (a response_format schema at its own limit of 32 levels is ~70 deep).
  if (json_nesting_depth(body, kMaxBodyDepth) > kMaxBodyDepth) {
    *err = bad_request("the request body nests arrays and objects deeper than " + std::to_string(kMaxBodyDepth) +
                       " levels");
    return false;
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again for the position of the error (only on the error path).
    std::string detail;
    try {
      json again = json::parse(body);
      (void)again;
    } catch (const json::exception& e) {
      detail = e.what();
    }
    *err = bad_request("the request body is not valid JSON" + (detail.empty() ? "" : ": " + detail));
    return false;
  }
  if (!j.is_object()) {
    *err = bad_request("the request body must be a JSON object");
    return false;
  }
  *out = std::move(j);
  return true;
}

std::optional<ApiError> parse_completion_request(Endpoint endpoint, const json& body, const ParseContext& ctx,
                                                 CompletionRequest* out) {
  CompletionRequest& r = *out;
  r.endpoint = endpoint;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) return bad_request("model must be a string", "model");
    r.model = m->get<std::string>();
  }
  Request& q = r.base;
  // OpenAI's defaults: temperature 1, top_p 1, no top_k / min_p.
  q.sampling.temperature = 1.0f;
  q.sampling.top_p = 1.0f;
  q.sampling.top_k = 0;
  q.sampling.min_p = 0.0f;
  q.sampling.penalty_last_n = -1;
  q.sampling.seed = 0;
  bool seeded = false;

  if (auto e = get_bool(body, "stream", &r.stream)) return e;
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) return bad_request("stream_options must be an object", "stream_options");
    if (auto e = get_bool(*so, "include_usage", &r.include_usage)) {
      e->param = "stream_options.include_usage";
      e->message = "stream_options." + e->message;
      return e;
    }
  }
  int64_t v = 0;
  const int64_t kIntMax = std::numeric_limits<int32_t>::max();
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    bool given = false;
    if (auto e = get_int(body, name, 1, kIntMax, &v, &given)) return e;
    if (given) {
      q.max_tokens = static_cast<int32_t>(v);
      r.max_tokens_given = true;
    }
  }
  if (!r.max_tokens_given) q.max_tokens = endpoint == Endpoint::kCompletion ? 16 : 0;  // 0: the rest of the context
  v = 1;
  if (auto e = get_int(body, "n", 1, kMaxChoices, &v)) return e;
  q.n = static_cast<int32_t>(v);
  if (auto e = get_float(body, "temperature", 0, 2, false, &q.sampling.temperature)) return e;
  if (auto e = get_float(body, "top_p", 0, 1, true, &q.sampling.top_p)) return e;
  v = 0;
  if (auto e = get_int(body, "top_k", -1, kIntMax, &v)) return e;
  q.sampling.top_k = v < 0 ? 0 : static_cast<int32_t>(v);  // -1: off, as in vLLM
  if (auto e = get_float(body, "min_p", 0, 1, false, &q.sampling.min_p)) return e;
  if (auto e = get_float(body, "presence_penalty", -2, 2, false, &q.sampling.presence_penalty)) return e;
  if (auto e = get_float(body, "frequency_penalty", -2, 2, false, &q.sampling.frequency_penalty)) return e;
  if (auto e = get_float(body, "repetition_penalty", 0, 10, true, &q.sampling.repetition_penalty)) return e;
  if (const json* s = field(body, "seed")) {
    if (s->is_number_float()) {  // 7.0 is an integer too (JavaScript clients send numbers as doubles)
      // Integral values in [-2^63, 2^64), as the integer form accepts (both
      // casts are then defined).
      const double d = s->get<double>();
      if (!std::isfinite(d) || d != std::floor(d) || d < -0x1p63 || d >= 0x1p64) {
        return bad_request("seed must be an integer", "seed");
      }
      q.sampling.seed = d < 0 ? static_cast<uint64_t>(static_cast<int64_t>(d)) : static_cast<uint64_t>(d);
    } else if (s->is_number_integer()) {
      q.sampling.seed = s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
    } else {
      return bad_request("seed must be an integer", "seed");
    }
    seeded = true;
  }
  if (!seeded) {
    static std::atomic<uint64_t> counter{0x9E3779B97F4A7C15ull};
    q.sampling.seed = counter.fetch_add(0x9E3779B97F4A7C15ull) ^
                      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  if (const json* s = field(body, "stop")) {
    if (s->is_string()) {
      q.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > kMaxStops) return bad_request("stop may hold at most " + std::to_string(kMaxStops) + " strings", "stop");
      for (const json& x : *s) {
        if (!x.is_string()) return bad_request("stop must be a string or a list of strings", "stop");
        q.stop.push_back(x.get<std::string>());
      }
    } else {
      return bad_request("stop must be a string or a list of strings", "stop");
    }
    for (const std::string& x : q.stop) {
      if (x.empty()) return bad_request("stop strings must not be empty", "stop");
    }
  }
  if (const json* u = field(body, "user")) {
    if (!u->is_string()) return bad_request("user must be a string", "user");
  }
  if (auto e = get_bool(body, "ignore_eos", &q.ignore_eos)) return e;
  if (auto e = parse_logit_bias(body, ctx, &q.sampling.logit_bias)) return e;
  if (const json* rf = field(body, "response_format")) {
    const json* type = rf->is_object() ? field(*rf, "type") : nullptr;
    if (!type || !type->is_string()) {
      return bad_request("response_format must be an object with a string type", "response_format");
    }
    const std::string t = type->get<std::string>();
    if (t == "json_object") {
      if (q.ignore_eos) return bad_request("response_format json_object cannot be combined with ignore_eos", "response_format");
      q.response_format = ResponseFormat::kJsonObject;
    } else if (t == "json_schema") {
      // OpenAI's shape: {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}.
      // The schema is re-read from the raw body in key order: properties
      // are generated in the schema's order.
      const json* js = field(*rf, "json_schema");
      if (!js || !js->is_object() || !field(*js, "schema") || !field(*js, "schema")->is_object()) {
        return bad_request("response_format json_schema needs json_schema.schema (an object)", "response_format");
      }
      if (q.ignore_eos) return bad_request("response_format json_schema cannot be combined with ignore_eos", "response_format");
      // (Found by key at each level: with duplicate keys the two parses may
      // keep different values.)
      const ojson raw = ojson::parse(ctx.raw_body, nullptr, false);
      const ojson* schema = &raw;
      for (const char* key : {"response_format", "json_schema", "schema"}) {
        const auto it = schema->is_object() ? schema->find(key) : schema->end();
        schema = it != schema->end() && it->is_object() ? &*it : nullptr;
        if (!schema) break;
      }
      if (!schema) return bad_request("response_format json_schema.schema must be an object", "response_format");
      Expected<std::shared_ptr<const JsonSchema>> compiled = JsonSchema::compile(*schema);
      if (!compiled) return bad_request(compiled.status().message(), "response_format");
      q.response_format = ResponseFormat::kJsonSchema;
      q.json_schema = schema->dump();
    } else if (t != "text") {
      return bad_request("response_format type '" + t + "' is not one of text, json_object, json_schema",
                         "response_format");
    }
  }

  if (endpoint == Endpoint::kChat) {
    if (auto e = get_bool(body, "logprobs", &r.logprobs)) return e;
    bool tl_given = false;
    v = 0;
    if (auto e = get_int(body, "top_logprobs", 0, kMaxTopLogprobs, &v, &tl_given)) return e;
    if (tl_given && !r.logprobs) return bad_request("top_logprobs requires logprobs to be true", "top_logprobs");
    r.top_logprobs = static_cast<int32_t>(v);
  } else {
    bool lp_given = false;
    v = 0;
    if (const json* lp = field(body, "logprobs"); lp && lp->is_boolean()) {
      r.logprobs = lp->get<bool>();  // vLLM-style boolean: no alternatives
    } else {
      if (auto e = get_int(body, "logprobs", 0, kMaxTopLogprobs, &v, &lp_given)) return e;
      r.logprobs = lp_given;
      r.top_logprobs = static_cast<int32_t>(v);
    }
    if (auto e = get_bool(body, "echo", &r.echo)) return e;
    if (r.echo && r.stream) return bad_request("echo is not supported with stream", "echo");
    // OpenAI's echo with logprobs scores the prompt tokens too; the engine
    // computes logprobs of generated tokens only.
    if (r.echo && r.logprobs) {
      return bad_request("echo with logprobs is not supported (prompt tokens are not scored)", "echo");
    }
    if (const json* bo = field(body, "best_of")) {
      if (!bo->is_number_integer() || bo->get<int64_t>() != q.n) {
        return bad_request("best_of other than n is not supported", "best_of");
      }
    }
  }
  q.logprobs = r.logprobs ? r.top_logprobs : -1;

  std::string_view scen = ctx.scenario_header;
  std::string scen_body;
  if (const json* s = field(body, "scenario")) {
    if (!s->is_string()) return bad_request("scenario must be a string", "scenario");
    scen_body = s->get<std::string>();
    scen = scen_body;
  }
  if (!scen.empty()) {
    std::optional<ScenarioClass> c = parse_scenario(scen);
    if (!c) {
      return bad_request("unknown scenario '" + std::string(scen) + "' (realtime, interactive or batch)", "scenario");
    }
    q.scenario = *c;
  }

  if (endpoint == Endpoint::kChat) {
    std::string text;
    if (auto e = render_messages(body, ctx, &text)) return e;
    r.prompts.push_back(encode_prompt(ctx, text, /*parse_special=*/true));
    if (r.prompts.back().empty()) return bad_request("the rendered prompt is empty", "messages");
  } else {
    if (auto e = parse_prompts(body, ctx, &r.prompts)) return e;
  }
  if (r.prompts.size() * static_cast<size_t>(q.n) > 128) {
    return bad_request("prompts x n must be at most 128", "n");
  }
  for (const auto& ids : r.prompts) {
    const int64_t len = static_cast<int64_t>(ids.size());
    if (len >= ctx.max_context) {
      return bad_request("the prompt (" + std::to_string(len) + " tokens) exceeds the context length of " +
                             std::to_string(ctx.max_context) + " tokens",
                         endpoint == Endpoint::kChat ? "messages" : "prompt");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tokenize_request(const json& body, const ParseContext& ctx, std::vector<int32_t>* out) {
  bool add_special = true;
  if (auto e = get_bool(body, "add_special", &add_special)) return e;
  if (field(body, "messages")) {
    std::string text;
    if (auto e = render_messages(body, ctx, &text)) return e;
    *out = ctx.tokenizer->encode(text, add_special, true);
    return std::nullopt;
  }
  const json* p = field(body, "prompt");
  if (!p || !p->is_string()) return bad_request("prompt (a string) or messages is required", "prompt");
  *out = ctx.tokenizer->encode(p->get<std::string>(), add_special, true);
  return std::nullopt;
}

std::optional<ApiError> parse_detokenize_request(const json& body, const ParseContext& ctx,
                                                 std::vector<int32_t>* out) {
  const json* t = field(body, "tokens");
  if (!t || !t->is_array()) return bad_request("tokens (a list of token ids) is required", "tokens");
  return check_token_ids(*t, "tokens", ctx, out);
}

}  // namespace suanli::server
