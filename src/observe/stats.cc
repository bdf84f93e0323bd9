#include "observe/stats.h"

#include <fmt/format.h>

#include <functional>

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

struct Metric {
  const char* text_name;  // /stats name
  const char* prom_name;  // Prometheus family
  const char* type;       // counter | gauge
  const char* help;
  const char* label = nullptr;  // "code_class=\"2xx\""
};

}  // namespace

Stats::Stats(int workers) {
  for (int i = 0; i < workers; ++i) {
    shards_.push_back(std::make_unique<WorkerStats>());
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
  for (size_t c = 1; c <= 5; ++c) {
    add(fmt::format("downstream_rq_{}xx", c),
        [c](const WorkerStats& s) -> const Counter& { return s.downstream_rq_by_class[c]; });
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
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto sample = [&](std::string_view name, std::string_view labels, uint64_t value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
    }
  };
  auto simple = [&](std::string_view prom, std::string_view type, std::string_view help,
                    std::string_view stat) {
    family(prom, type, help);
    sample(prom, "", value_of(stat));
  };
  simple("pillion_downstream_connections_total", "counter", "Downstream connections accepted.",
         "downstream_cx_total");
  simple("pillion_downstream_connections_active", "gauge", "Downstream connections open.",
         "downstream_cx_active");
  family("pillion_requests_total", "counter",
         "Downstream requests completed, by response code class.");
  for (int c = 1; c <= 5; ++c) {
    sample("pillion_requests_total", fmt::format("code_class=\"{}xx\"", c),
           value_of(fmt::format("downstream_rq_{}xx", c)));
  }
  simple("pillion_requests_active", "gauge", "Downstream requests in flight.",
         "downstream_rq_active");
  family("pillion_response_flags_total", "counter",
         "Requests by response flag (DESIGN.md failure semantics).");
  for (size_t f = 0; f < static_cast<size_t>(Flag::kCount); ++f) {
    auto code = flag_code(static_cast<Flag>(f));
    sample("pillion_response_flags_total", fmt::format("flag=\"{}\"", code),
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
  return out;
}

}  // namespace pillion::observe
