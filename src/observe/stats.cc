#include "observe/stats.h"

#include <fmt/format.h>

#include <functional>

#include "observe/exposition.h"
#include "observe/process_metrics.h"

namespace pillion::observe {
namespace {

uint64_t sum(const std::vector<std::unique_ptr<WorkerStats>>& shards,
             const std::function<const Counter&(const WorkerStats&)>& pick) {
  uint64_t total = 0;
  for (const auto& shard : shards) {
    total += pick(*shard).get();
  }
  return total;
}

// One (listener, cluster) slot summed over the shards.
struct MergedRoute {
  std::array<uint64_t, 5> by_class{};
  HistogramSnapshot duration;
  HistogramSnapshot upstream;

  bool seen() const { return duration.count() > 0 || upstream.count() > 0; }
};

std::vector<MergedRoute> merge_routes(const std::vector<std::unique_ptr<WorkerStats>>& shards,
                                      size_t slots) {
  std::vector<MergedRoute> out(slots);
  for (const auto& shard : shards) {
    const auto& routes = shard->routes();
    for (size_t i = 0; i < slots && i < routes.size(); ++i) {
      for (size_t c = 0; c < 5; ++c) {
        out[i].by_class[c] += routes[i].by_class[c].get();
      }
      routes[i].duration.add_to(out[i].duration);
      routes[i].upstream.add_to(out[i].upstream);
    }
  }
  return out;
}

}  // namespace

const char* direction_label(Direction direction) {
  return direction == Direction::kInbound ? "inbound" : "outbound";
}

Stats::Stats(int workers, MetricLayout layout)
    : layout_(std::move(layout)), start_time_seconds_(process_start_time_seconds()) {
  layout_.cluster_capacity = layout_.capacity();  // fixed from now on: the shards' row width
  for (int i = 0; i < workers; ++i) {
    shards_.push_back(std::make_unique<WorkerStats>(layout_));
    shards_.back()->peer_ids = &peer_ids_;
  }
}

size_t Stats::cluster_slot(const std::string& name) {
  for (size_t i = 0; i < layout_.clusters.size(); ++i) {
    if (layout_.clusters[i] == name) {
      return i;
    }
  }
  if (layout_.clusters.size() >= layout_.cluster_capacity) {
    return kOtherCluster;
  }
  layout_.clusters.push_back(name);
  return layout_.clusters.size() - 1;
}

void Stats::set_reachable(size_t listener, std::vector<bool> reachable) {
  if (listener < layout_.listeners.size()) {
    layout_.listeners[listener].reachable = std::move(reachable);
  }
}

StatsSnapshot Stats::snapshot() const {
  StatsSnapshot out;
  auto add = [&](std::string name, const std::function<const Counter&(const WorkerStats&)>& pick) {
    out.counters.emplace_back(std::move(name), sum(shards_, pick));
  };
  add("downstream_cx_total",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_cx_total; });
  add("downstream_cx_active",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_cx_active; });
  add("downstream_rq_total",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_rq_total; });
  add("downstream_rq_active",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_rq_active; });
  std::array<uint64_t, 5> by_class{};
  for (const auto& route : merge_routes(shards_, layout_.slots())) {
    for (size_t c = 0; c < 5; ++c) {
      by_class[c] += route.by_class[c];
    }
  }
  for (size_t c = 0; c < 5; ++c) {
    out.counters.emplace_back(fmt::format("downstream_rq_{}xx", c + 1), by_class[c]);
  }
  add("downstream_bytes_received",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_bytes_received; });
  add("downstream_bytes_sent",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_bytes_sent; });
  add("upstream_cx_total",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_cx_total; });
  add("upstream_cx_connect_fail",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_cx_connect_fail; });
  add("upstream_cx_active",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_cx_active; });
  add("upstream_rq_total",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_rq_total; });
  add("upstream_rq_pool_reused",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_rq_pool_reused; });
  add("upstream_rq_stale_retry",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_rq_stale_retry; });
  add("upstream_rq_retry",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_rq_retry; });
  add("upstream_rq_retry_overflow",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_rq_retry_overflow; });
  add("upstream_rq_overflow",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_rq_overflow; });
  add("downstream_tls_handshakes",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_tls_handshakes; });
  add("downstream_tls_handshake_failures",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_tls_handshake_failures; });
  add("downstream_tls_plaintext_refused",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_tls_plaintext_refused; });
  add("downstream_rq_denied",
      [](const WorkerStats& s) -> const Counter& { return s.downstream_rq_denied; });
  add("upstream_tls_handshakes",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_tls_handshakes; });
  add("upstream_tls_handshake_failures",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_tls_handshake_failures; });
  add("upstream_tls_resumed",
      [](const WorkerStats& s) -> const Counter& { return s.upstream_tls_resumed; });
  add("upgrades_total", [](const WorkerStats& s) -> const Counter& { return s.upgrades_total; });
  add("tcp_passthrough_total",
      [](const WorkerStats& s) -> const Counter& { return s.tcp_passthrough_total; });
  add("capture_refused_total",
      [](const WorkerStats& s) -> const Counter& { return s.capture_refused_total; });
  for (size_t f = 0; f < static_cast<size_t>(Flag::kCount); ++f) {
    add(fmt::format("response_flag_{}", flag_code(static_cast<Flag>(f))),
        [f](const WorkerStats& s) -> const Counter& { return s.flags[f]; });
  }
  out.counters.emplace_back("access_log_dropped", access_log_dropped.get());
  out.counters.emplace_back("config_reloads_ok", config_reloads_ok.get());
  out.counters.emplace_back("config_reloads_failed", config_reloads_failed.get());
  out.counters.emplace_back("config_version", layout_.config_version);
  auto [exported, dropped] = span_counts ? span_counts() : std::pair<uint64_t, uint64_t>{0, 0};
  out.counters.emplace_back("tracing_spans_exported", exported);
  out.counters.emplace_back("tracing_spans_dropped", dropped);
  return out;
}

