#include "logs/timestamp.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include <cstdlib>
#include <ctime>
#include <filesystem>

namespace pillion::logs {
namespace {

constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool digits(std::string_view text, size_t pos, size_t n, int& value) {
  if (pos + n > text.size()) {
    return false;
  }
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + (c - '0');
  }
  value = v;
  return true;
}

// "+02:00", "-0530", "Z" -> seconds east of UTC; returns the bytes consumed, 0 on mismatch.
size_t parse_offset(std::string_view text, size_t pos, int64_t& offset) {
  if (pos < text.size() && text[pos] == 'Z') {
    offset = 0;
    return 1;
  }
  if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) {
    return 0;
  }
  int h = 0;
  int m = 0;
  size_t n = 1;
  if (!digits(text, pos + n, 2, h)) {
    return 0;
  }
  n += 2;
  if (pos + n < text.size() && text[pos + n] == ':') {
    ++n;
  }
  if (!digits(text, pos + n, 2, m)) {
    return 0;
  }
  n += 2;
  if (h > 23 || m > 59) {
    return 0;
  }
  offset = (h * 3600 + m * 60) * (text[pos] == '-' ? -1 : 1);
  return n;
}

}  // namespace

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<TimeParser> TimeParser::create(std::string_view layout, std::string_view zone,
                                             std::string& error) {
  TimeParser parser;
  std::string expanded;
  if (layout == "rfc3339" || layout == "iso8601") {
    expanded = "%Y-%m-%dT%H:%M:%S%z";
  } else {
    expanded = layout;
  }
  for (size_t i = 0; i < expanded.size(); ++i) {
    const char c = expanded[i];
    if (c == ' ') {
      parser.steps_.push_back({Op::kSpaces, ' '});
      while (i + 1 < expanded.size() && expanded[i + 1] == ' ') {
        ++i;
      }
      continue;
    }
    if (c != '%') {
      parser.steps_.push_back({Op::kLiteral, c});
      continue;
    }
    if (++i == expanded.size()) {
      error = "time layout ends with a lone '%'";
      return std::nullopt;
    }
    // Directives that read one field; %T and %F expand to several.
    static constexpr std::pair<char, Op> kSingleFields[] = {
        {'Y', Op::kYear},     {'m', Op::kMonth},  {'b', Op::kMonthName}, {'d', Op::kDay},
        {'e', Op::kDaySpace}, {'H', Op::kHour},   {'M', Op::kMinute},    {'S', Op::kSecond},
        {'f', Op::kFraction}, {'z', Op::kOffset},
    };
    const char directive = expanded[i];
    auto single = std::find_if(std::begin(kSingleFields), std::end(kSingleFields),
                               [&](const auto& entry) { return entry.first == directive; });
    if (single != std::end(kSingleFields)) {
      parser.steps_.push_back({single->second, 0});
      continue;
    }
    switch (directive) {
      case '%':
        parser.steps_.push_back({Op::kLiteral, '%'});
        break;
      case 'T':
        for (Op op : {Op::kHour, Op::kMinute}) {
          parser.steps_.push_back({op, 0});
          parser.steps_.push_back({Op::kLiteral, ':'});
        }
        parser.steps_.push_back({Op::kSecond, 0});
        break;
      case 'F':
        parser.steps_.push_back({Op::kYear, 0});
        parser.steps_.push_back({Op::kLiteral, '-'});
        parser.steps_.push_back({Op::kMonth, 0});
        parser.steps_.push_back({Op::kLiteral, '-'});
        parser.steps_.push_back({Op::kDay, 0});
        break;
      default:
        error = std::string("time layout: unsupported directive %") + expanded[i] +
                " (supported: %Y %m %d %e %H %M %S %f %z %b %T %F)";
        return std::nullopt;
    }
  }
  if (parser.steps_.empty()) {
    error = "time layout is empty";
    return std::nullopt;
  }
  if (zone.empty() || zone == "UTC" || zone == "utc" || zone == "Z") {
    parser.zone_ = Zone::kUtc;
  } else if (zone == "Local" || zone == "local") {
    parser.zone_ = Zone::kSystem;
  } else if (zone[0] == '+' || zone[0] == '-') {
    const size_t n = parse_offset(zone, 0, parser.fixed_offset_);
    if (n == 0 || n != zone.size()) {
      error = "time zone: bad offset '" + std::string(zone) + "' (want +hh:mm)";
      return std::nullopt;
    }
    parser.zone_ = Zone::kFixed;
  } else {
    // IANA names go through the C library's TZ handling; the name must exist as a zone file.
    const std::filesystem::path file = std::filesystem::path("/usr/share/zoneinfo") / zone;
    std::error_code ec;
    if (zone.find("..") != std::string_view::npos || !std::filesystem::is_regular_file(file, ec)) {
      error = "time zone: unknown zone '" + std::string(zone) + "' (not in /usr/share/zoneinfo)";
      return std::nullopt;
    }
    setenv("TZ", std::string(zone).c_str(), 1);
    tzset();
    parser.zone_ = Zone::kSystem;
  }
  return parser;
}

