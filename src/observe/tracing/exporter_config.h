#pragma once
// Where and how finished spans are sent. Plain data with defaults; the YAML loader fills it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.h"

namespace pillion::observe::tracing {

enum class ExportFormat : uint8_t {
  kOtlp,    // OTLP/HTTP with the JSON encoding, POST /v1/traces
  kZipkin,  // Zipkin v2 JSON, POST /api/v2/spans
};

struct ExporterConfig {
  // http://host[:port][/path]; without a path, the format's usual one (default_path).
  std::string endpoint = "http://127.0.0.1:4318/v1/traces";
  ExportFormat format = ExportFormat::kOtlp;
  std::string service_name = "pillion";  // resource attribute service.name
  size_t batch_size = 512;               // spans per POST at most; a full batch goes at once
  std::chrono::milliseconds flush_interval{1000};  // a partial batch waits no longer than this
  size_t max_queued_spans = 8192;                  // beyond this, spans are dropped and counted
  std::chrono::milliseconds timeout{2000};         // for each of connect, write and read of a POST
};

std::string_view default_path(ExportFormat format);

struct CollectorUrl {
  core::HostPort address;
  std::string path;
};

// nullopt unless `url` is http://host[:port][/path] (no https, query or fragment).
std::optional<CollectorUrl> parse_collector_url(std::string_view url, ExportFormat format);

// Empty when the config can be used; otherwise what is wrong, naming the field.
std::string validate(const ExporterConfig& config);

}  // namespace pillion::observe::tracing
