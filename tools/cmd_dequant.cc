// (being written)
#include "commands.h"
namespace suanli::cli {
Runner add_dequant(CLI::App& app) {
  app.add_subcommand("dequant", "(being written)");
  return [] { return 1; };
}
}  // namespace suanli::cli
