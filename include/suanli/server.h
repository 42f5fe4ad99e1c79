// The OpenAI-compatible HTTP server behind `suanli serve`.
//
// Endpoints (docs/server.md has the full reference): POST /v1/chat/completions,
// POST /v1/completions (both streaming over SSE or not), GET /v1/models,
// GET /health, GET /metrics (Prometheus), GET /v1/status (the web page's
// live view), POST /tokenize, POST /detokenize, GET / (the web page).
//
// Event-driven: a small fixed pool of I/O threads runs every connection
// (Boost.Asio + Beast), so a thousand idle or streaming clients cost sockets
// and a few kilobytes each, not threads. Engine callbacks only post events to
// the connection's strand; the engine loop never waits on the network.
//
// Contract:
// - Server::start binds and listens at once (so /health can answer 503 while
//   the model loads); set_backend makes it ready.
// - Nothing a client sends can crash the process or produce a 500: every
//   request is parsed and validated in full before any response header.
// - Thread safety: every public method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "suanli/engine.h"
#include "suanli/model.h"
#include "suanli/status.h"
#include "suanli/tokenizer.h"

namespace suanli {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;               // 0: any free port (see Server::port)
  int io_threads = 2;
  std::string api_key;                // non-empty: /v1/*, /metrics, /tokenize, /detokenize need it
  uint64_t max_body_bytes = 4u << 20;  // larger request bodies get 413
  double request_timeout_s = 600;     // a generation running longer ends with finish_reason "abort"
  double idle_timeout_s = 60;         // keep-alive connections silent this long are closed
  uint64_t max_buffered_bytes = 4u << 20;  // per connection; a reader slower than this is cut off
  double retry_after_s = 1;           // Retry-After on 429 / 503
};

// What the server serves, once loaded. The pointers must outlive the server.
struct ServerBackend {
  Engine* engine = nullptr;
  Model* model = nullptr;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string model_id;     // the name clients use ("model" in requests and responses)
  std::string device_name;  // for /v1/status
  int64_t max_context = 0;  // tokens per sequence (prompt + generated)
};

class Server {
 public:
  // Binds host:port and starts the I/O threads. Until set_backend, /health
  // answers 503 and generation endpoints 503.
  static Expected<std::unique_ptr<Server>> start(const ServerOptions& options);
  ~Server();  // stops the I/O threads (call shutdown first for a graceful end)

  uint16_t port() const;
  void set_backend(ServerBackend backend);
  // The model failed to load: /health says so (503) for as long as it runs.
  void set_load_error(std::string message);

  // Graceful shutdown: stop accepting work (new requests get 503), wait up
  // to timeout_s for in-flight generations, then end the rest with
  // finish_reason "abort" (engine abort_all), flush, close every connection.
  void shutdown(double timeout_s);

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace suanli
