#pragma once
// JSON lines: each line an object, passed through field by field; "@timestamp" is added (from the
// time_key field in the configured layout, else the read time) unless the line has one.
#include <string>

#include "logs/parser.h"

namespace pillion::logs {

class JsonParser : public Parser {
 public:
  JsonParser(TimeParser time, std::string time_key)
      : time_(std::move(time)), time_key_(std::move(time_key)) {}
  bool parse(std::string_view record, const Timestamp& now, DocBuilder& doc) override;

 private:
  TimeParser time_;
  std::string time_key_;
};

}  // namespace pillion::logs
