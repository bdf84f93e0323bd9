#include "tls/client_hello.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pillion::tls {
namespace {

using namespace std::string_view_literals;
using Bytes = std::vector<uint8_t>;

// Captured from `openssl s_client -servername x -alpn http/1.1,pillion-mtls` (OpenSSL 3.0,
// TLS 1.3): one record, one ClientHello.
const Bytes kHello = {
    0x16, 0x03, 0x01, 0x01, 0x4a, 0x01, 0x00, 0x01, 0x46, 0x03, 0x03, 0xdc, 0xa7, 0x2f, 0xcc, 0xce,
    0x80, 0x20, 0xef, 0x64, 0x36, 0x59, 0x1c, 0x02, 0xb6, 0xb2, 0xb4, 0xa0, 0x87, 0x5a, 0x99, 0x5e,
    0xec, 0xa3, 0x9b, 0xcb, 0x44, 0x06, 0x10, 0xb0, 0xe0, 0x27, 0xc3, 0x20, 0x13, 0x02, 0x4e, 0xcd,
    0x20, 0x29, 0x3e, 0xdc, 0x39, 0xdd, 0xd1, 0x39, 0xfb, 0x23, 0x81, 0xdc, 0x30, 0x93, 0xed, 0x2d,
    0xa3, 0x5e, 0xaf, 0x2e, 0x9a, 0xc2, 0x4b, 0xbc, 0xbe, 0xc6, 0xd1, 0xff, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xbf,
    0x00, 0x00, 0x00, 0x06, 0x00, 0x04, 0x00, 0x00, 0x01, 0x78, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00,
    0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19,
    0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00,
    0x00, 0x10, 0x00, 0x18, 0x00, 0x16, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x0c,
    0x70, 0x69, 0x6c, 0x6c, 0x69, 0x6f, 0x6e, 0x2d, 0x6d, 0x74, 0x6c, 0x73, 0x00, 0x16, 0x00, 0x00,
    0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03,
    0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06,
    0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02,
    0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00,
    0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x7a,
    0x4f, 0xe6, 0xae, 0xd5, 0xcf, 0x17, 0x4a, 0xef, 0x33, 0x0b, 0xe2, 0xd2, 0x17, 0x77, 0x72, 0x2c,
    0x3e, 0x31, 0x18, 0x1e, 0x42, 0x23, 0x89, 0xbf, 0x14, 0xe1, 0x10, 0x5b, 0x60, 0x15, 0x67,
};

// The same handshake message re-framed into records of at most `size` bytes of fragment.
Bytes split_into_records(const Bytes& hello, size_t size) {
  Bytes message(hello.begin() + 5, hello.end());
  Bytes out;
  for (size_t pos = 0; pos < message.size(); pos += size) {
    size_t n = std::min(size, message.size() - pos);
    out.insert(out.end(),
               {0x16, 0x03, 0x01, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n & 0xff)});
    out.insert(out.end(), message.begin() + static_cast<std::ptrdiff_t>(pos),
               message.begin() + static_cast<std::ptrdiff_t>(pos + n));
  }
  return out;
}

ClientHelloInfo parse(const Bytes& bytes) {
  return parse_client_hello(bytes);
}

