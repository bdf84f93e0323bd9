#pragma once
// Tells what a captured connection speaks from its first bytes, without waiting for more than
// it needs: HTTP/1 is a known method and a space, HTTP/2 its connection preface, TLS a
// handshake record; anything else is opaque TCP.
#include <cstdint>
#include <string_view>

namespace pillion::proxy {

enum class Protocol : uint8_t {
  kNeedMore,  // the bytes so far are a prefix of something we recognise
  kHttp1,
  kHttp2,  // prior-knowledge cleartext HTTP/2 ("PRI * HTTP/2.0...")
  kTls,    // a TLS handshake record (ClientHello)
  kOpaque,
};

std::string_view protocol_name(Protocol protocol);

// Longest prefix detection ever needs; read at most this much before deciding.
inline constexpr size_t kDetectBytes = 24;

Protocol detect_protocol(std::string_view first_bytes);

}  // namespace pillion::proxy
