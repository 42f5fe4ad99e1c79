#include "bench_http.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

namespace suanli::cli {
namespace {

class Socket {
 public:
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status connect(const HttpTarget& t) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &res) != 0 || !res) {
      return IoError("cannot resolve " + t.host);
    }
    for (addrinfo* p = res; p; p = p->ai_next) {
      fd_ = ::socket(p->ai_family, p->ai_socktype, p->ai_protocol);
      if (fd_ < 0) continue;
      if (::connect(fd_, p->ai_addr, p->ai_addrlen) == 0) break;
      ::close(fd_);
      fd_ = -1;
    }
    freeaddrinfo(res);
    if (fd_ < 0) return IoError("cannot connect to " + t.host + ":" + std::to_string(t.port));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return Status::Ok();
  }
  Status send_all(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return IoError("send failed");
      off += static_cast<size_t>(n);
    }
    return Status::Ok();
  }
  // Appends what arrives; false at EOF or error.
  bool recv_some(std::string* buf) {
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf->append(tmp, static_cast<size_t>(n));
    return true;
  }

 private:
  int fd_ = -1;
};

std::string request_text(const HttpTarget& t, const std::string& method, const std::string& path,
                         const std::string& body) {
  return method + " " + path + " HTTP/1.1\r\nHost: " + t.host + "\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// Incremental decoder of a chunked body.
class Dechunker {
 public:
  // Moves the complete chunk data in `raw` to `out`; true once the last chunk is seen.
  bool feed(std::string* raw, std::string* out) {
    for (;;) {
      if (remaining_ == 0) {
        const size_t eol = raw->find("\r\n");
        if (eol == std::string::npos) return false;
        if (need_crlf_) {
          raw->erase(0, eol + 2);
          need_crlf_ = false;
          continue;
        }
        remaining_ = std::strtoull(raw->substr(0, eol).c_str(), nullptr, 16);
        raw->erase(0, eol + 2);
        if (remaining_ == 0) return true;
      }
      const size_t take = std::min<size_t>(remaining_, raw->size());
      out->append(*raw, 0, take);
      raw->erase(0, take);
      remaining_ -= take;
      if (remaining_ > 0) return false;
      need_crlf_ = true;
    }
  }

 private:
  uint64_t remaining_ = 0;
  bool need_crlf_ = false;
};

}  // namespace

Expected<HttpTarget> parse_http_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return InvalidArgument("--url must start with http:// (got '" + url + "')");
  std::string rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  HttpTarget t;
  const size_t colon = rest.rfind(':');
  t.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    try {
      const int p = std::stoi(rest.substr(colon + 1));
      if (p < 1 || p > 65535) throw std::out_of_range("port");
      t.port = static_cast<uint16_t>(p);
    } catch (...) {
      return InvalidArgument("bad port in --url '" + url + "'");
    }
  }
  if (t.host.empty()) return InvalidArgument("no host in --url '" + url + "'");
  return t;
}

namespace {

// GET path (a body without chunked framing, read to the connection's close)
// as JSON; discarded when it is not a 200 or not JSON.
nlohmann::json get_json(const HttpTarget& t, const char* path, std::string* status_line) {
  Socket s;
  Status st = s.connect(t);
  if (st.ok()) st = s.send_all(request_text(t, "GET", path, ""));
  if (!st.ok()) {
    *status_line = st.to_string();
    return nlohmann::json::value_t::discarded;
  }
  std::string buf;
  while (s.recv_some(&buf)) {
  }
  *status_line = buf.substr(0, buf.find("\r\n"));
  const size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos || buf.compare(0, 12, "HTTP/1.1 200") != 0) return nlohmann::json::value_t::discarded;
  return nlohmann::json::parse(buf.substr(head_end + 4), nullptr, false);
}

}  // namespace