std::string Stats::render_text() const {
  std::string out;
  for (const auto& [name, value] : snapshot().counters) {
    fmt::format_to(std::back_inserter(out), "{}: {}\n", name, value);
  }
  return out;
}

std::string Stats::render_prometheus() const {
  auto snap = snapshot();
  auto value_of = [&](std::string_view name) -> uint64_t {
    for (const auto& [n, v] : snap.counters) {
      if (n == name) {
        return v;
      }
    }
    return 0;
  };
  Exposition out;
  auto simple = [&](std::string_view prom, std::string_view type, std::string_view help,
                    std::string_view stat) {
    out.family(prom, type, help);
    out.sample(prom, value_of(stat));
  };
  auto gauge = [&](std::string_view prom, std::string_view help, auto value) {
    out.family(prom, "gauge", help);
    out.sample(prom, {}, value);
  };
  simple("pillion_downstream_connections_total", "counter", "Downstream connections accepted.",
         "downstream_cx_total");
  simple("pillion_downstream_connections_active", "gauge", "Downstream connections open.",
         "downstream_cx_active");
  render_routes(out);
  // Only once a client came over mutual TLS: a family without samples says nothing.
  auto peers = peer_ids_.ids();
  if (!peers.empty()) {
    out.family("pillion_inbound_requests_by_peer_total", "counter",
               "Requests that arrived over mutual TLS, by the client's SPIFFE ID (the first 64 "
               "IDs; later ones as \"other\").");
  }
  for (size_t slot = 0; slot <= PeerIds::kMax; ++slot) {
    if (slot < PeerIds::kMax && slot >= peers.size()) {
      continue;
    }
    uint64_t total = 0;
    for (const auto& shard : shards_) {
      total += shard->peer_requests[slot].get();
    }
    if (slot == PeerIds::kOther && total == 0) {
      continue;
    }
    std::string_view peer = slot == PeerIds::kOther ? std::string_view("other") : peers[slot];
    std::array labels{Label{"peer", peer}};
    out.sample("pillion_inbound_requests_by_peer_total", labels, total);
  }
  simple("pillion_requests_active", "gauge", "Downstream requests in flight.",
         "downstream_rq_active");
  out.family("pillion_response_flags_total", "counter",
             "Requests by response flag (DESIGN.md failure semantics).");
  for (size_t f = 0; f < static_cast<size_t>(Flag::kCount); ++f) {
    auto code = flag_code(static_cast<Flag>(f));
    std::array<Label, 1> labels{{{"flag", code}}};
    out.sample("pillion_response_flags_total", labels,
               value_of(fmt::format("response_flag_{}", code)));
  }
  simple("pillion_downstream_received_bytes_total", "counter", "Bytes read from clients.",
         "downstream_bytes_received");
  simple("pillion_downstream_sent_bytes_total", "counter", "Bytes written to clients.",
         "downstream_bytes_sent");
  simple("pillion_upstream_connections_total", "counter", "Upstream connections opened.",
         "upstream_cx_total");
  simple("pillion_upstream_connect_failures_total", "counter", "Upstream connects that failed.",
         "upstream_cx_connect_fail");
  simple("pillion_upstream_connections_active", "gauge",
         "Upstream connections open (busy or pooled).", "upstream_cx_active");
  simple("pillion_upstream_requests_total", "counter", "Requests sent upstream.",
         "upstream_rq_total");
  simple("pillion_upstream_pool_reused_total", "counter",
         "Upstream requests sent on a pooled connection.", "upstream_rq_pool_reused");
  simple("pillion_upstream_stale_retries_total", "counter",
         "Requests retried on a fresh connection after a pooled one was stale.",
         "upstream_rq_stale_retry");
  simple("pillion_upstream_retries_total", "counter", "Tries repeated by a route's retry policy.",
         "upstream_rq_retry");
  simple("pillion_upstream_retry_overflow_total", "counter",
         "Retries refused by a cluster's retry budget or max_retries (flag URX).",
         "upstream_rq_retry_overflow");
  simple("pillion_upstream_overflow_total", "counter",
         "Requests refused at once by a circuit breaker (503, flag UO).", "upstream_rq_overflow");
  simple("pillion_downstream_tls_handshakes_total", "counter",
         "Mutual TLS handshakes completed with clients.", "downstream_tls_handshakes");
  simple("pillion_downstream_tls_handshake_failures_total", "counter",
         "Client TLS handshakes that failed (no, expired or untrusted certificate, ...).",
         "downstream_tls_handshake_failures");
  simple("pillion_downstream_tls_plaintext_refused_total", "counter",
         "Plaintext connections refused on a STRICT mutual-TLS port.",
         "downstream_tls_plaintext_refused");
  simple("pillion_downstream_denied_total", "counter",
         "Requests and connections refused by authorization (403, flag AD).",
         "downstream_rq_denied");
  simple("pillion_upstream_tls_handshakes_total", "counter",
         "Mutual TLS handshakes completed with upstreams.", "upstream_tls_handshakes");
  simple("pillion_upstream_tls_handshake_failures_total", "counter",
         "Upstream TLS handshakes that failed, or whose peer identity was not expected.",
         "upstream_tls_handshake_failures");
  simple("pillion_upstream_tls_resumed_total", "counter",
         "Upstream TLS handshakes that resumed an earlier session.", "upstream_tls_resumed");
  simple("pillion_upgrades_total", "counter",
         "Connections tunnelled after 101 Switching Protocols.", "upgrades_total");
  simple("pillion_tcp_passthrough_total", "counter",
         "Captured connections passed through as opaque TCP.", "tcp_passthrough_total");
  simple("pillion_capture_refused_total", "counter",
         "Captured connections refused: not redirected, or addressed to the proxy itself.",
         "capture_refused_total");
  simple("pillion_access_log_dropped_total", "counter",
         "Access-log batches dropped because the writer fell behind.", "access_log_dropped");
  simple("pillion_tracing_spans_exported_total", "counter", "Spans the collector accepted.",
         "tracing_spans_exported");
  simple("pillion_tracing_spans_dropped_total", "counter",
         "Spans dropped: the export queue was full, or the collector failed or refused them.",
         "tracing_spans_dropped");

  auto process = read_process_metrics();
  gauge("pillion_process_resident_memory_bytes", "Resident set size (/proc/self/statm).",
        process.resident_bytes);
  gauge("pillion_process_heap_allocated_bytes",
        "Bytes allocated with malloc and not yet freed (mallinfo2).", process.heap_allocated_bytes);
  gauge("pillion_process_open_fds", "Open file descriptors.", process.open_fds);
  gauge("pillion_process_start_time_seconds", "Start time of the process since the Unix epoch.",
        start_time_seconds_);
  gauge("pillion_config_version",
        "Version of the configuration snapshot in use: 1 at start, +1 per applied reload.",
        layout_.config_version);
  out.family("pillion_config_reloads_total", "counter",
             "Config reloads (SIGHUP or a change of the file), by result.");
  for (auto [result, counter] :
       {std::pair{"ok", &config_reloads_ok}, std::pair{"failed", &config_reloads_failed}}) {
    std::array<Label, 1> labels{{{"result", result}}};
    out.sample("pillion_config_reloads_total", labels, counter->get());
  }
  gauge("pillion_workers", "Worker threads (event loops) serving the listeners.",
        static_cast<uint64_t>(shards_.size()));
  return out.take();
}

