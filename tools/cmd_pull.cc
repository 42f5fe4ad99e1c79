// suanli pull: fetch the default model or any file over HTTP(S) into the
// model cache. stdout carries only the path (with --print-path); everything
// else goes to stderr.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "model/pull.h"

namespace suanli::cli {
namespace {

struct PullArgs {
  std::string target;
  std::string output;
  std::string dir;
  std::string sha256;
  bool print_path = false;
  bool quiet = false;
  bool progress = false;
};

int fail(const Status& s) {
  std::fprintf(stderr, "suanli pull: %s\n", s.to_string().c_str());
  return 1;
}

int run_pull(const PullArgs& a) {
  std::string path;
  if (a.target == "default") {
    if (!a.output.empty() || !a.dir.empty() || !a.sha256.empty()) {
      return fail(InvalidArgument("-o, --dir and --sha256 apply to URLs, not to 'default'"));
    }
    PullDefaultOptions opts;
    opts.quiet = a.quiet;
    Expected<std::string> got = pull_default_model(opts);
    if (!got) return fail(got.status());
    path = *got;
  } else {
    DownloadOptions opts;
    opts.url = a.target;
    opts.sha256 = a.sha256;
    std::transform(opts.sha256.begin(), opts.sha256.end(), opts.sha256.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    opts.quiet = a.quiet;
    opts.progress = !a.quiet && (a.progress || ::isatty(STDERR_FILENO));
    Expected<std::string> name = file_name_from_url(a.target);
    if (!name) {
      if (a.target.find("://") == std::string::npos) {
        return fail(InvalidArgument("expected 'default' or an http(s) URL, got '" + a.target + "'"));
      }
      if (a.output.empty()) return fail(name.status());
    }
    if (!a.output.empty()) {
      opts.dest = a.output;
    } else {
      std::string dir = a.dir;
      if (dir.empty()) {
        Expected<std::string> home = models_home();
        if (!home) return fail(home.status());
        dir = *home;
      }
      opts.dest = (std::filesystem::path(dir) / *name).string();
    }
    opts.dest = std::filesystem::absolute(opts.dest).lexically_normal().string();
    if (Status s = download_file(opts); !s.ok()) return fail(s);
    path = opts.dest;
  }
  if (a.print_path) std::printf("%s\n", path.c_str());
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

Runner add_pull(CLI::App& app) {
  auto args = std::make_shared<PullArgs>();
  CLI::App* sub =
      app.add_subcommand("pull", "Fetch the default model ('default') or a file over HTTP(S) into the model cache");
  sub->add_option("target", args->target, "'default', or an http(s) URL")->required();
  auto* out = sub->add_option("-o,--output", args->output, "Destination file (URLs only)");
  sub->add_option("--dir", args->dir, "Destination directory (default: $SUANLI_HOME)")->excludes(out);
  sub->add_option("--sha256", args->sha256, "Expected SHA-256 (hex); checked before the file is put in place");
  sub->add_flag("--print-path", args->print_path, "Print the file's absolute path on stdout");
  sub->add_flag("-q,--quiet", args->quiet, "No progress bar or log lines");
  sub->add_flag("--progress", args->progress, "Draw the progress bar even when stderr is not a terminal");
  return [args] { return run_pull(*args); };
}

}  // namespace suanli::cli
