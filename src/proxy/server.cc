#include "proxy/server.h"

#include "tls/identity_watcher.h"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admin/admin_server.h"
#include "core/cgroup.h"
#include "core/log.h"
#include "observe/access_log.h"
#include "observe/stats.h"
#include "observe/tracing/exporter.h"
#include "proxy/admin_api.h"
#include "proxy/config_watcher.h"
#include "proxy/lifecycle.h"
#include "proxy/reload.h"
#include "proxy/worker.h"

namespace pillion::proxy {

namespace asio = boost::asio;

namespace {

// SO_REUSEPORT would let a second pillion silently share a port with the first; bind once
// without it to fail fast with "address in use" instead.
bool probe_address_free(const core::HostPort& address, std::string& error) {
  asio::io_context context;
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.host, ec);
  if (ec) {
    error = fmt::format("{} is not an IP address", address.host);
    return false;
  }
  asio::ip::tcp::acceptor probe(context);
  asio::ip::tcp::endpoint endpoint(ip, address.port);
  probe.open(endpoint.protocol(), ec);
  if (!ec) {
    probe.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    probe.bind(endpoint, ec);
  }
  if (ec) {
    error = fmt::format("cannot listen on {}: {}", address.to_string(), ec.message());
    return false;
  }
  return true;
}

observe::tracing::ExporterConfig exporter_config(const config::TraceExport& settings,
                                                 const config::Node& node) {
  observe::tracing::ExporterConfig out;
  out.endpoint = settings.endpoint;
  out.format = settings.zipkin ? observe::tracing::ExportFormat::kZipkin
                               : observe::tracing::ExportFormat::kOtlp;
  out.service_name = !settings.service_name.empty() ? settings.service_name
                     : !node.service.empty()        ? node.service
                                                    : "pillion";
  out.batch_size = settings.batch_size;
  out.flush_interval =
      std::chrono::duration_cast<std::chrono::milliseconds>(settings.flush_interval);
  out.max_queued_spans = settings.max_queued_spans;
  return out;
}

bool is_loopback(const std::string& host) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  return !ec && ip.is_loopback();
}

// The listeners of the per-route metrics, and room for the clusters of this config and of
// later reloads (bind_stats registers them).
observe::MetricLayout metric_layout(const Runtime& runtime) {
  observe::MetricLayout layout;
  layout.config_version = runtime.config->version;
  layout.cluster_capacity =
      std::max(observe::Stats::kDefaultClusterCapacity, 2 * runtime.clusters.size());
  for (const auto& listener : runtime.listeners) {
    auto& out = layout.listeners.emplace_back();
    out.name = listener.config->name;
    out.direction = listener.config->mode == config::ListenerMode::kTransparentInbound
                        ? observe::Direction::kInbound
                        : observe::Direction::kOutbound;
  }
  return layout;
}

}  // namespace

