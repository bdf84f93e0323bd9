#include "bench/report.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace pillion::bench {
namespace {

double seconds(Nanos duration) {
  return std::chrono::duration<double>(duration).count();
}

double latency_of(const LoadResult& result, const Percentile& p) {
  return static_cast<double>(result.latency.percentile(p.value));
}

}  // namespace

std::string format_latency(double nanos, bool signed_value) {
  std::string sign = signed_value ? (nanos < 0 ? "-" : "+") : (nanos < 0 ? "-" : "");
  double magnitude = std::fabs(nanos);
  if (magnitude < 10e3) {
    return fmt::format("{}{:.1f}us", sign, magnitude / 1e3);
  }
  if (magnitude < 1e6) {
    return fmt::format("{}{:.0f}us", sign, magnitude / 1e3);
  }
  if (magnitude < 1e9) {
    return fmt::format("{}{:.2f}ms", sign, magnitude / 1e6);
  }
  return fmt::format("{}{:.2f}s", sign, magnitude / 1e9);
}

std::string text_report(const LoadOptions& options, int rounds,
                        const std::vector<LoadResult>& results) {
  std::string out = fmt::format(
      "rate {}/s over {} connections, {:.1f}s measured per target and round, {:.1f}s warmup, {} "
      "round(s)\n",
      options.rate, options.connections, seconds(options.duration), seconds(options.warmup),
      rounds);
  for (size_t t = 0; t < results.size(); ++t) {
    const auto& r = results[t];
    out += fmt::format("\n[{}] {}\n", t + 1, r.url);
    out += fmt::format("  scheduled {}  sent {}  completed {}  achieved {:.1f}/s\n", r.scheduled,
                       r.sent, r.completed, r.achieved_rate());
    out +=
        fmt::format("  errors {}: connect {}  read {}  timeout {}  status {}\n", r.errors.total(),
                    r.errors.connect, r.errors.read, r.errors.timeout, r.errors.status);
    out += "  latency";
    for (const auto& p : kPercentiles) {
      out += fmt::format("  {} {}", p.name, format_latency(latency_of(r, p)));
    }
    out += fmt::format("  (mean {})\n", format_latency(r.latency.mean()));
    out += fmt::format("  send delay  p50 {}  p99 {}  max {}  (included above)\n",
                       format_latency(static_cast<double>(r.send_delay.percentile(50))),
                       format_latency(static_cast<double>(r.send_delay.percentile(99))),
                       format_latency(static_cast<double>(r.send_delay.max())));
  }
  if (results.size() == 2) {
    // The sidecar tax: what the second path adds to the first, percentile by percentile.
    out += fmt::format("\n{:<8}{:>12}{:>12}{:>12}\n", "", "[1]", "[2]", "added");
    for (const auto& p : kPercentiles) {
      double a = latency_of(results[0], p);
      double b = latency_of(results[1], p);
      out += fmt::format("{:<8}{:>12}{:>12}{:>12}\n", p.name, format_latency(a), format_latency(b),
                         format_latency(b - a, true));
    }
  }
  return out;
}

std::string json_report(const LoadOptions& options, int rounds,
                        const std::vector<LoadResult>& results) {
  nlohmann::ordered_json out;
  out["rate"] = options.rate;
  out["connections"] = options.connections;
  out["duration_s"] = seconds(options.duration);
  out["warmup_s"] = seconds(options.warmup);
  out["rounds"] = rounds;
  out["targets"] = nlohmann::ordered_json::array();
  for (const auto& r : results) {
    nlohmann::ordered_json latency;
    for (const auto& p : kPercentiles) {
      latency[p.name] = latency_of(r, p) / 1e3;
    }
    latency["mean"] = r.latency.mean() / 1e3;
    latency["min"] = static_cast<double>(r.latency.min()) / 1e3;
    out["targets"].push_back({
        {"url", r.url},
        {"scheduled", r.scheduled},
        {"sent", r.sent},
        {"completed", r.completed},
        {"achieved_rate", r.achieved_rate()},
        {"errors",
         {{"connect", r.errors.connect},
          {"read", r.errors.read},
          {"timeout", r.errors.timeout},
          {"status", r.errors.status},
          {"total", r.errors.total()}}},
        {"latency_us", latency},
        {"send_delay_us",
         {{"p50", static_cast<double>(r.send_delay.percentile(50)) / 1e3},
          {"p99", static_cast<double>(r.send_delay.percentile(99)) / 1e3},
          {"max", static_cast<double>(r.send_delay.max()) / 1e3}}},
    });
  }
  if (results.size() == 2) {
    nlohmann::ordered_json added;
    for (const auto& p : kPercentiles) {
      added[p.name] = (latency_of(results[1], p) - latency_of(results[0], p)) / 1e3;
    }
    out["added_us"] = added;
  }
  return out.dump(2) + "\n";
}

}  // namespace pillion::bench
