#include "proxy/protocol_detect.h"

#include <array>

namespace pillion::proxy {

namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// RFC 9110 methods plus WebDAV's common ones; "PRI" is left to the HTTP/2 check.
constexpr std::array<std::string_view, 15> kMethods{
    "GET ",   "HEAD ",     "POST ",      "PUT ",   "DELETE ", "CONNECT ", "OPTIONS ", "TRACE ",
    "PATCH ", "PROPFIND ", "PROPPATCH ", "MKCOL ", "COPY ",   "MOVE ",    "LOCK "};

// kHttp1 when `bytes` starts with a method and a space, kNeedMore when it could still become
// one, else kOpaque.
Protocol match_method(std::string_view bytes) {
  bool could_become = false;
  for (auto method : kMethods) {
    if (bytes.starts_with(method)) {
      return Protocol::kHttp1;
    }
    if (method.starts_with(bytes)) {
      could_become = true;
    }
  }
  return could_become ? Protocol::kNeedMore : Protocol::kOpaque;
}

}  // namespace

std::string_view protocol_name(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp1:
      return "http/1.1";
    case Protocol::kHttp2:
      return "h2c";
    case Protocol::kTls:
      return "tls";
    case Protocol::kNeedMore:
    case Protocol::kOpaque:
      break;
  }
  return "tcp";
}

Protocol detect_protocol(std::string_view bytes) {
  if (bytes.empty()) {
    return Protocol::kNeedMore;
  }
  // TLS record: handshake (22), version 3.x (SSL 3.0 up to TLS 1.3's legacy 3.1).
  if (static_cast<uint8_t>(bytes[0]) == 0x16) {
    if (bytes.size() < 2) {
      return Protocol::kNeedMore;
    }
    return bytes[1] == 0x03 ? Protocol::kTls : Protocol::kOpaque;
  }
  auto preface = bytes.substr(0, kHttp2Preface.size());
  if (kHttp2Preface.starts_with(preface)) {
    return preface.size() == kHttp2Preface.size() ? Protocol::kHttp2 : Protocol::kNeedMore;
  }
  return match_method(bytes);
}

}  // namespace pillion::proxy
