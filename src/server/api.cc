#include "server/api.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include "server/openai_request.h"
#include "server/openai_response.h"

namespace suanli::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kModelPrefix = "/v1/models/";  // GET /v1/models/{id}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Comparison in time independent of where the strings differ.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

// %XX escapes decoded (the openai client encodes a model id's '/' as %2F);
// a malformed escape is kept as it is.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// One completion request in flight: its engine requests (one per prompt),
// the response being built, and the connection it answers on. Everything but
// the engine callback runs on the connection's strand.
class Generation : public Exchange, public std::enable_shared_from_this<Generation> {
 public:
  Generation(Api& api, const ServerBackend& backend, std::shared_ptr<Connection> conn, CompletionRequest req)
      : api_(api),
        backend_(backend),
        conn_(std::move(conn)),
        req_(std::move(req)),
        builder_(req_.endpoint, make_response_id(req_.endpoint), now_unix_seconds(),
                 req_.model.empty() ? backend.model_id : req_.model, backend.tokenizer,
                 static_cast<int32_t>(req_.prompts.size()) * req_.base.n, req_.logprobs, req_.include_usage),
        start_(Clock::now()),
        per_prompt_(req_.prompts.size()) {}

  // Submits every prompt. On an error nothing stays submitted and the error
  // is returned (the caller answers it); the generation then never writes.
  std::optional<ApiError> submit() {
    const int64_t kv_tokens =
        backend_.engine ? static_cast<int64_t>(backend_.max_context) : 0;  // the engine re-checks the KV capacity
    for (size_t p = 0; p < req_.prompts.size(); ++p) {
      Request r = req_.base;
      r.prompt = req_.prompts[p];
      const int64_t len = static_cast<int64_t>(r.prompt.size());
      // 0: a chat request without max_tokens gets the rest of the context.
      if (r.max_tokens == 0) r.max_tokens = static_cast<int32_t>(std::max<int64_t>(1, kv_tokens - len));
      auto self = shared_from_this();
      std::shared_ptr<Connection> conn = conn_;
      Expected<uint64_t> id = backend_.engine->submit(std::move(r), [self, conn, p](const Event& e) {
        // The engine's loop thread: only hand the event over.
        conn->post([self, p, e] { self->on_event(p, e); });
      });
      if (!id) {
        for (uint64_t done : ids_) backend_.engine->cancel(done);
        if (ids_.empty()) api_.generation_ended();  // else when the cancelled ones end
        return map_submit_error(id.status());
      }
      ids_.push_back(*id);
    }
    return std::nullopt;
  }

  // After a successful submit(): the stream head and role chunks.
  void begin() {
    if (!req_.stream) return;
    HttpResponse head;
    head.content_type = "text/event-stream";
    head.headers.emplace_back("Cache-Control", "no-cache");
    head.headers.emplace_back("X-Accel-Buffering", "no");
    conn_->begin_stream(head);
    std::string first;
    for (int32_t i = 0; i < n_choices(); ++i) first += builder_.role_chunk(i);
    write(first);
  }

  void disconnected() override {
    if (dead_) return;
    dead_ = true;
    cancel_all();
  }

  void timed_out() override { cancel_all(); }

 private:
  int32_t n_choices() const { return static_cast<int32_t>(req_.prompts.size()) * req_.base.n; }

  ApiError map_submit_error(const Status& s) {
    ApiError e;
    e.message = s.message();
    switch (s.code()) {
      case StatusCode::kInvalidArgument:
      case StatusCode::kOutOfRange:
        e.status = 400;
        e.param = s.message().find("context") != std::string::npos || s.message().find("KV cache") != std::string::npos
                      ? (req_.endpoint == Endpoint::kChat ? "messages" : "prompt")
                      : "";
        break;
      case StatusCode::kResourceExhausted:
        e.status = 429;
        e.type = "rate_limit_error";
        e.code = "queue_full";
        break;
      case StatusCode::kUnavailable:
        e.status = 503;
        e.type = "service_unavailable";
        e.code = "unavailable";
        break;
      default:
        e.status = 500;
        e.type = "server_error";
        break;
    }
    if (e.status == 429 || e.status == 503) api_.metrics().rejected(req_.base.scenario, e.status);
    return e;
  }

  void cancel_all() {
    for (uint64_t id : ids_) backend_.engine->cancel(id);
  }

  void write(std::string_view data) {
    if (dead_ || data.empty()) return;
    if (!conn_->stream_write(data)) {
      // Gone, or reading too slowly: free the engine's work and the socket.
      dead_ = true;
      cancel_all();
      conn_->drop();
    }
  }

