#pragma once
// A user regex with named groups, e.g. `^(?<time>\S+ \S+) (?<level>\w+) (?<message>.*)$`: each
// group that matched becomes a field; the group named time_key is normalized to "@timestamp".
#include <boost/regex.hpp>
#include <string>
#include <vector>

#include "logs/parser.h"

namespace pillion::logs {

class RegexParser : public Parser {
 public:
  // Throws ConfigError for a pattern that does not compile or has no named group.
  RegexParser(const std::string& pattern, TimeParser time, std::string time_key);
  bool parse(std::string_view record, const Timestamp& now, DocBuilder& doc) override;

  // Names of the named groups in a pattern, in order: (?<name>…), (?P<name>…), (?'name'…).
  static std::vector<std::string> group_names(const std::string& pattern);

 private:
  boost::regex regex_;
  std::vector<std::string> names_;
  TimeParser time_;
  std::string time_key_;
};

}  // namespace pillion::logs
