// (being written)
#include "commands.h"
namespace suanli::cli {
Runner add_pull(CLI::App& app) {
  app.add_subcommand("pull", "(being written)");
  return [] { return 1; };
}
}  // namespace suanli::cli