int64_t TimeParser::local_to_utc(int64_t local) const {
  switch (zone_) {
    case Zone::kUtc:
      return local;
    case Zone::kFixed:
      return local - fixed_offset_;
    case Zone::kSystem:
      break;
  }
  const int64_t hour = local / 3600 - (local % 3600 < 0);
  if (hour != cached_hour_) {
    const int64_t start = hour * 3600;
    std::tm tm{};
    const int64_t days = start / 86400 - (start % 86400 < 0);
    const int64_t secs = start - days * 86400;
    // civil date of `days` (inverse of days_from_civil)
    const int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
    tm.tm_year = static_cast<int>(y - 1900);
    tm.tm_mon = static_cast<int>(m - 1);
    tm.tm_mday = static_cast<int>(d);
    tm.tm_hour = static_cast<int>(secs / 3600);
    tm.tm_isdst = -1;
    const time_t utc = std::mktime(&tm);
    cached_hour_ = hour;
    cached_offset_ = utc == static_cast<time_t>(-1) ? 0 : start - static_cast<int64_t>(utc);
  }
  return local - cached_offset_;
}

size_t TimeParser::parse(std::string_view text, Timestamp& out) const {
  int year = 1970;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  uint32_t nanos = 0;
  int fraction_digits = 0;
  bool has_offset = false;
  int64_t offset = 0;
  size_t pos = 0;

  auto read_fraction = [&]() {
    size_t n = 0;
    uint32_t value = 0;
    while (pos + n < text.size() && text[pos + n] >= '0' && text[pos + n] <= '9') {
      if (n < 9) {
        value = value * 10 + static_cast<uint32_t>(text[pos + n] - '0');
      }
      ++n;
    }
    if (n == 0) {
      return false;
    }
    fraction_digits = static_cast<int>(n < 9 ? n : 9);
    for (int k = fraction_digits; k < 9; ++k) {
      value *= 10;
    }
    nanos = value;
    pos += n;
    return true;
  };

  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step step = steps_[s];
    switch (step.op) {
      case Op::kLiteral:
        if (pos >= text.size() || text[pos] != step.literal) {
          return 0;
        }
        ++pos;
        break;
      case Op::kSpaces:
        if (pos >= text.size() || text[pos] != ' ') {
          return 0;
        }
        while (pos < text.size() && text[pos] == ' ') {
          ++pos;
        }
        break;
      case Op::kYear:
        if (!digits(text, pos, 4, year)) {
          return 0;
        }
        pos += 4;
        break;
      case Op::kMonth:
        if (!digits(text, pos, 2, month) || month < 1 || month > 12) {
          return 0;
        }
        pos += 2;
        break;
      case Op::kMonthName: {
        if (pos + 3 > text.size()) {
          return 0;
        }
        month = 0;
        for (int i = 0; i < 12; ++i) {
          if (text.substr(pos, 3) == kMonths[i]) {
            month = i + 1;
          }
        }
        if (month == 0) {
          return 0;
        }
        pos += 3;
        break;
      }
      case Op::kDaySpace:
        // " 5", "5" (after a space the layout already consumed) or "15".
        if (pos < text.size() && text[pos] == ' ') {
          ++pos;
        }
        if (!digits(text, pos, 2, day) && !digits(text, pos, 1, day)) {
          return 0;
        }
        pos += day >= 10 || (pos + 1 < text.size() && text[pos] == '0') ? 2 : 1;
        if (day < 1 || day > 31) {
          return 0;
        }
        break;
      case Op::kDay:
        if (!digits(text, pos, 2, day) || day < 1 || day > 31) {
          return 0;
        }
        pos += 2;
        break;
      case Op::kHour:
        if (!digits(text, pos, 2, hour) || hour > 23) {
          return 0;
        }
        pos += 2;
        break;
      case Op::kMinute:
        if (!digits(text, pos, 2, minute) || minute > 59) {
          return 0;
        }
        pos += 2;
        break;
      case Op::kSecond: {
        if (!digits(text, pos, 2, second) || second > 60) {
          return 0;
        }
        pos += 2;
        // Read an unnamed fraction unless the layout itself continues with that separator.
        const bool layout_has_it = s + 1 < steps_.size() && steps_[s + 1].op == Op::kLiteral &&
                                   (steps_[s + 1].literal == '.' || steps_[s + 1].literal == ',');
        if (!layout_has_it && pos + 1 < text.size() && (text[pos] == '.' || text[pos] == ',') &&
            text[pos + 1] >= '0' && text[pos + 1] <= '9') {
          ++pos;
          read_fraction();
        }
        break;
      }
      case Op::kFraction:
        if (!read_fraction()) {
          return 0;
        }
        break;
      case Op::kOffset: {
        const size_t n = parse_offset(text, pos, offset);
        if (n == 0) {
          return 0;
        }
        has_offset = true;
        pos += n;
        break;
      }
    }
  }
  const int64_t local =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second;
  out.seconds = has_offset ? local - offset : local_to_utc(local);
  out.nanos = nanos;
  out.fraction_digits = fraction_digits;
  return pos;
}

