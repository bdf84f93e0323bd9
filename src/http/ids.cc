#include "http/ids.h"

#include <random>

namespace pillion::http {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// "000102...ff": two hex chars per byte value, so formatting is one copy per byte.
struct HexPairs {
  char pairs[512];
  constexpr HexPairs() : pairs() {
    for (int i = 0; i < 256; ++i) {
      pairs[2 * i] = kHex[i >> 4];
      pairs[2 * i + 1] = kHex[i & 0xF];
    }
  }
};
constexpr HexPairs kHexPairs;

void put_hex_byte(uint8_t byte, char* out) {
  out[0] = kHexPairs.pairs[2 * byte];
  out[1] = kHexPairs.pairs[2 * byte + 1];
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;  // W3C requires lowercase
}

}  // namespace

bool is_hex_not_zero(std::string_view text) {
  bool non_zero = false;
  for (char c : text) {
    int v = hex_value(c);
    if (v < 0) {
      return false;
    }
    non_zero |= v != 0;
  }
  return non_zero;
}

IdGenerator::IdGenerator() {
  std::random_device device;
  for (auto& word : state_) {
    word = (static_cast<uint64_t>(device()) << 32) ^ device();
  }
  if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) {
    state_[0] = 1;
  }
}

uint64_t IdGenerator::next() {
  uint64_t result = rotl(state_[1] * 5, 7) * 9;
  uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

void IdGenerator::uuid_v4(char* out) {
  uint64_t hi = next();
  uint64_t lo = next();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;        // version 4
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);  // variant 10xx
  uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    bytes[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  size_t pos = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out[pos++] = '-';
    }
    put_hex_byte(bytes[i], out + pos);
    pos += 2;
  }
}

void IdGenerator::hex(char* out, size_t bytes) {
  uint64_t any = 0;
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t word = next();
    any |= word;
    for (size_t j = 0; j < 8 && i + j < bytes; ++j) {
      put_hex_byte(static_cast<uint8_t>(word >> (8 * j)), out + 2 * (i + j));
    }
  }
  if (any == 0) {
    out[2 * bytes - 1] = '1';  // all-zero ids are invalid in W3C trace context
  }
}

IdGenerator& thread_id_generator() {
  thread_local IdGenerator generator;
  return generator;
}

std::optional<TraceContext> parse_traceparent(std::string_view value) {
  // Future versions may append fields after a '-'; version 00 must be exactly 55 chars.
  if (value.size() < kTraceparentLength || value[2] != '-' || value[35] != '-' ||
      value[52] != '-') {
    return std::nullopt;
  }
  std::string_view version = value.substr(0, 2);
  if (hex_value(version[0]) < 0 || hex_value(version[1]) < 0 || version == "ff") {
    return std::nullopt;
  }
  if (version == "00" && value.size() != kTraceparentLength) {
    return std::nullopt;
  }
  if (value.size() > kTraceparentLength && value[kTraceparentLength] != '-') {
    return std::nullopt;
  }
  std::string_view trace_id = value.substr(3, 32);
  std::string_view parent_id = value.substr(36, 16);
  std::string_view flags = value.substr(53, 2);
  if (!is_hex_not_zero(trace_id) || !is_hex_not_zero(parent_id) || hex_value(flags[0]) < 0 ||
      hex_value(flags[1]) < 0) {
    return std::nullopt;
  }
  TraceContext context;
  std::copy(trace_id.begin(), trace_id.end(), context.trace_id.begin());
  std::copy(parent_id.begin(), parent_id.end(), context.span_id.begin());
  context.flags = static_cast<uint8_t>(hex_value(flags[0]) * 16 + hex_value(flags[1]));
  return context;
}

TraceContext next_hop(const std::optional<TraceContext>& incoming, double sampling,
                      IdGenerator& ids) {
  TraceContext context;
  if (incoming) {
    context.trace_id = incoming->trace_id;
    context.flags = incoming->flags & 0x01;  // only the sampled flag is defined
  } else {
    ids.hex(context.trace_id.data(), 16);
    context.flags = ids.next_unit() < sampling ? 0x01 : 0x00;
  }
  ids.hex(context.span_id.data(), 8);
  return context;
}

void format_traceparent(const TraceContext& context, char* out) {
  out[0] = '0';
  out[1] = '0';
  out[2] = '-';
  std::copy(context.trace_id.begin(), context.trace_id.end(), out + 3);
  out[35] = '-';
  std::copy(context.span_id.begin(), context.span_id.end(), out + 36);
  out[52] = '-';
  out[53] = kHex[context.flags >> 4];
  out[54] = kHex[context.flags & 0xF];
}

}  // namespace pillion::http
