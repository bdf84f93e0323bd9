#include "bench/response_framer.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::bench {
namespace {

using State = ResponseFramer::State;

// Feeds `bytes` in pieces of `step` bytes, like reads would, keeping unconsumed bytes.
ResponseFramer::FeedResult feed_in_steps(ResponseFramer& f, const std::string& bytes, size_t step,
                                         size_t* total_consumed) {
  std::string pending;
  size_t consumed = 0;
  ResponseFramer::FeedResult r{State::kNeedMore, 0};
  for (size_t i = 0; i < bytes.size(); i += step) {
    pending += bytes.substr(i, step);
    r = f.feed(pending);
    consumed += r.consumed;
    pending.erase(0, r.consumed);
    if (r.state != State::kNeedMore) {
      break;
    }
  }
  *total_consumed = consumed;
  return r;
}

TEST(ResponseFramer, ContentLength) {
  ResponseFramer f;
  std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  auto r = f.feed(response);
  EXPECT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.consumed, response.size());
  EXPECT_EQ(f.status(), 200);
  EXPECT_EQ(f.body_bytes(), 5u);
  EXPECT_TRUE(f.keep_alive());
}

TEST(ResponseFramer, ContentLengthByteByByteLeavesTheNextResponse) {
  std::string first = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
  std::string second = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  for (size_t step : {1, 2, 7, 1000}) {
    ResponseFramer f;
    size_t consumed = 0;
    auto r = feed_in_steps(f, first + second, step, &consumed);
    EXPECT_EQ(r.state, State::kDone) << step;
    EXPECT_EQ(consumed, first.size()) << step;
    EXPECT_EQ(f.status(), 404);
    f.start();
    r = f.feed(second);
    EXPECT_EQ(r.state, State::kDone);
    EXPECT_EQ(f.status(), 200);
    EXPECT_EQ(f.body_bytes(), 0u);
  }
}

TEST(ResponseFramer, Chunked) {
  std::string response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
  for (size_t step : {1, 3, 1000}) {
    ResponseFramer f;
    size_t consumed = 0;
    auto r = feed_in_steps(f, response + "HTTP/1.1", step, &consumed);
    EXPECT_EQ(r.state, State::kDone) << step;
    EXPECT_EQ(consumed, response.size()) << step;
    EXPECT_EQ(f.body_bytes(), 11u);
    EXPECT_TRUE(f.keep_alive());
  }
}

TEST(ResponseFramer, NoBodyForHeadAnd204) {
  ResponseFramer f;
  f.start(/*head_request=*/true);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n";
  auto r = f.feed(head);
  EXPECT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.consumed, head.size());
  f.start();
  r = f.feed("HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(r.state, State::kDone);
  EXPECT_EQ(f.status(), 204);
}

TEST(ResponseFramer, ReadUntilClose) {
  ResponseFramer f;
  auto r = f.feed("HTTP/1.1 200 OK\r\n\r\nsome body");
  EXPECT_EQ(r.state, State::kNeedMore);
  EXPECT_EQ(f.feed_eof(), State::kDone);
  EXPECT_EQ(f.body_bytes(), 9u);
  EXPECT_FALSE(f.keep_alive());
}

TEST(ResponseFramer, ConnectionCloseAndHttp10) {
  ResponseFramer f;
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").state,
            State::kDone);
  EXPECT_FALSE(f.keep_alive());
  f.start();
  EXPECT_EQ(f.feed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").state, State::kDone);
  EXPECT_FALSE(f.keep_alive());
}

TEST(ResponseFramer, Errors) {
  ResponseFramer f;
  EXPECT_EQ(f.feed("garbage\r\n\r\n").state, State::kError);
  f.start();
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").state, State::kNeedMore);
  EXPECT_EQ(f.feed_eof(), State::kError);
  f.start();
  EXPECT_EQ(f.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").state,
            State::kError);
}

}  // namespace
}  // namespace pillion::bench
