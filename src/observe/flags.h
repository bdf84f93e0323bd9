#pragma once
// Response flags (DESIGN.md §4): why a request did not get a plain upstream answer. They
// appear in the access log and as a metric label.
#include <cstdint>
#include <string>
#include <string_view>

namespace pillion::observe {

enum class Flag : uint8_t {
  kUpstreamConnectFailure,   // UF: connect refused or timed out
  kUpstreamReset,            // UR: upstream reset or closed before a complete response
  kUpstreamTimeout,          // UT: route timeout before the response head
  kStreamIdleTimeout,        // SI: no bytes moved for stream_idle
  kDownstreamProtocolError,  // DPE: malformed request, head too large
  kBodyTooLarge,             // BL: request body over the configured limit (413)
  kDownstreamDisconnect,     // DC: client went away mid-request
  kNoRoute,                  // NR: no route matched
  kUpstreamProtocolError,    // UPE: upstream sent malformed HTTP
  kRequestHeaderTimeout,     // RT: client too slow sending its head (408)
  kLocalReset,               // LR: the proxy itself ended the request (shutdown after drain)
  kRateLimited,              // RL: the route's local rate limit answered 429
  kFaultAbort,               // FI: fault injection answered instead of the upstream
  kFaultDelay,               // DI: fault injection delayed the request
  kUpstreamOverflow,         // UO: a circuit breaker of the cluster was full (503)
  kNoHealthyUpstream,        // UH: no endpoint of the cluster was healthy (503)
  kRetryLimitExceeded,       // URX: the last try failed and no retry was left (attempts, budget)
  kAccessDenied,             // AD: the peer's identity is not allowed here (403)
  kCount,
};

using Flags = uint32_t;

constexpr Flags flag_bit(Flag flag) {
  return Flags{1} << static_cast<int>(flag);
}
std::string_view flag_code(Flag flag);
// "UF,UT" or "-" when none; appended to `out`.
void append_flags(Flags flags, std::string& out);

}  // namespace pillion::observe
