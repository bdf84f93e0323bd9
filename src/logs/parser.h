#pragma once
// Line parsers: each turns one record (a line, or a line plus its continuation lines joined by
// '\n') into the fields of one JSON document.
#include <memory>
#include <string_view>

#include "logs/config.h"
#include "logs/doc_builder.h"
#include "logs/timestamp.h"

namespace pillion::logs {

class Parser {
 public:
  virtual ~Parser() = default;
  // Adds the record's fields to `doc` (between begin() and end(), which the caller writes).
  // `now` stands in for a missing timestamp. Returns false when the record does not match the
  // format; the caller then rolls back and writes the raw text with a parse-error flag.
  virtual bool parse(std::string_view record, const Timestamp& now, DocBuilder& doc) = 0;
};

using ParserPtr = std::unique_ptr<Parser>;

// Builds the parser the config names; throws ConfigError for a bad regex, layout or zone.
ParserPtr make_parser(const ParserConfig& config);

// Splits a record into its first line and the continuation lines after it.
inline void split_first_line(std::string_view record, std::string_view& first,
                             std::string_view& rest) {
  const size_t nl = record.find('\n');
  first = record.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view{} : record.substr(nl + 1);
}

}  // namespace pillion::logs
