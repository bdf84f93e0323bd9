// Fuzzes the line parsers of `pillion logs` (keyvalue, JSON lines, regex) and the timestamp
// layouts behind them. Property: whatever the line, the document written is valid JSON, since
// one invalid document would make Elasticsearch refuse a whole bulk request.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "logs/doc_builder.h"
#include "logs/parser.h"

namespace {

using pillion::logs::DocBuilder;
using pillion::logs::Format;
using pillion::logs::ParserConfig;
using pillion::logs::ParserPtr;

ParserPtr make(Format format, const char* layout, const char* zone) {
  ParserConfig c;
  c.format = format;
  c.time_layout = layout;
  c.time_zone = zone;
  c.regex = R"(^(?<time>\S+ \S+) (?<level>\w+)(?: (?<message>.*))?$)";
  return pillion::logs::make_parser(c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ParserPtr parsers[] = {
      make(Format::kKeyValue, "%Y-%m-%d %H:%M:%S", "UTC"),
      make(Format::kKeyValue, "%b %e %H:%M:%S", "+05:30"),
      make(Format::kJson, "rfc3339", "UTC"),
      make(Format::kRegex, "%Y-%m-%d %H:%M:%S", "UTC"),
  };
  if (size == 0) {
    return 0;
  }
  auto& parser = parsers[data[0] % 4];
  const std::string_view record(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string out;
  DocBuilder doc(out);
  doc.begin();
  if (!parser->parse(record, pillion::logs::Timestamp{1700000000, 0, 0}, doc)) {
    doc.rollback();
    doc.add_string("message", record);
  }
  doc.add_bool("truncated", true);
  doc.end();
  if (!nlohmann::json::accept(out)) {
    std::abort();
  }
  return 0;
}
