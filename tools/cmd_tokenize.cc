// Placeholder until the tokenize subcommand lands (issue 3, in progress).
#include "commands.h"
namespace suanli::cli {
Runner add_tokenize(CLI::App& app) {
  app.add_subcommand("tokenize", "(issue 3, in progress)");
  return [] { return 1; };
}
}  // namespace suanli::cli
