#pragma once
// Request ids (UUID v4) and W3C trace context, generated from a per-thread PRNG: no lock, no
// syscall, no allocation per request.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pillion::http {

// xoshiro256** seeded once per thread from the OS; not for secrets, only for unique ids.
class IdGenerator {
 public:
  IdGenerator();
  uint64_t next();
  double next_unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // Writes a lowercase UUID v4 (36 chars).
  void uuid_v4(char* out);
  // Writes `bytes` random bytes as 2*bytes lowercase hex chars, never all zero.
  void hex(char* out, size_t bytes);

 private:
  uint64_t state_[4];
};

IdGenerator& thread_id_generator();

using RequestId = std::array<char, 36>;

// W3C traceparent: "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>".
struct TraceContext {
  std::array<char, 32> trace_id;
  std::array<char, 16> span_id;
  uint8_t flags = 0;  // bit 0: sampled
};
constexpr size_t kTraceparentLength = 55;

// True when `text` is non-empty lowercase hex and not all zeros: the rule for W3C and B3 ids.
bool is_hex_not_zero(std::string_view text);

// Parses a traceparent header; nullopt when invalid (all-zero ids, bad hex, version ff).
std::optional<TraceContext> parse_traceparent(std::string_view value);

// The context to send upstream: the caller's trace with a new span id for this hop, or a new
// trace (sampled with probability `sampling`) when the caller sent none or an invalid one.
TraceContext next_hop(const std::optional<TraceContext>& incoming, double sampling,
                      IdGenerator& ids);

void format_traceparent(const TraceContext& context, char* out);  // 55 chars

}  // namespace pillion::http
