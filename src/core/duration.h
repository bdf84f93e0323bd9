#pragma once
// Durations as users write them in config and flags: "250ms", "2s", "1m", "1h", "500us".
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pillion::core {

using Duration = std::chrono::microseconds;

std::optional<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration duration);

}  // namespace pillion::core