  void on_event(size_t p, const Event& e) {
    PromptState& ps = per_prompt_[p];
    const int32_t idx = static_cast<int32_t>(p) * req_.base.n + e.index;
    switch (e.kind) {
      case Event::Kind::kToken:
        if (!e.ids.empty()) {
          if (ps.first_token < 0) ps.first_token = seconds_since(start_);
          ps.last_token = seconds_since(start_);
          api_.metrics().add_generated_tokens(static_cast<int64_t>(e.ids.size()));
        }
        if (req_.stream) {
          write(builder_.delta_chunk(idx, e));
        } else {
          builder_.add(idx, e);
        }
        break;
      case Event::Kind::kFinish: {
        const std::string_view reason = finish_reason_name(e.finish);
        ps.finish_reason = std::string(reason);
        if (req_.stream) {
          write(builder_.finish_chunk(idx, reason));
        } else {
          builder_.set_finish(idx, reason);
        }
        break;
      }
      case Event::Kind::kDone:
      case Event::Kind::kError: {
        const bool ok = e.kind == Event::Kind::kDone;
        if (!ok) error_ = e.error;
        usage_.prompt_tokens += e.usage.prompt_tokens;
        usage_.completion_tokens += e.usage.completion_tokens;
        usage_.cached_prompt_tokens += e.usage.cached_prompt_tokens;
        RequestRecord rec;
        rec.scenario = req_.base.scenario;
        rec.finish_reason = ok ? (ps.finish_reason.empty() ? "abort" : ps.finish_reason) : "error";
        rec.prompt_tokens = e.usage.prompt_tokens;
        rec.generation_tokens = e.usage.completion_tokens;
        rec.e2e_s = seconds_since(start_);
        if (ok) {
          rec.queue_time_s = e.queue_time_s;
          if (ps.first_token >= 0) rec.ttft_s = e.ttft_s;
          const double per_choice = static_cast<double>(e.usage.completion_tokens) / req_.base.n;
          if (per_choice > 1 && ps.first_token >= 0) rec.tpot_s = (ps.last_token - ps.first_token) / (per_choice - 1);
        }
        api_.metrics().record(rec);
        if (++ended_ == ids_.size()) complete();
        break;
      }
    }
  }

  void complete() {
    api_.generation_ended();
    if (dead_) {
      conn_.reset();
      return;
    }
    if (req_.stream) {
      if (!error_.empty()) {
        ApiError err;
        err.status = 500;
        err.type = "server_error";
        err.message = error_;
        write("data: " + error_body(err) + "\n\n");
      }
      if (req_.include_usage) write(builder_.usage_chunk(usage_));
      write(kSseDone);
      if (!dead_) conn_->end_stream();
    } else if (!error_.empty()) {
      ApiError err;
      err.status = 500;
      err.type = "server_error";
      err.message = "generation failed: " + error_;
      conn_->respond(json_response(500, error_body(err)));
    } else {
      if (req_.echo) {
        for (size_t p = 0; p < req_.prompts.size(); ++p) {
          const std::string text = backend_.tokenizer->decode(req_.prompts[p], /*skip_special=*/false);
          for (int32_t i = 0; i < req_.base.n; ++i) builder_.prepend_text(static_cast<int32_t>(p) * req_.base.n + i, text);
        }
      }
      conn_->respond(json_response(200, builder_.body(usage_)));
    }
    conn_.reset();
  }

  struct PromptState {
    double first_token = -1, last_token = -1;
    std::string finish_reason;
  };

  Api& api_;
  ServerBackend backend_;
  std::shared_ptr<Connection> conn_;
  CompletionRequest req_;
  ResponseBuilder builder_;
  Clock::time_point start_;
  std::vector<PromptState> per_prompt_;
  std::vector<uint64_t> ids_;
  size_t ended_ = 0;
  Usage usage_;
  std::string error_;
  bool dead_ = false;
};

}  // namespace

Api::Api(const ServerOptions& options) : options_(options), started_at_(now_unix_seconds()) {}

void Api::set_backend(ServerBackend backend) {
  backend_ = std::move(backend);
  ready_.store(true, std::memory_order_release);
}

void Api::set_load_error(std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  load_error_ = std::move(message);
}

