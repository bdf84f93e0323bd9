#pragma once
// Request bodies for the collectors: OTLP/HTTP JSON (ExportTraceServiceRequest) and Zipkin v2
// JSON. Both are valid JSON for any attribute bytes: invalid UTF-8 becomes U+FFFD.
#include <span>
#include <string>
#include <string_view>

#include "observe/tracing/span.h"

namespace pillion::observe::tracing {

// resourceSpans[1] -> scopeSpans[1] (scope "pillion") -> spans, with hex ids, times as decimal
// strings of Unix nanoseconds, kind 2 (server) / 3 (client), status code 2 on error.
std::string encode_otlp(std::span<const Span> spans, std::string_view service_name);

// An array of spans: hex ids, timestamp and duration in microseconds, kind "SERVER"/"CLIENT",
// localEndpoint.serviceName, remoteEndpoint from the peer address, attributes as string tags
// and an "error" tag on error.
std::string encode_zipkin(std::span<const Span> spans, std::string_view service_name);

}  // namespace pillion::observe::tracing
