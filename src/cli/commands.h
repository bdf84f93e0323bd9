#pragma once
// Subcommands of the single `pillion` binary. Each add_*_command registers its flags on the
// parent app and returns the function that runs the subcommand once the command line parsed.

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace pillion::cli {

struct Command {
  std::string name;
  std::function<int()> run;  // returns the process exit code
};

Command add_proxy_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_logs_command(CLI::App& app);
Command add_init_command(CLI::App& app);
Command add_wait_command(CLI::App& app);
Command add_ca_command(CLI::App& app);

}  // namespace pillion::cli