HttpResponse Api::error_response(int status, const std::string& message, const std::string& type,
                                 const std::string& param, const std::string& code) const {
  ApiError e;
  e.status = status;
  e.message = message;
  e.type = !type.empty() ? type
           : status == 401 ? "authentication_error"
           : status == 404 ? "not_found_error"
           : status >= 500 ? "service_unavailable"
                           : "invalid_request_error";
  e.param = param;
  e.code = code;
  HttpResponse r = json_response(status, error_body(e));
  if (status == 429 || status == 503) {
    r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(std::ceil(options_.retry_after_s))));
  }
  return r;
}

bool Api::authorized(const HttpRequest& req) const {
  if (options_.api_key.empty()) return true;
  std::string_view auth = req.header("authorization");
  constexpr std::string_view kBearer = "bearer ";
  // The scheme is case-insensitive (RFC 9110 section 11.1): "bearer k" is accepted too.
  if (auth.size() < kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(auth[i])) != kBearer[i]) return false;
  }
  return constant_time_equal(auth.substr(kBearer.size()), options_.api_key);
}

HttpResponse Api::health() const {
  if (shutting_down()) return error_response(503, "the server is shutting down");
  if (!backend()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!load_error_.empty()) return error_response(503, "the model failed to load: " + load_error_);
    return error_response(503, "the model is loading");
  }
  return json_response(200, R"({"status":"ok"})");
}

ojson Api::model_json() const {
  ojson m = ojson::object();
  m["id"] = backend_.model_id;
  m["object"] = "model";
  m["created"] = started_at_;
  m["owned_by"] = "suanli";
  m["max_model_len"] = backend_.max_context;
  return m;
}

HttpResponse Api::models() const {
  ojson body{{"object", "list"}, {"data", ojson::array({model_json()})}};
  return json_response(200, dump_json(body));
}

HttpResponse Api::model(std::string_view id) const {
  if (id != backend_.model_id) {
    // OpenAI's answer for a model id it does not serve.
    return error_response(404, "The model '" + std::string(id) + "' does not exist", "invalid_request_error", "model",
                          "model_not_found");
  }
  return json_response(200, dump_json(model_json()));
}

HttpResponse Api::status_json() const {
  const ServerBackend* b = backend();
  ojson j = ojson::object();
  j["ready"] = b != nullptr;
  j["shutting_down"] = shutting_down();
  j["model"] = b ? ojson(b->model_id) : ojson(nullptr);
  j["device"] = b ? ojson(b->device_name) : ojson(nullptr);
  j["max_context"] = b ? b->max_context : 0;
  j["n_vocab"] = b ? b->model->n_vocab() : 0;
  j["uptime_s"] = now_unix_seconds() - started_at_;
  if (b) {
    const EngineStats st = b->engine->stats();
    const EngineConfig& cfg = b->engine->config();
    ojson sc = ojson::array();
    for (int c = 0; c < kNumScenarios; ++c) {
      sc.push_back(ojson{{"name", scenario_name(static_cast<ScenarioClass>(c))},
                         {"running", st.running_by_class[c]},
                         {"waiting", st.waiting[c]},
                         {"max_queue", cfg.scenarios[c].max_queue}});
    }
    j["scenarios"] = std::move(sc);
    j["kv_cache"] = ojson{{"usage", st.kv_usage},
                          {"blocks_used", st.kv_blocks_used},
                          {"blocks_total", st.kv_blocks_total},
                          {"prefix_hit_ratio", st.prefix_hit_rate}};
    j["generated_tokens"] = st.generated_tokens;
    j["preemptions"] = st.preemptions;
    j["speculative"] = ojson{{"num_tokens", cfg.speculative.num_tokens},
                             {"draft_tokens", st.spec_draft_tokens},
                             {"accepted_tokens", st.spec_accepted_tokens}};
  }
  j["tokens_per_second"] = metrics_.tokens_per_second(300);
  return json_response(200, dump_json(j));
}

