#pragma once
// Exponential backoff with jitter, and a sleep that wakes up early when asked to stop.
#include <atomic>
#include <chrono>
#include <cstdint>

#include "logs/config.h"

namespace pillion::logs {

// Delay before retry number `attempt` (1-based): initial * 2^(attempt-1), capped, with the
// upper half randomized so many adapters do not retry in lockstep.
Millis backoff_delay(const RetryConfig& retry, uint64_t attempt);

// Sleeps `delay` in small steps; returns false when `stop` became true.
bool sleep_unless_stopped(Millis delay, const std::atomic<bool>& stop);

}  // namespace pillion::logs
