// suanli serve: the OpenAI-compatible server (docs/server.md).
//
// Listens first, then loads the model in the background (/health answers 503
// until it is ready). SIGTERM / SIGINT: stop accepting new requests (503),
// let in-flight ones finish within --shutdown-timeout, abort the rest
// (finish_reason "abort"), exit 0. Every flag can also come from a SUANLI_*
// environment variable named after it (--max-queue: SUANLI_MAX_QUEUE).
#include <pthread.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "commands.h"
#include "model/pull.h"
#include "model_args.h"
#include "suanli/engine.h"
#include "suanli/server.h"

namespace suanli::cli {
namespace {

struct ServeArgs {
  ModelArgs model;
  ServerOptions server;
  std::string kv_memory = "1GiB";
  std::string max_body = "4MiB";
  int64_t max_seqs = 64;
  int64_t max_queue = -1;  // -1: the engine's per-class defaults
  double shutdown_timeout_s = 30;
  std::string served_model_name;
  EngineConfig::Speculative speculative;
};

// SUANLI_<LONG_NAME> for every option that has a long name.
void add_env_names(CLI::App* sub) {
  for (CLI::Option* opt : sub->get_options()) {
    const std::vector<std::string>& names = opt->get_lnames();
    if (names.empty() || names[0] == "help") continue;
    std::string env = "SUANLI_";
    for (char c : names[0]) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    opt->envname(env);
  }
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

Runner add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat, completions, metrics, web UI)");
  add_model_args(sub, a->model);
  ServerOptions& o = a->server;
  sub->add_option("--host", o.host, "Address to bind (default 127.0.0.1; 0.0.0.0 for every interface)");
  sub->add_option("--port", o.port, "Port (0: any free port)");
  sub->add_option("--api-key", o.api_key, "Require Authorization: Bearer <key> (not for / and /health)");
  sub->add_option("--max-queue", a->max_queue, "Waiting requests per scenario class before 429");
  sub->add_option("--shutdown-timeout", a->shutdown_timeout_s, "Seconds in-flight requests get on SIGTERM");
  sub->add_option("--request-timeout", o.request_timeout_s, "Seconds a generation may run before it is aborted");
  sub->add_option("--idle-timeout", o.idle_timeout_s, "Seconds an idle keep-alive connection stays open");
  sub->add_option("--max-body", a->max_body, "Largest request body (413 beyond), e.g. 4MiB");
  sub->add_option("--kv-memory", a->kv_memory, "KV cache memory, e.g. 512MiB, 2GiB, or 30% of free memory");
  sub->add_option("--max-seqs", a->max_seqs, "Max running sequences");
  sub->add_option("--max-batch-tokens", a->model.batch, "Max tokens per forward step");
  sub->add_option("--io-threads", o.io_threads, "HTTP I/O threads");
  sub->add_option("--served-model-name", a->served_model_name, "Model id in the API (default: the file name)");
  add_speculative_args(sub, a->speculative);
  add_env_names(sub);
  return [a, sub]() -> int {
    if (!sub->parsed()) return -1;
    auto fail = [](const std::string& m) {
      std::fprintf(stderr, "suanli serve: %s\n", m.c_str());
      return 1;
    };
    if (a->kv_memory.empty()) return fail("--kv-memory is empty");
    if (a->kv_memory.back() != '%') {  // shares of free memory are resolved once the device exists
      if (Expected<uint64_t> b = parse_bytes(a->kv_memory); !b) return fail(b.status().to_string());
    }
    Expected<uint64_t> body_bytes = parse_bytes(a->max_body);
    if (!body_bytes) return fail(body_bytes.status().to_string());
    a->server.max_body_bytes = *body_bytes;
    if (a->max_seqs < 1 || a->max_seqs > 4096) return fail("--max-seqs must be 1 to 4096");
    if (a->max_queue > (1 << 24)) return fail("--max-queue is too large");
    if (!(a->shutdown_timeout_s >= 0)) return fail("--shutdown-timeout must be >= 0");

    // Signals go to the thread that waits for them; every thread started
    // from here on inherits the mask.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);  // the loader's "failed"
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    Expected<std::unique_ptr<Server>> server = Server::start(a->server);
    if (!server) return fail(server.status().to_string());
    std::fprintf(stderr, "suanli serve: listening on http://%s:%u (loading the model)\n", a->server.host.c_str(),
                 (*server)->port());

    struct Loaded {
      LoadedModel lm;
      std::unique_ptr<KvCache> kv;
      std::unique_ptr<Engine> engine;
    };
    auto loaded = std::make_shared<Loaded>();
    std::string load_error;
    const pthread_t main_thread = pthread_self();
    std::thread loader([&, a] {
      auto failed = [&](const Status& s) {
        load_error = s.to_string();
        (*server)->set_load_error(load_error);
        pthread_kill(main_thread, SIGUSR1);
      };
      ModelArgs margs = a->model;
      Expected<LoadedModel> lm = load_model(margs);
      if (!lm) return failed(lm.status());
      loaded->lm = std::move(*lm);
      loaded->lm.kv.reset();  // the single-sequence cache load_model made
      Expected<uint64_t> kv_bytes = parse_kv_memory(a->kv_memory, *loaded->lm.device);
      if (!kv_bytes) return failed(kv_bytes.status());
      KvCacheOptions kopt;
      kopt.memory_bytes = *kv_bytes;
      kopt.commit = true;  // page faults at start, not in serving steps (KvCacheOptions)
      auto kv = KvCache::create(*loaded->lm.device, loaded->lm.model->info(), kopt, loaded->lm.model->layer_devices());
      if (!kv) return failed(kv.status());
      loaded->kv = std::move(*kv);
      EngineConfig ecfg;
      ecfg.max_batch_tokens = loaded->lm.model->max_batch_tokens();
      ecfg.max_seqs = static_cast<int32_t>(a->max_seqs);
      ecfg.max_context = a->model.ctx;
      ecfg.speculative = a->speculative;
      if (a->max_queue >= 0) {
        for (ScenarioConfig& sc : ecfg.scenarios) sc.max_queue = static_cast<int32_t>(a->max_queue);
      }
      auto engine = Engine::create(*loaded->lm.model, *loaded->kv, loaded->lm.tokenizer, ecfg);
      if (!engine) return failed(engine.status());
      loaded->engine = std::move(*engine);
      ServerBackend b;
      b.engine = loaded->engine.get();
      b.model = loaded->lm.model.get();
      b.tokenizer = loaded->lm.tokenizer;
      b.device_name = loaded->lm.device->name();
      b.max_context = std::min<int64_t>(loaded->engine->config().max_context,
                                        int64_t{loaded->kv->n_blocks()} * loaded->kv->block_size());
      std::string id = a->served_model_name;
      if (id.empty()) {
        id = a->model.model.empty() ? std::string(kDefaultModelFile) : a->model.model;
        if (auto slash = id.rfind('/'); slash != std::string::npos) id = id.substr(slash + 1);
        if (id.size() > 5 && id.substr(id.size() - 5) == ".gguf") id.resize(id.size() - 5);
      }
      b.model_id = id;
      (*server)->set_backend(b);
      std::fprintf(stderr, "suanli serve: ready: model '%s' on %s, context %lld tokens, http://%s:%u/\n",
                   id.c_str(), b.device_name.c_str(), static_cast<long long>(b.max_context),
                   a->server.host.c_str(), (*server)->port());
    });

    int sig = 0;
    sigwait(&sigs, &sig);
    loader.join();
    if (sig == SIGUSR1) {
      (*server)->shutdown(0);
      server->reset();
      return fail("the model failed to load: " + load_error);
    }
    std::fprintf(stderr, "suanli serve: %s: draining (up to %.0f s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
                 a->shutdown_timeout_s);
    (*server)->shutdown(a->shutdown_timeout_s);
    // The engine first: requests it still ends post their last events to
    // connections, which need the server's I/O context alive.
    loaded->engine.reset();
    server->reset();
    std::fprintf(stderr, "suanli serve: stopped\n");
    return 0;
  };
}

}  // namespace suanli::cli
