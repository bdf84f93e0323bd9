#pragma once
// The seed's format: `2024-01-15 14:32:01 INFO order_id=ORD-9921 note="two words"`. A timestamp
// in the configured layout, an optional level word, then key=value pairs (values may be
// double-quoted with \" and \\ escapes); other words become "message".
#include <string_view>
#include <vector>

#include "logs/parser.h"

namespace pillion::logs {

class KeyValueParser : public Parser {
 public:
  explicit KeyValueParser(TimeParser time) : time_(std::move(time)) {}
  bool parse(std::string_view record, const Timestamp& now, DocBuilder& doc) override;

 private:
  TimeParser time_;
  std::vector<std::string_view> words_;  // reused across records
  // Consecutive lines mostly share their timestamp: the last one's bytes and JSON form.
  std::string cached_raw_;
  std::string cached_json_;
};

}  // namespace pillion::logs
