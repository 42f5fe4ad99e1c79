// The suanli CLI: one file per subcommand. Each add_* registers its
// subcommand on the app and returns the function that runs it once parsed
// (exit status: 0 success, 1 failure with a message on stderr).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace suanli::cli {

using Runner = std::function<int()>;

Runner add_inspect(CLI::App& app);
Runner add_pull(CLI::App& app);
Runner add_synth(CLI::App& app);
Runner add_dequant(CLI::App& app);
Runner add_tokenize(CLI::App& app);
Runner add_detokenize(CLI::App& app);
Runner add_template(CLI::App& app);
Runner add_eval(CLI::App& app);
Runner add_run(CLI::App& app);
Runner add_chat(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_devices(CLI::App& app);
Runner add_quantize(CLI::App& app);
Runner add_serve(CLI::App& app);

}  // namespace suanli::cli
