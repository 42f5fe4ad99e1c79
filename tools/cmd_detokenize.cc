// Placeholder until the detokenize subcommand lands (issue 3, in progress).
#include "commands.h"
namespace suanli::cli {
Runner add_detokenize(CLI::App& app) {
  app.add_subcommand("detokenize", "(issue 3, in progress)");
  return [] { return 1; };
}
}  // namespace suanli::cli
