// Chat templates: a Jinja interpreter for the subset that model chat
// templates use (tokenizer.chat_template), rendering byte for byte what
// Hugging Face transformers renders with jinja2 (ImmutableSandboxedEnvironment,
// trim_blocks, lstrip_blocks, loop controls, HF's tojson, raise_exception,
// strftime_now). docs/chat_templates.md lists the subset, the limits and the
// known differences from jinja2.
//
// Contract: parse() and render() never abort, exit or throw on any input;
// every syntax error names line:column, every render error (undefined
// value misuse, type error, raise_exception, a limit reached) comes back as
// a Status. Hostile templates are bounded: parser nesting depth, macro
// recursion, evaluation steps (loop iterations included), output size and
// the size of every string or list built on the way.
//
// A ChatTemplate is immutable after parse() and safe to render from many
// threads at once; rendering keeps all its state on the caller's stack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "suanli/status.h"

namespace suanli {

class GgufFile;

struct RenderLimits {
  size_t max_output_bytes = size_t{1} << 24;  // also caps every string built while rendering
  int max_recursion = 64;                     // macro call depth
  uint64_t max_steps = 10'000'000;            // expression nodes, statements and loop iterations
};

// How strftime_now() learns the time. Unset: the local clock, as HF does;
// set: this instant, formatted in UTC (reproducible prompts and tests).
struct TemplateClock {
  std::optional<std::time_t> fixed_time;
};

namespace chat_template_detail {
struct Program;
}

class ChatTemplate {
 public:
  // Syntax errors come back as kInvalidArgument "line L, column C: ...".
  static Expected<ChatTemplate> parse(std::string_view source);

  // context: a JSON object whose keys become template variables (messages,
  // tools, add_generation_prompt, bos_token, eos_token, ...). Object key
  // order is kept (ordered_json), which is what tojson prints; a plain
  // nlohmann::json converts implicitly, with its keys sorted.
  Expected<std::string> render(const nlohmann::ordered_json& context, const RenderLimits& limits = {},
                               const TemplateClock& clock = {}) const;

 private:
  std::shared_ptr<const chat_template_detail::Program> program_;
};

// The ChatML template used when a model carries none.
std::string_view chatml_template();

// Renders the model's tokenizer.chat_template (ChatML when it has none)
// the way HF's apply_chat_template does: messages, tools (null or an array),
// documents (null), add_generation_prompt, bos_token and eos_token (the
// texts of tokenizer.ggml.bos/eos_token_id, when present), then every key
// of extra_context (enable_thinking, date_string, ...), which may override.
Expected<std::string> apply_chat_template(const GgufFile& model, const nlohmann::ordered_json& messages,
                                          const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                          const nlohmann::ordered_json& extra_context = {},
                                          const TemplateClock& clock = {});

// As above with an explicit template source instead of the model's.
Expected<std::string> apply_chat_template(std::string_view template_source, const GgufFile& model,
                                          const nlohmann::ordered_json& messages,
                                          const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                          const nlohmann::ordered_json& extra_context = {},
                                          const TemplateClock& clock = {});

}  // namespace suanli
