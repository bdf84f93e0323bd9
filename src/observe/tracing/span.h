#pragma once
// One finished request as a span. The proxy makes one per request: kind server on inbound
// listeners, client on outbound ones. String attributes share one buffer, so a span costs one
// heap allocation however many attributes it carries.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/propagation.h"

namespace pillion::observe::tracing {

enum class SpanKind : uint8_t { kServer, kClient };
enum class SpanStatus : uint8_t { kUnset, kError };

// The string attributes a span carries. Keys (OpenTelemetry semantic conventions where one
// exists) are in attribute_key().
enum class SpanText : uint8_t {
  kName,           // the span name: "GET", or "GET <route>"
  kMethod,         // http.request.method
  kPath,           // url.path (without the query)
  kRoute,          // pillion.route: the name of the matched route
  kServerAddress,  // server.address: the Host / authority the request was sent to
  kPeer,           // network.peer.address:port: the client (server span) or endpoint (client span)
  kCluster,        // pillion.cluster
  kResponseFlags,  // pillion.response_flags: the access log flags ("UF", "UT", ...)
  kRequestId,      // pillion.request_id
  kListener,       // pillion.listener
  kCount,
};

std::string_view attribute_key(SpanText text);

class Span {
 public:
  std::array<char, 32> trace_id{};
  http::SpanId span_id{};
  std::optional<http::SpanId> parent_span_id;
  bool debug = false;
  SpanKind kind = SpanKind::kServer;
  std::chrono::system_clock::time_point start;
  std::chrono::nanoseconds duration{0};
  int http_status = 0;  // http.response.status_code; 0 when no response was sent
  SpanStatus status = SpanStatus::kUnset;

  // Copies `value`; setting a text again replaces it (the old bytes stay until the span dies).
  void set(SpanText text, std::string_view value);
  std::string_view get(SpanText text) const;  // empty when not set
  bool has(SpanText text) const { return ranges_[index(text)].size > 0; }

 private:
  struct Range {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  static size_t index(SpanText text) { return static_cast<size_t>(text); }

  std::string text_;
  std::array<Range, static_cast<size_t>(SpanText::kCount)> ranges_{};
};

// A span for this hop: the hop's trace and span ids, the caller's span as parent.
Span start_span(const http::TraceHop& hop, SpanKind kind,
                std::chrono::system_clock::time_point start);

// Sets duration, status code and status. Per the OpenTelemetry HTTP conventions a server span is
// an error for 5xx, a client span for 4xx and 5xx; both are for no response at all (status 0).
void finish_span(Span& span, std::chrono::nanoseconds duration, int http_status);

}  // namespace pillion::observe::tracing
