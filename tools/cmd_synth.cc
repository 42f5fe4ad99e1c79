// suanli synth SHAPE -o OUT.gguf: a random-weight model of a real shape.
#include <cstdio>
#include <memory>
#include <unistd.h>

#include "commands.h"
#include "model/synth.h"

namespace suanli::cli {
namespace {

struct SynthArgs {
  std::string shape;
  std::string out;
  std::string type = "q4_0";
  std::string tokenizer_from;
  uint64_t seed = 0;
  int64_t layers = -1;  // -1: the shape's own
  int threads = 0;
  bool list = false;
};

std::string default_tokenizer_source() {
  const char* home = std::getenv("SUANLI_HOME");
  std::string dir = home && *home ? home : std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache/suanli/models";
  return dir + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace

Runner add_synth(CLI::App& app) {
  auto a = std::make_shared<SynthArgs>();
  CLI::App* sub = app.add_subcommand("synth", "Write a random-weight GGUF of a named architecture shape");
  sub->add_option("shape", a->shape, "Shape name (see --list)");
  sub->add_option("-o,--out", a->out, "Output GGUF path");
  sub->add_option("--type", a->type, "Weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k, ...");
  sub->add_option("--tokenizer-from", a->tokenizer_from,
                  "GGUF whose tokenizer is copied (default: the cached default model)");
  sub->add_option("--seed", a->seed, "Random seed");
  sub->add_option("--layers", a->layers, "Override the layer count (small test models)");
  sub->add_option("-t,--threads", a->threads, "Threads (default: all)");
  sub->add_flag("--list", a->list, "List the known shapes");
  return [a] {
    if (a->list) {
      std::printf("%-14s %-6s %6s %6s %6s %5s %5s %5s %7s\n", "shape", "arch", "layers", "embd", "ff", "heads",
                  "kv", "hdim", "vocab");
      for (const SynthShape& s : synth_shapes()) {
        std::printf("%-14s %-6s %6lld %6lld %6lld %5lld %5lld %5lld %7lld\n", s.name.c_str(), s.architecture.c_str(),
                    (long long)s.n_layer, (long long)s.n_embd, (long long)s.n_ff, (long long)s.n_head,
                    (long long)s.n_head_kv, (long long)s.head_dim, (long long)s.n_vocab);
      }
      return 0;
    }
    if (a->shape.empty() || a->out.empty()) {
      std::fprintf(stderr, "suanli synth: a shape and -o OUT are required (see --list)\n");
      return 1;
    }
    std::optional<GgmlType> type = parse_ggml_type(a->type);
    if (!type) {
      std::fprintf(stderr, "suanli synth: unknown weight type '%s'\n", a->type.c_str());
      return 1;
    }
    SynthOptions opt;
    opt.shape = a->shape;
    opt.out_path = a->out;
    opt.type = *type;
    opt.seed = a->seed;
    opt.threads = a->threads;
    opt.tokenizer_from = a->tokenizer_from.empty() ? default_tokenizer_source() : a->tokenizer_from;
    if (a->layers != -1) opt.layers = a->layers;
    opt.progress = isatty(STDERR_FILENO);
    Status s = synth_model(opt);
    if (!s.ok()) {
      std::fprintf(stderr, "suanli synth: %s\n", s.to_string().c_str());
      return 1;
    }
    std::fprintf(stderr, "suanli synth: wrote %s\n", a->out.c_str());
    return 0;
  };
}

}  // namespace suanli::cli
