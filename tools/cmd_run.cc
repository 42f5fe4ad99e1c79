// suanli run -m MODEL -p PROMPT [-n N] [sampling flags]: raw completion.
// stdout carries exactly the generated text, streamed as whole UTF-8
// characters; logs and timings go to stderr.
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "commands.h"
#include "engine/speculative.h"
#include "model_args.h"
#include "suanli/session.h"

namespace suanli::cli {
namespace {

struct RunArgs {
  ModelArgs model;
  SamplingArgs sampling;
  std::string prompt;
  std::string prompt_file;
  int64_t n_predict = 128;
  bool ignore_eos = false;
  bool no_special = false;
  int32_t spec_ngram = 0;  // drafted tokens per step (prompt lookup); 0: off
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

Runner add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* sub = app.add_subcommand("run", "Complete a prompt (raw, no chat template)");
  add_model_args(sub, a->model);
  add_sampling_args(sub, a->sampling);
  sub->add_option("-p,--prompt", a->prompt, "Prompt text");
  sub->add_option("-f,--file", a->prompt_file, "Read the prompt from a file");
  sub->add_option("-n,--n-predict", a->n_predict, "Tokens to generate");
  sub->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
  sub->add_flag("--no-special", a->no_special, "Do not parse special-token text in the prompt");
  sub->add_option("--spec-ngram", a->spec_ngram,
                  "Speculative decoding by prompt lookup: up to N drafted tokens per step (0: off); the text "
                  "is the same");
  return [a] {
    auto fail = [](const std::string& m) {
      std::fprintf(stderr, "suanli run: %s\n", m.c_str());
      return 1;
    };
    if (a->n_predict < 0 || a->n_predict > (1 << 24)) return fail("-n must be 0 to 16777216");
    if (a->spec_ngram < 0 || a->spec_ngram > 16) return fail("--spec-ngram must be 0 to 16");
    std::string prompt = a->prompt;
    if (!a->prompt_file.empty()) {
      std::ifstream in(a->prompt_file, std::ios::binary);
      if (!in) return fail("cannot read " + a->prompt_file);
      prompt.assign(std::istreambuf_iterator<char>(in), {});
    }
    Expected<SamplingParams> sp = resolve_sampling(a->sampling);
    if (!sp) return fail(sp.status().to_string());
    const auto t_load = Clock::now();
    Expected<LoadedModel> lm = load_model(a->model);
    if (!lm) return fail(lm.status().to_string());
    const Tokenizer& tok = *lm->tokenizer;
    std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/!a->no_special);
    if (ids.empty()) return fail("the prompt is empty (and the model adds no BOS token)");
    const int64_t ctx = lm->context();
    if (static_cast<int64_t>(ids.size()) + a->n_predict > ctx) {
      return fail("prompt (" + std::to_string(ids.size()) + " tokens) + " + std::to_string(a->n_predict) +
                  " exceeds the context of " + std::to_string(ctx) + " tokens" +
                  (ctx == lm->model->info().n_ctx_train ? " (the model's trained context)" : " (raise --ctx)"));
    }
    const std::string threads = a->model.threads > 0 ? std::to_string(a->model.threads) + " threads" : "all cores";
    std::fprintf(stderr, "suanli run: %s on %s, %s, load %.2f s\n", lm->model->info().name.c_str(),
                 lm->device->name().c_str(), threads.c_str(), seconds_since(t_load));

    Session session(*lm->model, *lm->kv);
    Sampler sampler(*sp, static_cast<int32_t>(lm->model->n_vocab()));
    for (int32_t id : ids) sampler.accept(id);
    StreamDecoder out(lm->tokenizer);
    const auto t_prompt = Clock::now();
    if (Status s = session.set_prompt(ids); !s.ok()) return fail(s.to_string());
    const double prompt_s = seconds_since(t_prompt);
    const auto t_gen = Clock::now();
    Expected<GenerateStats> gen = generate_tokens(
        session, sampler, a->n_predict, a->spec_ngram,
        [&](int32_t t) { return !a->ignore_eos && tok.is_end_of_generation(t); },
        [&](int32_t t) {
          const std::string text = out.push(t);
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
        });
    if (!gen) return fail(gen.status().to_string());
    const int64_t generated = gen->generated;
    const std::string tail = out.flush();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fflush(stdout);
    const double gen_s = seconds_since(t_gen);
    std::fprintf(stderr, "\nsuanli run: prompt %zu tokens in %.3f s (%.1f t/s), generated %lld tokens in %.3f s (%.1f t/s)\n",
                 ids.size(), prompt_s, ids.size() / std::max(prompt_s, 1e-9), static_cast<long long>(generated), gen_s,
                 generated / std::max(gen_s, 1e-9));
    if (a->spec_ngram > 0) {
      std::fprintf(stderr, "suanli run: speculative: %lld of %lld drafted tokens kept, %lld steps\n",
                   static_cast<long long>(gen->kept), static_cast<long long>(gen->drafted),
                   static_cast<long long>(gen->steps));
    }
    return 0;
  };
}

}  // namespace suanli::cli
