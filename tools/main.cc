#include <cstdio>
#include <utility>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"suanli: an LLM inference engine for mixed fleets"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "suanli 0.1.0");

  std::vector<std::pair<CLI::App*, suanli::cli::Runner>> commands;
  auto add = [&](suanli::cli::Runner (*fn)(CLI::App&)) {
    suanli::cli::Runner r = fn(app);
    commands.emplace_back(app.get_subcommands({}).back(), std::move(r));
  };
  add(suanli::cli::add_inspect);
  add(suanli::cli::add_pull);
  add(suanli::cli::add_synth);
  add(suanli::cli::add_dequant);
  add(suanli::cli::add_tokenize);
  add(suanli::cli::add_detokenize);
  add(suanli::cli::add_template);
  add(suanli::cli::add_eval);
  add(suanli::cli::add_run);
  add(suanli::cli::add_chat);
  add(suanli::cli::add_bench);
  add(suanli::cli::add_devices);
  add(suanli::cli::add_quantize);
  add(suanli::cli::add_serve);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return 1;
}
