#include "core/duration.h"

#include <charconv>
#include <limits>

namespace pillion::core {

std::optional<Duration> parse_duration(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end == text.data() || value < 0) {
    return std::nullopt;
  }
  std::string_view unit(end, text.data() + text.size() - end);
  long long micros_per_unit = 0;
  if (unit == "us") {
    micros_per_unit = 1;
  } else if (unit == "ms") {
    micros_per_unit = 1000;
  } else if (unit == "s") {
    micros_per_unit = 1000 * 1000;
  } else if (unit == "m") {
    micros_per_unit = 60LL * 1000 * 1000;
  } else if (unit == "h") {
    micros_per_unit = 3600LL * 1000 * 1000;
  } else {
    return std::nullopt;
  }
  if (value > std::numeric_limits<long long>::max() / micros_per_unit) {
    return std::nullopt;
  }
  return Duration(value * micros_per_unit);
}

std::string format_duration(Duration duration) {
  auto us = duration.count();
  if (us % 1000 != 0) {
    return std::to_string(us) + "us";
  }
  if (us % 1000000 != 0) {
    return std::to_string(us / 1000) + "ms";
  }
  return std::to_string(us / 1000000) + "s";
}

}  // namespace pillion::core
