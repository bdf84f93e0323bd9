#pragma once
// A parsed HTTP/1 message head as views into the connection's read buffer. Views stay valid
// until the caller consumes or compacts that buffer; nothing here allocates per message once
// the field vector has grown to the size of the largest head seen on the connection.
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace pillion::http {

struct Field {
  std::string_view name;
  std::string_view value;
};

// Which framing carries the body that follows the head.
enum class BodyKind : uint8_t {
  kNone,           // no body (GET without length, 204, 304, HEAD response, 1xx)
  kContentLength,  // exactly content_length bytes
  kChunked,        // chunked transfer coding, validated by the parser
  kUntilClose,     // response body delimited by the upstream closing the connection
};

struct Head {
  // Request line (requests) or status line (responses).
  std::string_view method;  // requests
  std::string_view target;  // requests
  int status = 0;           // responses
  std::string_view reason;  // responses
  int version = 11;         // 10 or 11

  std::vector<Field> fields;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // what the sender asked for (Connection header and version)
  bool upgrade = false;    // Connection: upgrade with an Upgrade header
  size_t head_bytes = 0;   // length of the raw head including the empty line

  void clear() {
    method = target = reason = {};
    status = 0;
    version = 11;
    fields.clear();
    body = BodyKind::kNone;
    content_length = 0;
    keep_alive = true;
    upgrade = false;
    head_bytes = 0;
  }

  // First field with this (case-insensitive) name.
  std::optional<std::string_view> find(std::string_view name) const;
};

// ASCII case-insensitive equality (header names). Inline: it runs for every field.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x != y) {
      x = (x >= 'A' && x <= 'Z') ? static_cast<unsigned char>(x | 0x20) : x;
      y = (y >= 'A' && y <= 'Z') ? static_cast<unsigned char>(y | 0x20) : y;
      if (x != y) {
        return false;
      }
    }
  }
  return true;
}

// A Host header value: reg-name, IPv4 or [IPv6] with an optional port (RFC 3986 §3.2.2).
inline bool valid_host(std::string_view host) {
  if (host.empty()) {
    return true;  // allowed for targets without an authority
  }
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '[' || c == ']' ||
              c == '%' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
              c == '*' || c == '+' || c == ',' || c == ';' || c == '=';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace pillion::http
