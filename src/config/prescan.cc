#include "config/prescan.h"

namespace pillion::config {

std::optional<TextPosition> find_excessive_nesting(std::string_view text) {
  int flow_depth = 0;   // open '[' and '{', across lines
  int block_depth = 0;  // indentation plus leading "- " / "? " on this line
  bool line_start = true;
  TextPosition position;
  for (char c : text) {
    if (c == '\n') {
      ++position.line;
      position.column = 1;
      block_depth = 0;
      line_start = true;
      continue;
    }
    if (line_start && (c == ' ' || c == '\t' || c == '-' || c == '?')) {
      ++block_depth;
    } else {
      line_start = false;
    }
    if (c == '[' || c == '{') {
      ++flow_depth;
    } else if ((c == ']' || c == '}') && flow_depth > 0) {
      --flow_depth;
    }
    if (flow_depth + block_depth > kMaxNesting) {
      return position;
    }
    ++position.column;
  }
  return std::nullopt;
}

}  // namespace pillion::config
