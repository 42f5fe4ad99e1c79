// `suanli bench serve`: the serving load generator (a subcommand of bench).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace suanli::cli {

// Adds `serve` under `bench`; the returned runner runs it when parsed.
std::function<int()> add_bench_serve(CLI::App* bench);

}  // namespace suanli::cli
