// suanli chat -m MODEL: an interactive multi-turn conversation through the
// model's chat template. Each turn re-renders the whole conversation; the
// Session keeps the common prefix in the KV cache, so only the new turn is
// computed. Lines from stdin are user messages; /reset starts over, /exit
// (or end of input) quits. Replies stream to stdout.
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "engine/speculative.h"
#include "model_args.h"
#include "suanli/chat_template.h"
#include "suanli/session.h"

namespace suanli::cli {
namespace {

struct ChatArgs {
  ModelArgs model;
  SamplingArgs sampling;
  std::string system;
  int64_t n_predict = 512;
  int32_t spec_ngram = 0;
};

}  // namespace

Runner add_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* sub = app.add_subcommand("chat", "Interactive chat through the model's chat template");
  add_model_args(sub, a->model);
  add_sampling_args(sub, a->sampling);
  sub->add_option("-s,--system", a->system, "System message");
  sub->add_option("-n,--n-predict", a->n_predict, "Max tokens per reply");
  sub->add_option("--spec-ngram", a->spec_ngram,
                  "Speculative decoding by prompt lookup: up to N drafted tokens per step (0: off); the replies "
                  "are the same");
  return [a] {
    auto fail = [](const std::string& m) {
      std::fprintf(stderr, "suanli chat: %s\n", m.c_str());
      return 1;
    };
    if (a->n_predict < 1 || a->n_predict > (1 << 24)) return fail("-n must be 1 to 16777216");
    if (a->spec_ngram < 0 || a->spec_ngram > 16) return fail("--spec-ngram must be 0 to 16");
    Expected<SamplingParams> sp = resolve_sampling(a->sampling);
    if (!sp) return fail(sp.status().to_string());
    Expected<LoadedModel> lm = load_model(a->model);
    if (!lm) return fail(lm.status().to_string());
    const Tokenizer& tok = *lm->tokenizer;
    const bool interactive = isatty(STDIN_FILENO);
    const int64_t ctx = lm->context();
    Session session(*lm->model, *lm->kv);
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!a->system.empty()) messages.push_back({{"role", "system"}, {"content", a->system}});
    const size_t base_messages = messages.size();
    if (interactive) std::fprintf(stderr, "suanli chat: /reset to start over, /exit or Ctrl-D to quit\n");
    uint64_t turn = 0;
    std::string line;
    for (;;) {
      if (interactive) std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line)) break;
      if (line == "/exit") break;
      if (line == "/reset") {
        messages.erase(messages.begin() + base_messages, messages.end());
        session.reset();
        continue;
      }
      if (line.empty()) continue;
      messages.push_back({{"role", "user"}, {"content", line}});
      Expected<std::string> prompt = apply_chat_template(lm->model->file(), messages, nullptr, true);
      if (!prompt) {
        messages.erase(messages.end() - 1);
        std::fprintf(stderr, "suanli chat: template: %s\n", prompt.status().to_string().c_str());
        continue;
      }
      std::vector<int32_t> ids = tok.encode(*prompt, /*add_special=*/true, /*parse_special=*/true);
      if (static_cast<int64_t>(ids.size()) + a->n_predict > ctx) {
        std::fprintf(stderr, "suanli chat: the conversation no longer fits the context (%lld tokens); /reset\n",
                     static_cast<long long>(ctx));
        messages.erase(messages.end() - 1);
        continue;
      }
      const auto t0 = std::chrono::steady_clock::now();
      if (Status s = session.set_prompt(ids); !s.ok()) return fail(s.to_string());
      SamplingParams p = *sp;
      p.seed += turn++;
      Sampler sampler(p, static_cast<int32_t>(lm->model->n_vocab()));
      for (int32_t id : ids) sampler.accept(id);
      StreamDecoder out(lm->tokenizer);
      std::string reply;
      Expected<GenerateStats> gen = generate_tokens(
          session, sampler, a->n_predict, a->spec_ngram, [&](int32_t t) { return tok.is_end_of_generation(t); },
          [&](int32_t t) {
            std::string text = out.push(t);
            reply += text;
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
          });
      if (!gen) return fail(gen.status().to_string());
      const int64_t n = gen->generated;
      std::string tail = out.flush();
      reply += tail;
      std::fwrite(tail.data(), 1, tail.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "[%lld prompt tokens (%lld reused), %lld generated, %.2f s]\n",
                   static_cast<long long>(ids.size()), static_cast<long long>(session.reused_tokens()),
                   static_cast<long long>(n), s);
      messages.push_back({{"role", "assistant"}, {"content", reply}});
    }
    return 0;
  };
}

}  // namespace suanli::cli
