// `pillion proxy`: flags -> config snapshot -> run the data plane.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "config/load.h"
#include "core/cgroup.h"
#include "core/duration.h"
#include "core/log.h"
#include "proxy/server.h"
#include "upstream/cluster_manager.h"

namespace pillion::cli {
namespace {

struct ProxyFlags {
  std::string config_path;
  std::string listen = "127.0.0.1:7000";
  bool listen_given = false;
  std::string upstream;
  bool check = false;
  int workers = 0;
  std::string access_log;
  std::string access_log_format;
  std::string admin;
  std::string metrics;
  std::string readiness;
  std::string drain_time;
  bool admin_allow_non_loopback = false;
  std::string log_level = "info";
  bool watch_config = true;                 // with --config: reload when the file changes
  std::string config_poll_interval = "2s";  // the watch's polling (inotify aside); 0: none
};

// IPv6 can be compiled out or disabled (ipv6.disable=1, or a pod without it): then only IPv4
// capture listeners are opened.
bool host_has_ipv6() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_any;
  bool usable = ::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) == 0;
  ::close(fd);
  return usable;
}

// Command-line overrides win over the file, so one file can serve several instances.
bool apply_overrides(const ProxyFlags& flags, config::Snapshot& snapshot, std::string& error) {
  if (!flags.access_log.empty()) {
    snapshot.access_log.enabled = flags.access_log != "off";
    if (snapshot.access_log.enabled) {
      snapshot.access_log.path = flags.access_log;
    }
  }
  if (flags.access_log_format == "json") {
    snapshot.access_log.format = config::AccessLogFormat::kJson;
  } else if (flags.access_log_format == "text") {
    snapshot.access_log.format = config::AccessLogFormat::kText;
  } else if (!flags.access_log_format.empty()) {
    error = fmt::format("--access-log-format: '{}' is not text or json", flags.access_log_format);
    return false;
  }
  if (!flags.admin.empty()) {
    auto admin = core::parse_host_port(flags.admin);
    if (!admin) {
      error = fmt::format("--admin: bad address '{}' (want host:port)", flags.admin);
      return false;
    }
    snapshot.admin = *admin;
  }
  for (auto [text, target, flag] : {std::tuple{&flags.metrics, &snapshot.metrics, "--metrics"},
                                    std::tuple{&flags.readiness, &snapshot.readiness, "--ready"}}) {
    if (text->empty()) {
      continue;
    }
    if (*text == "off") {
      target->reset();
      continue;
    }
    auto address = core::parse_host_port(*text);
    if (!address) {
      error = fmt::format("{}: bad address '{}' (want host:port, or off)", flag, *text);
      return false;
    }
    *target = *address;
  }
  if (flags.admin_allow_non_loopback) {
    snapshot.admin_allow_non_loopback = true;
  }
  if (!flags.drain_time.empty()) {
    auto drain = core::parse_duration(flags.drain_time);
    if (!drain) {
      error =
          fmt::format("--drain-time: bad duration '{}' (want e.g. 5s, 500ms)", flags.drain_time);
      return false;
    }
    snapshot.timeouts.drain = *drain;
  }
  if (flags.workers > 0) {
    snapshot.workers = flags.workers;
  }
  return true;
}