int run_server(RuntimePtr runtime, const ServerOptions& options) {
  const auto& config = *runtime->config;
  int worker_count = options.workers > 0  ? options.workers
                     : config.workers > 0 ? config.workers
                                          : core::default_worker_count();
  ::signal(SIGPIPE, SIG_IGN);

  for (const auto& listener : config.listeners) {
    std::string error;
    if (!probe_address_free(listener.address, error)) {
      spdlog::error("listener {}: {}", listener.name, error);
      return 1;
    }
  }

  observe::Stats stats(worker_count, metric_layout(*runtime));
  // Nothing else holds the runtime yet: give its clusters their stats slots.
  bind_stats(const_cast<Runtime&>(*runtime), stats);
  std::unique_ptr<observe::AccessLogWriter> access_log;
  if (config.access_log.enabled) {
    access_log = std::make_unique<observe::AccessLogWriter>(config.access_log.path,
                                                            stats.access_log_dropped);
    std::string error;
    if (!access_log->start(error)) {
      spdlog::error("{}", error);
      return 1;
    }
  }

  std::unique_ptr<observe::tracing::SpanExporter> span_exporter;
  if (config.tracing.exporter) {
    span_exporter = std::make_unique<observe::tracing::SpanExporter>(
        exporter_config(*config.tracing.exporter, config.node));
    std::string error;
    if (!span_exporter->start(error)) {
      spdlog::error("tracing: {}", error);
      return 1;
    }
    stats.span_counts = [exporter = span_exporter.get()] {
      return std::pair{exporter->spans_exported(), exporter->spans_dropped()};
    };
  }

  asio::io_context main_context(1);
  // The workload identity for mutual TLS: loaded before anything listens (a proxy without a
  // valid certificate must not start), then watched for rotations on the main thread.
  std::unique_ptr<tls::IdentityWatcher> identity;
  if (config.tls) {
    tls::IdentityWatcherOptions watch_options;
    watch_options.poll_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.tls->poll_interval);
    identity = std::make_unique<tls::IdentityWatcher>(
        main_context, tls::IdentityFiles{config.tls->cert, config.tls->key, config.tls->ca},
        watch_options);
    std::string error;
    if (!identity->load(error)) {
      spdlog::error("tls: {}", error);
      return 1;
    }
    identity->start();
    auto current = identity->current();
    spdlog::info("tls: workload identity {} (serial {}, expires {})", current->spiffe_id(),
                 current->serial(), tls::format_time(current->not_after()));
  }

  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<uint16_t> ports;  // per listener: port 0 becomes the port the first worker got
  for (const auto& listener : runtime->listeners) {
    ports.push_back(listener.config->address.port);
  }
  for (int i = 0; i < worker_count; ++i) {
    workers.push_back(std::make_unique<Worker>(i, runtime, stats.worker(i), access_log.get(),
                                               span_exporter.get()));
    workers.back()->set_identity(identity.get());
    for (size_t l = 0; l < runtime->listeners.size(); ++l) {
      std::string error;
      ports[l] = workers.back()->bind(runtime->listeners[l], ports[l], error);
      if (ports[l] == 0) {
        spdlog::error("{}", error);
        return 1;
      }
    }
  }

  asio::signal_set signals(main_context, SIGINT, SIGTERM, SIGHUP);
  std::function<void()> on_stopped;
  Lifecycle lifecycle(main_context, workers, config.timeouts.drain, [&] { on_stopped(); });
  AdminContext admin_context{stats, runtime, lifecycle, worker_count};
  admin_context.identity = identity.get();
  admin::AdminServer admin(main_context, [&](auto method, auto path, auto query) {
    return handle_admin(method, path, query, admin_context);
  });
  if (!config.admin_allow_non_loopback && !is_loopback(config.admin.host)) {
    spdlog::error(
        "admin: {} is not a loopback address; the admin API can drain and stop the proxy, so "
        "set admin.allow_non_loopback: true (or --admin-allow-non-loopback) to expose it",
        config.admin.to_string());
    return 1;
  }
  if (config.admin.port != 0 || !config.admin.host.empty()) {
    std::string error;
    if (!admin.start(config.admin, error)) {
      spdlog::error("{}", error);
      return 1;
    }
  }

  // Metrics and readiness get servers of their own on the main thread, so a scrape or a kubelet
  // probe never depends on the data path or the loopback-only admin port.
  admin::AdminServer metrics(main_context, [&](auto, auto path, auto) -> admin::AdminResponse {
    if (path == "/stats/prometheus" || path == "/metrics") {
      return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(admin_context)};
    }
    return {404, "text/plain; charset=utf-8", "metrics are at /stats/prometheus\n"};
  });
  admin::AdminServer readiness(main_context, [&](auto, auto path, auto) {
    return handle_readiness(path, lifecycle, config);
  });
  for (auto [server, address, what] : {std::tuple{&metrics, &config.metrics, "metrics"},
                                       std::tuple{&readiness, &config.readiness, "readiness"}}) {
    std::string error;
    if (*address && !server->start(**address, error)) {
      spdlog::error("{}: {}", what, error);
      return 1;
    }
    if (*address) {
      spdlog::info("{} on {}:{}", what, (*address)->host, server->port());
    }
  }

  runtime->cluster_manager->start();  // health checks and DNS refreshes
  for (auto& worker : workers) {
    worker->start();
  }

  // Reload: SIGHUP, or a change of the file. Only the main thread builds and publishes runtimes.
  std::unique_ptr<Reloader> reloader;
  std::unique_ptr<ConfigWatcher> watcher;
  if (!options.config_path.empty()) {
    Reloader::Hooks hooks;
    hooks.build = [&, clusters = runtime->cluster_manager](config::SnapshotPtr snapshot,
                                                           std::string& error) {
      return build_runtime(std::move(snapshot), clusters, static_cast<size_t>(worker_count), error);
    };
    hooks.publish = [&](const RuntimePtr& next) {
      for (auto& worker : workers) {
        worker->update_runtime(next);
      }
      admin_context.runtime = next;
    };
    hooks.overrides = options.config_overrides;
    reloader = std::make_unique<Reloader>(options.config_path, runtime, stats, std::move(hooks));
    if (options.watch_config) {
      ConfigWatcherOptions watch_options;
      watch_options.poll_interval = options.config_poll_interval;
      watcher = std::make_unique<ConfigWatcher>(
          main_context, options.config_path, [&](std::string content) { reloader->apply(content); },
          watch_options);
      if (watcher->start()) {
        spdlog::info("watching {} for changes", options.config_path);
      }
    }
  }
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    auto address = config.listeners[l].address;
    address.port = ports[l];
    spdlog::info("listener {} on {} ({} workers)", config.listeners[l].name, address.to_string(),
                 worker_count);
  }
  spdlog::info("admin on {}:{}", config.admin.host, admin.port());
  if (options.on_ready) {
    options.on_ready();
  }

  bool stopped = false;
  on_stopped = [&] {
    stopped = true;
    admin.stop();
    metrics.stop();
    readiness.stop();
    if (watcher) {
      watcher->stop();
    }
    if (identity) {
      identity->stop();  // its poll and expiry timers would keep the main loop alive
    }
    signals.cancel();
  };
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int number) {
        if (ec) {
          return;
        }
        if (number == SIGHUP) {
          spdlog::info("SIGHUP: reopening the access log{}",
                       reloader ? ", reloading the config" : "");
          if (access_log) {
            access_log->reopen();
          }
          if (reloader) {
            std::string content;
            reloader->reload_file(content);
            if (watcher && !content.empty()) {
              watcher->note_content(content);  // no second reload of the same content
            }
          }
        } else {
          lifecycle.drain(number == SIGTERM ? "SIGTERM" : "SIGINT");
        }
        if (!stopped) {
          signals.async_wait(on_signal);
        }
      };
  signals.async_wait(on_signal);

  main_context.run();
  for (auto& worker : workers) {
    worker->join();
  }
  workers.clear();
  watcher.reset();
  reloader.reset();
  runtime->cluster_manager->stop();
  if (access_log) {
    access_log->stop();
  }
  if (span_exporter) {
    span_exporter->stop();  // the workers have handed over their last spans
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace pillion::proxy
