#include "observe/tracing/span_encoding.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "core/address.h"

namespace pillion::observe::tracing {
namespace {

using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::nanoseconds;

std::string_view view(const auto& chars) {
  return {chars.data(), chars.size()};
}

int64_t unix_nanos(std::chrono::system_clock::time_point time) {
  return duration_cast<nanoseconds>(time.time_since_epoch()).count();
}

// The attributes that are plain strings: every SpanText but the name and the peer, which the
// encoders treat specially.
template <typename Visit>
void for_each_text(const Span& span, Visit visit) {
  for (size_t i = 0; i < static_cast<size_t>(SpanText::kCount); ++i) {
    auto text = static_cast<SpanText>(i);
    if (text != SpanText::kName && text != SpanText::kPeer && span.has(text)) {
      visit(attribute_key(text), span.get(text));
    }
  }
}

json otlp_string(std::string_view key, std::string_view value) {
  return {{"key", key}, {"value", {{"stringValue", value}}}};
}

// OTLP JSON maps int64 to a decimal string (proto3 JSON mapping).
json otlp_int(std::string_view key, int64_t value) {
  return {{"key", key}, {"value", {{"intValue", std::to_string(value)}}}};
}

json otlp_span(const Span& span) {
  json attributes = json::array();
  for_each_text(span, [&](std::string_view key, std::string_view value) {
    attributes.push_back(otlp_string(key, value));
  });
  if (span.has(SpanText::kPeer)) {
    // "ip:port" as network.peer.address + network.peer.port, as the conventions split them.
    if (auto peer = core::parse_host_port(span.get(SpanText::kPeer))) {
      attributes.push_back(otlp_string("network.peer.address", peer->host));
      attributes.push_back(otlp_int("network.peer.port", peer->port));
    } else {
      attributes.push_back(otlp_string("network.peer.address", span.get(SpanText::kPeer)));
    }
  }
  if (span.http_status != 0) {
    attributes.push_back(otlp_int("http.response.status_code", span.http_status));
  }
  int64_t start = unix_nanos(span.start);
  json out = {
      {"traceId", view(span.trace_id)},
      {"spanId", view(span.span_id)},
      {"name", span.get(SpanText::kName)},
      {"kind", span.kind == SpanKind::kServer ? 2 : 3},
      {"startTimeUnixNano", std::to_string(start)},
      {"endTimeUnixNano", std::to_string(start + span.duration.count())},
      {"attributes", std::move(attributes)},
      {"status", {{"code", span.status == SpanStatus::kError ? 2 : 0}}},
  };
  if (span.parent_span_id) {
    out["parentSpanId"] = view(*span.parent_span_id);
  }
  return out;
}

// Zipkin wants the address family spelled out: an endpoint has ipv4 or ipv6, not a host name.
json zipkin_remote_endpoint(std::string_view peer_text) {
  auto peer = core::parse_host_port(peer_text);
  if (!peer) {
    return nullptr;
  }
  unsigned char address[16];
  json endpoint;
  if (inet_pton(AF_INET, peer->host.c_str(), address) == 1) {
    endpoint["ipv4"] = peer->host;
  } else if (inet_pton(AF_INET6, peer->host.c_str(), address) == 1) {
    endpoint["ipv6"] = peer->host;
  } else {
    return nullptr;
  }
  endpoint["port"] = peer->port;
  return endpoint;
}

json zipkin_span(const Span& span, std::string_view service_name) {
  json tags = json::object();
  for_each_text(
      span, [&](std::string_view key, std::string_view value) { tags[std::string(key)] = value; });
  if (span.has(SpanText::kPeer)) {
    tags["network.peer.address"] = span.get(SpanText::kPeer);
  }
  if (span.http_status != 0) {
    tags["http.response.status_code"] = std::to_string(span.http_status);
  }
  if (span.status == SpanStatus::kError) {
    tags["error"] = span.http_status != 0 ? std::to_string(span.http_status) : "no response";
  }
  json out = {
      {"traceId", view(span.trace_id)},
      {"id", view(span.span_id)},
      {"name", span.get(SpanText::kName)},
      {"kind", span.kind == SpanKind::kServer ? "SERVER" : "CLIENT"},
      {"timestamp", duration_cast<microseconds>(span.start.time_since_epoch()).count()},
      // Zipkin rejects a zero duration; a sub-microsecond span is reported as 1 µs.
      {"duration", std::max<int64_t>(1, duration_cast<microseconds>(span.duration).count())},
      {"localEndpoint", {{"serviceName", service_name}}},
      {"tags", std::move(tags)},
  };
  if (span.parent_span_id) {
    out["parentId"] = view(*span.parent_span_id);
  }
  if (span.debug) {
    out["debug"] = true;
  }
  if (span.has(SpanText::kPeer)) {
    if (json remote = zipkin_remote_endpoint(span.get(SpanText::kPeer)); !remote.is_null()) {
      out["remoteEndpoint"] = std::move(remote);
    }
  }
  return out;
}

std::string dump(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string encode_otlp(std::span<const Span> spans, std::string_view service_name) {
  json encoded = json::array();
  for (const Span& span : spans) {
    encoded.push_back(otlp_span(span));
  }
  json resource = {{"attributes", json::array({otlp_string("service.name", service_name)})}};
  json scope = {{"name", "pillion"}, {"version", PILLION_VERSION}};
  json body = {
      {"resourceSpans",
       json::array({{{"resource", std::move(resource)},
                     {"scopeSpans", json::array({{{"scope", std::move(scope)},
                                                  {"spans", std::move(encoded)}}})}}})},
  };
  return dump(body);
}

std::string encode_zipkin(std::span<const Span> spans, std::string_view service_name) {
  json body = json::array();
  for (const Span& span : spans) {
    body.push_back(zipkin_span(span, service_name));
  }
  return dump(body);
}

}  // namespace pillion::observe::tracing