Expected<int64_t> server_vocab_size(const HttpTarget& t) {
  // suanli: GET /v1/status has n_vocab.
  std::string status_line;
  nlohmann::json j = get_json(t, "/v1/status", &status_line);
  if (!j.is_discarded() && j.contains("n_vocab") && j["n_vocab"].is_number_integer()) return j["n_vocab"].get<int64_t>();
  // llama.cpp's llama-server: GET /v1/models has data[0].meta.n_vocab (for
  // comparisons on the same machine, bench/results/peer-*.md).
  std::string models_line;
  nlohmann::json m = get_json(t, "/v1/models", &models_line);
  if (!m.is_discarded() && m.contains("data") && m["data"].is_array() && !m["data"].empty()) {
    const nlohmann::json& d0 = m["data"][0];
    if (d0.is_object() && d0.contains("meta") && d0["meta"].is_object() && d0["meta"].contains("n_vocab") &&
        d0["meta"]["n_vocab"].is_number_integer()) {
      return d0["meta"]["n_vocab"].get<int64_t>();
    }
  }
  return IoError("the server's vocabulary size is unknown: no n_vocab in GET /v1/status (" + status_line +
                 ") nor in GET /v1/models' data[0].meta (" + models_line + ")");
}

void stream_completion(const HttpTarget& t, const Request& r, const EventCallback& on_event) {
  auto error = [&](const std::string& m) {
    Event e;
    e.kind = Event::Kind::kError;
    e.error = m;
    on_event(e);
  };
  nlohmann::json body = {{"model", "bench"},
                         {"prompt", r.prompt},
                         {"max_tokens", r.max_tokens},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}},
                         {"ignore_eos", r.ignore_eos},
                         {"temperature", r.sampling.temperature},
                         {"top_k", r.sampling.top_k},
                         {"top_p", r.sampling.top_p},
                         {"min_p", r.sampling.min_p},
                         {"seed", r.sampling.seed},
                         {"n", r.n},
                         {"scenario", std::string(scenario_name(r.scenario))}};
  Socket s;
  if (Status st = s.connect(t); !st.ok()) return error(st.to_string());
  if (Status st = s.send_all(request_text(t, "POST", "/v1/completions", body.dump())); !st.ok()) {
    return error(st.to_string());
  }
  std::string raw, data;
  bool in_body = false, ended = false;
  Dechunker dechunk;
  Usage usage;
  bool got_usage = false;
  while (!ended && s.recv_some(&raw)) {
    if (!in_body) {
      const size_t head_end = raw.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      if (raw.compare(0, 12, "HTTP/1.1 200") != 0) {
        std::string rest;
        while (s.recv_some(&raw)) {
        }
        return error("HTTP " + raw.substr(9, 3) + ": " + raw.substr(head_end + 4, 300));
      }
      raw.erase(0, head_end + 4);
      in_body = true;
    }
    ended = dechunk.feed(&raw, &data);
    size_t cut;
    while ((cut = data.find("\n\n")) != std::string::npos) {
      const std::string ev = data.substr(0, cut);
      data.erase(0, cut + 2);
      if (ev.rfind("data: ", 0) != 0 || ev == "data: [DONE]") continue;
      nlohmann::json j = nlohmann::json::parse(ev.substr(6), nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("usage") && j["usage"].is_object()) {
        usage.prompt_tokens = j["usage"].value("prompt_tokens", int64_t{0});
        usage.completion_tokens = j["usage"].value("completion_tokens", int64_t{0});
        if (j["usage"].contains("prompt_tokens_details")) {
          usage.cached_prompt_tokens = j["usage"]["prompt_tokens_details"].value("cached_tokens", int64_t{0});
        }
        got_usage = true;
      }
      if (!j.contains("choices") || !j["choices"].is_array()) continue;
      for (const auto& c : j["choices"]) {
        if (c.contains("text") && c["text"].is_string() && !c["text"].get<std::string>().empty()) {
          Event e;
          e.kind = Event::Kind::kToken;
          e.index = c.value("index", 0);
          e.ids.push_back(0);  // one token per event; the final count comes from usage
          on_event(e);
        }
      }
    }
  }
  if (!got_usage) return error("the stream ended without usage");
  Event d;
  d.kind = Event::Kind::kDone;
  d.usage = usage;
  on_event(d);
}

}  // namespace suanli::cli