ClientHelloInfo parse(std::string_view text) {
  return parse_client_hello(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

void expect_captured_hello(const ClientHelloInfo& info) {
  EXPECT_TRUE(info.is_tls);
  EXPECT_TRUE(info.complete);
  EXPECT_FALSE(info.malformed);
  EXPECT_EQ(info.sni, "x");
  EXPECT_EQ(info.alpn, (std::vector<std::string>{"http/1.1", "pillion-mtls"}));
}

// A minimal ClientHello built field by field, so single fields can be broken.
struct Builder {
  Bytes extensions;
  Bytes session_id;
  Bytes ciphers = {0x13, 0x01};
  Bytes compression = {0x00};
  bool with_extensions = true;

  Builder& extension(uint16_t type, const Bytes& data) {
    extensions.insert(
        extensions.end(),
        {static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type & 0xff),
         static_cast<uint8_t>(data.size() >> 8), static_cast<uint8_t>(data.size() & 0xff)});
    extensions.insert(extensions.end(), data.begin(), data.end());
    return *this;
  }
  static Bytes server_name(std::string_view host, uint8_t type = 0) {
    Bytes entry = {type, static_cast<uint8_t>(host.size() >> 8),
                   static_cast<uint8_t>(host.size() & 0xff)};
    entry.insert(entry.end(), host.begin(), host.end());
    Bytes out = {static_cast<uint8_t>(entry.size() >> 8), static_cast<uint8_t>(entry.size())};
    out.insert(out.end(), entry.begin(), entry.end());
    return out;
  }
  static Bytes alpn(std::initializer_list<std::string_view> names) {
    Bytes list;
    for (auto name : names) {
      list.push_back(static_cast<uint8_t>(name.size()));
      list.insert(list.end(), name.begin(), name.end());
    }
    Bytes out = {static_cast<uint8_t>(list.size() >> 8), static_cast<uint8_t>(list.size())};
    out.insert(out.end(), list.begin(), list.end());
    return out;
  }
  Bytes body() const {
    Bytes out = {0x03, 0x03};
    out.insert(out.end(), 32, 0xab);
    out.push_back(static_cast<uint8_t>(session_id.size()));
    out.insert(out.end(), session_id.begin(), session_id.end());
    out.insert(out.end(),
               {static_cast<uint8_t>(ciphers.size() >> 8), static_cast<uint8_t>(ciphers.size())});
    out.insert(out.end(), ciphers.begin(), ciphers.end());
    out.push_back(static_cast<uint8_t>(compression.size()));
    out.insert(out.end(), compression.begin(), compression.end());
    if (with_extensions) {
      out.insert(out.end(), {static_cast<uint8_t>(extensions.size() >> 8),
                             static_cast<uint8_t>(extensions.size())});
      out.insert(out.end(), extensions.begin(), extensions.end());
    }
    return out;
  }
  Bytes record() const {
    Bytes b = body();
    Bytes message = {0x01, static_cast<uint8_t>(b.size() >> 16),
                     static_cast<uint8_t>(b.size() >> 8), static_cast<uint8_t>(b.size())};
    message.insert(message.end(), b.begin(), b.end());
    Bytes out = {0x16, 0x03, 0x01, static_cast<uint8_t>(message.size() >> 8),
                 static_cast<uint8_t>(message.size())};
    out.insert(out.end(), message.begin(), message.end());
    return out;
  }
};

TEST(ClientHello, CapturedHello) {
  expect_captured_hello(parse(kHello));
}

TEST(ClientHello, TrailingBytesAreIgnored) {
  Bytes more = kHello;
  more.insert(more.end(), {0x14, 0x03, 0x03, 0x00, 0x01, 0x01});
  expect_captured_hello(parse(more));
}

TEST(ClientHello, SplitAcrossRecords) {
  for (size_t size : {1, 2, 3, 4, 5, 7, 50, 100, 200, 329}) {
    SCOPED_TRACE(size);
    expect_captured_hello(parse(split_into_records(kHello, size)));
  }
}

TEST(ClientHello, EveryTruncationNeedsMore) {
  for (const Bytes& hello :
       {kHello, split_into_records(kHello, 64), split_into_records(kHello, 3)}) {
    for (size_t length = 0; length < hello.size(); ++length) {
      SCOPED_TRACE(length);
      auto info = parse(Bytes(hello.begin(), hello.begin() + static_cast<std::ptrdiff_t>(length)));
      EXPECT_EQ(info.is_tls, length > 0);
      EXPECT_FALSE(info.complete);
      EXPECT_TRUE(info.sni.empty());
      EXPECT_TRUE(info.alpn.empty());
    }
  }
}

TEST(ClientHello, PlaintextIsToldApartEarly) {
  for (std::string_view text : {"G"sv, "GET / HTTP/1.1\r\n"sv, "PRI * HTTP/2.0\r\n"sv, "\x16\x02"sv,
                                "\x16\x03\x01\x00\x00"sv,      // empty record
                                "\x16\x03\x01\x40\x01"sv,      // record over 2^14
                                "\x16\x03\x01\x00\x10\x02"sv,  // ServerHello, not ClientHello
                                "\x15\x03\x01\x00\x02\x02\x28"sv}) {  // an alert
    SCOPED_TRACE(testing::PrintToString(text));
    auto info = parse(text);
    EXPECT_FALSE(info.is_tls);
    EXPECT_TRUE(info.complete);
  }
}

TEST(ClientHello, NothingYet) {
  auto info = parse(Bytes{});
  EXPECT_FALSE(info.is_tls);
  EXPECT_FALSE(info.complete);
}

TEST(ClientHello, BuiltHello) {
  Builder b;
  b.extension(0, Builder::server_name("Backend.Prod.svc"))
      .extension(16, Builder::alpn({"h2", "http/1.1"}))
      .extension(43, {0x02, 0x03, 0x04});
  auto info = parse(b.record());
  EXPECT_TRUE(info.complete);
  EXPECT_FALSE(info.malformed);
  EXPECT_EQ(info.sni, "backend.prod.svc");
  EXPECT_EQ(info.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
}

TEST(ClientHello, NoExtensionsAtAll) {
  Builder b;
  b.with_extensions = false;
  auto info = parse(b.record());
  EXPECT_TRUE(info.is_tls);
  EXPECT_TRUE(info.complete);
  EXPECT_FALSE(info.malformed);
  EXPECT_TRUE(info.sni.empty());
  EXPECT_TRUE(info.alpn.empty());
}

TEST(ClientHello, ImplausibleSniIsDroppedNotFatal) {
  for (std::string_view host : {"a b", "x\xff", "a/b"}) {
    Builder b;
    b.extension(0, Builder::server_name(host)).extension(16, Builder::alpn({"h2"}));
    auto info = parse(b.record());
    EXPECT_FALSE(info.malformed);
    EXPECT_TRUE(info.sni.empty());
    EXPECT_EQ(info.alpn, std::vector<std::string>{"h2"});
  }
  Builder long_name;
  long_name.extension(0, Builder::server_name(std::string(256, 'a')));
  EXPECT_TRUE(parse(long_name.record()).sni.empty());
  Builder max_name;
  max_name.extension(0, Builder::server_name(std::string(255, 'a')));
  EXPECT_EQ(parse(max_name.record()).sni.size(), 255u);
  Builder other_type;
  other_type.extension(0, Builder::server_name("x", 1));
  EXPECT_TRUE(parse(other_type.record()).sni.empty());
}

void expect_malformed(const Bytes& bytes) {
  auto info = parse(bytes);
  EXPECT_TRUE(info.is_tls);
  EXPECT_TRUE(info.complete);
  EXPECT_TRUE(info.malformed);
  EXPECT_TRUE(info.sni.empty());
  EXPECT_TRUE(info.alpn.empty());
}

TEST(ClientHello, MalformedBodies) {
  {
    Builder b;
    b.extension(0, Builder::server_name("a")).extension(0, Builder::server_name("b"));
    expect_malformed(b.record());  // duplicate extension
  }
  {
    Builder b;
    b.extension(16, Builder::alpn({"h2"})).extension(16, Builder::alpn({"x"}));
    expect_malformed(b.record());
  }
  {
    Builder b;
    b.extension(16, Builder::alpn({""}));
    expect_malformed(b.record());  // empty protocol name
  }
  {
    Builder b;
    b.extension(16, {0x00, 0x00});
    expect_malformed(b.record());  // empty ALPN list
  }
  {
    Builder b;
    b.extension(16, {0x00, 0x05, 0x02, 'h', '2'});
    expect_malformed(b.record());  // list longer than the extension
  }
  {
    Builder b;
    b.extension(0, {0x00, 0x04, 0x00, 0x00, 0x09, 'a'});
    expect_malformed(b.record());  // name longer than the list
  }
  {
    Builder b;
    b.session_id = Bytes(33, 1);
    expect_malformed(b.record());
  }
  {
    Builder b;
    b.ciphers = {0x13};
    expect_malformed(b.record());
  }
  {
    Builder b;
    b.ciphers = {};
    expect_malformed(b.record());
  }
  {
    Builder b;
    b.compression = {};
    expect_malformed(b.record());
  }
  {
    Builder b;
    b.extension(0, Builder::server_name("a"));
    Bytes bytes = b.record();
    bytes.push_back(0);  // a byte past the extensions, inside the message
    bytes[4] += 1;
    bytes[8] += 1;
    expect_malformed(bytes);
  }
}

TEST(ClientHello, MalformedLaterRecord) {
  Bytes bytes = split_into_records(kHello, 100);
  bytes[105] = 0x17;  // the second record is application data
  expect_malformed(bytes);
  bytes = split_into_records(kHello, 100);
  bytes[108] = 0x00;  // the second record is empty
  bytes[109] = 0x00;
  expect_malformed(bytes);
}

TEST(ClientHello, TooLargeForTheCap) {
  // A handshake length that can never fit.
  expect_malformed(Bytes{0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x40, 0x00});
  // A hello that needs more than the cap of record bytes (tiny records, lots of headers).
  Builder b;
  b.extension(21, Bytes(4000, 0));  // padding
  Bytes split = split_into_records(b.record(), 1);
  ASSERT_GT(split.size(), kMaxClientHelloBytes);
  expect_malformed(Bytes(split.begin(), split.begin() + kMaxClientHelloBytes));
  expect_malformed(split);
  EXPECT_FALSE(parse(Bytes(split.begin(), split.begin() + kMaxClientHelloBytes - 1)).complete);
}

TEST(ClientHello, VerdictNeverChangesOnceComplete) {
  Bytes hello = split_into_records(kHello, 40);
  for (size_t length = 0; length <= hello.size(); ++length) {
    auto info = parse(Bytes(hello.begin(), hello.begin() + static_cast<std::ptrdiff_t>(length)));
    if (info.complete) {
      EXPECT_EQ(length, hello.size());
    }
  }
}

TEST(ClientHello, Garbage) {
  uint32_t state = 12345;
  for (int round = 0; round < 2000; ++round) {
    Bytes bytes(state % 600);
    for (auto& byte : bytes) {
      state = state * 1103515245 + 12345;
      byte = static_cast<uint8_t>(state >> 16);
    }
    if (round % 2 == 0 && bytes.size() > 6) {
      bytes[0] = 0x16;  // get past the first checks half the time
      bytes[1] = 0x03;
      bytes[5] = 0x01;
    }
    auto info = parse(bytes);
    EXPECT_LE(info.sni.size(), kMaxSniLength);
    if (info.malformed) {
      EXPECT_TRUE(info.sni.empty() && info.alpn.empty());
    }
  }
}

}  // namespace
}  // namespace pillion::tls
