#pragma once
// A cheap scan run before yaml-cpp. Its parser recurses once per nesting level; 0.7 stops at 2000
// levels with the unhelpful "bad file", and 2000 deep frames are close to the stack limit under
// sanitizers. Rejecting deep input first is cheaper and says why. Real configs nest < 10 levels.
#include <optional>
#include <string_view>

namespace pillion::config {

inline constexpr int kMaxNesting = 256;

struct TextPosition {
  int line = 1;    // 1-based
  int column = 1;  // 1-based
};

// Where the estimated nesting first exceeds kMaxNesting, or nullopt. The estimate over-counts
// (brackets inside quoted strings, indentation columns), never under-counts flow or block nesting.
std::optional<TextPosition> find_excessive_nesting(std::string_view text);

}  // namespace pillion::config
