// pillion bench: parses flags and hands them to the load generator in src/bench.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "bench/load.h"
#include "bench/report.h"
#include "cli/commands.h"
#include "core/duration.h"

namespace pillion::cli {
namespace {

struct BenchFlags {
  std::vector<std::string> urls;
  double rate = 0;
  uint32_t connections = 8;
  std::string duration = "10s";
  std::string warmup = "0s";
  std::string timeout = "2s";
  std::string method = "GET";
  std::vector<std::string> headers;
  int rounds = 1;
  bool json = false;
};

int run_bench(const BenchFlags& flags) {
  bench::LoadOptions options;
  options.rate = flags.rate;
  options.connections = flags.connections;
  options.method = flags.method;
  options.headers = flags.headers;
  struct NamedDuration {
    const char* flag;
    const std::string& text;
    bench::Nanos& out;
  };
  for (auto [flag, text, out] : {NamedDuration{"--duration", flags.duration, options.duration},
                                 NamedDuration{"--warmup", flags.warmup, options.warmup},
                                 NamedDuration{"--timeout", flags.timeout, options.timeout}}) {
    auto parsed = core::parse_duration(text);
    if (!parsed) {
      std::cerr << "pillion bench: " << flag << ": not a duration: " << text
                << " (use e.g. 500ms, 10s)\n";
      return 2;
    }
    out = *parsed;
  }
  if (options.duration.count() == 0 || options.timeout.count() == 0) {
    std::cerr << "pillion bench: --duration and --timeout must be positive\n";
    return 2;
  }
  for (const auto& header : flags.headers) {
    if (header.find(':') == std::string::npos ||
        header.find_first_of("\r\n") != std::string::npos) {
      std::cerr << "pillion bench: --header: expected 'Name: value', got: " << header << "\n";
      return 2;
    }
  }
  std::vector<bench::Target> targets;
  for (const auto& url : flags.urls) {
    auto target = bench::parse_target(url);
    if (!target) {
      std::cerr << "pillion bench: not an http:// URL: " << url << "\n";
      return 2;
    }
    targets.push_back(*target);
  }
  auto results = bench::run_rounds(targets, options, flags.rounds);
  std::cout << (flags.json ? bench::json_report(options, flags.rounds, results)
                           : bench::text_report(options, flags.rounds, results));
  std::cout.flush();
  // Scripts can tell "the target never answered" from a slow one.
  for (const auto& result : results) {
    if (result.completed == 0) {
      return 1;
    }
  }
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  auto* cmd = app.add_subcommand(
      "bench",
      "Open-loop HTTP/1.1 load generator. With two URLs, runs the same load against each and "
      "prints the latency the second adds to the first (the sidecar tax).");
  cmd->add_option("urls", flags->urls, "http://host[:port][/path]; a second URL to compare")
      ->required()
      ->expected(1, 2);
  cmd->add_option("--rate,-r", flags->rate, "Requests per second over all connections")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--connections,-c", flags->connections, "Keep-alive connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000u));
  cmd->add_option("--duration,-d", flags->duration, "Measured time per target and round")
      ->capture_default_str();
  cmd->add_option("--warmup,-w", flags->warmup, "Load sent before measuring, not recorded")
      ->capture_default_str();
  cmd->add_option("--timeout", flags->timeout, "Per-request timeout")->capture_default_str();
  cmd->add_option("--method,-m", flags->method, "Request method")->capture_default_str();
  cmd->add_option("--header,-H", flags->headers, "Extra request header 'Name: value'");
  cmd->add_option("--rounds", flags->rounds,
                  "Rounds; each runs every URL in turn (interleaving evens out machine drift)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", flags->json, "Print results as JSON");
  return {"bench", [flags] { return run_bench(*flags); }};
}

}  // namespace pillion::cli
