// suanli tokenize -m MODEL [--json] [--no-special] [--no-parse-special] [--file PATH | TEXT]
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "suanli/gguf.h"
#include "suanli/tokenizer.h"

namespace suanli::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool json = false;
  bool no_special = false;
  bool no_parse_special = false;
};

int run_tokenize(const TokenizeOptions& opt) {
  std::string text = opt.text;
  if (!opt.file.empty()) {
    std::ifstream in(opt.file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "suanli tokenize: cannot read %s\n", opt.file.c_str());
      return 1;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  Expected<GgufFile> f = GgufFile::open(opt.model);
  if (!f) {
    std::fprintf(stderr, "suanli tokenize: %s\n", f.status().to_string().c_str());
    return 1;
  }
  Expected<std::shared_ptr<const Tokenizer>> tok = Tokenizer::from_gguf(*f);
  if (!tok) {
    std::fprintf(stderr, "suanli tokenize: %s: %s\n", opt.model.c_str(), tok.status().to_string().c_str());
    return 1;
  }
  std::vector<int32_t> ids = (*tok)->encode(text, !opt.no_special, !opt.no_parse_special);
  if (opt.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back((*tok)->token_bytes(id));
    nlohmann::json out{{"ids", ids}, {"pieces", pieces}};
    std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::puts(line.c_str());
  return 0;
}

}  // namespace

Runner add_tokenize(CLI::App& app) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of a text");
  sub->add_option("-m,--model", opt->model, "GGUF file with tokenizer metadata")->required();
  sub->add_option("text", opt->text, "Text to tokenize");
  sub->add_option("--file", opt->file, "Read the text from a file (bytes as they are)");
  sub->add_flag("--json", opt->json, "Print {\"ids\": [...], \"pieces\": [...]}");
  sub->add_flag("--no-special", opt->no_special, "Do not add BOS/EOS");
  sub->add_flag("--no-parse-special", opt->no_parse_special,
                "Tokenize the text of control tokens (<|im_start|>...) as plain text");
  return [opt] {
    if (!opt->file.empty() && !opt->text.empty()) {
      std::fprintf(stderr, "suanli tokenize: give TEXT or --file, not both\n");
      return 1;
    }
    return run_tokenize(*opt);
  };
}

}  // namespace suanli::cli
