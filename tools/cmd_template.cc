// Placeholder until the template subcommand lands (issue 3, in progress).
#include "commands.h"
namespace suanli::cli {
Runner add_template(CLI::App& app) {
  app.add_subcommand("template", "(issue 3, in progress)");
  return [] { return 1; };
}
}  // namespace suanli::cli
