#include "observe/tracing/span_encoding.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace pillion::observe::tracing {
namespace {

using nlohmann::json;

// 2026-01-02T03:04:05.123456789Z as Unix nanoseconds.
constexpr int64_t kStartNanos = 1767323045123456789;

Span sample_span(SpanKind kind) {
  Span span;
  std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  std::string id = "00f067aa0ba902b7";
  std::string parent = "53995c3f42cd8ad8";
  std::copy(trace.begin(), trace.end(), span.trace_id.begin());
  std::copy(id.begin(), id.end(), span.span_id.begin());
  span.parent_span_id.emplace();
  std::copy(parent.begin(), parent.end(), span.parent_span_id->begin());
  span.kind = kind;
  span.start = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(kStartNanos)));
  span.set(SpanText::kName, "GET");
  span.set(SpanText::kMethod, "GET");
  span.set(SpanText::kPath, "/pay\xff");  // not UTF-8: must still be valid JSON
  span.set(SpanText::kRoute, "payments");
  span.set(SpanText::kPeer, "10.0.0.7:8080");
  span.set(SpanText::kCluster, "payments");
  span.set(SpanText::kResponseFlags, "UF");
  span.set(SpanText::kRequestId, "5b9f4b5e-0000-4000-8000-000000000001");
  span.set(SpanText::kListener, "outbound");
  finish_span(span, std::chrono::microseconds(1500), 503);
  return span;
}

// attributes: [{key, value: {stringValue|intValue}}] -> key -> value object
std::map<std::string, json> attributes_of(const json& list) {
  std::map<std::string, json> out;
  for (const auto& attribute : list) {
    out[attribute.at("key").get<std::string>()] = attribute.at("value");
  }
  return out;
}

TEST(OtlpJson, EncodesEveryFieldAsTheCollectorExpects) {
  std::vector<Span> spans = {sample_span(SpanKind::kServer), sample_span(SpanKind::kClient)};
  spans[1].parent_span_id.reset();
  json body = json::parse(encode_otlp(spans, "payments-service"));

  ASSERT_EQ(body.at("resourceSpans").size(), 1u);
  const json& resource_spans = body["resourceSpans"][0];
  auto resource = attributes_of(resource_spans.at("resource").at("attributes"));
  EXPECT_EQ(resource["service.name"], json({{"stringValue", "payments-service"}}));
  const json& scope_spans = resource_spans.at("scopeSpans").at(0);
  EXPECT_EQ(scope_spans.at("scope").at("name"), "pillion");
  const json& list = scope_spans.at("spans");
  ASSERT_EQ(list.size(), 2u);

  const json& server = list[0];
  EXPECT_EQ(server.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(server.at("spanId"), "00f067aa0ba902b7");
  EXPECT_EQ(server.at("parentSpanId"), "53995c3f42cd8ad8");
  EXPECT_EQ(server.at("name"), "GET");
  EXPECT_EQ(server.at("kind"), 2);
  EXPECT_EQ(server.at("startTimeUnixNano"), std::to_string(kStartNanos));
  EXPECT_EQ(server.at("endTimeUnixNano"), std::to_string(kStartNanos + 1500000));
  EXPECT_EQ(server.at("status").at("code"), 2);
  auto attributes = attributes_of(server.at("attributes"));
  EXPECT_EQ(attributes["http.request.method"], json({{"stringValue", "GET"}}));
  EXPECT_EQ(attributes["url.path"], json({{"stringValue", "/pay\xef\xbf\xbd"}}));
  EXPECT_EQ(attributes["pillion.route"], json({{"stringValue", "payments"}}));
  EXPECT_EQ(attributes["pillion.cluster"], json({{"stringValue", "payments"}}));
  EXPECT_EQ(attributes["pillion.response_flags"], json({{"stringValue", "UF"}}));
  EXPECT_EQ(attributes["pillion.request_id"],
            json({{"stringValue", "5b9f4b5e-0000-4000-8000-000000000001"}}));
  EXPECT_EQ(attributes["pillion.listener"], json({{"stringValue", "outbound"}}));
  EXPECT_EQ(attributes["network.peer.address"], json({{"stringValue", "10.0.0.7"}}));
  EXPECT_EQ(attributes["network.peer.port"], json({{"intValue", "8080"}}));
  EXPECT_EQ(attributes["http.response.status_code"], json({{"intValue", "503"}}));
  EXPECT_FALSE(attributes.contains("name"));
  EXPECT_FALSE(attributes.contains("server.address"));  // not set

  EXPECT_EQ(list[1].at("kind"), 3);
  EXPECT_FALSE(list[1].contains("parentSpanId"));
}

TEST(ZipkinJson, EncodesEveryFieldAsTheCollectorExpects) {
  std::vector<Span> spans = {sample_span(SpanKind::kClient)};
  spans[0].debug = true;
  spans[0].set(SpanText::kPeer, "[::1]:9000");
  json body = json::parse(encode_zipkin(spans, "payments-service"));
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.size(), 1u);
  const json& span = body[0];
  EXPECT_EQ(span.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("id"), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("parentId"), "53995c3f42cd8ad8");
  EXPECT_EQ(span.at("name"), "GET");
  EXPECT_EQ(span.at("kind"), "CLIENT");
  EXPECT_EQ(span.at("timestamp"), kStartNanos / 1000);
  EXPECT_EQ(span.at("duration"), 1500);
  EXPECT_EQ(span.at("debug"), true);
  EXPECT_EQ(span.at("localEndpoint"), json({{"serviceName", "payments-service"}}));
  EXPECT_EQ(span.at("remoteEndpoint"), json({{"ipv6", "::1"}, {"port", 9000}}));
  const json& tags = span.at("tags");
  EXPECT_EQ(tags.at("http.request.method"), "GET");
  EXPECT_EQ(tags.at("http.response.status_code"), "503");
  EXPECT_EQ(tags.at("pillion.cluster"), "payments");
  EXPECT_EQ(tags.at("network.peer.address"), "[::1]:9000");
  EXPECT_EQ(tags.at("error"), "503");

  spans[0].set(SpanText::kPeer, "payments:80");  // a name is no Zipkin endpoint
  spans[0].duration = std::chrono::nanoseconds(10);
  spans[0].kind = SpanKind::kServer;
  finish_span(spans[0], std::chrono::nanoseconds(10), 200);
  json again = json::parse(encode_zipkin(spans, "s"))[0];
  EXPECT_FALSE(again.contains("remoteEndpoint"));
  EXPECT_EQ(again.at("duration"), 1);  // Zipkin rejects 0
  EXPECT_EQ(again.at("kind"), "SERVER");
  EXPECT_FALSE(again.at("tags").contains("error"));
}

}  // namespace
}  // namespace pillion::observe::tracing
