#include "logs/parser.h"

#include "logs/json_parser.h"
#include "logs/keyvalue_parser.h"
#include "logs/regex_parser.h"

namespace pillion::logs {

ParserPtr make_parser(const ParserConfig& config) {
  std::string error;
  auto time = TimeParser::create(config.time_layout, config.time_zone, error);
  if (!time) {
    throw ConfigError(error);
  }
  switch (config.format) {
    case Format::kKeyValue:
      return std::make_unique<KeyValueParser>(std::move(*time));
    case Format::kJson:
      return std::make_unique<JsonParser>(std::move(*time), config.time_key);
    case Format::kRegex:
      return std::make_unique<RegexParser>(config.regex, std::move(*time), config.time_key);
  }
  throw ConfigError("unknown format");
}

}  // namespace pillion::logs
