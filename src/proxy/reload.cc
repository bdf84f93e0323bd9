#include "proxy/reload.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include "config/load.h"

namespace pillion::proxy {

namespace {

std::string_view mode_name(config::ListenerMode mode) {
  switch (mode) {
    case config::ListenerMode::kHttp:
      return "http";
    case config::ListenerMode::kTransparentOutbound:
      return "transparent_outbound";
    case config::ListenerMode::kTransparentInbound:
      return "transparent_inbound";
  }
  return "unknown";
}

bool same_app_probes(const config::Snapshot& a, const config::Snapshot& b) {
  if (a.app_probes.size() != b.app_probes.size()) {
    return false;
  }
  for (const auto& [name, probe] : a.app_probes) {
    auto other = b.app_probes.find(name);
    if (other == b.app_probes.end() || other->second.address != probe.address ||
        other->second.path != probe.path || other->second.timeout != probe.timeout) {
      return false;
    }
  }
  return true;
}

bool same_exporter(const std::optional<config::TraceExport>& a,
                   const std::optional<config::TraceExport>& b) {
  if (!a || !b) {
    return !a && !b;
  }
  return a->endpoint == b->endpoint && a->zipkin == b->zipkin &&
         a->service_name == b->service_name && a->batch_size == b->batch_size &&
         a->flush_interval == b->flush_interval && a->max_queued_spans == b->max_queued_spans;
}

}  // namespace

void bind_stats(Runtime& runtime, observe::Stats& stats) {
  for (auto& cluster : runtime.clusters) {
    cluster.stats_slot = stats.cluster_slot(cluster.config->name);
  }
  size_t other = stats.layout().capacity();  // the "other" column
  for (size_t l = 0; l < runtime.listeners.size(); ++l) {
    std::vector<bool> reachable(other + 1, false);
    auto mark = [&](size_t cluster) {
      size_t slot = runtime.clusters[cluster].stats_slot;
      reachable[slot == observe::kOtherCluster ? other : slot] = true;
    };
    const auto& listener = runtime.listeners[l];
    for (const auto& route : listener.routes) {
      mark(route.cluster);
      for (const auto& [cumulative, cluster] : route.weighted) {
        mark(cluster);
      }
    }
    if (listener.fallback) {
      mark(listener.fallback->cluster);
    }
    stats.set_reachable(l, std::move(reachable));
  }
  stats.set_config_version(runtime.config->version);
}

std::string listener_changes(const config::Snapshot& running, const config::Snapshot& next) {
  std::vector<std::string> changes;
  size_t common = std::min(running.listeners.size(), next.listeners.size());
  for (size_t i = 0; i < common; ++i) {
    const auto& a = running.listeners[i];
    const auto& b = next.listeners[i];
    if (a.name != b.name) {
      changes.push_back(fmt::format("listener {} renamed '{}' -> '{}'", i, a.name, b.name));
      continue;
    }
    if (a.address != b.address) {
      changes.push_back(fmt::format("listener '{}' address {} -> {}", a.name, a.address.to_string(),
                                    b.address.to_string()));
    }
    if (a.mode != b.mode) {
      changes.push_back(
          fmt::format("listener '{}' mode {} -> {}", a.name, mode_name(a.mode), mode_name(b.mode)));
    }
    if (a.routes != b.routes) {
      changes.push_back(
          fmt::format("listener '{}' routes '{}' -> '{}'", a.name, a.routes, b.routes));
    }
  }
  for (size_t i = common; i < running.listeners.size(); ++i) {
    changes.push_back(fmt::format("listener '{}' removed", running.listeners[i].name));
  }
  for (size_t i = common; i < next.listeners.size(); ++i) {
    changes.push_back(fmt::format("listener '{}' added", next.listeners[i].name));
  }
  if (changes.empty()) {
    return {};
  }
  return fmt::format("listener changes need a restart: {}", fmt::join(changes, "; "));
}

std::vector<std::string> keep_startup_settings(const config::Snapshot& running,
                                               config::Snapshot& next) {
  std::vector<std::string> kept;
  auto keep = [&](auto& field, const auto& value, bool same, std::string_view name) {
    if (!same) {
      kept.push_back(fmt::format("{} changed; it takes effect after a restart", name));
      field = value;
    }
  };
  keep(next.workers, running.workers, next.workers == running.workers, "workers");
  keep(next.node.id, running.node.id, next.node.id == running.node.id, "node.id");
  keep(next.node.service, running.node.service, next.node.service == running.node.service,
       "node.service");
  keep(next.admin, running.admin, next.admin == running.admin, "admin.address");
  keep(next.admin_allow_non_loopback, running.admin_allow_non_loopback,
       next.admin_allow_non_loopback == running.admin_allow_non_loopback,
       "admin.allow_non_loopback");
  keep(next.metrics, running.metrics, next.metrics == running.metrics, "metrics");
  keep(next.readiness, running.readiness, next.readiness == running.readiness, "readiness");
  keep(next.app_probes, running.app_probes, same_app_probes(next, running), "readiness.app_probes");
  const auto& a = running.access_log;
  auto& b = next.access_log;
  keep(b, a, a.enabled == b.enabled && a.path == b.path && a.format == b.format, "access_log");
  keep(next.tracing.exporter, running.tracing.exporter,
       same_exporter(next.tracing.exporter, running.tracing.exporter), "tracing.export");
  keep(next.timeouts.drain, running.timeouts.drain, next.timeouts.drain == running.timeouts.drain,
       "timeouts.drain");
  // The identity files are watched from startup on; rotating them needs no reload.
  auto same_tls = [](const std::optional<config::TlsIdentity>& x,
                     const std::optional<config::TlsIdentity>& y) {
    return x.has_value() == y.has_value() &&
           (!x || (x->cert == y->cert && x->key == y->key && x->ca == y->ca &&
                   x->poll_interval == y->poll_interval));
  };
  keep(next.tls, running.tls, same_tls(next.tls, running.tls), "tls");
  return kept;
}

Reloader::Reloader(std::string path, RuntimePtr running, observe::Stats& stats, Hooks hooks)
    : path_(std::move(path)),
      running_(std::move(running)),
      stats_(stats),
      hooks_(std::move(hooks)) {}

bool Reloader::reject(const std::string& error) {
  spdlog::error("config reload rejected: {}", error);
  stats_.config_reloads_failed.add();
  return false;
}

bool Reloader::apply(std::string_view text) {
  auto loaded = config::load_yaml(text, path_);
  if (!loaded) {
    return reject(loaded.error);
  }
  auto next = std::make_shared<config::Snapshot>(*loaded.snapshot);
  std::string error;
  if (hooks_.overrides && !hooks_.overrides(*next, error)) {
    return reject(error);
  }
  const auto& running = *running_->config;
  if (auto changes = listener_changes(running, *next); !changes.empty()) {
    return reject(fmt::format("{}: {}", path_, changes));
  }
  for (const auto& kept : keep_startup_settings(running, *next)) {
    spdlog::warn("config reload: {}: {}", path_, kept);
  }
  next->version = running.version + 1;
  auto runtime = hooks_.build(next, error);
  if (!runtime) {
    return reject(fmt::format("{}: {}", path_, error));
  }
  // The runtime was built just now and nobody else holds it yet.
  bind_stats(const_cast<Runtime&>(*runtime), stats_);
  running_ = runtime;
  if (hooks_.publish) {
    hooks_.publish(running_);
  }
  stats_.config_reloads_ok.add();
  spdlog::info("config reloaded (version {})", next->version);
  return true;
}

bool Reloader::reload_file(std::string& content) {
  content.clear();
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return reject(fmt::format("{}: cannot read: {}", path_, std::strerror(errno)));
  }
  std::array<char, 64 * 1024> buffer;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int code = errno;
      ::close(fd);
      content.clear();
      return reject(fmt::format("{}: cannot read: {}", path_, std::strerror(code)));
    }
    if (n == 0) {
      break;
    }
    content.append(buffer.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return apply(content);
}

}  // namespace pillion::proxy
