#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace pillion::cli {

Command add_logs_command(CLI::App& app) {
  app.add_subcommand("logs", "(not built yet)");
  return {"logs", [] { return 1; }};
}

}  // namespace pillion::cli
