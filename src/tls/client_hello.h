#pragma once
// A bounded TLS ClientHello reader for PERMISSIVE inbound ports, where TLS and plaintext share a
// port: peek at the first bytes of a connection, decide whether it is TLS, and read the SNI and
// the ALPN protocols offered (to tell mesh mTLS from application TLS) without consuming
// anything. Pure parsing: no I/O, no allocation beyond the result.
//
// The ClientHello may span several TLS records (RFC 8446 §5.1 allows fragmenting handshake
// messages); at most kMaxClientHelloBytes bytes of input (record headers included) are ever
// examined, so a caller never needs to buffer more than that.
//
// Results, as bytes arrive:
//   is_tls=false complete=false  no byte yet: read more.
//   is_tls=false complete=true   not TLS: the first byte is not a handshake record (0x16), the
//                                record version is not 3.x, the first record length is 0 or
//                                over 2^14, or the first handshake message is not a ClientHello.
//                                Treat the connection as plaintext.
//   is_tls=true  complete=false  a valid prefix of a TLS ClientHello: read more (up to the cap).
//   is_tls=true  complete=true   the ClientHello was read. sni/alpn are filled when it is well
//                                formed; when it is malformed (bad framing inside the message or
//                                in a later record, a duplicate extension) or does not fit in the
//                                cap, `malformed` is set and sni/alpn are empty: hand the bytes
//                                to the TLS stack, which rejects them with a proper alert.
// Once a verdict is complete, more bytes never change it.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pillion::tls {

inline constexpr size_t kMaxClientHelloBytes = 16 * 1024;
inline constexpr size_t kMaxSniLength = 255;

struct ClientHelloInfo {
  bool is_tls = false;
  bool complete = false;
  bool malformed = false;  // only with is_tls && complete; sni and alpn are then empty
  // server_name extension, host_name entry, lowercased; empty when absent or when it is not a
  // plausible DNS name (1..255 bytes of letters, digits, '.', '-', '_').
  std::string sni;
  // application_layer_protocol_negotiation names in the client's order (each 1..255 bytes, as
  // sent); empty when absent.
  std::vector<std::string> alpn;
};

ClientHelloInfo parse_client_hello(std::span<const uint8_t> bytes);

}  // namespace pillion::tls
