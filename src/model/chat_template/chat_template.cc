// Public entry points: ChatTemplate::parse / render and apply_chat_template
// (the model's template, or ChatML, with HF's variables).
#include "suanli/chat_template.h"

#include "interpreter.h"
#include "suanli/gguf.h"

namespace suanli {

using chat_template_detail::Interpreter;
using chat_template_detail::parse_program;

Expected<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  auto program = parse_program(source);
  if (!program) return Status(program.status().code(), "chat template: " + program.status().message());
  ChatTemplate t;
  t.program_ = std::move(program).value();
  return t;
}

Expected<std::string> ChatTemplate::render(const nlohmann::ordered_json& context, const RenderLimits& limits,
                                           const TemplateClock& clock) const {
  if (!program_) return InvalidArgument("chat template: render on an unparsed template");
  Interpreter interpreter(limits, clock);
  Expected<std::string> out = interpreter.render(*program_, context);
  if (!out) return Status(out.status().code(), "chat template: " + out.status().message());
  return out;
}

std::string_view chatml_template() {
  return "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
         "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

namespace {

// The text of a special token named by tokenizer.ggml.<which>_token_id.
std::optional<std::string> special_token(const GgufFile& model, const char* which) {
  Expected<int64_t> id = model.get_int(std::string("tokenizer.ggml.") + which + "_token_id");
  if (!id || *id < 0) return std::nullopt;
  Expected<const GgufArray*> tokens = model.get_array("tokenizer.ggml.tokens");
  if (!tokens || (*tokens)->elem_type != GgufType::kString) return std::nullopt;
  if (static_cast<uint64_t>(*id) >= (*tokens)->strings.size()) return std::nullopt;
  return (*tokens)->strings[static_cast<size_t>(*id)];
}

}  // namespace

Expected<std::string> apply_chat_template(std::string_view template_source, const GgufFile& model,
                                          const nlohmann::ordered_json& messages,
                                          const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                          const nlohmann::ordered_json& extra_context, const TemplateClock& clock) {
  if (!messages.is_array()) return InvalidArgument("chat template: messages must be a JSON array");
  if (!tools.is_null() && !tools.is_array()) return InvalidArgument("chat template: tools must be null or a JSON array");
  if (!extra_context.is_null() && !extra_context.is_object()) {
    return InvalidArgument("chat template: extra context must be a JSON object");
  }
  SUANLI_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(template_source));
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = messages;
  ctx["tools"] = tools;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  for (const char* which : {"bos", "eos", "unknown", "padding"}) {
    std::optional<std::string> text = special_token(model, which);
    if (!text) continue;
    std::string key = std::string(which) == "unknown" ? "unk_token" : std::string(which) == "padding" ? "pad_token"
                                                                                                    : std::string(which) + "_token";
    ctx[key] = *text;
  }
  if (extra_context.is_object()) {
    for (const auto& [k, v] : extra_context.items()) ctx[k] = v;
  }
  return t.render(ctx, RenderLimits{}, clock);
}

Expected<std::string> apply_chat_template(const GgufFile& model, const nlohmann::ordered_json& messages,
                                          const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                          const nlohmann::ordered_json& extra_context, const TemplateClock& clock) {
  Expected<std::string> source = model.get_string("tokenizer.chat_template");
  std::string_view src = source ? std::string_view(*source) : chatml_template();
  return apply_chat_template(src, model, messages, tools, add_generation_prompt, extra_context, clock);
}

}  // namespace suanli
