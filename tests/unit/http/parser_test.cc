#include "http/parser.h"

#include <gtest/gtest.h>

namespace pillion::http {
namespace {

TEST(RequestParser, ParsesHeadAndKeepsFieldsAsViews) {
  RequestParser parser(8192);
  parser.start();
  std::string input = "GET /a?b=1 HTTP/1.1\r\nHost: example\r\nX-One: 1\r\n\r\nNEXT";
  ASSERT_EQ(parser.parse_head(input), ParseStatus::kDone);
  const Head& head = parser.head();
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/a?b=1");
  EXPECT_EQ(head.version, 11);
  EXPECT_EQ(head.body, BodyKind::kNone);
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(head.head_bytes, input.size() - 4);
  EXPECT_EQ(head.find("x-one"), "1");
  EXPECT_EQ(head.find("HOST"), "example");
  EXPECT_FALSE(head.find("missing").has_value());
}

TEST(RequestParser, NeedsMoreUntilTheEmptyLine) {
  RequestParser parser(8192);
  parser.start();
  std::string input = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n";
  EXPECT_EQ(parser.parse_head(input), ParseStatus::kNeedMore);
  input += "\r\nhello";
  ASSERT_EQ(parser.parse_head(input), ParseStatus::kDone);
  EXPECT_EQ(parser.head().body, BodyKind::kContentLength);
  EXPECT_EQ(parser.head().content_length, 5u);
}

TEST(RequestParser, SurvivesTheBufferMovingBetweenReads) {
  RequestParser parser(8192);
  parser.start();
  std::string first = "GET /moved HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n";
  EXPECT_EQ(parser.parse_head(first), ParseStatus::kNeedMore);
  std::string second = "junk" + first + "X-B: 2\r\n\r\n";  // same message, other address
  ASSERT_EQ(parser.parse_head(std::string_view(second).substr(4)), ParseStatus::kDone);
  EXPECT_EQ(parser.head().target, "/moved");
  EXPECT_EQ(parser.head().find("x-a"), "1");
  EXPECT_EQ(parser.head().find("x-b"), "2");
  EXPECT_EQ(parser.head().head_bytes, second.size() - 4);
}

TEST(RequestParser, RejectsOversizedHead) {
  RequestParser parser(64);
  parser.start();
  std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + std::string(200, 'x') + "\r\n\r\n";
  EXPECT_EQ(parser.parse_head(input), ParseStatus::kTooLarge);
}

TEST(RequestParser, RejectsSmugglingShapes) {
  const std::string inputs[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
      std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 33),
      "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n  b\r\n\r\n",  // obs-fold
      "GET /\x01 HTTP/1.1\r\n\r\n",
  };
  for (const auto& input : inputs) {
    RequestParser parser(8192);
    parser.start();
    EXPECT_EQ(parser.parse_head(input), ParseStatus::kBadMessage) << input;
  }
}

TEST(RequestParser, ValidatesAndMeasuresChunkedBodyIncrementally) {
  RequestParser parser(8192);
  parser.start();
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_EQ(parser.parse_head(head), ParseStatus::kDone);
  EXPECT_EQ(parser.head().body, BodyKind::kChunked);
  std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET";
  std::string decoded;
  size_t offset = 0;
  uint64_t payload = 0;
  BodyProgress progress;
  // Three-byte reads: the parser must resume mid chunk-size line and mid data.
  std::string pending;
  while (offset < body.size() && progress.status != ParseStatus::kDone) {
    pending += body.substr(offset, 3);
    offset += 3;
    progress = parser.parse_chunked(pending, &decoded);
    ASSERT_NE(progress.status, ParseStatus::kBadMessage);
    payload += progress.payload;
    pending.erase(0, progress.consumed);
  }
  EXPECT_EQ(progress.status, ParseStatus::kDone);
  EXPECT_EQ(decoded, "hello world");
  EXPECT_EQ(payload, 11u);
}

TEST(RequestParser, SameBytesAgainAfterTheLastChunkWaitForMore) {
  // Found by request_path_fuzz: Beast reads the last-chunk line again without bounds checks
  // when it is offered no more bytes than it already scanned.
  RequestParser parser(8192);
  parser.start();
  ASSERT_EQ(parser.parse_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseStatus::kDone);
  for (int again = 0; again < 3; ++again) {
    auto progress = parser.parse_chunked("0\r\n");
    EXPECT_EQ(progress.status, ParseStatus::kNeedMore);
    EXPECT_EQ(progress.consumed, 0u);
  }
  auto progress = parser.parse_chunked("0\r\nX-T: 1\r\n\r\n");
  EXPECT_EQ(progress.status, ParseStatus::kDone);
  EXPECT_EQ(progress.consumed, 13u);
}

TEST(RequestParser, RejectsBadChunkSize) {
  RequestParser parser(8192);
  parser.start();
  ASSERT_EQ(parser.parse_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseStatus::kDone);
  EXPECT_EQ(parser.parse_chunked("zz\r\nhello\r\n").status, ParseStatus::kBadMessage);
}

TEST(ResponseParser, KnowsWhenThereIsNoBody) {
  ResponseParser parser(8192);
  parser.start(true);  // response to HEAD
  ASSERT_EQ(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), ParseStatus::kDone);
  EXPECT_EQ(parser.head().body, BodyKind::kNone);
  parser.start();
  ASSERT_EQ(parser.parse_head("HTTP/1.1 204 No Content\r\n\r\n"), ParseStatus::kDone);
  EXPECT_EQ(parser.head().body, BodyKind::kNone);
  parser.start();
  ASSERT_EQ(parser.parse_head("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
            ParseStatus::kDone);
  EXPECT_EQ(parser.head().body, BodyKind::kNone);
}

TEST(ResponseParser, CloseDelimitedBody) {
  ResponseParser parser(8192);
  parser.start();
  ASSERT_EQ(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc"),
            ParseStatus::kDone);
  EXPECT_EQ(parser.head().body, BodyKind::kUntilClose);
  EXPECT_EQ(parser.head().status, 200);
  EXPECT_EQ(parser.head().reason, "OK");
}

TEST(ResponseParser, Http10IsNotKeepAliveByDefault) {
  ResponseParser parser(8192);
  parser.start();
  ASSERT_EQ(parser.parse_head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), ParseStatus::kDone);
  EXPECT_FALSE(parser.head().keep_alive);
}

}  // namespace
}  // namespace pillion::http
