// (being written)
#include "commands.h"
namespace suanli::cli {
Runner add_synth(CLI::App& app) {
  app.add_subcommand("synth", "(being written)");
  return [] { return 1; };
}
}  // namespace suanli::cli
