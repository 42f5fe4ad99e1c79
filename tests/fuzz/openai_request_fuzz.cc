// libFuzzer target: untrusted request bodies through the server's request
// parsing (src/server/openai_request.cc), exactly as the HTTP handlers call
// it: parse_json_object, then the chat or completions parser (chat template
// rendering and tokenization included), /tokenize or /detokenize. The first
// input byte picks the endpoint (low 2 bits) and whether a scenario header is
// given (bit 2: the body's first line is the X-Suanli-Scenario value); the
// rest is the body. The error JSON of every refusal is rendered as the
// server renders it.
//
// Beyond "no crash, no hang" it checks what the engine relies on when a
// request is accepted: at least one prompt, every prompt non-empty, shorter
// than the context and made of ids inside the vocabulary; prompts x n within
// the server's cap; sampling parameters that SamplingParams::validate()
// accepts; non-empty stop strings; logprobs within range.
//
// The tokenizer and the chat template come from the cached default model
// (`make test` fetches it before fuzzing), else SUANLI_FUZZ_MODEL; without
// either the target says so and does nothing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "server/openai_request.h"
#include "server/openai_response.h"
#include "suanli/gguf.h"
#include "suanli/tokenizer.h"

namespace {

// Small, so that prompts over the context are easy to reach.
constexpr int64_t kMaxContext = 64;

struct Model {
  std::unique_ptr<suanli::GgufFile> file;
  std::shared_ptr<const suanli::Tokenizer> tokenizer;
};

Model& model() {
  static Model m;
  return m;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "openai_request_fuzz: accepted a request that breaks: %s\n", what);
    std::abort();
  }
}

void check_ids(const std::vector<int32_t>& ids) {
  for (const int32_t id : ids) check(model().tokenizer->valid_id(id), "token id inside the vocabulary");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string path;
  if (const char* p = std::getenv("SUANLI_FUZZ_MODEL"); p && *p) {
    path = p;
  } else if (const char* home = std::getenv("SUANLI_HOME"); home && *home) {
    path = std::string(home) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  } else if (const char* user_home = std::getenv("HOME")) {
    path = std::string(user_home) + "/.cache/suanli/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  auto f = suanli::GgufFile::open(path);
  if (!f) {
    std::fprintf(stderr, "openai_request_fuzz: no model at '%s': nothing to fuzz\n", path.c_str());
    return 0;
  }
  auto t = suanli::Tokenizer::from_gguf(*f);
  if (!t) {
    std::fprintf(stderr, "openai_request_fuzz: %s has no tokenizer\n", path.c_str());
    return 0;
  }
  model().file = std::make_unique<suanli::GgufFile>(std::move(*f));
  model().tokenizer = *t;
  std::fprintf(stderr, "openai_request_fuzz: tokenizer and chat template of %s\n", path.c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace suanli::server;
  if (!model().tokenizer || size < 1) return 0;
  const int mode = data[0] & 3;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view scenario;
  if (data[0] & 4) {
    const size_t nl = body.find('\n');
    scenario = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
  }
  nlohmann::json j;
  ApiError err;
  if (!parse_json_object(body, &j, &err)) {
    check(err.status == 400 && !err.message.empty(), "a refusal with status 400 and a message");
    (void)error_body(err);
    return 0;
  }
  ParseContext ctx;
  ctx.tokenizer = model().tokenizer.get();
  ctx.model_file = model().file.get();
  ctx.max_context = kMaxContext;
  ctx.scenario_header = scenario;
  ctx.raw_body = body;
  std::optional<ApiError> e;
  if (mode == 2 || mode == 3) {
    std::vector<int32_t> ids;
    e = mode == 2 ? parse_tokenize_request(j, ctx, &ids) : parse_detokenize_request(j, ctx, &ids);
    if (!e) {
      check_ids(ids);
      (void)model().tokenizer->decode(ids, /*skip_special=*/false);
    }
  } else {
    CompletionRequest r;
    e = parse_completion_request(mode == 0 ? Endpoint::kChat : Endpoint::kCompletion, j, ctx, &r);
    if (!e) {
      check(!r.prompts.empty(), "at least one prompt");
      check(r.base.n >= 1 && r.prompts.size() * static_cast<size_t>(r.base.n) <= 128, "prompts x n <= 128");
      for (const auto& p : r.prompts) {
        check(!p.empty(), "a non-empty prompt");
        check(static_cast<int64_t>(p.size()) < kMaxContext, "a prompt shorter than the context");
        check_ids(p);
      }
      check(r.base.max_tokens >= 0, "max_tokens >= 0");
      check(r.base.sampling.validate().ok(), "sampling parameters SamplingParams::validate() accepts");
      for (const auto& s : r.base.stop) check(!s.empty(), "non-empty stop strings");
      check(r.base.logprobs >= -1 && r.base.logprobs <= 20, "logprobs in [-1, 20]");
      check(r.top_logprobs >= 0 && r.top_logprobs <= 20, "top_logprobs in [0, 20]");
    }
  }
  if (e) {
    check(e->status >= 400 && e->status < 500 && !e->message.empty(), "a 4xx refusal with a message");
    (void)error_body(*e);
  }
  return 0;
}
