// The routes: what each endpoint answers, and the lifecycle of a generation
// (submit to the engine, stream its events back, cancel on disconnect).
// Independent of the HTTP library: requests come in as HttpRequest values and
// answers go out through a Connection.
// Thread safety: handle() runs on the calling connection's strand; the
// backend, readiness and shutdown state may be set from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/http_types.h"
#include "server/metrics.h"
#include "suanli/server.h"

namespace suanli::server {

class Api {
 public:
  explicit Api(const ServerOptions& options);

  void set_backend(ServerBackend backend);
  void set_load_error(std::string message);
  // New requests get 503 from now on.
  void begin_shutdown() { shutting_down_.store(true); }
  bool shutting_down() const { return shutting_down_.load(); }
  // Generations whose engine requests have not all ended.
  int64_t generations_in_flight() const { return in_flight_.load(); }
  const ServerBackend* backend() const { return ready_.load(std::memory_order_acquire) ? &backend_ : nullptr; }

  // Answers at once through conn->respond(), or starts a generation and
  // returns it (the session keeps it until the exchange ends).
  std::shared_ptr<Exchange> handle(HttpRequest req, const std::shared_ptr<Connection>& conn);

  Metrics& metrics() { return metrics_; }
  const ServerOptions& options() const { return options_; }
  void generation_ended() { in_flight_.fetch_sub(1); }

 private:
  HttpResponse error_response(int status, const std::string& message, const std::string& type = "",
                              const std::string& param = "", const std::string& code = "") const;
  bool authorized(const HttpRequest& req) const;
  HttpResponse health() const;
  nlohmann::ordered_json model_json() const;
  HttpResponse models() const;
  // GET /v1/models/{id}: the served model, 404 model_not_found for any other id.
  HttpResponse model(std::string_view id) const;
  HttpResponse status_json() const;
  HttpResponse tokenize(const HttpRequest& req, bool detokenize) const;
  std::shared_ptr<Exchange> start_generation(const HttpRequest& req, bool chat, const std::shared_ptr<Connection>& conn);

  ServerOptions options_;
  Metrics metrics_;
  ServerBackend backend_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> in_flight_{0};
  mutable std::mutex mu_;
  std::string load_error_;
  int64_t started_at_;
};

// The web page served at / (src/server/web/index.html, embedded at build time).
std::string_view web_index_html();

}  // namespace suanli::server
