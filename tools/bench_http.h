// The HTTP side of `suanli bench serve --url`: a minimal blocking HTTP/1.1
// client (one connection per request, a thread per in-flight request; the
// benchmark's concurrency is at most a few thousand) that streams
// /v1/completions and reports each SSE event as an engine-style Event, so
// the benchmark measures exactly what it measures in-process.
#pragma once

#include <cstdint>
#include <string>

#include "suanli/engine.h"
#include "suanli/status.h"

namespace suanli::cli {

struct HttpTarget {
  std::string host;
  uint16_t port = 80;
};

// http://host[:port][/] only (no TLS).
Expected<HttpTarget> parse_http_url(const std::string& url);
// The served model's vocabulary size (GET /v1/status).
Expected<int64_t> server_vocab_size(const HttpTarget& t);
// Sends `r` as a streaming completion and calls on_event as the engine
// would: kToken (one id per SSE event with text) as events arrive, then
// kDone with the usage, or kError.
void stream_completion(const HttpTarget& t, const Request& r, const EventCallback& on_event);

}  // namespace suanli::cli
