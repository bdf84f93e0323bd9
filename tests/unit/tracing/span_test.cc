#include "observe/tracing/span.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::observe::tracing {
namespace {

TEST(Span, StoresTextAttributesInOneBuffer) {
  Span span;
  EXPECT_FALSE(span.has(SpanText::kPath));
  EXPECT_EQ(span.get(SpanText::kPath), "");
  span.set(SpanText::kMethod, "GET");
  span.set(SpanText::kPath, "/users/7");
  span.set(SpanText::kCluster, "payments");
  span.set(SpanText::kPath, "/users/8");  // replaced
  EXPECT_EQ(span.get(SpanText::kMethod), "GET");
  EXPECT_EQ(span.get(SpanText::kPath), "/users/8");
  EXPECT_EQ(span.get(SpanText::kCluster), "payments");
  span.set(SpanText::kPath, std::string(5000, 'a'));
  EXPECT_EQ(span.get(SpanText::kPath).size(), 1024u);

  Span moved = std::move(span);
  EXPECT_EQ(moved.get(SpanText::kCluster), "payments");
}

TEST(Span, StartsFromTheHopAndFinishesWithAStatus) {
  http::IdGenerator ids;
  http::TraceContext caller{};
  caller.trace_id.fill('a');
  caller.span_id.fill('b');
  auto hop = http::next_hop({caller, http::SamplingDecision::kSample}, true, ids);
  auto start = std::chrono::system_clock::now();
  Span span = start_span(hop, SpanKind::kClient, start);
  EXPECT_EQ(span.trace_id, hop.context.trace_id);
  EXPECT_EQ(span.span_id, hop.context.span_id);
  EXPECT_EQ(span.parent_span_id, caller.span_id);
  EXPECT_EQ(span.start, start);

  finish_span(span, std::chrono::milliseconds(3), 404);
  EXPECT_EQ(span.duration, std::chrono::milliseconds(3));
  EXPECT_EQ(span.http_status, 404);
  EXPECT_EQ(span.status, SpanStatus::kError);  // a client span fails on 4xx

  span.kind = SpanKind::kServer;
  finish_span(span, std::chrono::milliseconds(3), 404);
  EXPECT_EQ(span.status, SpanStatus::kUnset);  // a server span only on 5xx
  finish_span(span, std::chrono::milliseconds(3), 503);
  EXPECT_EQ(span.status, SpanStatus::kError);
  finish_span(span, std::chrono::milliseconds(3), 0);
  EXPECT_EQ(span.status, SpanStatus::kError);
}

}  // namespace
}  // namespace pillion::observe::tracing
