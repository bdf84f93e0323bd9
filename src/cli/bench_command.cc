#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace pillion::cli {

Command add_bench_command(CLI::App& app) {
  app.add_subcommand("bench", "(not built yet)");
  return {"bench", [] { return 1; }};
}

}  // namespace pillion::cli
