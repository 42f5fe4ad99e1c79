// suanli template -m MODEL --messages FILE.json [--tools FILE.json]
//   [--no-generation-prompt] [--template FILE.jinja] [--context FILE.json]
//   [--date YYYY-MM-DD]
// Prints the prompt the model's chat template renders, exactly (no newline
// added), as HF transformers' apply_chat_template would.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "core/json_depth.h"
#include "suanli/chat_template.h"
#include "suanli/gguf.h"

namespace suanli::cli {
namespace {

struct TemplateOptions {
  std::string model;
  std::string messages;
  std::string tools;
  std::string template_file;
  std::string context;
  std::string date;
  bool no_generation_prompt = false;
};

Expected<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Expected<nlohmann::ordered_json> read_json(const std::string& path) {
  SUANLI_ASSIGN_OR_RETURN(std::string text, read_file(path));
  // Template values nest at most 256 levels; deeper text is refused before
  // parsing (core/json_depth.h).
  if (json_nesting_depth(text, 256) > 256) return InvalidArgument(path + ": nested more than 256 levels deep");
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path + ": not valid JSON");
  return j;
}

Expected<std::time_t> parse_date(const std::string& s) {
  std::tm tm{};
  int y = 0, m = 0, d = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31) {
    return InvalidArgument("--date wants YYYY-MM-DD, got '" + s + "'");
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = m - 1;
  tm.tm_mday = d;
  return timegm(&tm);
}

Expected<std::string> run(const TemplateOptions& o) {
  SUANLI_ASSIGN_OR_RETURN(GgufFile model, GgufFile::open(o.model));
  SUANLI_ASSIGN_OR_RETURN(nlohmann::ordered_json messages, read_json(o.messages));
  nlohmann::ordered_json tools = nullptr;
  if (!o.tools.empty()) {
    SUANLI_ASSIGN_OR_RETURN(tools, read_json(o.tools));
  }
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (!o.context.empty()) {
    SUANLI_ASSIGN_OR_RETURN(extra, read_json(o.context));
  }
  TemplateClock clock;
  if (!o.date.empty()) {
    SUANLI_ASSIGN_OR_RETURN(clock.fixed_time, parse_date(o.date));
  }
  if (o.template_file.empty()) {
    return apply_chat_template(model, messages, tools, !o.no_generation_prompt, extra, clock);
  }
  SUANLI_ASSIGN_OR_RETURN(std::string source, read_file(o.template_file));
  return apply_chat_template(source, model, messages, tools, !o.no_generation_prompt, extra, clock);
}

}  // namespace

Runner add_template(CLI::App& app) {
  auto opt = std::make_shared<TemplateOptions>();
  CLI::App* sub = app.add_subcommand("template", "Render a conversation through the model's chat template");
  sub->add_option("-m,--model", opt->model, "GGUF model (its tokenizer.chat_template, bos/eos tokens)")->required();
  sub->add_option("--messages", opt->messages, "JSON file: an array of messages")->required();
  sub->add_option("--tools", opt->tools, "JSON file: an array of tool schemas");
  sub->add_flag("--no-generation-prompt", opt->no_generation_prompt, "Do not open an assistant turn at the end");
  sub->add_option("--template", opt->template_file, "Jinja file to use instead of the model's template");
  sub->add_option("--context", opt->context, "JSON file: an object of extra template variables (enable_thinking, ...)");
  sub->add_option("--date", opt->date, "Fix strftime_now() to this day (YYYY-MM-DD, UTC) instead of today");
  return [opt] {
    Expected<std::string> out = run(*opt);
    if (!out) {
      std::fprintf(stderr, "suanli template: %s\n", out.status().to_string().c_str());
      return 1;
    }
    std::fwrite(out->data(), 1, out->size(), stdout);
    std::fflush(stdout);
    return 0;
  };
}

}  // namespace suanli::cli
