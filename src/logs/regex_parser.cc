#include "logs/regex_parser.h"

namespace pillion::logs {

std::vector<std::string> RegexParser::group_names(const std::string& pattern) {
  std::vector<std::string> names;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (in_class) {
      in_class = c != ']';
      continue;
    }
    if (c == '[') {
      in_class = true;
      continue;
    }
    if (c != '(' || i + 2 >= pattern.size() || pattern[i + 1] != '?') {
      continue;
    }
    size_t start = i + 2;
    char close = '>';
    if (pattern[start] == 'P' && start + 1 < pattern.size() && pattern[start + 1] == '<') {
      start += 2;
    } else if (pattern[start] == '<' && start + 1 < pattern.size() && pattern[start + 1] != '=' &&
               pattern[start + 1] != '!') {
      start += 1;
    } else if (pattern[start] == '\'') {
      start += 1;
      close = '\'';
    } else {
      continue;
    }
    const size_t end = pattern.find(close, start);
    if (end == std::string::npos) {
      break;
    }
    names.push_back(pattern.substr(start, end - start));
    i = end;
  }
  return names;
}

RegexParser::RegexParser(const std::string& pattern, TimeParser time, std::string time_key)
    : time_(std::move(time)), time_key_(std::move(time_key)) {
  // Boost.Regex spells named groups (?<name>...); accept Python's (?P<name>...) as well.
  std::string perl = pattern;
  for (size_t at = perl.find("(?P<"); at != std::string::npos; at = perl.find("(?P<", at)) {
    if (at == 0 || perl[at - 1] != '\\') {
      perl.erase(at + 2, 1);
    } else {
      ++at;
    }
  }
  try {
    regex_.assign(perl, boost::regex::perl);
  } catch (const boost::regex_error& e) {
    throw ConfigError("bad regex '" + pattern + "': " + e.what());
  }
  names_ = group_names(pattern);
  if (names_.empty()) {
    throw ConfigError("regex '" + pattern + "' has no named group (?<name>...): no field to fill");
  }
}

bool RegexParser::parse(std::string_view record, const Timestamp& now, DocBuilder& doc) {
  std::string_view line;
  std::string_view rest;
  split_first_line(record, line, rest);
  boost::match_results<std::string_view::const_iterator> match;
  if (!boost::regex_search(line.begin(), line.end(), match, regex_)) {
    return false;
  }
  Timestamp ts = now;
  for (const auto& name : names_) {
    if (name == time_key_) {
      const auto& sub = match[name];
      if (sub.matched) {
        const std::string_view text = line.substr(static_cast<size_t>(sub.first - line.begin()),
                                                  static_cast<size_t>(sub.length()));
        if (text.empty() || time_.parse(text, ts) != text.size()) {
          return false;
        }
      }
    }
  }
  doc.add_timestamp("@timestamp", ts);
  for (const auto& name : names_) {
    const auto& sub = match[name];
    if (!sub.matched || name == time_key_) {
      continue;
    }
    const std::string_view text = line.substr(static_cast<size_t>(sub.first - line.begin()),
                                              static_cast<size_t>(sub.length()));
    if (name == "message" && !rest.empty()) {
      doc.add_string(name, std::string(text) + "\n" + std::string(rest));
    } else {
      doc.add_string(name, text);
    }
  }
  if (!rest.empty() && !doc.has_key("message")) {
    doc.add_string("message", rest);
  }
  return true;
}

}  // namespace pillion::logs
