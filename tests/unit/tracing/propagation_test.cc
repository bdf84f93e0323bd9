#include "http/propagation.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/b3.h"

namespace pillion::http {
namespace {

constexpr std::string_view kTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
constexpr std::string_view kB3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0";

std::string str(const auto& chars) {
  return std::string(chars.data(), chars.size());
}

Head head_with(std::vector<std::pair<std::string_view, std::string_view>> fields) {
  Head head;
  for (auto [name, value] : fields) {
    head.fields.push_back({name, value});
  }
  return head;
}

// Splits "name: value\r\n" lines back into fields (views into `lines`).
Head head_from_lines(std::string_view lines) {
  Head head;
  while (!lines.empty()) {
    size_t end = lines.find("\r\n");
    std::string_view line = lines.substr(0, end);
    size_t colon = line.find(": ");
    head.fields.push_back({line.substr(0, colon), line.substr(colon + 2)});
    lines.remove_prefix(end + 2);
  }
  return head;
}

TEST(ExtractTrace, NothingSentMeansNewTraceAndNoDecision) {
  auto incoming = extract_trace(head_with({{"Host", "a"}, {"tracestate", "x=1"}}));
  EXPECT_FALSE(incoming.context);
  EXPECT_EQ(incoming.decision, SamplingDecision::kNone);
}

TEST(ExtractTrace, PrefersTraceparentThenB3ThenMultiHeaders) {
  auto incoming = extract_trace(head_with({{"b3", kB3}, {"Traceparent", kTraceparent}}));
  ASSERT_TRUE(incoming.context);
  EXPECT_EQ(str(incoming.context->trace_id), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(incoming.decision, SamplingDecision::kSample);

  // An invalid traceparent falls back to B3.
  incoming = extract_trace(head_with({{"traceparent", "00-zz"}, {"B3", kB3}}));
  ASSERT_TRUE(incoming.context);
  EXPECT_EQ(str(incoming.context->trace_id), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(incoming.decision, SamplingDecision::kDrop);

  incoming = extract_trace(head_with({{"X-B3-TraceId", "463ac35c9f6413ad"},
                                      {"X-B3-SpanId", "a2fb4a1d1a96d312"},
                                      {"X-B3-Sampled", "1"}}));
  ASSERT_TRUE(incoming.context);
  EXPECT_EQ(str(incoming.context->trace_id), "0000000000000000463ac35c9f6413ad");
  EXPECT_EQ(str(incoming.context->span_id), "a2fb4a1d1a96d312");
  EXPECT_EQ(incoming.decision, SamplingDecision::kSample);
}

TEST(ExtractTrace, DuplicatesAndFormatsNotAcceptedAreIgnored) {
  auto incoming =
      extract_trace(head_with({{"traceparent", kTraceparent}, {"traceparent", kTraceparent}}));
  EXPECT_FALSE(incoming.context);
  incoming = extract_trace(head_with({{"x-b3-traceid", "463ac35c9f6413ad"},
                                      {"x-b3-spanid", "a2fb4a1d1a96d312"},
                                      {"x-b3-spanid", "a2fb4a1d1a96d313"}}));
  EXPECT_FALSE(incoming.context);
  incoming = extract_trace(head_with({{"traceparent", kTraceparent}}), kB3Single | kB3Multi);
  EXPECT_FALSE(incoming.context);
  // "b3: 0" alone: no context, but the caller asked not to sample.
  incoming = extract_trace(head_with({{"b3", "0"}}));
  EXPECT_FALSE(incoming.context);
  EXPECT_EQ(incoming.decision, SamplingDecision::kDrop);
}

TEST(NextHop, KeepsTheTraceAndMakesTheCallerTheParent) {
  IdGenerator ids;
  auto incoming = extract_trace(head_with({{"traceparent", kTraceparent}}));
  TraceHop hop = next_hop(incoming, true, ids);
  EXPECT_EQ(hop.context.trace_id, incoming.context->trace_id);
  EXPECT_NE(hop.context.span_id, incoming.context->span_id);
  ASSERT_TRUE(hop.parent_span_id);
  EXPECT_EQ(str(*hop.parent_span_id), "b7ad6b7169203331");
  EXPECT_TRUE(hop.sampled());

  TraceHop root = next_hop(IncomingTrace{}, false, ids);
  EXPECT_FALSE(root.parent_span_id);
  EXPECT_FALSE(root.sampled());
  EXPECT_TRUE(is_hex_not_zero(str(root.context.trace_id)));
}

TEST(OutgoingTraceHeaders, FormatsEveryFormatAndRoundTrips) {
  IdGenerator ids;
  auto incoming = extract_trace(head_with({{"b3", kB3}}));
  TraceHop hop = next_hop(incoming, false, ids);
  OutgoingTraceHeaders out;
  out.format(hop, kAllFormats);
  std::string trace = str(hop.context.trace_id);
  std::string span = str(hop.context.span_id);
  EXPECT_EQ(out.lines(), "traceparent: 00-" + trace + "-" + span + "-00\r\n" + "b3: " + trace +
                             "-" + span + "-0-e457b5a2e4d86bd1\r\n" + "x-b3-traceid: " + trace +
                             "\r\n" + "x-b3-spanid: " + span + "\r\n" +
                             "x-b3-parentspanid: e457b5a2e4d86bd1\r\n" + "x-b3-sampled: 0\r\n");
  for (PropagationFormats format : {kW3c, kB3Single, kB3Multi}) {
    out.format(hop, format);
    auto again = extract_trace(head_from_lines(out.lines()));
    ASSERT_TRUE(again.context) << out.lines();
    EXPECT_EQ(again.context->trace_id, hop.context.trace_id);
    EXPECT_EQ(again.context->span_id, hop.context.span_id);
    EXPECT_EQ(again.decision, SamplingDecision::kDrop);
  }
}

TEST(OutgoingTraceHeaders, KeepsB3DebugDownstream) {
  IdGenerator ids;
  auto incoming = extract_trace(head_with({{"x-b3-traceid", "463ac35c9f6413ad"},
                                           {"x-b3-spanid", "a2fb4a1d1a96d312"},
                                           {"x-b3-flags", "1"}}));
  TraceHop hop = next_hop(incoming, true, ids);
  EXPECT_TRUE(hop.debug);
  OutgoingTraceHeaders out;
  out.format(hop, kB3Multi);
  EXPECT_NE(out.lines().find("x-b3-flags: 1\r\n"), std::string_view::npos);
  EXPECT_EQ(out.lines().find("x-b3-sampled"), std::string_view::npos);
  out.format(hop, kB3Single);
  EXPECT_NE(out.lines().find("-d-a2fb4a1d1a96d312\r\n"), std::string_view::npos);
  EXPECT_EQ(extract_trace(head_from_lines(out.lines())).decision, SamplingDecision::kDebug);
}

TEST(IsTraceHeader, NamesTheReplacedHeadersButNotTracestate) {
  for (const char* name :
       {"traceparent", "TraceParent", "b3", "B3", "X-B3-TraceId", "x-b3-flags"}) {
    EXPECT_TRUE(is_trace_header(name)) << name;
  }
  for (const char* name : {"tracestate", "b33", "x-b3", "x-request-id"}) {
    EXPECT_FALSE(is_trace_header(name)) << name;
  }
}

}  // namespace
}  // namespace pillion::http
