// libFuzzer target: arbitrary bytes through encode (special-token parsing on
// and off), decode and the streaming decoder, for a byte-level BPE and a
// SentencePiece vocabulary. The vocabularies come from
// SUANLI_FUZZ_VOCAB_DIR (default ../shared/data/vocab, the team's
// vocabulary-only GGUFs) and the cached default model (SmolLM2's byte-level
// BPE, which `make test` fetches before fuzzing); the target says which it
// loaded and does nothing only when there is none at all.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "suanli/gguf.h"
#include "suanli/tokenizer.h"

namespace {

std::vector<std::shared_ptr<const suanli::Tokenizer>>& tokenizers() {
  static std::vector<std::shared_ptr<const suanli::Tokenizer>> t;
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("SUANLI_FUZZ_VOCAB_DIR");
  const std::string base = dir ? dir : "../shared/data/vocab";
  std::vector<std::string> paths;
  for (const char* name : {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-deepseek-llm.gguf"}) {
    paths.push_back(base + "/" + name);
  }
  const char* home = std::getenv("SUANLI_HOME");
  const char* user_home = std::getenv("HOME");
  if (home && *home) {
    paths.push_back(std::string(home) + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  } else if (user_home) {
    paths.push_back(std::string(user_home) + "/.cache/suanli/models/SmolLM2-135M-Instruct.Q4_1.gguf");
  }
  for (const std::string& path : paths) {
    auto f = suanli::GgufFile::open(path);
    if (!f) continue;
    auto t = suanli::Tokenizer::from_gguf(*f);
    if (!t) continue;
    tokenizers().push_back(*t);
    std::fprintf(stderr, "tokenizer_fuzz: vocabulary %s\n", path.c_str());
  }
  if (tokenizers().empty()) std::fprintf(stderr, "tokenizer_fuzz: no vocabulary found (%s, default model)\n", base.c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (tokenizers().empty() || size < 1) return 0;
  const suanli::Tokenizer& tok = *tokenizers()[data[0] % tokenizers().size()];
  const bool parse_special = data[0] & 0x10;
  const bool add_special = data[0] & 0x20;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
  for (int32_t id : ids) {
    if (!tok.valid_id(id)) __builtin_trap();
  }
  (void)tok.decode(ids, false);
  suanli::StreamDecoder stream(tokenizers()[data[0] % tokenizers().size()]);
  for (int32_t id : ids) (void)stream.push(id);
  (void)stream.flush();
  // Arbitrary ids, including out-of-range ones, must decode without harm.
  std::vector<int32_t> raw;
  for (size_t i = 1; i + 4 <= size; i += 4) {
    int32_t v;
    __builtin_memcpy(&v, data + i, 4);
    raw.push_back(v);
  }
  (void)tok.decode(raw, true);
  return 0;
}