// The per-route families. A listener exports the clusters it can route to (even at zero) and
// cluster="none" (requests that matched no route or failed before routing).
void Stats::render_routes(Exposition& out) const {
  auto merged = merge_routes(shards_, layout_.slots());
  struct Series {
    std::array<Label, 3> labels;
    const MergedRoute* route;
    bool none;
  };
  std::vector<Series> series;
  // Columns: the registered clusters, then "other" (clusters beyond the reserve), then "none".
  std::vector<std::pair<size_t, std::string_view>> columns;
  for (size_t c = 0; c < layout_.clusters.size(); ++c) {
    columns.emplace_back(c, layout_.clusters[c]);
  }
  columns.emplace_back(kOtherCluster, "other");
  columns.emplace_back(kNoCluster, "none");
  for (size_t l = 0; l < layout_.listeners.size(); ++l) {
    const auto& listener = layout_.listeners[l];
    for (auto [cluster, name] : columns) {
      bool none = cluster == kNoCluster;
      const MergedRoute& route = merged[layout_.slot(l, cluster)];
      size_t column = layout_.column(cluster);
      bool reachable = none || (column < listener.reachable.size() && listener.reachable[column]);
      if (!reachable && !route.seen()) {
        continue;
      }
      series.push_back({{{{"direction", direction_label(listener.direction)},
                          {"listener", listener.name},
                          {"cluster", name}}},
                        &route,
                        none});
    }
  }

  out.family("pillion_requests_total", "counter",
             "Downstream requests completed, by direction, listener, cluster and response code "
             "class.");
  for (const auto& s : series) {
    for (size_t c = 0; c < 5; ++c) {
      std::array<char, 3> code_class{static_cast<char>('1' + c), 'x', 'x'};
      std::array<Label, 4> labels{s.labels[0],
                                  s.labels[1],
                                  s.labels[2],
                                  {"code_class", {code_class.data(), code_class.size()}}};
      out.sample("pillion_requests_total", labels, s.route->by_class[c]);
    }
  }
  out.family("pillion_request_duration_seconds", "histogram",
             "Downstream request duration, first request byte to last response byte.");
  for (const auto& s : series) {
    out.histogram("pillion_request_duration_seconds", s.labels, s.route->duration);
  }
  out.family("pillion_upstream_response_seconds", "histogram",
             "Time from sending the request upstream to receiving the response head.");
  for (const auto& s : series) {
    if (!s.none || s.route->upstream.count() > 0) {
      out.histogram("pillion_upstream_response_seconds", s.labels, s.route->upstream);
    }
  }
}

}  // namespace pillion::observe
