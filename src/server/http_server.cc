// The HTTP side of the server: Boost.Asio I/O threads, the listener, and one
// Session per connection. The only translation unit that instantiates
// Beast's templates (its request parser); responses are written as plain
// bytes (http_types.h), which keeps chunked SSE framing in view.
//
// Why Asio/Beast: every connection is a socket plus a few kilobytes of state
// on a small fixed pool of threads, so 1,000+ concurrent streaming clients
// cost file descriptors, not threads (a thread per connection would need
// 1,000 stacks and context switches per token). Each session runs on its own
// strand: engine events are posted to it, never handled on the engine loop.
// Boost 1.74's asio/awaitable.hpp uses std::exchange without <utility> (C++20).
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "server/api.h"
#include "server/openai_response.h"
#include "suanli/server.h"

namespace suanli {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace server {

std::string_view status_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Unknown";
}

std::string serialize_head(const HttpResponse& r, bool chunked, bool keep_alive) {
  std::string s = "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(status_reason(r.status)) + "\r\n";
  s += "Server: suanli\r\nContent-Type: " + r.content_type + "\r\n";
  for (const auto& [k, v] : r.headers) s += k + ": " + v + "\r\n";
  if (chunked) {
    s += "Transfer-Encoding: chunked\r\n";
  } else {
    s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  s += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  s += "\r\n";
  return s;
}

std::string chunk_frame(std::string_view data) {
  char len[24];
  std::snprintf(len, sizeof len, "%zx\r\n", data.size());
  std::string s = len;
  s.append(data);
  s += "\r\n";
  return s;
}

}  // namespace server

struct Server::Impl {
  explicit Impl(const ServerOptions& o) : options(o), api(o), ioc(std::max(1, o.io_threads)), acceptor(ioc) {}

  void do_accept();

