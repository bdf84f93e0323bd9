#pragma once
// Appends JSON text to a byte buffer. Written by hand because the hot path (one record per
// log line) must not build a DOM: nlohmann::json costs several allocations per field.
#include <string>
#include <string_view>

namespace pillion::logs {

// Appends `text` as a quoted JSON string; invalid UTF-8 bytes become U+FFFD so the output is
// always valid JSON that Elasticsearch accepts.
void append_json_string(std::string& out, std::string_view text);

// Appends the body of a double-quoted key=value token (without the quotes) as a JSON string,
// resolving the backslash escapes \" and \\ of the log line on the way.
void append_json_unescaped(std::string& out, std::string_view quoted_body);

}  // namespace pillion::logs
