// (being written)
#include "commands.h"
namespace suanli::cli {
Runner add_inspect(CLI::App& app) {
  app.add_subcommand("inspect", "(being written)");
  return [] { return 1; };
}
}  // namespace suanli::cli
