#include "logs/json_parser.h"

#include <nlohmann/json.hpp>

namespace pillion::logs {

bool JsonParser::parse(std::string_view record, const Timestamp& now, DocBuilder& doc) {
  std::string_view line;
  std::string_view rest;
  split_first_line(record, line, rest);
  // ordered_json keeps the application's field order in the output.
  auto json = nlohmann::ordered_json::parse(line, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return false;
  }
  if (!json.contains("@timestamp")) {
    Timestamp ts = now;
    const auto it = json.find(time_key_);
    if (it != json.end() && it->is_string()) {
      const auto& text = it->get_ref<const std::string&>();
      Timestamp parsed;
      if (time_.parse(text, parsed) == text.size()) {
        ts = parsed;
      }
    }
    doc.add_timestamp("@timestamp", ts);
  }
  std::string value;
  for (const auto& [key, item] : json.items()) {
    if (key == "message" && !rest.empty() && item.is_string()) {
      doc.add_string(key, item.get_ref<const std::string&>() + "\n" + std::string(rest));
      continue;
    }
    value = item.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    doc.add_raw(key, value);
  }
  if (!rest.empty() && !doc.has_key("message")) {
    doc.add_string("message", rest);
  }
  return true;
}

}  // namespace pillion::logs
