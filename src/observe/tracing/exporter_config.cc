#include "observe/tracing/exporter_config.h"

#include <fmt/format.h>

namespace pillion::observe::tracing {

std::string_view default_path(ExportFormat format) {
  return format == ExportFormat::kZipkin ? "/api/v2/spans" : "/v1/traces";
}

std::optional<CollectorUrl> parse_collector_url(std::string_view url, ExportFormat format) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme) || url.find_first_of("?# ") != std::string_view::npos) {
    return std::nullopt;
  }
  size_t slash = url.find('/', kScheme.size());
  std::string_view path = slash == std::string_view::npos ? "" : url.substr(slash);
  // The authority alone is what core::parse_http_url accepts (host, port, IPv6 brackets).
  auto address = core::parse_http_url(url.substr(0, slash));
  if (!address) {
    return std::nullopt;
  }
  if (path.empty() || path == "/") {
    path = default_path(format);
  }
  return CollectorUrl{std::move(*address), std::string(path)};
}

std::string validate(const ExporterConfig& config) {
  if (!parse_collector_url(config.endpoint, config.format)) {
    return fmt::format("tracing endpoint '{}' is not http://host[:port][/path]", config.endpoint);
  }
  if (config.service_name.empty()) {
    return "tracing service_name is empty";
  }
  if (config.batch_size == 0) {
    return "tracing batch_size must be at least 1";
  }
  if (config.max_queued_spans < config.batch_size) {
    return "tracing max_queued_spans must be at least batch_size";
  }
  if (config.flush_interval.count() <= 0 || config.timeout.count() <= 0) {
    return "tracing flush_interval and timeout must be positive";
  }
  return {};
}

}  // namespace pillion::observe::tracing