int run_proxy(const ProxyFlags& flags) {
  core::init_logging(flags.log_level);
  config::LoadResult loaded;
  if (!flags.config_path.empty()) {
    loaded = config::load_file(flags.config_path);
  } else if (!flags.upstream.empty()) {
    loaded = config::from_flags(flags.listen, flags.upstream);
  } else if (flags.listen_given) {
    std::fprintf(stderr,
                 "pillion proxy: --listen needs an upstream (--upstream http://HOST:PORT or "
                 "UPSTREAM_URL)\n");
    return 2;
  } else {
    // Nothing given: the transparent sidecar, as a pod's container runs it (`pillion init`
    // redirects the pod's traffic to its ports).
    loaded.snapshot =
        std::make_shared<const config::Snapshot>(config::transparent_sidecar(host_has_ipv6()));
  }
  if (!loaded) {
    std::fprintf(stderr, "pillion proxy: %s\n", loaded.error.c_str());
    return 1;
  }
  auto snapshot = std::make_shared<config::Snapshot>(*loaded.snapshot);
  std::string error;
  if (!apply_overrides(flags, *snapshot, error)) {
    std::fprintf(stderr, "pillion proxy: %s\n", error.c_str());
    return 2;
  }
  std::optional<core::Duration> poll_interval;
  if (!flags.config_path.empty()) {
    poll_interval = flags.config_poll_interval == "0"
                        ? core::Duration::zero()
                        : core::parse_duration(flags.config_poll_interval);
    if (!poll_interval) {
      std::fprintf(stderr, "pillion proxy: --config-poll-interval: bad duration '%s'\n",
                   flags.config_poll_interval.c_str());
      return 2;
    }
  }
  // The worker count is settled here: endpoints keep one active-request slot per worker.
  int workers = flags.workers > 0       ? flags.workers
                : snapshot->workers > 0 ? snapshot->workers
                                        : core::default_worker_count();
  auto cluster_manager = std::make_shared<upstream::ClusterManager>(static_cast<size_t>(workers));
  auto runtime =
      proxy::build_runtime(snapshot, cluster_manager, static_cast<size_t>(workers), error);
  if (!runtime) {
    std::fprintf(stderr, "pillion proxy: %s\n", error.c_str());
    return 1;
  }
  if (flags.check) {
    std::printf("%s: ok (%zu listeners, %zu clusters)\n",
                flags.config_path.empty() ? "flags" : flags.config_path.c_str(),
                snapshot->listeners.size(), snapshot->clusters.size());
    return 0;
  }
  proxy::ServerOptions options;
  options.workers = workers;
  if (!flags.config_path.empty()) {
    options.config_path = flags.config_path;
    options.watch_config = flags.watch_config;
    options.config_poll_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(*poll_interval);
    options.config_overrides = [flags](config::Snapshot& snapshot, std::string& error) {
      return apply_overrides(flags, snapshot, error);
    };
  }
  return proxy::run_server(runtime, options);
}

}  // namespace

Command add_proxy_command(CLI::App& app) {
  auto flags = std::make_shared<ProxyFlags>();
  auto* sub = app.add_subcommand(
      "proxy",
      "Run the sidecar data plane. With no config file and no upstream it runs the transparent "
      "sidecar: outbound capture on 0.0.0.0:15001, inbound capture on 0.0.0.0:15006, metrics on "
      "0.0.0.0:15090, readiness on 0.0.0.0:15021, admin on 127.0.0.1:9901 (see pillion init)");
  sub->add_option("-c,--config", flags->config_path,
                  "YAML config file (docs/config.md); reloaded on SIGHUP and when it changes")
      ->check(CLI::ExistingFile);
  sub->add_flag("--watch-config,!--no-watch-config", flags->watch_config,
                "With --config: reload when the file's content changes, not only on SIGHUP "
                "(default on)");
  sub->add_option("--config-poll-interval", flags->config_poll_interval,
                  "With --watch-config: also re-read the file this often, for filesystems "
                  "without inotify; 0 disables")
      ->capture_default_str();
  auto* listen = sub->add_option("--listen", flags->listen, "Listen address without a config file")
                     ->capture_default_str();
  sub->add_option("--upstream", flags->upstream,
                  "Upstream URL without a config file, e.g. http://127.0.0.1:8080")
      ->envname("UPSTREAM_URL");
  sub->add_flag("--check", flags->check, "Only validate the configuration and exit");
  sub->add_option("--workers", flags->workers,
                  "Worker threads (default: the container's CPU quota)")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--access-log", flags->access_log, "Access log path, or 'off'");
  sub->add_option("--access-log-format", flags->access_log_format, "text or json");
  sub->add_option("--admin", flags->admin, "Admin API address (default 127.0.0.1:9901)");
  sub->add_flag("--admin-allow-non-loopback", flags->admin_allow_non_loopback,
                "Allow --admin on a non-loopback address (it can drain and stop the proxy)");
  sub->add_option("--drain-time", flags->drain_time,
                  "On SIGTERM: keep serving (Connection: close) this long, then give requests in "
                  "flight as long again (timeouts.drain, default 5s)");
  sub->add_option("--metrics", flags->metrics,
                  "Prometheus server address, or 'off' (zero-config default 0.0.0.0:15090)");
  sub->add_option("--ready", flags->readiness,
                  "Readiness server address for /healthz/ready, or 'off' (zero-config default "
                  "0.0.0.0:15021)");
  sub->add_option("--log-level", flags->log_level, "Diagnostic log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  return {"proxy", [flags, listen] {
            flags->listen_given = listen->count() > 0;
            return run_proxy(*flags);
          }};
}

}  // namespace pillion::cli
