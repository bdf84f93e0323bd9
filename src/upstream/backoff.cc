#include "upstream/backoff.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

namespace pillion::upstream {

core::Duration backoff_delay(uint32_t retry, core::Duration base, core::Duration max,
                             double unit_random) {
  int64_t cap = std::max<int64_t>(max.count(), 0);
  int64_t start = std::max<int64_t>(base.count(), 0);
  // base × 2^retry without overflow: past the cap, the cap is the ceiling.
  int64_t ceiling = retry >= 62 || start > (cap >> retry) ? cap : start << retry;
  ceiling = std::min(ceiling, cap);
  if (ceiling == 0) {
    return core::Duration{0};
  }
  double unit = unit_random >= 0 && unit_random < 1 ? unit_random : 0;
  auto delay = static_cast<int64_t>(unit * static_cast<double>(ceiling));
  return core::Duration{std::clamp<int64_t>(delay, 0, ceiling - 1)};
}

namespace {

using namespace std::chrono;

// A year is "don't retry" for any sensible retry_after_max; it also keeps the sum in range.
constexpr uint64_t kMaxRetryAfterSeconds = 365ULL * 24 * 3600;

constexpr std::array<std::string_view, 7> kShortDays = {"Mon", "Tue", "Wed", "Thu",
                                                        "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads the fixed-format pieces of an HTTP-date, left to right, failing on the first mismatch.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool done() const { return text_.empty(); }
  bool literal(std::string_view expected) {
    if (!text_.starts_with(expected)) {
      return false;
    }
    text_.remove_prefix(expected.size());
    return true;
  }
  template <size_t N>
  bool one_of(const std::array<std::string_view, N>& words, unsigned* found = nullptr) {
    for (unsigned i = 0; i < N; ++i) {
      if (literal(words[i])) {
        if (found != nullptr) {
          *found = i;
        }
        return true;
      }
    }
    return false;
  }
  // Exactly `width` digits.
  bool number(size_t width, int& value) {
    if (text_.size() < width) {
      return false;
    }
    value = 0;
    for (size_t i = 0; i < width; ++i) {
      if (!is_digit(text_[i])) {
        return false;
      }
      value = value * 10 + (text_[i] - '0');
    }
    text_.remove_prefix(width);
    return true;
  }
  bool time_of_day(seconds& out) {
    int h = 0;
    int m = 0;
    int s = 0;
    if (!number(2, h) || !literal(":") || !number(2, m) || !literal(":") || !number(2, s) ||
        h > 23 || m > 59 || s > 60) {  // 60: a leap second
      return false;
    }
    out = hours(h) + minutes(m) + seconds(s);
    return true;
  }

 private:
  std::string_view text_;
};

std::optional<sys_seconds> make_date(int y, unsigned month_index, int d, seconds time) {
  year_month_day date{year(y), month(month_index + 1), day(static_cast<unsigned>(d))};
  if (!date.ok()) {
    return std::nullopt;
  }
  return sys_days(date) + time;
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<sys_seconds> imf_fixdate(std::string_view text) {
  Cursor in(text);
  unsigned month_index = 0;
  int d = 0;
  int y = 0;
  seconds time{};
  if (!in.one_of(kShortDays) || !in.literal(", ") || !in.number(2, d) || !in.literal(" ") ||
      !in.one_of(kMonths, &month_index) || !in.literal(" ") || !in.number(4, y) ||
      !in.literal(" ") || !in.time_of_day(time) || !in.literal(" GMT") || !in.done()) {
    return std::nullopt;
  }
  return make_date(y, month_index, d, time);
}

// "Sunday, 06-Nov-94 08:49:37 GMT" (obsolete).
std::optional<sys_seconds> rfc850_date(std::string_view text, int this_year) {
  Cursor in(text);
  unsigned month_index = 0;
  int d = 0;
  int yy = 0;
  seconds time{};
  if (!in.one_of(kLongDays) || !in.literal(", ") || !in.number(2, d) || !in.literal("-") ||
      !in.one_of(kMonths, &month_index) || !in.literal("-") || !in.number(2, yy) ||
      !in.literal(" ") || !in.time_of_day(time) || !in.literal(" GMT") || !in.done()) {
    return std::nullopt;
  }
  // RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the past century.
  int y = this_year - this_year % 100 + yy;
  if (y > this_year + 50) {
    y -= 100;
  }
  return make_date(y, month_index, d, time);
}

// "Sun Nov  6 08:49:37 1994" (obsolete; the day is padded with a space).
std::optional<sys_seconds> asctime_date(std::string_view text) {
  Cursor in(text);
  unsigned month_index = 0;
  int d = 0;
  int y = 0;
  seconds time{};
  if (!in.one_of(kShortDays) || !in.literal(" ") || !in.one_of(kMonths, &month_index) ||
      !in.literal(" ") || !(in.literal(" ") ? in.number(1, d) : in.number(2, d)) ||
      !in.literal(" ") || !in.time_of_day(time) || !in.literal(" ") || !in.number(4, y) ||
      !in.done()) {
    return std::nullopt;
  }
  return make_date(y, month_index, d, time);
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::optional<core::Duration> parse_retry_after(std::string_view value,
                                                system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) {
    return std::nullopt;
  }
  if (std::all_of(value.begin(), value.end(), is_digit)) {
    uint64_t total = 0;
    for (char c : value) {
      total = std::min(total * 10 + static_cast<uint64_t>(c - '0'), kMaxRetryAfterSeconds);
    }
    return duration_cast<core::Duration>(seconds(total));
  }
  int this_year = static_cast<int>(year_month_day(floor<days>(now)).year());
  auto date = imf_fixdate(value);
  if (!date) {
    date = rfc850_date(value, this_year);
  }
  if (!date) {
    date = asctime_date(value);
  }
  if (!date) {
    return std::nullopt;
  }
  if (*date <= now) {
    return core::Duration{0};
  }
  return std::min(duration_cast<core::Duration>(*date - now),
                  duration_cast<core::Duration>(seconds(kMaxRetryAfterSeconds)));
}

}  // namespace pillion::upstream
