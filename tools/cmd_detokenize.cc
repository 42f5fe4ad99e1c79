// suanli detokenize -m MODEL [--keep-special] IDS...
#include <cstdio>
#include <memory>

#include "commands.h"
#include "suanli/gguf.h"
#include "suanli/tokenizer.h"

namespace suanli::cli {
namespace {

struct DetokenizeOptions {
  std::string model;
  std::vector<std::string> ids;
  bool keep_special = false;
};

int run_detokenize(const DetokenizeOptions& opt) {
  Expected<GgufFile> f = GgufFile::open(opt.model);
  if (!f) {
    std::fprintf(stderr, "suanli detokenize: %s\n", f.status().to_string().c_str());
    return 1;
  }
  Expected<std::shared_ptr<const Tokenizer>> tok = Tokenizer::from_gguf(*f);
  if (!tok) {
    std::fprintf(stderr, "suanli detokenize: %s: %s\n", opt.model.c_str(), tok.status().to_string().c_str());
    return 1;
  }
  std::vector<int32_t> ids;
  for (const std::string& s : opt.ids) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || s.empty()) {
      std::fprintf(stderr, "suanli detokenize: \"%s\" is not a token id\n", s.c_str());
      return 1;
    }
    if (v < 0 || v >= (*tok)->n_vocab()) {
      std::fprintf(stderr, "suanli detokenize: token id %lld is out of range [0, %d)\n", v, (*tok)->n_vocab());
      return 1;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  std::string text = (*tok)->decode(ids, !opt.keep_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

Runner add_detokenize(CLI::App& app) {
  auto opt = std::make_shared<DetokenizeOptions>();
  CLI::App* sub = app.add_subcommand("detokenize", "Print the text of token ids");
  sub->add_option("-m,--model", opt->model, "GGUF file with tokenizer metadata")->required();
  sub->add_option("ids", opt->ids, "Token ids (space-separated or as separate arguments)")->required();
  sub->add_flag("--keep-special", opt->keep_special, "Include the text of control tokens (BOS, <|im_end|>...)");
  return [opt] { return run_detokenize(*opt); };
}

}  // namespace suanli::cli
