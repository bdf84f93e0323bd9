#include "http/rewrite.h"

#include <gtest/gtest.h>

#include "http/parser.h"

namespace pillion::http {
namespace {

std::string upstream_head(const std::string& request, UpstreamRequestContext context = {}) {
  RequestParser parser(8192);
  parser.start();
  EXPECT_EQ(parser.parse_head(request), ParseStatus::kDone);
  if (context.request_id.empty()) {
    context.request_id = "11111111-1111-4111-8111-111111111111";
  }
  if (context.trace_headers.empty()) {
    context.trace_headers =
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";
  }
  context.client_ip = "10.1.2.3";
  context.authority = "backend:8080";
  std::string out;
  build_upstream_request(parser.head(), context, out);
  return out;
}

TEST(BuildUpstreamRequest, RemovesHopByHopAndAddsProxyHeaders) {
  auto out = upstream_head(
      "GET /p HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n"
      "X-Secret: s\r\nTE: trailers\r\nTrailer: X\r\nProxy-Authorization: p\r\n"
      "Upgrade: h2c\r\nExpect: 100-continue\r\nX-Keep: k\r\n\r\n");
  EXPECT_EQ(out.rfind("GET /p HTTP/1.1\r\n", 0), 0u);
  for (const char* gone : {"Connection:", "Keep-Alive", "X-Secret",
                           "TE:", "Trailer:", "Proxy-Authorization", "Upgrade", "Expect"}) {
    EXPECT_EQ(out.find(gone), std::string::npos) << gone << " in\n" << out;
  }
  EXPECT_NE(out.find("Host: svc\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Keep: k\r\n"), std::string::npos);
  EXPECT_NE(out.find("x-request-id: 11111111-1111-4111-8111-111111111111\r\n"), std::string::npos);
  EXPECT_NE(out.find("traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("x-forwarded-for: 10.1.2.3\r\n"), std::string::npos);
  EXPECT_NE(out.find("x-forwarded-proto: http\r\n"), std::string::npos);
  EXPECT_NE(out.find("via: 1.1 pillion\r\n"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\n"));
}

TEST(BuildUpstreamRequest, AppendsToForwardedForAndKeepsRequestId) {
  UpstreamRequestContext context;
  context.request_id = "mine";
  context.request_had_id = true;
  auto out = upstream_head(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Request-ID: mine\r\n"
      "X-Forwarded-Proto: https\r\ntraceparent: old\r\nb3: old-b3\r\nX-B3-Sampled: 1\r\n"
      "tracestate: vendor=kept\r\n\r\n",
      context);
  EXPECT_NE(out.find("X-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Request-ID: mine\r\n"), std::string::npos);
  EXPECT_EQ(out.find("x-request-id:"), std::string::npos);
  EXPECT_NE(out.find("X-Forwarded-Proto: https\r\n"), std::string::npos);
  EXPECT_EQ(out.find("x-forwarded-proto"), std::string::npos);
  EXPECT_EQ(out.find("traceparent: old"), std::string::npos);
  // Every incoming trace header is replaced by this hop's; tracestate is end to end.
  EXPECT_EQ(out.find("old-b3"), std::string::npos);
  EXPECT_EQ(out.find("X-B3-Sampled"), std::string::npos);
  EXPECT_NE(out.find("tracestate: vendor=kept\r\n"), std::string::npos);
}

TEST(BuildUpstreamRequest, RemovesEveryHeaderNamedByConnection) {
  std::string request = "GET / HTTP/1.1\r\nHost: a\r\nConnection: ";
  for (int i = 0; i < 40; ++i) {
    request += (i ? ", x-h" : "x-h") + std::to_string(i);
  }
  request += "\r\n";
  for (int i = 0; i < 40; ++i) {
    request += "X-H" + std::to_string(i) + ": v\r\n";
  }
  request += "\r\n";
  auto out = upstream_head(request);
  EXPECT_EQ(out.find("X-H"), std::string::npos) << out;
}

TEST(BuildUpstreamRequest, ClientAddressGoesOnTheLastForwardedFor) {
  auto out = upstream_head(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n");
  EXPECT_NE(out.find("X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 10.1.2.3\r\n"),
            std::string::npos)
      << out;
}

TEST(BuildUpstreamRequest, KeepsUpgradeOnUpgradeRequests) {
  auto out = upstream_head(
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_NE(out.find("Upgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(out.find("connection: upgrade\r\n"), std::string::npos);
}

TEST(BuildUpstreamRequest, Http10WithoutHostGetsTheEndpointAuthority) {
  auto out = upstream_head("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(out.rfind("GET / HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(out.find("host: backend:8080\r\n"), std::string::npos);
  EXPECT_NE(out.find("via: 1.0 pillion\r\n"), std::string::npos);
}

TEST(BuildUpstreamRequest, AbsoluteFormBecomesOriginForm) {
  UpstreamRequestContext context;
  context.target_override = "/p?q=1";
  context.host_override = "h:1";
  auto out = upstream_head("GET http://h:1/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", context);
  EXPECT_EQ(out.rfind("GET /p?q=1 HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(out.find("Host: h:1\r\n"), std::string::npos);
  EXPECT_EQ(out.find("other"), std::string::npos);
}

TEST(BuildDownstreamResponse, EchoesRequestIdAndFramesAsAsked) {
  ResponseParser parser(8192);
  parser.start();
  ASSERT_EQ(parser.parse_head("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n"
                              "Content-Type: text/plain\r\n\r\n"),
            ParseStatus::kDone);
  DownstreamResponseContext context;
  context.request_id = "rid";
  context.chunk_encode = true;
  std::string out;
  build_downstream_response(parser.head(), context, out);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(out.find("Keep-Alive"), std::string::npos);
  EXPECT_EQ(out.find("Connection:"), std::string::npos);
  EXPECT_NE(out.find("x-request-id: rid\r\n"), std::string::npos);
  EXPECT_NE(out.find("transfer-encoding: chunked\r\n"), std::string::npos);
  context.close = true;
  context.chunk_encode = false;
  out.clear();
  build_downstream_response(parser.head(), context, out);
  EXPECT_NE(out.find("connection: close\r\n"), std::string::npos);
}

TEST(BuildLocalResponse, NamesReasonAndRequestId) {
  std::string out;
  build_local_response(502, "upstream connect error: refused", "rid-1", true, out);
  auto body_at = out.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  std::string body = out.substr(body_at + 4);
  EXPECT_EQ(body, "Bad Gateway: upstream connect error: refused\nrequest_id: rid-1\n");
  EXPECT_NE(out.find("content-length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(out.find("x-request-id: rid-1\r\n"), std::string::npos);
  EXPECT_NE(out.find("connection: close\r\n"), std::string::npos);
}

}  // namespace
}  // namespace pillion::http