  // Declared before ioc: sessions still queued in it when it is destroyed
  // touch the counters and the api on their way out.
  ServerOptions options;
  server::Api api;
  std::atomic<int64_t> pending_bytes{0};  // queued for writing over all sessions
  std::atomic<int64_t> sessions{0};
  std::atomic<bool> stopped{false};
  net::io_context ioc;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
};

namespace {

using server::HttpRequest;
using server::HttpResponse;

class Session : public server::Connection, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& srv)
      : socket_(std::move(socket)),
        srv_(srv),
        idle_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()),
        request_timer_(socket_.get_executor()) {
    srv_.sessions.fetch_add(1);
  }
  ~Session() override { srv_.sessions.fetch_sub(1); }

  void start() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  // --- Connection ---
  void post(std::function<void()> fn) override {
    net::post(socket_.get_executor(), [self = shared_from_this(), fn = std::move(fn)] { fn(); });
  }

  void respond(HttpResponse r) override {
    if (closed_) return;
    enqueue(server::serialize_head(r, false, keep_alive_) + r.body);
    exchange_done_ = true;
    do_write();
  }

  void begin_stream(const HttpResponse& head) override {
    if (closed_) return;
    if (http10_) keep_alive_ = false;  // HTTP/1.0: no chunking; the body ends at close
    std::string h = server::serialize_head(head, !http10_, keep_alive_);
    if (http10_) {
      const std::string needle = "Content-Length: 0\r\n";
      if (auto p = h.find(needle); p != std::string::npos) h.erase(p, needle.size());
    }
    enqueue(h);
    do_write();
  }

  bool stream_write(std::string_view data) override {
    if (closed_) return false;
    if (buffered() > srv_.options.max_buffered_bytes) return false;
    if (http10_) {
      enqueue(data);
    } else {
      enqueue(server::chunk_frame(data));
    }
    do_write();
    return true;
  }

  void end_stream() override {
    if (closed_) return;
    if (!http10_) enqueue(server::kLastChunk);
    exchange_done_ = true;
    do_write();
  }

  void drop() override { close(); }

 private:
  size_t buffered() const { return pending_.size() + writing_.size(); }

  void enqueue(std::string_view s) {
    pending_.append(s);
    srv_.pending_bytes.fetch_add(static_cast<int64_t>(s.size()));
  }

  void arm(net::steady_timer& t, double seconds) {
    if (!(seconds > 0)) return;
    t.expires_after(std::chrono::duration_cast<net::steady_timer::duration>(std::chrono::duration<double>(seconds)));
    t.async_wait([self = shared_from_this(), &t](beast::error_code ec) {
      if (ec || t.expiry() > net::steady_timer::clock_type::now()) return;  // cancelled or re-armed
      self->on_timeout(&t);
    });
  }

  void on_timeout(net::steady_timer* t) {
    if (closed_) return;
    if (t == &request_timer_) {
      if (exchange_) exchange_->timed_out();
      return;
    }
    close();  // idle between requests, or a write stalled
  }

  void do_read() {
    if (closed_) return;
    if (srv_.stopped.load()) {
      close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(srv_.options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    arm(idle_timer_, srv_.options.idle_timeout_s);
    read_pending_ = true;
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  bool read_failed(beast::error_code ec) {
    if (!ec) return false;
    if (ec == http::error::end_of_stream || ec.category() != http::make_error_code(http::error::bad_target).category()) {
      close();  // the client went away (or a socket error)
      return true;
    }
    keep_alive_ = false;
    if (ec == http::error::body_limit) {
      server::ApiError e;
      e.status = 413;
      e.message = "the request body is larger than the limit of " + std::to_string(srv_.options.max_body_bytes) +
                  " bytes";
      respond({413, "application/json", {}, server::error_body(e)});
    } else if (ec == http::error::header_limit) {
      respond({431, "application/json", {}, server::error_body(server::bad_request("request headers too large"))});
    } else {
      respond({400, "application/json", {}, server::error_body(server::bad_request("malformed HTTP request: " + ec.message()))});
    }
    return true;
  }

  void on_header(beast::error_code ec) {
    read_pending_ = false;
    idle_timer_.cancel();
    if (closed_ || read_failed(ec)) return;
    const auto& h = parser_->get();
    http10_ = h.version() < 11;
    keep_alive_ = h.keep_alive();
    if (auto cl = parser_->content_length(); cl && *cl > srv_.options.max_body_bytes) {
      read_failed(http::error::body_limit);
      return;
    }
    if (beast::iequals(h[http::field::expect], "100-continue")) {
      enqueue("HTTP/1.1 100 Continue\r\n\r\n");
      do_write();
    }
    arm(idle_timer_, srv_.options.idle_timeout_s);
    read_pending_ = true;
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    read_pending_ = false;
    idle_timer_.cancel();
    if (closed_ || read_failed(ec)) return;
    auto& m = parser_->get();
    HttpRequest req;
    req.method = std::string(m.method_string());
    req.target = std::string(m.target());
    for (const auto& f : m) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.body = std::move(m.body());
    keep_alive_ = m.keep_alive();
    parser_.reset();
    std::shared_ptr<server::Exchange> ex = srv_.api.handle(std::move(req), shared_from_this());
    if (ex && !closed_) {
      exchange_ = std::move(ex);
      arm(request_timer_, srv_.options.request_timeout_s);
      watch();
    }
  }

  // While a generation runs, a read stays pending so a client that goes
  // away is noticed at once (and its request cancelled); bytes that arrive
  // (a pipelined request) stay in buffer_ for the next parse.
  void watch() {
    read_pending_ = true;
    socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->on_watch(ec, n);
    });
  }

  void on_watch(beast::error_code ec, size_t n) {
    read_pending_ = false;
    if (!ec) buffer_.commit(n);
    if (closed_) return;
    if (lingering_) {
      drain_socket();
      return;
    }
    if (ec && ec != net::error::operation_aborted) {
      close();
      return;
    }
    if (exchange_ && !exchange_done_) {
      if (buffer_.size() > srv_.options.max_body_bytes) {
        close();
        return;
      }
      watch();
      return;
    }
    if (next_after_watch_) {
      next_after_watch_ = false;
      do_read();
    }
  }

  void do_write() {
    if (closed_ || writing_active_) return;
    if (pending_.empty()) {
      if (exchange_done_) finish_exchange();
      return;
    }
    writing_.swap(pending_);
    pending_.clear();
    writing_active_ = true;
    arm(write_timer_, srv_.options.idle_timeout_s);
    net::async_write(socket_, net::buffer(writing_),
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_active_ = false;
    write_timer_.cancel();
    srv_.pending_bytes.fetch_sub(static_cast<int64_t>(writing_.size()));
    writing_.clear();
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    do_write();
  }

  void finish_exchange() {
    exchange_done_ = false;
    exchange_.reset();
    request_timer_.cancel();
    if (!keep_alive_ || srv_.stopped.load()) {
      linger();
      return;
    }
    if (read_pending_) {
      // The disconnect watch becomes the wait for the next request; bytes
      // already buffered mean it will not complete by itself.
      next_after_watch_ = true;
      arm(idle_timer_, srv_.options.idle_timeout_s);
      if (buffer_.size() > 0) {
        beast::error_code ignored;
        socket_.cancel(ignored);
      }
      return;
    }
    do_read();
  }

  // Closing with unread bytes in the socket (the rest of a refused body)
  // makes the kernel send a reset that can reach the client before our
  // response: send FIN, then read and drop what still comes, for a while.
  void linger() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    if (read_pending_) {  // the disconnect watch is still reading: let it end
      socket_.cancel(ignored);
    }
    lingering_ = true;
    arm(idle_timer_, std::min(5.0, srv_.options.idle_timeout_s));
    drain_socket();
  }

  void drain_socket() {
    if (closed_) return;
    if (read_pending_) {
      // Wait for the cancelled watch to complete first (on_watch calls back).
      return;
    }
    read_pending_ = true;
    socket_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->read_pending_ = false;
      self->discarded_ += n;
      if (ec || self->discarded_ > (uint64_t{64} << 20)) {
        self->close();
        return;
      }
      self->drain_socket();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    idle_timer_.cancel();
    write_timer_.cancel();
    request_timer_.cancel();
    srv_.pending_bytes.fetch_sub(static_cast<int64_t>(pending_.size()));
    pending_.clear();
    if (exchange_) {
      exchange_->disconnected();
      exchange_.reset();
    }
  }

  tcp::socket socket_;
  Server::Impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  net::steady_timer idle_timer_, write_timer_, request_timer_;
  std::string pending_, writing_;
  std::shared_ptr<server::Exchange> exchange_;
  bool writing_active_ = false;
  bool read_pending_ = false;
  bool exchange_done_ = false;
  bool next_after_watch_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool closed_ = false;
  bool lingering_ = false;
  uint64_t discarded_ = 0;
  std::array<char, 16384> discard_;
};

}  // namespace