HttpResponse Api::tokenize(const HttpRequest& req, bool detokenize) const {
  json body;
  ApiError err;
  if (!parse_json_object(req.body, &body, &err)) return json_response(err.status, error_body(err));
  ParseContext ctx;
  ctx.tokenizer = backend_.tokenizer.get();
  ctx.model_file = &backend_.model->file();
  ctx.max_context = backend_.max_context;
  std::vector<int32_t> ids;
  if (detokenize) {
    if (auto e = parse_detokenize_request(body, ctx, &ids)) return json_response(e->status, error_body(*e));
    ojson out{{"prompt", backend_.tokenizer->decode(ids, /*skip_special=*/false)}};
    return json_response(200, dump_json(out));
  }
  if (auto e = parse_tokenize_request(body, ctx, &ids)) return json_response(e->status, error_body(*e));
  ojson out{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", backend_.max_context}};
  return json_response(200, dump_json(out));
}

std::shared_ptr<Exchange> Api::start_generation(const HttpRequest& req, bool chat,
                                                const std::shared_ptr<Connection>& conn) {
  json body;
  ApiError err;
  if (!parse_json_object(req.body, &body, &err)) {
    conn->respond(json_response(err.status, error_body(err)));
    return nullptr;
  }
  ParseContext ctx;
  ctx.tokenizer = backend_.tokenizer.get();
  ctx.model_file = &backend_.model->file();
  ctx.max_context = backend_.max_context;
  ctx.scenario_header = req.header("x-suanli-scenario");
  ctx.raw_body = req.body;
  CompletionRequest cr;
  if (auto e = parse_completion_request(chat ? Endpoint::kChat : Endpoint::kCompletion, body, ctx, &cr)) {
    conn->respond(json_response(e->status, error_body(*e)));
    return nullptr;
  }
  auto gen = std::make_shared<Generation>(*this, backend_, conn, std::move(cr));
  in_flight_.fetch_add(1);
  if (auto e = gen->submit()) {
    // Requests that were submitted before the failing one were cancelled;
    // their events end the generation without writing.
    gen->disconnected();
    HttpResponse r = error_response(e->status, e->message, e->type, e->param, e->code);
    conn->respond(std::move(r));
    // in_flight_ drops when the cancelled requests' kDone arrive; if none
    // were submitted, now.
    return nullptr;
  }
  gen->begin();
  return gen;
}

std::shared_ptr<Exchange> Api::handle(HttpRequest req, const std::shared_ptr<Connection>& conn) {
  const std::string_view path = req.path();
  struct Route {
    std::string_view path, method;
    bool needs_model;
  };
  static constexpr Route kRoutes[] = {
      {"/", "GET", false},
      {"/health", "GET", false},
      {"/metrics", "GET", false},
      {"/v1/status", "GET", false},
      {"/v1/models", "GET", true},
      {kModelPrefix, "GET", true},  // /v1/models/{id}
      {"/v1/chat/completions", "POST", true},
      {"/v1/completions", "POST", true},
      {"/tokenize", "POST", true},
      {"/detokenize", "POST", true},
  };
  const Route* route = nullptr;
  for (const Route& r : kRoutes) {
    if (r.path == path || (r.path == kModelPrefix && path.starts_with(kModelPrefix))) route = &r;
  }
  if (!route) {
    conn->respond(error_response(404, "no route for " + std::string(path), "", "", "not_found"));
    return nullptr;
  }
  if (req.method != route->method) {
    HttpResponse r = error_response(405, std::string(path) + " accepts " + std::string(route->method) + " only");
    r.headers.emplace_back("Allow", std::string(route->method));
    conn->respond(std::move(r));
    return nullptr;
  }
  // / and /health stay open without the API key: the page carries no data
  // and load balancers probe /health without credentials.
  if (path != "/" && path != "/health" && !authorized(req)) {
    conn->respond(error_response(401, "a valid API key is required (Authorization: Bearer <key>)", "", "",
                                 "invalid_api_key"));
    return nullptr;
  }
  if (path == "/") {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(web_index_html());
    conn->respond(std::move(r));
    return nullptr;
  }
  if (path == "/health") {
    conn->respond(health());
    return nullptr;
  }
  if (path == "/metrics") {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    const ServerBackend* b = backend();
    EngineStats st;
    if (b) st = b->engine->stats();
    r.body = metrics_.render(b ? &st : nullptr);
    conn->respond(std::move(r));
    return nullptr;
  }
  if (path == "/v1/status") {
    conn->respond(status_json());
    return nullptr;
  }
  if (route->needs_model && !backend()) {
    conn->respond(error_response(503, "the model is loading", "", "", "loading"));
    return nullptr;
  }
  if (path == "/v1/models") {
    conn->respond(models());
    return nullptr;
  }
  if (route->path == kModelPrefix) {
    conn->respond(model(percent_decode(path.substr(kModelPrefix.size()))));
    return nullptr;
  }
  if (path == "/tokenize" || path == "/detokenize") {
    conn->respond(tokenize(req, path == "/detokenize"));
    return nullptr;
  }
  if (shutting_down()) {
    conn->respond(error_response(503, "the server is shutting down", "", "", "shutting_down"));
    return nullptr;
  }
  return start_generation(req, path == "/v1/chat/completions", conn);
}

}  // namespace suanli::server
