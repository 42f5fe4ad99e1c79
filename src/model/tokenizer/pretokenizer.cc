#include "model/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "model/tokenizer/utf8.h"

namespace suanli::tok {
namespace {

// GPT-2's pattern as HF's ByteLevel(use_regex=True) writes it.
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 and Qwen 2 differ only in how many digits group together.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek LLM's letter class lists the cased-letter ranges of its training
// tokenizer explicitly (it is not \p{L}: CJK is split separately).
constexpr const char* kDeepseekLlmLetters =
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-"
    "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}"
    "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}"
    "\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}"
    "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}"
    "\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-"
    "\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
    "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"
    "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-"
    "\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+";

}  // namespace

Expected<PreTokenizerSpec> pre_tokenizer_spec(std::string_view pre) {
  auto is = [&](std::initializer_list<std::string_view> names) {
    for (std::string_view n : names) {
      if (pre == n) return true;
    }
    return false;
  };
  if (is({"", "default", "gpt-2", "gpt2", "gpt-neox", "mpt", "olmo", "jais"})) {
    return PreTokenizerSpec{"gpt-2", {kGpt2}, false};
  }
  if (is({"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"})) {
    // HF: Sequence[Digits(individual_digits=True), ByteLevel(use_regex=True)].
    return PreTokenizerSpec{"smollm", {R"(\p{N})", kGpt2}, false};
  }
  if (is({"llama-bpe", "llama3", "llama-v3"})) return PreTokenizerSpec{"llama3", {kLlama3}, true};
  if (is({"dbrx", "smaug-bpe"})) return PreTokenizerSpec{"llama3", {kLlama3}, false};
  if (is({"qwen2", "stablelm2", "hunyuan"})) return PreTokenizerSpec{"qwen2", {kQwen2}, false};
  if (is({"deepseek-llm"})) {
    return PreTokenizerSpec{"deepseek-llm",
                            {"[\\r\\n]", kDeepseekLlmLetters, "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+", "\\s+$",
                             "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}+"},
                            false};
  }
  if (is({"deepseek-coder"})) {
    return PreTokenizerSpec{
        "deepseek-coder", {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}"}, false};
  }
  if (is({"deepseek-v3"})) {
    return PreTokenizerSpec{"deepseek-v3",
                            {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
                             "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}"
                             "\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
                            false};
  }
  if (is({"falcon"})) {
    // HF: Sequence[Punctuation, ByteLevel(use_regex=True), Digits, Split([0-9]{3})].
    return PreTokenizerSpec{"falcon", {R"([\p{P}$+<=>^~|`]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, false};
  }
  return Unsupported("tokenizer.ggml.pre \"" + std::string(pre) +
                     "\" is not a supported pre-tokenizer (see docs/tokenizer.md for the list)");
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

// Per-call match state: match data per regex, one JIT stack per thread.
struct MatchScratch {
  std::vector<pcre2_match_data*> data;
  pcre2_match_context* context = nullptr;
  ~MatchScratch() {
    for (pcre2_match_data* d : data) pcre2_match_data_free(d);
    pcre2_match_context_free(context);
  }
};

namespace {

pcre2_jit_stack* thread_jit_stack() {
  struct Holder {
    pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    ~Holder() { pcre2_jit_stack_free(stack); }
  };
  thread_local Holder holder;
  return holder.stack;
}

}  // namespace

PreTokenizer::~PreTokenizer() = default;

Expected<std::shared_ptr<const PreTokenizer>> PreTokenizer::create(const PreTokenizerSpec& spec) {
  std::shared_ptr<PreTokenizer> p(new PreTokenizer());
  p->spec_ = spec;
  for (const std::string& re : spec.regexes) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto c = std::make_unique<Compiled>();
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), PCRE2_UTF | PCRE2_UCP, &err,
                            &err_off, nullptr);
    if (c->code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return Internal("pre-tokenizer " + spec.name + ": regex does not compile at offset " +
                      std::to_string(err_off) + ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);  // interpreted matching when JIT is unavailable
    p->compiled_.push_back(std::move(c));
  }
  return std::shared_ptr<const PreTokenizer>(std::move(p));
}

void PreTokenizer::split(std::string_view text, const std::function<void(std::string_view)>& emit) const {
  MatchScratch scratch;
  scratch.context = pcre2_match_context_create(nullptr);
  if (pcre2_jit_stack* stack = thread_jit_stack()) pcre2_jit_stack_assign(scratch.context, nullptr, stack);
  for (const auto& c : compiled_) scratch.data.push_back(pcre2_match_data_create_from_pattern(c->code, nullptr));

  // Valid UTF-8 runs go through the regexes; each invalid byte is a piece.
  size_t i = 0;
  while (i < text.size()) {
    size_t run = utf8_valid_prefix(text.substr(i));
    if (run > 0) {
      split_level(0, text.substr(i, run), scratch, emit);
      i += run;
    } else {
      emit(text.substr(i, 1));
      ++i;
    }
  }
}

void PreTokenizer::split_level(size_t level, std::string_view text, MatchScratch& scratch,
                               const std::function<void(std::string_view)>& emit) const {
  if (text.empty()) return;
  if (level == compiled_.size()) {
    emit(text);
    return;
  }
  const pcre2_code* code = compiled_[level]->code;
  pcre2_match_data* md = scratch.data[level];
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t last = 0, pos = 0;
  while (pos < text.size()) {
    int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, scratch.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, scratch.context);
    }
    // No match, or a resource limit on pathological input: the rest stays one
    // piece (still tokenized correctly, only split more coarsely).
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    if (e <= s) {  // an empty match: step over one character
      size_t len = utf8_char_len(text.data() + pos, text.size() - pos);
      pos += len ? len : 1;
      continue;
    }
    if (s > last) split_level(level + 1, text.substr(last, s - last), scratch, emit);
    split_level(level + 1, text.substr(s, e - s), scratch, emit);
    last = pos = e;
  }
  if (last < text.size()) split_level(level + 1, text.substr(last), scratch, emit);
}

}  // namespace suanli::tok
