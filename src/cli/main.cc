// pillion: one binary, one subcommand per job (DESIGN.md §1).
#include <CLI/CLI.hpp>

#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"pillion: a sidecar proxy for microservices", "pillion"};
  app.set_version_flag("--version", std::string("pillion ") + PILLION_VERSION);
  app.require_subcommand(1);
  std::vector<pillion::cli::Command> commands{
      pillion::cli::add_proxy_command(app), pillion::cli::add_bench_command(app),
      pillion::cli::add_logs_command(app),  pillion::cli::add_init_command(app),
      pillion::cli::add_wait_command(app),  pillion::cli::add_ca_command(app),
  };
  CLI11_PARSE(app, argc, argv);
  for (auto& command : commands) {
    if (app.got_subcommand(command.name)) {
      return command.run();
    }
  }
  return 2;
}
