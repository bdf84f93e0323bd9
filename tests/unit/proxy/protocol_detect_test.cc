#include "proxy/protocol_detect.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::proxy {
namespace {

TEST(DetectProtocol, HttpMethodsFollowedBySpace) {
  EXPECT_EQ(detect_protocol("GET / HTTP/1.1\r\n"), Protocol::kHttp1);
  EXPECT_EQ(detect_protocol("POST "), Protocol::kHttp1);
  EXPECT_EQ(detect_protocol("OPTIONS * HTTP/1.1"), Protocol::kHttp1);
  EXPECT_EQ(detect_protocol("PROPFIND /x HTTP/1.1"), Protocol::kHttp1);
}

TEST(DetectProtocol, WaitsWhileBytesCouldStillBeAMethodOrPreface) {
  EXPECT_EQ(detect_protocol(""), Protocol::kNeedMore);
  EXPECT_EQ(detect_protocol("G"), Protocol::kNeedMore);
  EXPECT_EQ(detect_protocol("GET"), Protocol::kNeedMore);
  EXPECT_EQ(detect_protocol("P"), Protocol::kNeedMore);  // POST, PUT, PATCH or PRI
  EXPECT_EQ(detect_protocol("PRI * HT"), Protocol::kNeedMore);
  EXPECT_EQ(detect_protocol("\x16"), Protocol::kNeedMore);  // TLS needs its version byte
}

TEST(DetectProtocol, Http2PrefaceAndTls) {
  EXPECT_EQ(detect_protocol("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Protocol::kHttp2);
  EXPECT_EQ(detect_protocol(std::string("\x16\x03\x01\x02\x00", 5)), Protocol::kTls);
  EXPECT_EQ(detect_protocol(std::string("\x16\x01", 2)), Protocol::kOpaque);
}

TEST(DetectProtocol, EverythingElseIsOpaque) {
  // Redis RESP, the PostgreSQL startup message, lower-case "get", a method without a space.
  EXPECT_EQ(detect_protocol("*1\r\n$4\r\nPING\r\n"), Protocol::kOpaque);
  EXPECT_EQ(detect_protocol(std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8)), Protocol::kOpaque);
  EXPECT_EQ(detect_protocol("get / HTTP/1.1"), Protocol::kOpaque);
  EXPECT_EQ(detect_protocol("GETX"), Protocol::kOpaque);
  EXPECT_EQ(detect_protocol("PRI * HTTP/1.1"), Protocol::kOpaque);
}

TEST(DetectProtocol, NamesForTheAccessLog) {
  EXPECT_EQ(protocol_name(Protocol::kOpaque), "tcp");
  EXPECT_EQ(protocol_name(Protocol::kTls), "tls");
  EXPECT_EQ(protocol_name(Protocol::kHttp2), "h2c");
  EXPECT_EQ(protocol_name(Protocol::kHttp1), "http/1.1");
}

}  // namespace
}  // namespace pillion::proxy
