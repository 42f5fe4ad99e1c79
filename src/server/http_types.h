// Plain HTTP request/response values and the connection interface that the
// OpenAI routes write through. Nothing here depends on Beast: the routes,
// parsing and formatting compile without it, and only http_server.cc
// instantiates Beast's templates (compile time, and one place to read for
// the I/O side).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace suanli::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;

  // The first header with this (lower-case) name; empty when absent.
  std::string_view header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers) {
      if (k == lower_name) return v;
    }
    return {};
  }
  std::string_view path() const {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// The HTTP/1.1 status line and headers of a response. chunked: a streamed
// body (Transfer-Encoding: chunked) instead of Content-Length.
std::string serialize_head(const HttpResponse& r, bool chunked, bool keep_alive);
// One chunk of a chunked body: hex length, CRLF, data, CRLF.
std::string chunk_frame(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
std::string_view status_reason(int status);

// The connection side of one request/response exchange, implemented by the
// HTTP session. post() may be called from any thread (the engine's loop
// among them) and runs fn on the connection's strand; every other method
// must be called on that strand.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void post(std::function<void()> fn) = 0;
  // A complete response; ends the exchange.
  virtual void respond(HttpResponse r) = 0;
  // The head of a streamed (chunked) response.
  virtual void begin_stream(const HttpResponse& head) = 0;
  // One piece of the streamed body. False when the connection is gone or
  // the client reads too slowly (its buffer is over the cap): the caller
  // cancels its work and calls drop().
  virtual bool stream_write(std::string_view data) = 0;
  // The last chunk; ends the exchange.
  virtual void end_stream() = 0;
  // Closes the connection without finishing the response.
  virtual void drop() = 0;
};

// Work in flight for an exchange (a generation), held by the session so it
// can be ended from the network side. Both calls run on the strand.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // The client went away: cancel, never touch the connection again.
  virtual void disconnected() = 0;
  // The per-request timeout passed: cancel; the response still completes
  // (finish_reason "abort").
  virtual void timed_out() = 0;
};

}  // namespace suanli::server
