// `pillion init`: parses flags and hands them to src/init (like Istio's istio-init container).
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "init/options.h"
#include "init/run.h"

namespace pillion::cli {
namespace {

struct InitCommandFlags {
  init::InitFlags rules;
  bool dry_run = false;
  bool cleanup = false;
};

}  // namespace

Command add_init_command(CLI::App& app) {
  auto flags = std::make_shared<InitCommandFlags>();
  auto& r = flags->rules;
  auto* cmd = app.add_subcommand(
      "init",
      "Install (or print, or remove) the nat-table iptables rules that send the pod's TCP "
      "through the proxy: inbound to --inbound-port, outbound to --outbound-port; the proxy's "
      "own uid/gid and loopback traffic of the app to itself stay direct. Chains are named "
      "PILLION_*; IPv4 and IPv6 are each one iptables-restore --noflush transaction. Needs "
      "CAP_NET_ADMIN in the pod's network namespace (except --dry-run). Running it twice is "
      "harmless.");
  cmd->add_flag("--dry-run", flags->dry_run,
                "print the exact iptables-restore input for IPv4 and IPv6 and change nothing");
  cmd->add_flag("--cleanup", flags->cleanup,
                "remove what init added (the PILLION_* chains and their jumps in PREROUTING and "
                "OUTPUT) and nothing else");
  cmd->add_option("--inbound-port", r.inbound_port,
                  "port of the proxy's inbound capture listener that inbound TCP is redirected to")
      ->type_name("PORT")
      ->capture_default_str();
  cmd->add_option("--outbound-port", r.outbound_port,
                  "port of the proxy's outbound capture listener that outbound TCP is redirected "
                  "to")
      ->type_name("PORT")
      ->capture_default_str();
  cmd->add_option("--proxy-uid", r.proxy_uid,
                  "numeric uid the proxy runs as; its traffic is never redirected (no loops)")
      ->type_name("UID")
      ->capture_default_str();
  cmd->add_option("--proxy-gid", r.proxy_gid,
                  "numeric gid the proxy runs as; its traffic is never redirected either")
      ->type_name("GID")
      ->capture_default_str();
  cmd->add_option("--include-inbound-ports", r.include_inbound_ports,
                  "inbound destination ports to redirect: '*' for all, a comma list, or '' for "
                  "none")
      ->type_name("PORTS")
      ->capture_default_str();
  cmd->add_option(
         "--exclude-inbound-ports", r.exclude_inbound_ports,
         "inbound ports never redirected (wins over the include list); the default keeps "
         "metrics 15090, readiness 15021 and 15020 (Istio's merged-metrics port) reachable "
         "by kubelet and scrapers; "
         "'' excludes none")
      ->type_name("PORTS")
      ->capture_default_str();
  cmd->add_option("--exclude-outbound-ports", r.exclude_outbound_ports,
                  "outbound destination ports never redirected (comma list)")
      ->type_name("PORTS");
  cmd->add_option("--exclude-outbound-cidrs", r.exclude_outbound_cidrs,
                  "outbound destinations never redirected: comma list of IPv4/IPv6 CIDRs (each "
                  "goes to the rules of its family)")
      ->type_name("CIDRS");
  cmd->add_option("--include-outbound-cidrs", r.include_outbound_cidrs,
                  "outbound destinations to redirect: '*' for all, or a comma list of IPv4/IPv6 "
                  "CIDRs (a family with no entry gets no outbound redirect)")
      ->type_name("CIDRS")
      ->capture_default_str();
  return {"init", [flags] {
            init::Options options;
            try {
              options = init::parse_options(flags->rules);
            } catch (const init::OptionError& e) {
              std::cerr << "pillion init: " << e.what() << "\n";
              return 2;
            }
            // A restore that exits before reading all its input must not kill us with SIGPIPE.
            std::signal(SIGPIPE, SIG_IGN);
            const auto action = flags->cleanup ? init::Action::kCleanup : init::Action::kInstall;
            try {
              return init::run_init(options, action, flags->dry_run, std::cout, std::cerr);
            } catch (const std::exception& e) {  // pipe, poll or waitpid failed
              std::cerr << "pillion init: " << e.what() << "\n";
              return 1;
            }
          }};
}

}  // namespace pillion::cli
