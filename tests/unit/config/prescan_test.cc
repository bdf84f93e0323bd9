#include "config/prescan.h"

#include <gtest/gtest.h>

#include <string>

namespace pillion::config {
namespace {

TEST(Prescan, OrdinaryConfigPasses) {
  EXPECT_FALSE(find_excessive_nesting("a: { b: [1, [2, {c: 3}]] }\nd:\n  - - e\n"));
}

TEST(Prescan, DeepFlowNestingIsFound) {
  auto deep = find_excessive_nesting("x: 1\n" + std::string(10000, '['));
  ASSERT_TRUE(deep);
  EXPECT_EQ(deep->line, 2);
  EXPECT_EQ(deep->column, kMaxNesting + 1);
}

TEST(Prescan, ClosedBracketsDoNotAccumulate) {
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    text += "[[]]";
  }
  EXPECT_FALSE(find_excessive_nesting(text));
}

TEST(Prescan, DeepBlockNestingIsFound) {
  std::string dashes;
  for (int i = 0; i < 5000; ++i) {
    dashes += "- ";
  }
  EXPECT_TRUE(find_excessive_nesting(dashes));
  EXPECT_TRUE(find_excessive_nesting("a:\n" + std::string(300, ' ') + "b: 1\n"));
}

}  // namespace
}  // namespace pillion::config
