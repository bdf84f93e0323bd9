#include "tls/client_hello.h"

#include <algorithm>
#include <array>
#include <optional>

namespace pillion::tls {
namespace {

constexpr uint8_t kHandshakeRecord = 0x16;
constexpr uint8_t kClientHello = 0x01;
constexpr size_t kRecordHeader = 5;
constexpr size_t kHandshakeHeader = 4;
constexpr size_t kMaxRecordLength = 1 << 14;  // RFC 8446 §5.1: a plaintext record
constexpr uint16_t kServerName = 0;
constexpr uint16_t kAlpn = 16;

// Bounds-checked big-endian reads over a byte span; every read fails once past the end.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  size_t left() const { return bytes_.size() - pos_; }
  bool empty() const { return left() == 0; }

  bool u8(uint8_t& out) {
    if (left() < 1) {
      return false;
    }
    out = bytes_[pos_++];
    return true;
  }
  bool u16(uint16_t& out) {
    if (left() < 2) {
      return false;
    }
    out = static_cast<uint16_t>(bytes_[pos_] << 8 | bytes_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool skip(size_t n) {
    if (left() < n) {
      return false;
    }
    pos_ += n;
    return true;
  }
  bool sub(size_t n, Reader& out) {
    if (left() < n) {
      return false;
    }
    out = Reader(bytes_.subspan(pos_, n));
    pos_ += n;
    return true;
  }
  // A vector with a 1- or 2-byte length prefix.
  bool vec8(Reader& out) {
    uint8_t n = 0;
    return u8(n) && sub(n, out);
  }
  bool vec16(Reader& out) {
    uint16_t n = 0;
    return u16(n) && sub(n, out);
  }
  std::span<const uint8_t> rest() const { return bytes_.subspan(pos_); }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

bool is_host_char(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool parse_server_name(Reader data, std::string& sni) {
  Reader list(std::span<const uint8_t>{});
  if (!data.vec16(list) || !data.empty() || list.empty()) {
    return false;
  }
  while (!list.empty()) {
    uint8_t type = 0;
    Reader name(std::span<const uint8_t>{});
    if (!list.u8(type) || !list.vec16(name)) {
      return false;
    }
    if (type != 0 || !sni.empty()) {
      continue;  // only the first host_name entry counts
    }
    auto bytes = name.rest();
    if (bytes.empty() || bytes.size() > kMaxSniLength ||
        !std::all_of(bytes.begin(), bytes.end(), is_host_char)) {
      continue;  // not a DNS name: reported as no SNI
    }
    sni.reserve(bytes.size());
    for (uint8_t c : bytes) {
      sni.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    }
  }
  return true;
}

bool parse_alpn(Reader data, std::vector<std::string>& alpn) {
  Reader list(std::span<const uint8_t>{});
  if (!data.vec16(list) || !data.empty() || list.empty()) {
    return false;
  }
  while (!list.empty()) {
    Reader name(std::span<const uint8_t>{});
    if (!list.vec8(name) || name.empty()) {
      return false;
    }
    auto bytes = name.rest();
    alpn.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return true;
}

// Parses the body of a ClientHello (after the 4-byte handshake header).
bool parse_body(Reader body, ClientHelloInfo& info) {
  Reader skipped(std::span<const uint8_t>{});
  uint16_t legacy_version = 0;
  if (!body.u16(legacy_version) || !body.skip(32)) {  // version, random
    return false;
  }
  if (!body.vec8(skipped) || skipped.left() > 32) {  // legacy_session_id
    return false;
  }
  if (!body.vec16(skipped) || skipped.empty() || skipped.left() % 2 != 0) {  // cipher_suites
    return false;
  }
  if (!body.vec8(skipped) || skipped.empty()) {  // legacy_compression_methods
    return false;
  }
  if (body.empty()) {
    return true;  // no extensions (TLS 1.2 and older may omit them)
  }
  Reader extensions(std::span<const uint8_t>{});
  if (!body.vec16(extensions) || !body.empty()) {
    return false;
  }
  std::vector<uint16_t> types;
  while (!extensions.empty()) {
    uint16_t type = 0;
    Reader data(std::span<const uint8_t>{});
    if (!extensions.u16(type) || !extensions.vec16(data)) {
      return false;
    }
    types.push_back(type);
    if (type == kServerName) {
      if (!parse_server_name(data, info.sni)) {
        return false;
      }
    } else if (type == kAlpn) {
      if (!parse_alpn(data, info.alpn)) {
        return false;
      }
    }
  }
  std::sort(types.begin(), types.end());
  if (std::adjacent_find(types.begin(), types.end()) != types.end()) {
    return false;  // RFC 8446 §4.2: at most one extension of each type
  }
  return true;
}

ClientHelloInfo malformed() {
  ClientHelloInfo info;
  info.is_tls = true;
  info.complete = true;
  info.malformed = true;
  return info;
}

// A handshake record of version 3.x whose length is 1..2^14.
bool valid_record_header(std::span<const uint8_t> header) {
  size_t length = static_cast<size_t>(header[3]) << 8 | header[4];
  return header[0] == kHandshakeRecord && header[1] == 3 && length > 0 &&
         length <= kMaxRecordLength;
}

}  // namespace

ClientHelloInfo parse_client_hello(std::span<const uint8_t> bytes) {
  ClientHelloInfo info;
  if (bytes.size() > kMaxClientHelloBytes) {
    bytes = bytes.first(kMaxClientHelloBytes);
  }
  if (bytes.empty()) {
    return info;  // need more
  }
  // Decide TLS or not from the first record header and the first handshake byte, byte by byte,
  // so a plaintext peer is told apart as early as possible.
  std::array<uint8_t, kRecordHeader + 1> prefix{};
  size_t known = std::min(bytes.size(), prefix.size());
  std::copy_n(bytes.begin(), known, prefix.begin());
  bool plausible = prefix[0] == kHandshakeRecord && (known < 2 || prefix[1] == 3);
  if (known >= 5) {
    size_t length = static_cast<size_t>(prefix[3]) << 8 | prefix[4];
    plausible = plausible && length > 0 && length <= kMaxRecordLength;
  }
  if (known >= 6) {
    plausible = plausible && prefix[5] == kClientHello;
  }
  if (!plausible) {
    info.complete = true;
    return info;  // plaintext
  }
  info.is_tls = true;

  // Reassemble the handshake message from the records' fragments.
  std::vector<uint8_t> message;
  std::optional<size_t> message_size;  // header + body, once the header is known
  size_t pos = 0;
  while (true) {
    if (bytes.size() - pos < kRecordHeader) {
      if (bytes.size() == kMaxClientHelloBytes) {
        return malformed();  // does not fit in the cap
      }
      return info;  // need more
    }
    auto header = bytes.subspan(pos, kRecordHeader);
    if (!valid_record_header(header)) {
      return malformed();  // only a later record can fail here; the first was checked above
    }
    size_t length = static_cast<size_t>(header[3]) << 8 | header[4];
    pos += kRecordHeader;
    size_t available = std::min(length, bytes.size() - pos);
    auto fragment = bytes.subspan(pos, available);
    size_t wanted = message_size ? *message_size - message.size() : fragment.size();
    message.insert(
        message.end(), fragment.begin(),
        fragment.begin() + static_cast<std::ptrdiff_t>(std::min(wanted, fragment.size())));
    if (!message_size && message.size() >= kHandshakeHeader) {
      size_t body =
          static_cast<size_t>(message[1]) << 16 | static_cast<size_t>(message[2]) << 8 | message[3];
      if (kHandshakeHeader + body > kMaxClientHelloBytes) {
        return malformed();  // can never fit in the cap
      }
      message_size = kHandshakeHeader + body;
      if (message.size() > *message_size) {
        message.resize(*message_size);  // other handshake data after it in the same record
      }
    }
    if (message_size && message.size() == *message_size) {
      break;
    }
    if (available < length) {
      if (bytes.size() == kMaxClientHelloBytes) {
        return malformed();
      }
      return info;  // the record is cut short: need more
    }
    pos += length;
  }
  info.complete = true;
  if (!parse_body(Reader(std::span<const uint8_t>(message).subspan(kHandshakeHeader)), info)) {
    return malformed();
  }
  return info;
}

}  // namespace pillion::tls
