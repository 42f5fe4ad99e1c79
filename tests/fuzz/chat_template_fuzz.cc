// libFuzzer target: arbitrary bytes as a chat template, parsed and rendered
// against a small conversation with small limits. parse/render must return
// a Status for anything; ASan/UBSan catch the rest, and the limits keep each
// input fast (no hangs, no stack exhaustion).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "suanli/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  suanli::Expected<suanli::ChatTemplate> t = suanli::ChatTemplate::parse(source);
  if (!t) return 0;
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": "hi <think>x</think> ünï"},
      {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call12345", "type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, null]}}}]},
      {"role": "tool", "tool_call_id": "call12345", "content": "ok"}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"
  })");
  suanli::RenderLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_recursion = 16;
  limits.max_steps = 100'000;
  suanli::TemplateClock clock;
  clock.fixed_time = 0;
  (void)t->render(context, limits, clock);
  return 0;
}
