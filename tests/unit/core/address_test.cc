#include "core/address.h"

#include <gtest/gtest.h>

namespace pillion::core {
namespace {

TEST(ParseHostPort, Ipv4AndNames) {
  EXPECT_EQ(parse_host_port("127.0.0.1:7000"), (HostPort{"127.0.0.1", 7000}));
  EXPECT_EQ(parse_host_port("payments:8080"), (HostPort{"payments", 8080}));
  EXPECT_EQ(parse_host_port("h:65535"), (HostPort{"h", 65535}));
  EXPECT_EQ(parse_host_port("h:0"), (HostPort{"h", 0}));
}

TEST(ParseHostPort, Ipv6InBrackets) {
  EXPECT_EQ(parse_host_port("[::1]:80"), (HostPort{"::1", 80}));
  EXPECT_EQ(parse_host_port("[fe80::1]:8080"), (HostPort{"fe80::1", 8080}));
}

TEST(ParseHostPort, BadPorts) {
  EXPECT_FALSE(parse_host_port("h:65536"));
  EXPECT_FALSE(parse_host_port("h:99999999999"));
  EXPECT_FALSE(parse_host_port("h:-1"));
  EXPECT_FALSE(parse_host_port("h:80x"));
  EXPECT_FALSE(parse_host_port("h:http"));
  EXPECT_FALSE(parse_host_port("h: 80"));
}

TEST(ParseHostPort, MissingParts) {
  EXPECT_FALSE(parse_host_port(""));
  EXPECT_FALSE(parse_host_port("localhost"));
  EXPECT_FALSE(parse_host_port("h:"));
  EXPECT_FALSE(parse_host_port(":80"));
  EXPECT_FALSE(parse_host_port("[::1]"));
  EXPECT_FALSE(parse_host_port("[::1]80"));
  EXPECT_FALSE(parse_host_port("[::1"));
  EXPECT_FALSE(parse_host_port("[]:80"));
  EXPECT_FALSE(parse_host_port("::1:80"));  // IPv6 needs brackets
}

TEST(HostPortToString, AddsBracketsForIpv6) {
  EXPECT_EQ((HostPort{"127.0.0.1", 80}).to_string(), "127.0.0.1:80");
  EXPECT_EQ((HostPort{"::1", 80}).to_string(), "[::1]:80");
  EXPECT_EQ(parse_host_port("[::1]:80")->to_string(), "[::1]:80");
}

TEST(ParseHttpUrl, Accepts) {
  EXPECT_EQ(parse_http_url("http://127.0.0.1:8080"), (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(parse_http_url("http://127.0.0.1:8080/"), (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(parse_http_url("http://backend"), (HostPort{"backend", 80}));
  EXPECT_EQ(parse_http_url("http://backend/"), (HostPort{"backend", 80}));
  EXPECT_EQ(parse_http_url("http://[::1]:8080"), (HostPort{"::1", 8080}));
  EXPECT_EQ(parse_http_url("http://[::1]"), (HostPort{"::1", 80}));
}

TEST(ParseHttpUrl, Rejects) {
  EXPECT_FALSE(parse_http_url(""));
  EXPECT_FALSE(parse_http_url("127.0.0.1:8080"));
  EXPECT_FALSE(parse_http_url("https://h:443"));
  EXPECT_FALSE(parse_http_url("http://"));
  EXPECT_FALSE(parse_http_url("http:///"));
  EXPECT_FALSE(parse_http_url("http://h/path"));
  EXPECT_FALSE(parse_http_url("http://h:99999"));
  EXPECT_FALSE(parse_http_url("http://h:"));
}

}  // namespace
}  // namespace pillion::core
