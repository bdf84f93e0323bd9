// `pillion logs`: the log adapter. Parses flags, loads the config, and runs src/logs.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <memory>

#include "cli/commands.h"
#include "core/duration.h"
#include "core/log.h"
#include "logs/adapter.h"
#include "logs/config.h"

namespace pillion::cli {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop = true;
}

struct LogsFlags {
  std::string config_file;
  std::vector<std::string> paths;
  std::string format;
  std::string regex;
  std::string time_layout;
  std::string time_zone;
  std::string multiline;
  std::string output;
  std::string output_path;
  std::string url;
  std::string index;
  std::string checkpoint;
  std::string checkpoint_interval;
  std::string metrics_address;
  std::string batch_interval;
  std::string scan_interval;
  std::string poll_interval;
  std::string rotate_wait;
  std::string dead_letter;
  size_t max_line_bytes = 0;
  size_t batch_max_records = 0;
  bool gzip = false;
  bool exit_at_eof = false;
  std::string log_level = "info";
};

logs::Millis duration_flag(const std::string& name, const std::string& text) {
  const auto d = core::parse_duration(text);
  if (!d) {
    throw logs::ConfigError("--" + name + ": bad duration '" + text + "' (want e.g. 250ms, 2s)");
  }
  return std::chrono::duration_cast<logs::Millis>(*d);
}

// Flags override the config file, so the simple case needs no file at all.
logs::Config build_config(const LogsFlags& f) {
  logs::Config c = f.config_file.empty() ? logs::Config{} : logs::load_config(f.config_file);
  if (!f.paths.empty()) {
    c.input.paths = f.paths;
  }
  if (!f.format.empty()) {
    c.parser.format = logs::parse_format(f.format);
  }
  if (!f.regex.empty()) {
    c.parser.regex = f.regex;
    if (f.format.empty()) {
      c.parser.format = logs::Format::kRegex;
    }
  }
  if (!f.time_layout.empty()) {
    c.parser.time_layout = f.time_layout;
  }
  if (!f.time_zone.empty()) {
    c.parser.time_zone = f.time_zone;
  }
  if (!f.multiline.empty()) {
    if (f.multiline != "none" && f.multiline != "indent") {
      throw logs::ConfigError("--multiline must be none or indent");
    }
    c.parser.multiline =
        f.multiline == "indent" ? logs::Multiline::kIndent : logs::Multiline::kNone;
  }
  if (f.max_line_bytes != 0) {
    c.parser.max_line_bytes = f.max_line_bytes;
  }
  if (!f.output.empty()) {
    c.output.kind = logs::parse_output(f.output);
  }
  if (!f.output_path.empty()) {
    c.output.path = f.output_path;
    if (f.output.empty() && f.config_file.empty()) {
      c.output.kind = logs::OutputKind::kFile;
    }
  }
  if (!f.url.empty()) {
    c.output.url = f.url;
    if (f.output.empty() && f.config_file.empty()) {
      c.output.kind = logs::OutputKind::kElasticsearch;
    }
  }
  if (!f.index.empty()) {
    c.output.index = f.index;
  }
  if (f.batch_max_records != 0) {
    c.output.batch_max_records = f.batch_max_records;
  }
  if (f.gzip) {
    c.output.gzip = true;
  }
  if (!f.dead_letter.empty()) {
    c.output.dead_letter_path = f.dead_letter;
  }
  if (!f.checkpoint.empty()) {
    c.checkpoint.path = f.checkpoint;
  }
  if (!f.checkpoint_interval.empty()) {
    c.checkpoint.interval = duration_flag("checkpoint-interval", f.checkpoint_interval);
  }
  if (!f.batch_interval.empty()) {
    c.output.batch_interval = duration_flag("batch-interval", f.batch_interval);
  }
  if (!f.scan_interval.empty()) {
    c.input.scan_interval = duration_flag("scan-interval", f.scan_interval);
  }
  if (!f.poll_interval.empty()) {
    c.input.poll_interval = duration_flag("poll-interval", f.poll_interval);
  }
  if (!f.rotate_wait.empty()) {
    c.input.rotate_wait = duration_flag("rotate-wait", f.rotate_wait);
  }
  if (!f.metrics_address.empty()) {
    c.metrics_address = f.metrics_address;
  }
  if (f.exit_at_eof) {
    c.exit_at_eof = true;
  }
  return c;
}

}  // namespace

Command add_logs_command(CLI::App& app) {
  auto flags = std::make_shared<LogsFlags>();
  auto* cmd =
      app.add_subcommand("logs",
                         "Tail plain-text logs, normalize them to JSON, ship them (stdout, file, "
                         "Elasticsearch/OpenSearch _bulk) without losing a line");
  cmd->add_option("-c,--config", flags->config_file, "YAML config (flags override it)");
  cmd->add_option("--path", flags->paths, "file glob to follow (repeatable)");
  cmd->add_option("--format", flags->format, "keyvalue | json | regex");
  cmd->add_option("--regex", flags->regex, "regex with named groups (implies --format regex)");
  cmd->add_option("--time-layout", flags->time_layout, "e.g. '%Y-%m-%d %H:%M:%S'");
  cmd->add_option("--time-zone", flags->time_zone, "UTC | Local | +02:00 | Europe/Berlin");
  cmd->add_option("--multiline", flags->multiline, "none | indent");
  cmd->add_option("--max-line-bytes", flags->max_line_bytes, "longer records are truncated");
  cmd->add_option("--output", flags->output, "stdout | file | elasticsearch");
  cmd->add_option("--output-path", flags->output_path, "file for --output file");
  cmd->add_option("--url", flags->url, "Elasticsearch/OpenSearch base URL");
  cmd->add_option("--index", flags->index, "index name (default logs)");
  cmd->add_flag("--gzip", flags->gzip, "gzip the _bulk requests");
  cmd->add_option("--batch-max-records", flags->batch_max_records, "records per batch (10000)");
  cmd->add_option("--dead-letter", flags->dead_letter, "file for records the sink refuses");
  cmd->add_option("--checkpoint", flags->checkpoint, "file holding acknowledged offsets");
  cmd->add_option("--checkpoint-interval", flags->checkpoint_interval, "fsync period (1s)");
  cmd->add_option("--batch-interval", flags->batch_interval, "max wait of a partial batch (1s)");
  cmd->add_option("--scan-interval", flags->scan_interval, "glob re-expansion period (1s)");
  cmd->add_option("--poll-interval", flags->poll_interval, "idle file check period (100ms)");
  cmd->add_option("--rotate-wait", flags->rotate_wait, "keep a rotated file open (5s)");
  cmd->add_option("--metrics-address", flags->metrics_address, "host:port for /metrics");
  cmd->add_flag("--exit-at-eof", flags->exit_at_eof, "ship what the files hold, then exit");
  cmd->add_option("--log-level", flags->log_level, "diagnostics: debug, info, warn, error");
  return {"logs", [flags] {
            core::init_logging(flags->log_level);
            logs::Config config;
            try {
              config = build_config(*flags);
            } catch (const std::exception& e) {
              spdlog::error("logs: {}", e.what());
              return 1;
            }
            std::signal(SIGINT, on_signal);
            std::signal(SIGTERM, on_signal);
            std::signal(SIGPIPE, SIG_IGN);
            return logs::run_adapter(config, g_stop);
          }};
}

}  // namespace pillion::cli
