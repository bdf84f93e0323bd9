#pragma once
// Retry timing: exponential backoff with full jitter, and the server's own Retry-After.
#include <chrono>
#include <optional>
#include <string_view>

#include "core/duration.h"

namespace pillion::upstream {

// The wait before retry number `retry` (0 for the first retry): a uniform draw in
// [0, min(max, base × 2^retry)) with `unit_random` in [0, 1) ("full jitter", as Envoy).
core::Duration backoff_delay(uint32_t retry, core::Duration base, core::Duration max,
                             double unit_random);

// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as a wait from `now`. A date
// in the past is zero; a malformed value is nullopt.
std::optional<core::Duration> parse_retry_after(std::string_view value,
                                                std::chrono::system_clock::time_point now);

}  // namespace pillion::upstream