void append_rfc3339(std::string& out, const Timestamp& ts) {
  const int64_t days = ts.seconds / 86400 - (ts.seconds % 86400 < 0);
  const int64_t secs = ts.seconds - days * 86400;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
  if (y < 0) {
    y = 0;  // RFC 3339 has no negative years; such inputs are nonsense anyway
  }
  char buf[32];
  auto put2 = [](char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  };
  const auto yy = static_cast<unsigned>(y % 10000);
  buf[0] = static_cast<char>('0' + yy / 1000);
  buf[1] = static_cast<char>('0' + yy / 100 % 10);
  buf[2] = static_cast<char>('0' + yy / 10 % 10);
  buf[3] = static_cast<char>('0' + yy % 10);
  buf[4] = '-';
  put2(buf + 5, m);
  buf[7] = '-';
  put2(buf + 8, d);
  buf[10] = 'T';
  put2(buf + 11, static_cast<unsigned>(secs / 3600));
  buf[13] = ':';
  put2(buf + 14, static_cast<unsigned>(secs / 60 % 60));
  buf[16] = ':';
  put2(buf + 17, static_cast<unsigned>(secs % 60));
  size_t n = 19;
  if (ts.fraction_digits > 0) {
    buf[n++] = '.';
    uint32_t v = ts.nanos;
    char frac[9];
    for (int i = 8; i >= 0; --i) {
      frac[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    for (int i = 0; i < ts.fraction_digits; ++i) {
      buf[n++] = frac[i];
    }
  }
  buf[n++] = 'Z';
  out.append(buf, n);
}

}  // namespace pillion::logs
