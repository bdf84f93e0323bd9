#pragma once
// Timestamps of log lines: parsed with a strftime-like layout in a configured time zone and
// written as RFC 3339 UTC. Hand-written because strptime is locale-bound and slow and GCC 12's
// libstdc++ has neither std::chrono::parse nor the time-zone database.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pillion::logs {

struct Timestamp {
  int64_t seconds = 0;      // since the Unix epoch, UTC
  uint32_t nanos = 0;       // fraction of the second
  int fraction_digits = 0;  // digits the input had (kept in the output: ms stay ms)
};

class TimeParser {
 public:
  // layout: %Y %m %d %e %H %M %S %f %z %b %T %F and literal characters; a space matches one or
  // more spaces; fractional seconds after %S are read even when the layout does not name them.
  // Named layouts: "rfc3339" (also "iso8601"). zone: "UTC", "Local", "+02:00" or an IANA name
  // (from /usr/share/zoneinfo); ignored for inputs that carry an offset (%z). nullopt + error
  // when either is invalid.
  static std::optional<TimeParser> create(std::string_view layout, std::string_view zone,
                                          std::string& error);

  // Parses a timestamp at the start of `text`; returns the bytes consumed, 0 when it does not
  // match the layout.
  size_t parse(std::string_view text, Timestamp& out) const;

  // True when equal input bytes followed by a space always parse alike, so a caller may reuse
  // the previous result (false when the layout itself ends in spaces).
  bool prefix_cacheable() const { return steps_.back().op != Op::kSpaces; }

 private:
  enum class Op : uint8_t {
    kLiteral,
    kSpaces,
    kYear,
    kMonth,
    kMonthName,
    kDay,
    kDaySpace,
    kHour,
    kMinute,
    kSecond,
    kFraction,
    kOffset,
  };
  struct Step {
    Op op;
    char literal;
  };
  enum class Zone : uint8_t { kUtc, kFixed, kSystem };

  int64_t local_to_utc(int64_t local_seconds) const;

  std::vector<Step> steps_;
  Zone zone_ = Zone::kUtc;
  int64_t fixed_offset_ = 0;  // seconds east of UTC, for Zone::kFixed
  // One-entry cache of the zone offset for the local hour last seen (mktime is slow).
  mutable int64_t cached_hour_ = INT64_MIN;
  mutable int64_t cached_offset_ = 0;
};

// Appends "2024-01-15T14:32:01Z" (with the input's fraction digits, if any).
void append_rfc3339(std::string& out, const Timestamp& ts);

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

}  // namespace pillion::logs