void Server::Impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (or a transient error): wait a little instead of
      // spinning on accept.
      auto t = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(50));
      t->async_wait([this, t](beast::error_code) { do_accept(); });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), *this)->start();
    do_accept();
  });
}

Expected<std::unique_ptr<Server>> Server::start(const ServerOptions& options) {
  if (options.io_threads < 1 || options.io_threads > 256) return InvalidArgument("io_threads must be 1 to 256");
  auto impl = std::make_unique<Impl>(options);
  beast::error_code ec;
  const net::ip::address addr = net::ip::make_address(options.host, ec);
  if (ec) return InvalidArgument("bad --host '" + options.host + "': an IP address is expected");
  const tcp::endpoint ep(addr, options.port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " + ec.message());
  }
  impl->do_accept();
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    impl->threads.emplace_back([io = &impl->ioc] { io->run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  impl_->stopped.store(true);
  net::post(impl_->acceptor.get_executor(), [a = &impl_->acceptor] {
    beast::error_code ignored;
    a->close(ignored);
  });
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
}

uint16_t Server::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void Server::set_backend(ServerBackend backend) { impl_->api.set_backend(std::move(backend)); }

void Server::set_load_error(std::string message) { impl_->api.set_load_error(std::move(message)); }

void Server::shutdown(double timeout_s) {
  using Clock = std::chrono::steady_clock;
  server::Api& api = impl_->api;
  api.begin_shutdown();
  const ServerBackend* backend = api.backend();
  auto wait_until = [](auto pred, double seconds) {
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (!pred() && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return pred();
  };
  if (backend) {
    backend->engine->drain();
    if (!wait_until([&] { return api.generations_in_flight() == 0; }, timeout_s)) {
      std::fprintf(stderr, "suanli serve: shutdown timeout: aborting %lld in-flight requests\n",
                   static_cast<long long>(api.generations_in_flight()));
      backend->engine->abort_all();
      wait_until([&] { return api.generations_in_flight() == 0; }, 10);
    }
  }
  // Let the last chunks ([DONE], finish_reason abort) reach the clients.
  wait_until([&] { return impl_->pending_bytes.load() <= 0; }, 2);
  impl_->stopped.store(true);
}

}  // namespace suanli
